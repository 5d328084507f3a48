package streams

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// appMetrics are the Prometheus metrics of an App, labelled by group. The
// client's own metrics (fetches, produces, buffered records) come from
// kprom through WithMetrics.
type appMetrics struct {
	commit      prometheus.Observer
	aborts      prometheus.Counter
	records     prometheus.Counter
	deadLetters prometheus.Counter
	restore     prometheus.Observer
	restored    prometheus.Counter
}

var (
	commitSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "kite", Subsystem: "streams", Name: "transaction_commit_seconds",
		Help:    "Time to end (commit) a processing transaction.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"group"})
	abortsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "streams", Name: "transaction_aborts_total",
		Help: "Transactions aborted (rebalance, fenced producer); their records are processed again.",
	}, []string{"group"})
	recordsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "streams", Name: "records_processed_total",
		Help: "Input records processed in committed transactions.",
	}, []string{"group"})
	deadLettersTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "streams", Name: "dead_letters_total",
		Help: "Records sent to the dead-letter topic.",
	}, []string{"group"})
	restoreSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "kite", Subsystem: "streams", Name: "restore_seconds",
		Help:    "Time to restore a partition's state store from its changelog.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
	}, []string{"group"})
	lagRecords = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "kite", Subsystem: "streams", Name: "consumer_lag_records",
		Help: "Records between the last one fetched and the partition's high watermark.",
	}, []string{"group", "topic", "partition"})
	restoredTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "streams", Name: "restored_records_total",
		Help: "Changelog records read to restore state stores.",
	}, []string{"group"})
)

// RegisterMetrics registers the App metrics with reg (once per registry).
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{commitSeconds, abortsTotal, recordsTotal, deadLettersTotal, restoreSeconds, restoredTotal, lagRecords} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

func newAppMetrics(group string) appMetrics {
	return appMetrics{
		commit: commitSeconds.WithLabelValues(group), aborts: abortsTotal.WithLabelValues(group),
		records: recordsTotal.WithLabelValues(group), deadLetters: deadLettersTotal.WithLabelValues(group),
		restore: restoreSeconds.WithLabelValues(group), restored: restoredTotal.WithLabelValues(group),
	}
}

func (m appMetrics) observeCommit(d time.Duration, records int) {
	m.commit.Observe(d.Seconds())
	m.records.Add(float64(records))
}
