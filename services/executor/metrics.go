package executor

import "github.com/prometheus/client_golang/prometheus"

var (
	steps = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "executor", Name: "steps_total",
		Help: "Inputs (commands, worker results, timers) the state machine processed.",
	})
	ignoredRecords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "executor", Name: "ignored_records_total",
		Help: "Records recorded and ignored, by reason (a result for an unknown execution, a create for one that exists).",
	}, []string{"reason"})
	executionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kite", Subsystem: "executor", Name: "executions_ended_total",
		Help: "Executions that reached a terminal state, by state.",
	}, []string{"state"})
)

// RegisterMetrics registers the executor's metrics with reg.
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{steps, ignoredRecords, executionsEnded} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
