package tasks

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/storage/local"
)

// logEntry is one line a runner logged.
type logEntry struct {
	Level Level
	Msg   string
}

// logRecorder is a Logger keeping every line, safe for concurrent use.
type logRecorder struct {
	mu      sync.Mutex
	entries []logEntry
}

func (r *logRecorder) Log(level Level, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, logEntry{level, msg})
}

// all returns the lines logged so far.
func (r *logRecorder) all() []logEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.entries)
}

// at returns the messages logged at level, in order.
func (r *logRecorder) at(level Level) []string {
	var out []string
	for _, e := range r.all() {
		if e.Level == level {
			out = append(out, e.Msg)
		}
	}
	return out
}

// parseTask parses a flow holding the one task written in taskYAML (indented
// as an item of tasks:), so that the task has its declared defaults.
func parseTask(tb testing.TB, taskYAML string) *flow.Task {
	tb.Helper()
	src := "id: f\nnamespace: kite.test\ntasks:\n" + taskYAML
	f, err := (&flow.Parser{Registry: Registry(), CheckExpr: expr.Default.Check}).Parse("test.yaml", []byte(src))
	if err != nil {
		tb.Fatalf("parsing the flow:\n%s\nerror: %v", src, err)
	}
	if len(f.Tasks) != 1 {
		tb.Fatalf("parsed %d tasks, want 1", len(f.Tasks))
	}
	return f.Tasks[0]
}

// newRunContext returns a RunContext of task with vars, a recording logger
// and a fresh working directory.
func newRunContext(tb testing.TB, task *flow.Task, vars map[string]any) (*RunContext, *logRecorder) {
	tb.Helper()
	logs := &logRecorder{}
	store, err := local.New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return &RunContext{
		Files:       &Files{Store: store, Namespace: "kite.test", FlowID: "f", ExecutionID: "exec1", TaskID: task.ID, TaskRunID: "taskrun1"},
		Task:        task,
		Vars:        vars,
		Engine:      expr.Default,
		Logger:      logs,
		WorkDir:     tb.TempDir(),
		ExecutionID: "exec1",
		TaskRunID:   "taskrun1",
		Attempt:     1,
	}, logs
}

// runTask runs task with the runner of its type.
func runTask(ctx context.Context, tb testing.TB, rc *RunContext) (*Result, error) {
	tb.Helper()
	r, ok := Runners()[rc.Task.Type]
	if !ok {
		tb.Fatalf("no runner for type %q", rc.Task.Type)
	}
	return r.Run(ctx, rc)
}

// wantErr checks err against a wanted substring; "" means no error.
func wantErr(tb testing.TB, err error, want string) {
	tb.Helper()
	switch {
	case want == "" && err != nil:
		tb.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		tb.Fatalf("got no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		tb.Fatalf("error %q does not contain %q", err, want)
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}
