package execution

import (
	"time"

	"github.com/kiteflow/kite/core/flow"
)

// Input is what the machine reacts to: a command or a result.
type Input interface{ input() }

// Create starts an execution. Inputs are already validated and typed
// (ResolveInputs). Limited says the flow's concurrency limit is reached:
// the execution is then queued, cancelled or failed as the flow's
// concurrency behavior says.
type Create struct {
	ID      string
	Inputs  map[string]any
	Labels  []flow.Label
	Trigger map[string]any
	Parent  *ParentLink
	RetryOf *RetryLink
	Limited bool
	// Error, when set, creates the execution FAILED at once with this error:
	// its inputs did not validate where only the executor could check them
	// (a subflow's, a trigger's).
	Error string
}

// Dequeue starts a QUEUED execution once the concurrency limit allows it.
type Dequeue struct{}

// TaskStarted says a worker began an attempt of a task run.
type TaskStarted struct {
	TaskRunID string
	Attempt   int
}

// TaskFinished is the result of an attempt of a runnable task run.
type TaskFinished struct {
	TaskRunID string
	Attempt   int
	State     State
	Outputs   map[string]any
	Labels    []flow.Label
	Error     string
}

// ChildEnded says the execution a Subflow task started has ended.
type ChildEnded struct {
	TaskRunID string
	ChildID   string
	State     State
	Outputs   map[string]any
	// Error fails the Subflow task even if the child succeeded (its
	// outputs templates did not render).
	Error string
}

// WorkerLost says the worker running an attempt stopped (its heartbeats
// did, or it said it was stopping) before reporting the attempt's end: the
// attempt is KILLED and the task run runs again as a new attempt, unless the
// execution is being killed.
type WorkerLost struct {
	TaskRunID string
	Attempt   int
	WorkerID  string
}

// Kill stops the execution and everything in it.
type Kill struct{}

// Resume resumes a PAUSED execution; Inputs answer the Pause task's onResume
// declarations.
type Resume struct{ Inputs map[string]any }

// Restart re-runs the failed task runs of a FAILED or KILLED execution.
type Restart struct{}

// Replay re-runs the execution from a task run, dropping what came after it.
type Replay struct{ TaskRunID string }

// TimerFired delivers a timer the machine set.
type TimerFired struct{ TimerID string }

func (Create) input()       {}
func (Dequeue) input()      {}
func (TaskStarted) input()  {}
func (TaskFinished) input() {}
func (ChildEnded) input()   {}
func (WorkerLost) input()   {}
func (Kill) input()         {}
func (Resume) input()       {}
func (Restart) input()      {}
func (Replay) input()       {}
func (TimerFired) input()   {}

// Effect is something the machine asks its driver to do.
type Effect interface{ effect() }

// Dispatch asks for an attempt of a runnable task run to be run by a worker.
type Dispatch struct {
	TaskRunID string
	Attempt   int
}

// CancelTask asks the worker running an attempt to stop it.
type CancelTask struct {
	TaskRunID string
	Attempt   int
}

// StartChild asks for a subflow execution to be created, with the given id.
type StartChild struct {
	TaskRunID string
	ChildID   string
	Namespace string
	FlowID    string
	Revision  int
	Inputs    map[string]any
	Labels    []flow.Label
	// Wait says the parent waits for the child (a ChildEnded is expected).
	Wait bool
	// Outputs are templates the child renders with its own variables when
	// it ends (ParentLink.Outputs).
	Outputs map[string]any
}

// KillChild asks for a subflow execution to be killed.
type KillChild struct{ ChildID string }

// Log is a line the machine has to say about the execution.
type Log struct {
	TaskRunID string
	Level     string
	Message   string
}

// Ended says the execution reached a terminal state. ParentOutputs are the
// parent's Subflow outputs templates, rendered.
type Ended struct {
	State         State
	ParentOutputs map[string]any
	// ParentOutputsError says why ParentOutputs could not be rendered; the
	// parent's Subflow task then fails.
	ParentOutputsError string
}

// RetryExecution asks for a new execution of the same flow, with the same
// inputs and labels, at Due: the retry of this one (which ended RETRIED).
type RetryExecution struct {
	ID      string
	Due     time.Time
	RetryOf RetryLink
}

func (Dispatch) effect()       {}
func (CancelTask) effect()     {}
func (StartChild) effect()     {}
func (KillChild) effect()      {}
func (Log) effect()            {}
func (Ended) effect()          {}
func (RetryExecution) effect() {}

// Result is what one Step produced.
type Result struct {
	Events  []*Event
	Effects []Effect
}
