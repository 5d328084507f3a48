package worker

import (
	"context"
	"fmt"

	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/tasks"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
)

// defaultMaxInlineBytes is Files.MaxInlineBytes when unset.
const defaultMaxInlineBytes = 256 << 10

// Files is the worker's internal storage: where tasks read and write files,
// and where outputs too large for a Kafka record are kept (claim-check).
type Files struct {
	// Store is the storage; nil runs tasks without one (file operations
	// fail, saying so).
	Store storage.Storage
	// MaxInlineBytes is the largest JSON size of an attempt's outputs sent
	// inside its result; larger outputs are stored and sent as references.
	MaxInlineBytes int
}

func (f Files) withDefaults() Files {
	if f.MaxInlineBytes <= 0 {
		f.MaxInlineBytes = defaultMaxInlineBytes
	}
	return f
}

// taskFiles is the storage access of the job's task run.
func (w *Worker) taskFiles(job *eventv1.WorkerJob) *tasks.Files {
	if w.files.Store == nil {
		return nil
	}
	return &tasks.Files{
		Store: w.files.Store, Namespace: job.GetNamespace(), FlowID: job.GetFlowId(),
		ExecutionID: job.GetExecutionId(), TaskID: job.GetTaskId(), TaskRunID: job.GetTaskRunId(),
	}
}

// resolveVars puts back the claim-checked values the job's variables refer to.
func (w *Worker) resolveVars(ctx context.Context, vars map[string]any) (map[string]any, error) {
	out, _, err := storage.ResolveMap(ctx, w.files.Store, vars)
	if err != nil {
		return nil, fmt.Errorf("reading the task's variables from internal storage: %w", err)
	}
	return out, nil
}

// offloadOutputs stores the outputs of an attempt too large for its result
// record and returns them with references instead.
func (w *Worker) offloadOutputs(ctx context.Context, job *eventv1.WorkerJob, outputs map[string]any) (map[string]any, error) {
	return storage.Offload(ctx, w.files.Store, outputs, w.files.MaxInlineBytes, func(key string) (string, error) {
		return storage.OutputValue(job.GetNamespace(), job.GetFlowId(), job.GetExecutionId(),
			job.GetTaskId(), job.GetTaskRunId(), int(job.GetAttempt()), key)
	})
}
