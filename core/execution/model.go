package execution

import (
	"sort"
	"time"

	"github.com/kiteflow/kite/core/flow"
)

// Execution is one run of a flow revision.
type Execution struct {
	ID           string         `json:"id"`
	Namespace    string         `json:"namespace"`
	FlowID       string         `json:"flowId"`
	FlowRevision int            `json:"flowRevision"`
	Inputs       map[string]any `json:"inputs,omitempty"`
	Labels       []flow.Label   `json:"labels,omitempty"`
	Outputs      map[string]any `json:"outputs,omitempty"`
	// Trigger holds the variables of what started the execution (a schedule
	// tick, an upstream execution, a webhook request).
	Trigger map[string]any `json:"trigger,omitempty"`
	Parent  *ParentLink    `json:"parent,omitempty"`
	// RetryOf links an execution created to retry a failed one (retry
	// behavior CREATE_NEW_EXECUTION) to the first execution of the line.
	RetryOf *RetryLink  `json:"retryOf,omitempty"`
	State   State       `json:"state"`
	History []StateTime `json:"history"`
	// Error is why the execution failed, when the failure is the execution's
	// own (bad inputs, outputs that do not render) rather than a task's.
	Error string `json:"error,omitempty"`
	// TaskRuns in creation order.
	TaskRuns []*TaskRun `json:"taskRuns"`
	// Seq is the number of the last event applied.
	Seq int64 `json:"seq"`
	// Timers pending, by id.
	Timers map[string]Timer `json:"timers,omitempty"`

	byID     map[string]*TaskRun
	children map[string][]*TaskRun // parent task run id ("" for the root) → task runs
	branches map[branchKey][]*TaskRun
}

// branchKey finds the task runs of one list: a parent's branch, and for a
// ForEach's children one iteration (iter -1: every iteration).
type branchKey struct {
	parent, branch string
	iter           int
}

// ParentLink ties a subflow execution to the task run that started it.
type ParentLink struct {
	ExecutionID string `json:"executionId"`
	TaskRunID   string `json:"taskRunId"`
	Namespace   string `json:"namespace"`
	FlowID      string `json:"flowId"`
	// Outputs are the Subflow task's outputs templates (deprecated in
	// Kestra), rendered with the child's variables when it ends.
	Outputs map[string]any `json:"outputs,omitempty"`
}

// RetryLink ties a retry execution to the line it retries.
type RetryLink struct {
	OriginalID string `json:"originalId"`
	// Number counts the executions of the line before this one (1 for the
	// first retry).
	Number int `json:"number"`
	// FirstStart is when the first execution of the line was created.
	FirstStart time.Time `json:"firstStart"`
}

// TaskRun is one run of one task (for a given iteration value).
type TaskRun struct {
	ID     string `json:"id"`
	TaskID string `json:"taskId"`
	// ParentID is the task run of the enclosing flowable task ("" at the root).
	ParentID string `json:"parentTaskRunId,omitempty"`
	// Value is the ForEach iteration value this task run belongs to ("" when
	// none); Iteration is its position among the iteration values.
	Value     string `json:"value,omitempty"`
	HasValue  bool   `json:"hasValue,omitempty"`
	Iteration int    `json:"iteration,omitempty"`
	// Decision is what a flowable decided when it was created: "then" or
	// "else" for If, "cases.KEY" or "defaults" for Switch, DecisionValues
	// for a ForEach whose Items are set.
	Decision string `json:"decision,omitempty"`
	// Items are the iteration values of a ForEach, rendered once when it
	// was created.
	Items []string `json:"items,omitempty"`
	// IterationsDone counts the leading iterations of a ForEach that have
	// all ended, and IterationsState is their combined state: resolution
	// starts after them, so a step costs the same at the 1,000th value as at
	// the first.
	IterationsDone  int   `json:"iterationsDone,omitempty"`
	IterationsState State `json:"iterationsState,omitempty"`
	// Branch says which child list of the parent holds the task: "tasks",
	// "then", "else", "cases.X", "defaults", "errors", "finally".
	Branch   string         `json:"branch,omitempty"`
	State    State          `json:"state"`
	History  []StateTime    `json:"history"`
	Attempts []Attempt      `json:"attempts,omitempty"`
	Outputs  map[string]any `json:"outputs,omitempty"`
	// Error is the failure message of the last attempt.
	Error string `json:"error,omitempty"`
	// ChildExecutionID is the execution a Subflow task started.
	ChildExecutionID string `json:"childExecutionId,omitempty"`
}

// Attempt is one try of a task run.
type Attempt struct {
	State   State       `json:"state"`
	History []StateTime `json:"history"`
}

// DecisionValues marks a ForEach task run whose iteration values are set.
const DecisionValues = "values"

// Timer is a wake-up the machine asked for: a retry's backoff, a pause's
// delay, a task's timeout. The runtime feeds TimerFired back at Due.
type Timer struct {
	ID        string    `json:"id"`
	Due       time.Time `json:"due"`
	Kind      string    `json:"kind"`
	TaskRunID string    `json:"taskRunId,omitempty"`
}

// Timer kinds.
const (
	TimerRetry       = "retry"
	TimerPause       = "pause"
	TimerTimeout     = "timeout"
	TimerFlowRetry   = "flow-retry"
	TimerMaxDuration = "max-duration"
)

// TaskRun returns the task run with the id.
func (e *Execution) TaskRun(id string) (*TaskRun, bool) {
	e.index()
	tr, ok := e.byID[id]
	return tr, ok
}

// Children returns the task runs whose parent is parentID ("" for the
// root), in creation order.
func (e *Execution) Children(parentID string) []*TaskRun {
	e.index()
	return e.children[parentID]
}

// Branch returns the task runs of a parent's branch in creation order; with
// iter >= 0 only those of that ForEach iteration.
func (e *Execution) Branch(parentID, branch string, iter int) []*TaskRun {
	e.index()
	return e.branches[branchKey{parentID, branch, iter}]
}

func (e *Execution) index() {
	if e.byID != nil {
		return
	}
	e.byID = make(map[string]*TaskRun, len(e.TaskRuns))
	e.children = map[string][]*TaskRun{}
	e.branches = map[branchKey][]*TaskRun{}
	for _, tr := range e.TaskRuns {
		e.indexOne(tr)
	}
}

func (e *Execution) indexOne(tr *TaskRun) {
	e.byID[tr.ID] = tr
	e.children[tr.ParentID] = append(e.children[tr.ParentID], tr)
	all := branchKey{tr.ParentID, tr.Branch, -1}
	e.branches[all] = append(e.branches[all], tr)
	if tr.HasValue {
		one := branchKey{tr.ParentID, tr.Branch, tr.Iteration}
		e.branches[one] = append(e.branches[one], tr)
	}
}

func (e *Execution) addTaskRun(tr *TaskRun) {
	e.index()
	e.TaskRuns = append(e.TaskRuns, tr)
	e.indexOne(tr)
}

// Terminal reports whether the execution has ended.
func (e *Execution) Terminal() bool { return e.State.Terminal() }

// LabelMap returns the labels as a map, the last value of a key winning.
func (e *Execution) LabelMap() map[string]string {
	m := make(map[string]string, len(e.Labels))
	for _, l := range e.Labels {
		m[l.Key] = l.Value
	}
	return m
}

// SortedTimers returns the pending timers, earliest first.
func (e *Execution) SortedTimers() []Timer {
	out := make([]Timer, 0, len(e.Timers))
	for _, t := range e.Timers {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Due.Equal(out[j].Due) {
			return out[i].Due.Before(out[j].Due)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
