package tasks

import (
	"context"
	"fmt"
	"os"

	"github.com/kiteflow/kite/core/execution"
)

// RunAttempt runs one attempt of rc.Task with its runner in runners, in a
// fresh working directory removed afterwards, and returns the attempt's
// result for the state machine (TaskRunID and Attempt left for the caller
// to fill). A runner error FAILs the attempt (KILLED when ctx ended it) and
// is logged at ERROR; a panic FAILs it too. Both the in-process runtime and
// the workers run attempts through here.
func RunAttempt(ctx context.Context, runners map[string]Runner, rc *RunContext) (fin execution.TaskFinished) {
	t := rc.Task
	defer func() {
		if p := recover(); p != nil {
			fin = execution.TaskFinished{State: execution.Failed, Error: fmt.Sprintf("task %s panicked: %v", t.ID, p)}
		}
	}()
	runner := runners[t.Type]
	if runner == nil {
		return execution.TaskFinished{State: execution.Failed, Error: fmt.Sprintf("no runner for task type %q", t.Type)}
	}
	dir, err := os.MkdirTemp("", "kite-task-")
	if err != nil {
		return execution.TaskFinished{State: execution.Failed, Error: fmt.Sprintf("creating the working directory: %v", err)}
	}
	defer func() { _ = os.RemoveAll(dir) }()
	rc.WorkDir = dir
	ctx = WithFiles(ctx, rc.Files)
	res, err := runner.Run(ctx, rc)
	if err != nil {
		rc.Logf(LevelError, "%v", err)
		st := execution.Failed
		if ctx.Err() != nil {
			st = execution.Killed
		}
		fin := execution.TaskFinished{State: st, Error: err.Error()}
		if res != nil {
			// A failed attempt keeps what it produced (an exit code, a
			// response), as in Kestra.
			fin.Outputs = res.Outputs
		}
		return fin
	}
	if res == nil {
		res = &Result{}
	}
	return execution.TaskFinished{State: res.State, Outputs: res.Outputs, Labels: res.Labels}
}
