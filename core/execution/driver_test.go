package execution_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
)

// This file is a pure driver of the machine for tests: no goroutines, no
// real clock. A script decides the result of each dispatched attempt; the
// driver feeds TaskStarted/TaskFinished back, and fires timers on a fake
// clock when nothing else is pending.

// t0 is the fake clock's start.
var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// parseFlow parses a flow with the built-in task registry.
func parseFlow(tb testing.TB, src string) *flow.Flow {
	tb.Helper()
	f, err := (&flow.Parser{Registry: tasks.Registry(), CheckExpr: expr.Default.Check}).Parse("test.yaml", []byte(src))
	if err != nil {
		tb.Fatalf("parsing the flow: %v\n%s", err, src)
	}
	return f
}

// outcome is what a script decides for one dispatched attempt.
type outcome struct {
	// State is the attempt's result; "" is SUCCESS.
	State   execution.State
	Outputs map[string]any
	Labels  []flow.Label
	Error   string
	// Leave keeps the attempt running: the driver sends TaskStarted and no
	// result (a timeout, a kill or the test itself ends it).
	Leave bool
}

var (
	resOK    = outcome{State: execution.Success}
	resFail  = outcome{State: execution.Failed, Error: "boom"}
	resWarn  = outcome{State: execution.Warning}
	resLeave = outcome{Leave: true}
)

// call is what a script sees of a dispatched attempt.
type call struct {
	TaskRun *execution.TaskRun
	Task    *flow.Task
	Attempt int
	Exec    *execution.Execution
	Flow    *flow.Flow
}

// script decides the outcome of each dispatched attempt.
type script func(c call) outcome

// byTask answers by task id (per attempt: the last outcome repeats);
// tasks not listed succeed.
func byTask(m map[string][]outcome) script {
	return func(c call) outcome {
		os := m[c.TaskRun.TaskID]
		if len(os) == 0 {
			return resOK
		}
		if c.Attempt <= len(os) {
			return os[c.Attempt-1]
		}
		return os[len(os)-1]
	}
}

// step is one Step call as the driver saw it.
type step struct {
	In     execution.Input
	Now    time.Time
	Result *execution.Result
	// JSON of the result's events right after the step, to check later that
	// nothing mutated them.
	EventsJSON []byte
}

// run is an execution driven by the test.
type run struct {
	tb      testing.TB
	F       *flow.Flow
	M       *execution.Machine
	E       *execution.Execution
	Now     time.Time
	Steps   []step
	Events  []*execution.Event
	Effects []execution.Effect
	// Live are the dispatched attempts without a result yet, in dispatch order.
	Live []execution.Dispatch
	// Left are the live attempts the script chose to leave running.
	Left map[execution.Dispatch]bool
	// MaxLive is the largest number of live attempts seen at once.
	MaxLive int
	// Children are the StartChild effects, in order.
	Children []execution.StartChild
	// dispatched counts the Dispatch effects per attempt.
	dispatched map[execution.Dispatch]int
	// AllowErr lets Step errors through (the step is recorded with a nil
	// Result) instead of failing the test.
	AllowErr bool
	Errs     []error
}

func newRun(tb testing.TB, f *flow.Flow) *run {
	tb.Helper()
	return &run{tb: tb, F: f, M: &execution.Machine{}, E: &execution.Execution{}, Now: t0,
		Left: map[execution.Dispatch]bool{}, dispatched: map[execution.Dispatch]int{}}
}

// start parses src and creates an execution with id "exec-1".
func start(tb testing.TB, src string, sc script) *run {
	tb.Helper()
	r := newRun(tb, parseFlow(tb, src))
	r.Step(execution.Create{ID: "exec-1"})
	r.Drive(sc)
	return r
}

// Step feeds one input at the fake clock's time and records what came out.
func (r *run) Step(in execution.Input) *execution.Result {
	r.tb.Helper()
	res, err := r.M.Step(r.F, r.E, in, r.Now)
	if err != nil {
		if !r.AllowErr {
			r.tb.Fatalf("step %d (%T %+v): %v", len(r.Steps)+1, in, in, err)
		}
		r.Errs = append(r.Errs, err)
	}
	if res == nil {
		res = &execution.Result{}
	}
	js, jerr := json.Marshal(res.Events)
	if jerr != nil {
		r.tb.Fatalf("encoding events: %v", jerr)
	}
	r.Steps = append(r.Steps, step{In: in, Now: r.Now, Result: res, EventsJSON: js})
	r.Events = append(r.Events, res.Events...)
	r.Effects = append(r.Effects, res.Effects...)
	for _, ef := range res.Effects {
		switch ef := ef.(type) {
		case execution.Dispatch:
			r.dispatched[ef]++
			r.Live = append(r.Live, ef)
		case execution.CancelTask:
			// The worker is told to stop; its result may still come (the
			// driver does not send one: a cancelled attempt is over).
			r.forget(execution.Dispatch(ef))
		case execution.StartChild:
			r.Children = append(r.Children, ef)
		}
	}
	if len(r.Live) > r.MaxLive {
		r.MaxLive = len(r.Live)
	}
	return res
}

func (r *run) forget(d execution.Dispatch) {
	for i, l := range r.Live {
		if l == d {
			r.Live = append(r.Live[:i:i], r.Live[i+1:]...)
			break
		}
	}
	delete(r.Left, d)
}

// Drive answers live attempts (oldest first) with the script, then fires
// the earliest timer, until the execution ends or nothing can move it
// (paused without a timer, queued, or only attempts left running).
func (r *run) Drive(sc script) {
	r.tb.Helper()
	for range 100_000 {
		if r.answerOne(sc) {
			continue
		}
		if r.E.Terminal() || !r.FireNext() {
			return
		}
	}
	r.tb.Fatalf("the execution did not settle")
}

// answerOne sends the result of the oldest live attempt not left running;
// it reports whether there was one.
func (r *run) answerOne(sc script) bool {
	r.tb.Helper()
	for _, d := range r.Live {
		if r.Left[d] {
			continue
		}
		tr, found := r.E.TaskRun(d.TaskRunID)
		if !found {
			r.forget(d)
			return true
		}
		t, _ := r.F.FindTask(tr.TaskID)
		o := sc(call{TaskRun: tr, Task: t, Attempt: d.Attempt, Exec: r.E, Flow: r.F})
		r.Step(execution.TaskStarted(d))
		if o.Leave {
			r.Left[d] = true
			return true
		}
		r.forget(d)
		st := o.State
		if st == "" {
			st = execution.Success
		}
		r.Step(execution.TaskFinished{TaskRunID: d.TaskRunID, Attempt: d.Attempt, State: st,
			Outputs: o.Outputs, Labels: o.Labels, Error: o.Error})
		return true
	}
	return false
}

// FireNext advances the clock to the earliest pending timer and fires it.
func (r *run) FireNext() bool {
	r.tb.Helper()
	ts := r.E.SortedTimers()
	if len(ts) == 0 {
		return false
	}
	if ts[0].Due.After(r.Now) {
		r.Now = ts[0].Due
	}
	r.Step(execution.TimerFired{TimerID: ts[0].ID})
	return true
}

// Finish sends a result for a live attempt (one left running).
func (r *run) Finish(d execution.Dispatch, o outcome) *execution.Result {
	r.tb.Helper()
	r.forget(d)
	st := o.State
	if st == "" {
		st = execution.Success
	}
	return r.Step(execution.TaskFinished{TaskRunID: d.TaskRunID, Attempt: d.Attempt, State: st, Outputs: o.Outputs, Error: o.Error})
}

// Runs returns the task runs of a task, in creation order.
func (r *run) Runs(taskID string) []*execution.TaskRun {
	var out []*execution.TaskRun
	for _, tr := range r.E.TaskRuns {
		if tr.TaskID == taskID {
			out = append(out, tr)
		}
	}
	return out
}

// Run returns the only task run of a task.
func (r *run) Run(taskID string) *execution.TaskRun {
	r.tb.Helper()
	rs := r.Runs(taskID)
	if len(rs) != 1 {
		r.tb.Fatalf("task %s has %d task runs, want 1\n%s", taskID, len(rs), r.Dump())
	}
	return rs[0]
}

// States maps task id to the states of its task runs, in creation order,
// joined by ",".
func (r *run) States() map[string]string {
	out := map[string]string{}
	for _, tr := range r.E.TaskRuns {
		if out[tr.TaskID] != "" {
			out[tr.TaskID] += ","
		}
		out[tr.TaskID] += string(tr.State)
	}
	return out
}

// DispatchesOf returns the Dispatch effects of a task, in order.
func (r *run) DispatchesOf(taskID string) []execution.Dispatch {
	var out []execution.Dispatch
	for _, ef := range r.Effects {
		if d, isD := ef.(execution.Dispatch); isD {
			if tr, found := r.E.TaskRun(d.TaskRunID); found && tr.TaskID == taskID {
				out = append(out, d)
			}
		}
	}
	return out
}

// LiveOf returns the live attempts of a task.
func (r *run) LiveOf(taskID string) []execution.Dispatch {
	var out []execution.Dispatch
	for _, d := range r.Live {
		if tr, found := r.E.TaskRun(d.TaskRunID); found && tr.TaskID == taskID {
			out = append(out, d)
		}
	}
	return out
}

// TimersSet returns the TIMER_SET events of a kind, in order.
func (r *run) TimersSet(kind string) []execution.Timer {
	var out []execution.Timer
	for _, ev := range r.Events {
		if ev.Type == execution.EvTimerSet && ev.Timer.Kind == kind {
			out = append(out, *ev.Timer)
		}
	}
	return out
}

// Ended returns the states of the Ended effects.
func (r *run) Ended() []execution.State {
	var out []execution.State
	for _, ef := range r.Effects {
		if e, isE := ef.(execution.Ended); isE {
			out = append(out, e.State)
		}
	}
	return out
}

// Dump describes the execution for failure messages.
func (r *run) Dump() string {
	s := fmt.Sprintf("execution %s %s (error %q), outputs %v\n", r.E.ID, r.E.State, r.E.Error, r.E.Outputs)
	for _, tr := range r.E.TaskRuns {
		var as []string
		for _, a := range tr.Attempts {
			as = append(as, string(a.State))
		}
		s += fmt.Sprintf("  %s %-10s parent=%s branch=%s value=%q it=%d %s attempts=%v outputs=%v err=%q\n",
			tr.ID, tr.TaskID, tr.ParentID, tr.Branch, tr.Value, tr.Iteration, tr.State, as, tr.Outputs, tr.Error)
	}
	return s
}

// checkReplay checks the events: Seq numbers 1..n without gaps, unchanged
// since they were emitted, and folding them into a fresh Execution gives
// the same execution (as JSON).
func checkReplay(tb testing.TB, r *run) {
	tb.Helper()
	for i, ev := range r.Events {
		if ev.Seq != int64(i+1) {
			tb.Fatalf("event %d has Seq %d", i+1, ev.Seq)
		}
	}
	if r.E.Seq != int64(len(r.Events)) {
		tb.Fatalf("execution Seq %d after %d events", r.E.Seq, len(r.Events))
	}
	for i, s := range r.Steps {
		now, err := json.Marshal(s.Result.Events)
		if err != nil {
			tb.Fatal(err)
		}
		if string(now) != string(s.EventsJSON) {
			tb.Errorf("the events of step %d (%T) changed after they were emitted:\nthen %s\nnow  %s", i+1, s.In, s.EventsJSON, now)
		}
	}
	// Rebuild from a decoded copy of the events, so that nothing is shared
	// with the live execution.
	var evs []*execution.Event
	js, err := json.Marshal(r.Events)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(js, &evs); err != nil {
		tb.Fatal(err)
	}
	fresh := &execution.Execution{}
	for _, ev := range evs {
		if err := execution.Apply(fresh, ev); err != nil {
			tb.Fatalf("replaying event %d (%s): %v", ev.Seq, ev.Type, err)
		}
	}
	if a, b := jsonOf(tb, r.E), jsonOf(tb, fresh); a != b {
		tb.Errorf("replayed execution differs:\nlive     %s\nreplayed %s", a, b)
	}
}

func jsonOf(tb testing.TB, v any) string {
	tb.Helper()
	// Decode and re-encode so numbers compare the same whatever their Go type.
	js, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(js, &x); err != nil {
		tb.Fatal(err)
	}
	js, _ = json.Marshal(x)
	return string(js)
}

// effectsOf returns the effects of a type.
func effectsOf[T execution.Effect](effs []execution.Effect) []T {
	var out []T
	for _, ef := range effs {
		if x, isT := ef.(T); isT {
			out = append(out, x)
		}
	}
	return out
}

func sortedStrings(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func equalMaps(a, b map[string]string) bool { return reflect.DeepEqual(a, b) }
