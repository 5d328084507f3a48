// Package flow is Kite's flow language: the typed model of a flow, its YAML
// parser with line:column errors, and its validation.
//
// A flow is parsed against a plugin.Registry: the registry says which task,
// trigger and condition types exist and what properties each accepts. The
// model keeps each type's own properties as decoded YAML values (strings,
// numbers, booleans, []any, map[string]any) so that they can be rendered as
// expressions at run time; child tasks of flowable types are parsed into
// []*Task (and map[string][]*Task for Switch cases).
package flow

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kiteflow/kite/core/plugin"
)

// Pos is a 1-based position in a flow's source.
type Pos struct {
	Line   int
	Column int
}

// Flow is one revision of a flow.
type Flow struct {
	ID          string
	Namespace   string
	Revision    int
	Description string
	Labels      []Label
	Inputs      []*Input
	Variables   map[string]any
	Tasks       []*Task
	Errors      []*Task
	Finally     []*Task
	// AfterExecution tasks run once the execution is terminal (Kestra 0.21+).
	AfterExecution []*Task
	Triggers       []*Trigger
	Concurrency    *Concurrency
	Outputs        []*Output
	Retry          *Retry
	PluginDefaults []*PluginDefault
	Disabled       bool
	// Source is the YAML the flow was parsed from, as written.
	Source string
	// Warnings are problems that do not make the flow invalid.
	Warnings Diagnostics

	indexOnce sync.Once
	taskIndex map[string]*Task // by id, built by FindTask
}

// Label is one execution label. Labels are ordered and keys may repeat in
// the source; the last value of a key wins when they are applied.
type Label struct {
	Key   string
	Value string
}

// Task is a task of a flow: runnable (run by a worker) or flowable (resolved
// by the executor, with child tasks).
type Task struct {
	ID string
	// Type is the canonical short type name ("log"); TypeName is the name as
	// written in the flow ("io.kestra.plugin.core.log.Log").
	Type         string
	TypeName     string
	Description  string
	Retry        *Retry
	Timeout      time.Duration
	Disabled     bool
	AllowFailure bool
	AllowWarning bool
	// RunIf is an expression; the task is SKIPPED when it renders false.
	RunIf       string
	WorkerGroup string
	LogLevel    string
	// Props holds the type's own properties by their canonical name, with
	// plugin defaults applied. KindTasks values are []*Task, KindCases values
	// are map[string][]*Task; everything else is the decoded YAML value.
	Props map[string]any
	// Spec is the registered type.
	Spec *plugin.Type
	Pos  Pos
}

// Tasks returns the child task list held by property name ("tasks", "then",
// "else", "defaults", "errors", "finally"), or nil.
func (t *Task) Tasks(name string) []*Task {
	ts, _ := t.Props[name].([]*Task)
	return ts
}

// Cases returns the task lists of a cases property (Switch), or nil.
func (t *Task) Cases(name string) map[string][]*Task {
	c, _ := t.Props[name].(map[string][]*Task)
	return c
}

// Flowable reports whether the task holds child tasks resolved by the executor.
func (t *Task) Flowable() bool { return t.Spec != nil && t.Spec.Flowable }

// Trigger starts executions of the flow.
type Trigger struct {
	ID          string
	Type        string
	TypeName    string
	Description string
	Disabled    bool
	Conditions  []*Condition
	// Props holds the type's own properties, as for Task.
	Props map[string]any
	Spec  *plugin.Type
	Pos   Pos
}

// Condition restricts when a trigger fires.
type Condition struct {
	Type     string
	TypeName string
	Props    map[string]any
	Spec     *plugin.Type
	Pos      Pos
}

// Retry policy types.
const (
	RetryConstant    = "constant"
	RetryExponential = "exponential"
	RetryRandom      = "random"
)

// Retry behaviours of a flow-level retry.
const (
	RetryFailedTask         = "RETRY_FAILED_TASK"
	RetryCreateNewExecution = "CREATE_NEW_EXECUTION"
)

// Retry says how a failed task (or flow) is tried again.
type Retry struct {
	Type string
	// MaxAttempts (Kestra's maxAttempt) counts every attempt, the first
	// included; 0 means no limit (then MaxDuration bounds the retries).
	MaxAttempts    int
	MaxDuration    time.Duration
	WarningOnRetry bool
	// Behavior says whether a retry re-runs the failed task in the same
	// execution (RETRY_FAILED_TASK) or creates a new execution.
	Behavior string
	// Interval is the wait of a constant retry and the first wait of an
	// exponential one.
	Interval time.Duration
	// MaxInterval caps exponential waits and bounds random ones.
	MaxInterval time.Duration
	// MinInterval is the lower bound of random waits.
	MinInterval time.Duration
	// DelayFactor multiplies the wait at each exponential retry (default 2).
	DelayFactor float64
	Pos         Pos
}

// Concurrency behaviours once the limit is reached.
const (
	ConcurrencyQueue  = "QUEUE"
	ConcurrencyCancel = "CANCEL"
	ConcurrencyFail   = "FAIL"
)

// Concurrency limits how many executions of the flow run at once.
type Concurrency struct {
	Limit    int
	Behavior string
	Pos      Pos
}

// Output is a flow output, computed from an expression when the execution ends.
type Output struct {
	ID          string
	Type        InputType
	Description string
	Value       any
	Required    bool
	Pos         Pos
}

// PluginDefault gives default property values to every task (or trigger) of
// a type, unless the task sets the property itself (or Forced is set).
type PluginDefault struct {
	Type   string
	Forced bool
	Values map[string]any
	Pos    Pos
}

// Walk calls fn for every task of the flow, depth first in source order:
// tasks, errors, finally, afterExecution, and every child task of flowable
// tasks. path is the task's location ("tasks[2].then[0]"). Walk stops
// descending into a task's children when fn returns false.
func (f *Flow) Walk(fn func(t *Task, path string) bool) {
	for _, l := range []struct {
		name  string
		tasks []*Task
	}{{"tasks", f.Tasks}, {"errors", f.Errors}, {"finally", f.Finally}, {"afterExecution", f.AfterExecution}} {
		walkTasks(l.tasks, l.name, fn)
	}
}

func walkTasks(ts []*Task, path string, fn func(*Task, string) bool) {
	for i, t := range ts {
		p := path + "[" + strconv.Itoa(i) + "]"
		if !fn(t, p) || t.Spec == nil {
			continue
		}
		for _, prop := range t.Spec.Properties {
			switch prop.Schema.Kind {
			case plugin.KindTasks:
				walkTasks(t.Tasks(prop.Name), p+"."+prop.Name, fn)
			case plugin.KindCases:
				cases := t.Cases(prop.Name)
				for _, k := range slices.Sorted(maps.Keys(cases)) {
					walkTasks(cases[k], p+"."+prop.Name+"."+k, fn)
				}
			}
		}
	}
}

// FindTask returns the task with the given id anywhere in the flow. The
// engine calls it on every step, so the tasks are indexed on the first
// call: a flow's tasks must not change after it. Safe for concurrent use.
func (f *Flow) FindTask(id string) (*Task, bool) {
	f.indexOnce.Do(func() {
		f.taskIndex = map[string]*Task{}
		f.Walk(func(t *Task, _ string) bool {
			if _, dup := f.taskIndex[t.ID]; !dup {
				f.taskIndex[t.ID] = t
			}
			return true
		})
	})
	t, ok := f.taskIndex[id]
	return t, ok
}
