package worker

import "go.uber.org/zap"

// Log field constructors: the keys are fixed, so that every line about one
// execution or attempt can be found with the same query.

func fExecutionID(id string) zap.Field { return zap.String("execution_id", id) }
func fTaskRunID(id string) zap.Field   { return zap.String("task_run_id", id) }
func fTaskID(id string) zap.Field      { return zap.String("task_id", id) }
func fAttempt(n int32) zap.Field       { return zap.Int32("attempt", n) }
func fWorkerID(id string) zap.Field    { return zap.String("worker_id", id) }
func fTopic(t string) zap.Field        { return zap.String("topic", t) }
func fPartition(p int32) zap.Field     { return zap.Int32("partition", p) }
func fOffset(o int64) zap.Field        { return zap.Int64("offset", o) }

// attemptFields are the fields of every line about one attempt.
func attemptFields(executionID, taskRunID, taskID string, attempt int32) []zap.Field {
	return []zap.Field{fExecutionID(executionID), fTaskRunID(taskRunID), fTaskID(taskID), fAttempt(attempt)}
}
