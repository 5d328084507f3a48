// Package execution is the execution model and the pure state machine that
// decides everything an execution does: which task runs to create, when a
// flowable task or the execution ends, retries, pauses, kills, restarts.
//
// The machine is a function of (flow, execution, input, now) returning the
// events that happened and the effects to carry out. Events are small
// deltas (a task run created, a state changed, outputs set); Apply folds an
// event into an Execution, so the state of an execution is the fold of its
// events. Nothing here does I/O: the in-process runtime and the Kafka
// executor drive the same code.
package execution

import (
	"fmt"
	"time"
)

// State is the state of an execution, a task run or an attempt.
type State string

// States, as Kestra names them.
const (
	Created    State = "CREATED"
	Queued     State = "QUEUED"
	Running    State = "RUNNING"
	Paused     State = "PAUSED"
	Restarted  State = "RESTARTED"
	Killing    State = "KILLING"
	Success    State = "SUCCESS"
	Warning    State = "WARNING"
	Failed     State = "FAILED"
	Killed     State = "KILLED"
	Cancelled  State = "CANCELLED"
	Retrying   State = "RETRYING"
	Retried    State = "RETRIED"
	Skipped    State = "SKIPPED"
	Terminated State = "" // not a state: the zero value
)

// transitions lists, for each state, the states it may move to. It is the
// one place the allowed transitions are written down; Transition enforces it.
// Terminal states move only to RESTARTED (restart, replay), and RETRIED is
// final for the attempt it ends.
var transitions = map[State][]State{
	Created: {Queued, Running, Paused, Killing, Killed, Cancelled, Skipped, Failed, Success, Warning},
	Queued:  {Running, Killing, Killed, Cancelled, Failed},
	// An execution (not a task run) ends RETRIED when a new execution takes
	// over its retry (retry behavior CREATE_NEW_EXECUTION).
	Running:   {Paused, Killing, Killed, Success, Warning, Failed, Retrying, Retried, Cancelled},
	Paused:    {Running, Killing, Killed, Success, Warning, Failed, Cancelled},
	Restarted: {Running, Killing, Killed, Success, Warning, Failed, Cancelled, Paused, Retried},
	Killing:   {Killed},
	Retrying:  {Running, Retried, Killing, Killed, Failed},
	Success:   {Restarted},
	Warning:   {Restarted},
	Failed:    {Restarted, Retried},
	Killed:    {Restarted},
	Cancelled: {Restarted},
	Skipped:   {Restarted},
	Retried:   {},
}

// Terminal reports whether the state is an end state.
func (s State) Terminal() bool {
	switch s {
	case Success, Warning, Failed, Killed, Cancelled, Skipped, Retried:
		return true
	}
	return false
}

// Failed reports whether the state counts as a failure.
func (s State) Failed() bool { return s == Failed || s == Killed }

// CanTransition reports whether moving from s to next is allowed.
func (s State) CanTransition(next State) bool {
	for _, t := range transitions[s] {
		if t == next {
			return true
		}
	}
	return false
}

// ErrTransition is returned for a transition the table does not allow.
type ErrTransition struct {
	From, To State
	What     string
}

func (e *ErrTransition) Error() string {
	return fmt.Sprintf("%s cannot go from %s to %s", e.What, e.From, e.To)
}

// StateTime is one entry of a state history.
type StateTime struct {
	State State     `json:"state"`
	Date  time.Time `json:"date"`
}
