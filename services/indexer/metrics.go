package indexer

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// The indexer's Prometheus metrics.
var (
	recordsIndexed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "indexer", Name: "records_total",
		Help: "Records read and indexed (written, outdated or dead-lettered).",
	})
	docsWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "indexer", Name: "documents_total",
		Help: "Documents acknowledged by the repository (outdated versions included).",
	})
	deadLetters = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "indexer", Name: "dead_letters_total",
		Help: "Records sent to the dead-letter topic: not decodable, or a document rejected by the repository.",
	})
	writeRetries = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "indexer", Name: "write_retries_total",
		Help: "Failed writes to the repository, retried (the search server was down or overloaded).",
	})
	writeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "kite", Subsystem: "indexer", Name: "write_seconds",
		Help:    "Time to write one poll's documents.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
	projectionLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "kite", Subsystem: "indexer", Name: "projection_lag_seconds",
		Help: "From a record's timestamp to its documents written.",
		// Bounds at the usual targets (100 ms, 1 s, 2 s), so that a
		// quantile read off the buckets says whether it is met.
		Buckets: []float64{0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120},
	})
)

// RegisterMetrics registers the indexer metrics with reg. Registering them
// again with the same registry is not an error.
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{recordsIndexed, docsWritten, deadLetters, writeRetries, writeSeconds, projectionLag} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}
