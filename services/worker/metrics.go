package worker

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// The worker's Prometheus metrics. The Kafka clients' own metrics (fetches,
// produces, buffered records) come from kprom through streams.WithMetrics.
var (
	jobsStarted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "worker", Name: "jobs_started_total",
		Help: "Jobs acknowledged and started (one per attempt).",
	})
	jobsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "worker", Name: "jobs_finished_total",
		Help: "Attempts ended, by the state reported: SUCCESS, WARNING, FAILED or KILLED.",
	}, []string{"state"})
	jobsRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "kite", Subsystem: "worker", Name: "jobs_running",
		Help: "Attempts running now (slots taken).",
	})
	deadLetters = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "worker", Name: "dead_letters_total",
		Help: "Job records that could not be decoded, sent to the dead-letter topic.",
	})
	resultsUndelivered = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "worker", Name: "results_undelivered_total",
		Help: "Finished results given up on at shutdown: the executor re-dispatches those attempts.",
	})
	attemptsHandedBack = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "worker", Name: "attempts_handed_back_total",
		Help: "Attempts still running when the shutdown grace ended: stopped without a result, the executor runs them again.",
	})
)

// RegisterMetrics registers the worker metrics with reg. Registering them
// again with the same registry is not an error.
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{jobsStarted, jobsFinished, jobsRunning, deadLetters, resultsUndelivered, attemptsHandedBack} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}
