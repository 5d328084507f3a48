package tasks

import (
	"context"
	"fmt"
	"time"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

// Runner runs one attempt of a runnable task. It returns the attempt's
// result; an error means the attempt FAILED, and its message is what the
// user sees (the runtime logs it at ERROR). Run must return promptly once
// ctx is done (a kill or a timeout), ending anything it started.
type Runner interface {
	Run(ctx context.Context, rc *RunContext) (*Result, error)
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, rc *RunContext) (*Result, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, rc *RunContext) (*Result, error) { return f(ctx, rc) }

// Result is what an attempt produced.
type Result struct {
	// State is SUCCESS (the default when empty), WARNING or FAILED.
	State   execution.State
	Outputs map[string]any
	// Labels are execution labels to set (the Labels task).
	Labels []flow.Label
}

// Level is a log level.
type Level string

// Log levels.
const (
	LevelTrace Level = "TRACE"
	LevelDebug Level = "DEBUG"
	LevelInfo  Level = "INFO"
	LevelWarn  Level = "WARN"
	LevelError Level = "ERROR"
)

// Logger receives a task's log lines. Implementations are safe for
// concurrent use (a shell task logs stdout and stderr from two goroutines).
type Logger interface {
	Log(level Level, msg string)
}

// RunContext is everything a runner may use: the task as declared, the
// variables its expressions see, a logger and a private working directory.
type RunContext struct {
	Task *flow.Task
	// Vars are the expression variables (inputs, outputs, vars, execution,
	// flow, task, taskrun, parent(s), trigger, labels).
	Vars   map[string]any
	Engine *expr.Engine
	Logger Logger
	// WorkDir is an empty directory for this attempt, removed afterwards.
	WorkDir     string
	ExecutionID string
	TaskRunID   string
	Attempt     int
	// Files is the task run's access to internal storage; nil where Kite
	// runs without one.
	Files *Files
}

// Has reports whether the task sets the property (or it has a default).
func (rc *RunContext) Has(name string) bool {
	v, ok := rc.Task.Props[name]
	return ok && v != nil
}

// Render renders a property recursively (strings of maps and lists too);
// nil when the task does not set it.
func (rc *RunContext) Render(ctx context.Context, name string) (any, error) {
	v, ok := rc.Task.Props[name]
	if !ok || v == nil {
		return nil, nil
	}
	out, err := rc.Engine.RenderAll(ctx, v, rc.Vars)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// Value renders a property that may be a single {{ expression }} to its
// typed value (a list, a map, a number) rather than its string form.
func (rc *RunContext) Value(ctx context.Context, name string) (any, error) {
	v, ok := rc.Task.Props[name]
	if !ok || v == nil {
		return nil, nil
	}
	var (
		out any
		err error
	)
	if s, isStr := v.(string); isStr {
		out, err = rc.Engine.RenderValue(ctx, s, rc.Vars)
	} else {
		out, err = rc.Engine.RenderAll(ctx, v, rc.Vars)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// String renders a property to a string ("" when unset).
func (rc *RunContext) String(ctx context.Context, name string) (string, error) {
	v, err := rc.Render(ctx, name)
	if err != nil || v == nil {
		return "", err
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return expr.Stringify(v), nil
}

// Bool renders a property to a boolean, with Kestra's truthiness for strings.
func (rc *RunContext) Bool(ctx context.Context, name string) (bool, error) {
	v, err := rc.Value(ctx, name)
	if err != nil || v == nil {
		return false, err
	}
	return expr.Truthy(v), nil
}

// Duration renders a duration property (ISO-8601 or Go style); 0 when unset.
func (rc *RunContext) Duration(ctx context.Context, name string) (time.Duration, error) {
	s, err := rc.String(ctx, name)
	if err != nil || s == "" {
		return 0, err
	}
	d, err := flow.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}

// Logf logs a formatted line.
func (rc *RunContext) Logf(level Level, format string, args ...any) {
	if rc.Logger != nil {
		rc.Logger.Log(level, fmt.Sprintf(format, args...))
	}
}
