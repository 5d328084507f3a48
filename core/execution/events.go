package execution

import (
	"fmt"
	"time"

	"github.com/kiteflow/kite/core/flow"
)

// EventType names what an event records.
type EventType string

// Event types. Each is a small delta: its size does not grow with the
// number of task runs of the execution.
const (
	EvCreated        EventType = "CREATED"          // Execution holds the header (no task runs)
	EvState          EventType = "STATE"            // the execution's state
	EvTaskRunCreated EventType = "TASK_RUN_CREATED" // TaskRun holds the new task run
	EvTaskRunState   EventType = "TASK_RUN_STATE"   // a task run's state
	EvAttempt        EventType = "ATTEMPT"          // Attempt (1-based) of a task run takes State; a new number appends an attempt
	EvOutputs        EventType = "OUTPUTS"          // a task run's outputs (TaskRunID), or the execution's (no TaskRunID)
	EvLabels         EventType = "LABELS"           // labels set (replacing keys already there)
	EvTimerSet       EventType = "TIMER_SET"
	EvTimerCancelled EventType = "TIMER_CANCELLED"
	EvChild          EventType = "CHILD"            // a Subflow task run started ChildExecutionID
	EvTaskRunRemoved EventType = "TASK_RUN_REMOVED" // a restart or replay drops a task run
	EvIterations     EventType = "ITERATIONS"       // a ForEach's leading Done iterations ended, combined State
)

// Event is one fact of an execution's history. Seq numbers the events of
// one execution from 1, without gaps.
type Event struct {
	Seq         int64          `json:"seq"`
	Type        EventType      `json:"type"`
	Time        time.Time      `json:"time"`
	ExecutionID string         `json:"executionId"`
	TaskRunID   string         `json:"taskRunId,omitempty"`
	State       State          `json:"state,omitempty"`
	Attempt     int            `json:"attempt,omitempty"`
	Error       string         `json:"error,omitempty"`
	Outputs     map[string]any `json:"outputs,omitempty"`
	Labels      []flow.Label   `json:"labels,omitempty"`
	Timer       *Timer         `json:"timer,omitempty"`
	TaskRun     *TaskRun       `json:"taskRun,omitempty"`
	Execution   *Execution     `json:"execution,omitempty"`
	ChildID     string         `json:"childId,omitempty"`
	Done        int            `json:"done,omitempty"`
}

// Apply folds one event into the execution. Events must come in sequence
// order; an event whose Seq is not the next one is refused, so a replayed
// or duplicated event never applies twice.
func Apply(e *Execution, ev *Event) error {
	if ev.Type != EvCreated && ev.Seq != e.Seq+1 {
		return fmt.Errorf("execution %s: event %d applied after event %d", e.ID, ev.Seq, e.Seq)
	}
	// An event about a task run names one the execution has.
	var tr *TaskRun
	if ev.TaskRunID != "" {
		var ok bool
		if tr, ok = e.TaskRun(ev.TaskRunID); !ok {
			return fmt.Errorf("execution %s: no task run %s", e.ID, ev.TaskRunID)
		}
	}
	switch ev.Type {
	case EvCreated:
		if e.Seq != 0 {
			return fmt.Errorf("execution %s: created twice", e.ID)
		}
		*e = *ev.Execution
		// The execution must not share what it changes with the event.
		e.Labels = append([]flow.Label(nil), ev.Execution.Labels...)
		e.TaskRuns = nil
		e.byID, e.children, e.branches = nil, nil, nil
		e.History = []StateTime{{ev.Execution.State, ev.Time}}
	case EvState:
		if e.State != ev.State && !e.State.CanTransition(ev.State) {
			return &ErrTransition{From: e.State, To: ev.State, What: "execution " + e.ID}
		}
		e.State = ev.State
		e.History = append(e.History, StateTime{ev.State, ev.Time})
		if ev.Error != "" {
			e.Error = ev.Error
		}
	case EvTaskRunCreated:
		created := *ev.TaskRun
		created.History = []StateTime{{created.State, ev.Time}}
		e.addTaskRun(&created)
	case EvTaskRunState:
		if tr.State != ev.State && !tr.State.CanTransition(ev.State) {
			return &ErrTransition{From: tr.State, To: ev.State, What: "task run " + tr.TaskID}
		}
		tr.State = ev.State
		tr.History = append(tr.History, StateTime{ev.State, ev.Time})
		if ev.Error != "" {
			tr.Error = ev.Error
		}
	case EvAttempt:
		switch {
		case ev.Attempt == len(tr.Attempts)+1:
			tr.Attempts = append(tr.Attempts, Attempt{State: ev.State, History: []StateTime{{ev.State, ev.Time}}})
		case ev.Attempt >= 1 && ev.Attempt <= len(tr.Attempts):
			a := &tr.Attempts[ev.Attempt-1]
			a.State = ev.State
			a.History = append(a.History, StateTime{ev.State, ev.Time})
		default:
			return fmt.Errorf("execution %s: task run %s has no attempt %d", e.ID, tr.TaskID, ev.Attempt)
		}
	case EvOutputs:
		if ev.TaskRunID == "" {
			e.Outputs = ev.Outputs
			break
		}
		tr.Outputs = ev.Outputs
	case EvLabels:
		for _, l := range ev.Labels {
			replaced := false
			for i := range e.Labels {
				if e.Labels[i].Key == l.Key {
					e.Labels[i].Value, replaced = l.Value, true
				}
			}
			if !replaced {
				e.Labels = append(e.Labels, l)
			}
		}
	case EvTimerSet:
		if e.Timers == nil {
			e.Timers = map[string]Timer{}
		}
		e.Timers[ev.Timer.ID] = *ev.Timer
	case EvTimerCancelled:
		delete(e.Timers, ev.Timer.ID)
	case EvChild:
		tr.ChildExecutionID = ev.ChildID
	case EvIterations:
		tr.IterationsDone, tr.IterationsState = ev.Done, ev.State
	case EvTaskRunRemoved:
		kept := e.TaskRuns[:0]
		for _, tr := range e.TaskRuns {
			if tr.ID != ev.TaskRunID {
				kept = append(kept, tr)
			}
		}
		e.TaskRuns = kept
		e.byID, e.children, e.branches = nil, nil, nil
	default:
		return fmt.Errorf("execution %s: unknown event type %q", e.ID, ev.Type)
	}
	e.Seq = ev.Seq
	return nil
}
