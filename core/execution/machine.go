package execution

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

// Machine is the pure state machine of executions. It holds no state of its
// own: everything is in the Execution passed to Step. It is safe for
// concurrent use on different executions.
type Machine struct {
	// Engine renders the expressions the executor evaluates (runIf, If
	// conditions, Switch values, ForEach values, Subflow inputs, flow
	// outputs). Nil means expr.Default.
	Engine *expr.Engine
	// Env is the envs variable: the environment the engine was given
	// (Kestra's envs, from KESTRA_-prefixed variables).
	Env map[string]any
}

// Step applies one input to the execution e of flow f at time now. It
// folds the events it decides into e as it goes (e is the new state when it
// returns) and returns them with the effects to carry out. The same (f, e,
// input, now) always gives the same events and effects: ids are derived
// from the execution id and the event sequence.
//
// An input that does not apply (a result for a task run that already ended,
// a command on an execution in a state that does not accept it) changes
// nothing and returns a Log effect saying why; it is never an error. An
// error means the execution's state is inconsistent with its flow.
func (m *Machine) Step(f *flow.Flow, e *Execution, in Input, now time.Time) (*Result, error) {
	s := &step{m: m, f: f, e: e, now: now.UTC(), res: &Result{}, engine: m.Engine}
	if s.engine == nil {
		s.engine = expr.Default
	}
	s.input(in)
	if s.err == nil {
		s.advance()
	}
	return s.res, s.err
}

// step is the work of one Step call.
type step struct {
	m      *Machine
	f      *flow.Flow
	e      *Execution
	now    time.Time
	res    *Result
	engine *expr.Engine
	err    error
}

func (s *step) emit(ev *Event) {
	if s.err != nil {
		return
	}
	ev.Seq, ev.Time, ev.ExecutionID = s.e.Seq+1, s.now, s.e.ID
	if ev.Type == EvCreated {
		ev.Seq, ev.ExecutionID = 1, ev.Execution.ID
	}
	if err := Apply(s.e, ev); err != nil {
		s.err = err
		return
	}
	s.res.Events = append(s.res.Events, ev)
}

func (s *step) effect(ef Effect) { s.res.Effects = append(s.res.Effects, ef) }

func (s *step) logf(tr *TaskRun, level, format string, args ...any) {
	id := ""
	if tr != nil {
		id = tr.ID
	}
	s.effect(Log{TaskRunID: id, Level: level, Message: fmt.Sprintf(format, args...)})
}

// newID returns an id derived from the execution id and the next event
// sequence number (and n, for several ids from one event), 11 base62 digits.
func (s *step) newID(n int) string { return base62(s.idHash(n)) }

// newExecutionID returns the id of an execution this step creates (a
// subflow's, a retry's): deterministic like newID, with the step's time as
// its creation time.
func (s *step) newExecutionID(n int) string { return NewExecutionID(s.now, s.idHash(n)) }

func (s *step) idHash(n int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s.e.ID))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s.e.Seq+1))
	binary.BigEndian.PutUint64(b[8:], uint64(n))
	h.Write(b[:])
	return h.Sum64()
}

const base62Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func base62(v uint64) string {
	out := make([]byte, 11)
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = base62Digits[v%62]
		v /= 62
	}
	return string(out)
}

func (s *step) setState(st State, errMsg string) {
	if s.e.State != st {
		s.emit(&Event{Type: EvState, State: st, Error: errMsg})
	}
}

func (s *step) setTaskRunState(tr *TaskRun, st State, errMsg string) {
	if tr.State != st {
		s.emit(&Event{Type: EvTaskRunState, TaskRunID: tr.ID, State: st, Error: errMsg})
	}
}

func (s *step) setTimer(kind string, tr *TaskRun, due time.Time) {
	id := kind
	if tr != nil {
		id = kind + ":" + tr.ID
	}
	t := &Timer{ID: id, Kind: kind, Due: due}
	if tr != nil {
		t.TaskRunID = tr.ID
	}
	s.emit(&Event{Type: EvTimerSet, Timer: t})
}

func (s *step) cancelTimer(kind string, tr *TaskRun) {
	id := kind
	if tr != nil {
		id = kind + ":" + tr.ID
	}
	if _, ok := s.e.Timers[id]; ok {
		s.emit(&Event{Type: EvTimerCancelled, Timer: &Timer{ID: id}})
	}
}

// input applies the direct consequences of one input.
func (s *step) input(in Input) {
	switch in := in.(type) {
	case Create:
		s.create(in)
	case Dequeue:
		if s.e.State != Queued {
			s.logf(nil, "WARN", "dequeue ignored: the execution is %s, not QUEUED", s.e.State)
			return
		}
		s.setState(Running, "")
	case TaskStarted:
		s.taskStarted(in)
	case TaskFinished:
		s.taskFinished(in)
	case WorkerLost:
		s.workerLost(in)
	case ChildEnded:
		s.childEnded(in)
	case Kill:
		s.kill()
	case Resume:
		s.resume(in)
	case Restart:
		s.restart()
	case Replay:
		s.replay(in)
	case TimerFired:
		s.timerFired(in)
	default:
		s.err = fmt.Errorf("execution %s: unknown input %T", s.e.ID, in)
	}
}

func (s *step) create(in Create) {
	if s.e.Seq != 0 {
		s.logf(nil, "WARN", "create ignored: execution %s exists", s.e.ID)
		return
	}
	labels := append([]flow.Label(nil), s.f.Labels...)
	for _, l := range in.Labels {
		labels = setLabel(labels, l)
	}
	// Every execution carries the id of the first execution of its tree
	// (subflows inherit it), as Kestra's system.correlationId label.
	if !hasLabel(labels, CorrelationLabel) {
		labels = append(labels, flow.Label{Key: CorrelationLabel, Value: in.ID})
	}
	s.emit(&Event{Type: EvCreated, Execution: &Execution{
		ID: in.ID, Namespace: s.f.Namespace, FlowID: s.f.ID, FlowRevision: s.f.Revision,
		Inputs: in.Inputs, Labels: labels, Trigger: in.Trigger, Parent: in.Parent, RetryOf: in.RetryOf, State: Created,
	}})
	if in.Error != "" {
		s.setState(Failed, in.Error)
		s.effect(Ended{State: Failed})
		return
	}
	if !in.Limited || s.f.Concurrency == nil {
		s.setState(Running, "")
		return
	}
	switch s.f.Concurrency.Behavior {
	case flow.ConcurrencyCancel:
		s.setState(Cancelled, "")
		s.effect(Ended{State: Cancelled})
	case flow.ConcurrencyFail:
		s.setState(Failed, fmt.Sprintf("the flow's concurrency limit (%d) is reached", s.f.Concurrency.Limit))
		s.effect(Ended{State: Failed})
	default:
		s.setState(Queued, "")
	}
}

// CorrelationLabel is the label holding the id of the first execution of an
// execution tree.
const CorrelationLabel = "system.correlationId"

func hasLabel(labels []flow.Label, key string) bool {
	for _, l := range labels {
		if l.Key == key {
			return true
		}
	}
	return false
}

func setLabel(labels []flow.Label, l flow.Label) []flow.Label {
	for i := range labels {
		if labels[i].Key == l.Key {
			labels[i].Value = l.Value
			return labels
		}
	}
	return append(labels, l)
}

// maxRounds bounds the resolution loop of one step; each round creates or
// ends at least one task run, so a flow would need more task runs than
// this in one step to reach it.
const maxRounds = 100_000

// advance resolves the execution until nothing more happens without an
// outside input: task runs to create, flowables and the execution to end.
func (s *step) advance() {
	for range maxRounds {
		if s.err != nil || s.e.Terminal() {
			return
		}
		switch s.e.State {
		case Running, Restarted, Paused, Killing:
		default:
			return
		}
		before := s.e.Seq
		s.resolveRoot()
		if s.e.Seq == before {
			return
		}
	}
	s.err = fmt.Errorf("execution %s: resolution did not settle", s.e.ID)
}

func (s *step) resolveRoot() {
	if s.e.State == Killing {
		s.finishKill()
		return
	}
	st, done := s.resolveScope(&scope{tasks: s.f.Tasks, errors: s.f.Errors, finally: s.f.Finally, iter: -1})
	if s.err != nil {
		return
	}
	if !done {
		s.syncPaused()
		return
	}
	s.end(st)
}

// syncPaused keeps the execution PAUSED while a task run is paused.
func (s *step) syncPaused() {
	paused := false
	for _, tr := range s.e.TaskRuns {
		if tr.State == Paused {
			paused = true
			break
		}
	}
	switch {
	case paused && s.e.State != Paused:
		s.setState(Paused, "")
	case !paused && s.e.State == Paused:
		s.setState(Running, "")
	}
}

// end computes the flow outputs and ends the execution; a failure whose
// retry creates a new execution ends RETRIED instead.
func (s *step) end(st State) {
	if st == Failed && s.retryAsNewExecution() {
		return
	}
	errMsg := ""
	if (st == Success || st == Warning) && len(s.f.Outputs) > 0 {
		out, err := s.flowOutputs()
		if err != nil {
			st, errMsg = Failed, err.Error()
			s.logf(nil, "ERROR", "%s", errMsg)
		} else {
			s.emit(&Event{Type: EvOutputs, Outputs: out})
		}
	}
	s.setState(st, errMsg)
	out, err := s.parentOutputs()
	ended := Ended{State: st, ParentOutputs: out}
	if err != nil {
		ended.ParentOutputsError = err.Error()
	}
	s.effect(ended)
}

// parentOutputs renders the parent's Subflow outputs templates with this
// execution's variables.
func (s *step) parentOutputs() (map[string]any, error) {
	if s.e.Parent == nil || len(s.e.Parent.Outputs) == 0 {
		return nil, nil
	}
	vars := s.vars(nil)
	out := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(s.e.Parent.Outputs)) {
		v, err := s.renderValue(s.e.Parent.Outputs[k], vars)
		if err != nil {
			return out, fmt.Errorf("subflow output %q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// retryAsNewExecution ends a failed execution RETRIED and asks for a new
// one when the retry policy of a failed task, or of the flow, says so and
// the line has tries left.
func (s *step) retryAsNewExecution() bool {
	var pol *flow.Retry
	for _, tr := range s.e.TaskRuns {
		if tr.State != Failed {
			continue
		}
		t, _ := s.task(tr)
		if p := s.retryPolicy(t, tr); p != nil && p.Behavior == flow.RetryCreateNewExecution {
			pol = p
			break
		}
	}
	if pol == nil && s.f.Retry != nil && s.f.Retry.Behavior == flow.RetryCreateNewExecution {
		pol = s.f.Retry
	}
	if pol == nil {
		return false
	}
	link := RetryLink{OriginalID: s.e.ID, Number: 1, FirstStart: s.e.History[0].Date}
	if s.e.RetryOf != nil {
		link = *s.e.RetryOf
		link.Number++
	}
	delay, ok := retryDelay(pol, link.Number, link.FirstStart, s.now, s.e.ID)
	if !ok {
		return false
	}
	s.logf(nil, "WARN", "execution failed; retry %d as a new execution in %s", link.Number, delay)
	s.setState(Retried, "")
	s.effect(RetryExecution{ID: s.newExecutionID(2), Due: s.now.Add(delay), RetryOf: link})
	s.effect(Ended{State: Retried})
	return true
}

func (s *step) flowOutputs() (map[string]any, error) {
	vars := s.vars(nil)
	out := map[string]any{}
	for _, o := range s.f.Outputs {
		v, err := s.renderValue(o.Value, vars)
		if err != nil {
			return nil, fmt.Errorf("flow output %q: %w", o.ID, err)
		}
		if v == nil && o.Required {
			return nil, fmt.Errorf("flow output %q: required, but its value is null", o.ID)
		}
		if str, isStr := v.(string); !isStr && v != nil && (o.Type == flow.InputString || o.Type == "") {
			v = expr.Stringify(v) // a map or list in a STRING output is its JSON
		} else if isStr {
			v = str
		}
		if v != nil {
			in := &flow.Input{ID: o.ID, Type: o.Type}
			typed, err := in.Coerce(v)
			if err != nil {
				return nil, fmt.Errorf("flow output %q: %w", o.ID, err)
			}
			v = typed
		}
		out[o.ID] = v
	}
	return out, nil
}

// renderValue renders a property: a single {{ expression }} string gives
// its typed value, anything else is rendered recursively.
func (s *step) renderValue(v any, vars map[string]any) (any, error) {
	ctx := context.Background()
	if str, ok := v.(string); ok {
		return s.engine.RenderValue(ctx, str, vars)
	}
	return s.engine.RenderAll(ctx, v, vars)
}

func (s *step) renderString(v any, vars map[string]any) (string, error) {
	out, err := s.renderValue(v, vars)
	if err != nil || out == nil {
		return "", err
	}
	if str, ok := out.(string); ok {
		return str, nil
	}
	return expr.Stringify(out), nil
}
