package execution_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/execution"
)

// The property test drives random flows with random interleavings of
// results (in any order, duplicated, stale), timers, kills, restarts and
// replays, and checks the machine's invariants after every step.
//
// Seeds are 1..N (N = 300, 40 with -short); KITE_PROP_SEED=n runs one seed,
// KITE_PROP_CASES=n changes N.

// flowGen writes a random flow.
type flowGen struct {
	rnd *rand.Rand
	b   strings.Builder
	n   int // task ids
}

func (g *flowGen) line(indent int, format string, args ...any) {
	g.b.WriteString(strings.Repeat(" ", indent))
	fmt.Fprintf(&g.b, format, args...)
	g.b.WriteByte('\n')
}

func (g *flowGen) id(prefix string) string {
	g.n++
	return prefix + strconv.Itoa(g.n)
}

// list writes a task list of 1..most tasks under key at indent.
func (g *flowGen) list(indent int, key string, depth, most int) {
	g.line(indent, "%s:", key)
	for range 1 + g.rnd.IntN(most) {
		g.task(indent+2, depth)
	}
}

func (g *flowGen) values() string {
	vs := []string{"a", "b", "c"}[:1+g.rnd.IntN(3)]
	if g.rnd.IntN(2) == 0 {
		return "[" + strings.Join(vs, ", ") + "]"
	}
	return `'["` + strings.Join(vs, `", "`) + `"]'`
}

func (g *flowGen) task(indent, depth int) {
	kind := g.rnd.IntN(11)
	if depth <= 0 {
		kind = 0
	}
	in := indent + 2
	switch kind {
	case 0, 1, 2, 3: // runnable
		typ := []string{"log", "return", "fail"}[g.rnd.IntN(3)]
		g.line(indent, "- id: %s", g.id("r"))
		g.line(in, "type: %s", typ)
		switch typ {
		case "log":
			g.line(in, "message: hi")
		case "return":
			g.line(in, `format: "{{ taskrun.id }}"`)
		}
		if g.rnd.IntN(3) == 0 {
			g.line(in, "retry: {type: constant, interval: PT%dS, maxAttempt: %d}", 1+g.rnd.IntN(5), 1+g.rnd.IntN(3))
		}
		if g.rnd.IntN(5) == 0 {
			g.line(in, "allowFailure: true")
		}
		if g.rnd.IntN(6) == 0 {
			g.line(in, "timeout: PT30S")
		}
		if g.rnd.IntN(10) == 0 {
			g.line(in, `runIf: "{{ %v }}"`, g.rnd.IntN(2) == 0)
		}
	case 4:
		g.line(indent, "- id: %s", g.id("seq"))
		g.line(in, "type: sequential")
		g.list(in, "tasks", depth-1, 3)
		if g.rnd.IntN(3) == 0 {
			g.list(in, "errors", depth-1, 2)
		}
		if g.rnd.IntN(4) == 0 {
			g.list(in, "finally", depth-1, 2)
		}
		if g.rnd.IntN(5) == 0 {
			g.line(in, "allowFailure: true")
		}
	case 5:
		g.line(indent, "- id: %s", g.id("par"))
		g.line(in, "type: parallel")
		if c := g.rnd.IntN(3); c > 0 {
			g.line(in, "concurrent: %d", c)
		}
		g.list(in, "tasks", depth-1, 4)
	case 6:
		g.line(indent, "- id: %s", g.id("if"))
		g.line(in, "type: if")
		g.line(in, `condition: "{{ %v }}"`, g.rnd.IntN(2) == 0)
		g.list(in, "then", depth-1, 2)
		if g.rnd.IntN(2) == 0 {
			g.list(in, "else", depth-1, 2)
		}
	case 7:
		g.line(indent, "- id: %s", g.id("each"))
		g.line(in, "type: for-each")
		g.line(in, "values: %s", g.values())
		g.line(in, "concurrencyLimit: %d", g.rnd.IntN(3))
		g.list(in, "tasks", depth-1, 2)
		if g.rnd.IntN(4) == 0 {
			g.list(in, "errors", depth-1, 1)
		}
	case 8:
		g.line(indent, "- id: %s", g.id("ep"))
		g.line(in, "type: each-parallel")
		g.line(in, "value: %s", g.values())
		g.list(in, "tasks", depth-1, 2)
	case 9:
		g.line(indent, "- id: %s", g.id("pause"))
		g.line(in, "type: pause")
		if g.rnd.IntN(3) > 0 {
			g.line(in, "delay: PT%dS", 1+g.rnd.IntN(60))
		}
	case 10:
		g.line(indent, "- id: %s", g.id("sub"))
		g.line(in, "type: subflow")
		g.line(in, "namespace: company.team")
		g.line(in, "flowId: child")
		g.line(in, "transmitFailed: %v", g.rnd.IntN(2) == 0)
		if g.rnd.IntN(3) == 0 {
			g.line(in, "retry: {type: constant, interval: PT%dS, maxAttempt: %d}", 1+g.rnd.IntN(5), 1+g.rnd.IntN(3))
		}
	}
}

func genFlow(rnd *rand.Rand) string {
	g := &flowGen{rnd: rnd}
	g.b.WriteString(header)
	g.list(0, "tasks", 3, 4)
	if rnd.IntN(3) == 0 {
		g.list(0, "errors", 1, 2)
	}
	if rnd.IntN(4) == 0 {
		g.list(0, "finally", 1, 2)
	}
	return g.b.String()
}

// propRun drives one random case and checks the invariants as it goes.
type propRun struct {
	t    testing.TB
	rnd  *rand.Rand
	r    *run
	seed uint64
	src  string
	// shadow is the fold of every event so far, checked before each event.
	shadow *execution.Execution
	// sent are the inputs sent so far, for duplicates.
	sent []execution.Input
	// all are every Dispatch ever made, for stale results.
	all []execution.Dispatch
	// fired are the timers already fired, for stale ones.
	fired []string
	// killed says a Kill applied and no Restart/Replay since.
	killed   bool
	restarts int
	// children are the subflow executions started and waited for, not
	// ended yet.
	children []execution.StartChild
	failures int
}

func (p *propRun) fail(format string, args ...any) {
	p.t.Helper()
	p.failures++
	var inputs []string
	for i, s := range p.r.Steps {
		inputs = append(inputs, fmt.Sprintf("  %3d %T%+v", i+1, s.In, s.In))
	}
	p.t.Fatalf("seed %d: %s\nflow:\n%s\ninputs:\n%s\n%s", p.seed, fmt.Sprintf(format, args...), p.src, strings.Join(inputs, "\n"), p.r.Dump())
}

// send steps one input and checks every invariant about the step.
func (p *propRun) send(in execution.Input) {
	p.t.Helper()
	r := p.r
	wasTerminal := r.E.Terminal()
	_, revives := in.(execution.Restart)
	if _, isReplay := in.(execution.Replay); isReplay {
		revives = true
	}
	// A step on a JSON copy must decide the same (the Kafka executor keeps
	// executions serialized).
	var cp execution.Execution
	if err := json.Unmarshal([]byte(jsonOf(p.t, r.E)), &cp); err != nil {
		p.fail("decoding the execution: %v", err)
	}
	r.AllowErr = true
	res := r.Step(in)
	if len(r.Errs) > 0 {
		p.fail("step %d %T%+v: %v", len(r.Steps), in, in, r.Errs[0])
	}
	p.sent = append(p.sent, in)
	res2, err := r.M.Step(r.F, &cp, in, r.Now)
	if err != nil {
		p.fail("step on a JSON copy: %v", err)
	}
	if a, b := resultJSON(p.t, res), resultJSON(p.t, res2); a != b {
		p.fail("step %d %T on a JSON copy of the execution differs:\nlive %s\ncopy %s", len(r.Steps), in, a, b)
	}

	// (b) terminal states are absorbing: check every event against the
	// state before it.
	if wasTerminal && !revives && len(res.Events) > 0 {
		p.fail("step %d %T%+v changed an ended (%s) execution: first event %s", len(r.Steps), in, in, p.shadow.State, res.Events[0].Type)
	}
	for _, ev := range res.Events {
		p.checkEvent(ev, revives, in)
		if err := execution.Apply(p.shadow, ev); err != nil {
			p.fail("shadow apply of event %d: %v", ev.Seq, err)
		}
	}
	// (a) each (task run, attempt) is dispatched at most once.
	for _, d := range effectsOf[execution.Dispatch](res.Effects) {
		if r.dispatched[d] > 1 {
			p.fail("attempt %d of task run %s dispatched %d times", d.Attempt, d.TaskRunID, r.dispatched[d])
		}
		p.all = append(p.all, d)
		// (d) no new Dispatch after a Kill.
		if p.killed && !revives {
			p.fail("step %d %T dispatched attempt %d of %s after a kill", len(r.Steps), in, d.Attempt, d.TaskRunID)
		}
	}
	if revives && len(res.Events) > 0 {
		p.killed = false
	}
	for _, ef := range res.Effects {
		switch ef := ef.(type) {
		case execution.StartChild:
			if ef.Wait {
				p.children = append(p.children, ef)
			}
		case execution.KillChild:
			// The child ends KILLED; its end reaches a killed parent.
			for i, c := range p.children {
				if c.ChildID == ef.ChildID {
					p.children = append(p.children[:i:i], p.children[i+1:]...)
					defer p.send(execution.ChildEnded{TaskRunID: c.TaskRunID, ChildID: c.ChildID, State: execution.Killed})
					break
				}
			}
		}
	}
	if _, isKill := in.(execution.Kill); isKill && !wasTerminal {
		p.killed = true
		// (d) after Kill everything is terminal.
		if !r.E.Terminal() {
			p.fail("after Kill the execution is %s", r.E.State)
		}
		for _, tr := range r.E.TaskRuns {
			if !tr.State.Terminal() {
				p.fail("after Kill task run %s (%s) is %s", tr.ID, tr.TaskID, tr.State)
			}
		}
	}
	if r.E.Terminal() {
		p.checkEnded(in)
	}
}

// checkEnded checks a terminal execution: nothing of it still runs.
func (p *propRun) checkEnded(in execution.Input) {
	p.t.Helper()
	r := p.r
	if len(r.Live) > 0 {
		d := r.Live[0]
		p.fail("after %T the execution is %s but attempt %d of %s was dispatched, never answered nor cancelled", in, r.E.State, d.Attempt, d.TaskRunID)
	}
	if len(p.children) > 0 {
		p.fail("after %T the execution is %s but subflow execution %s (task run %s) still runs, not killed", in, r.E.State, p.children[0].ChildID, p.children[0].TaskRunID)
	}
	if len(r.E.Timers) > 0 {
		p.fail("after %T the execution is %s with timers pending: %v", in, r.E.State, r.E.Timers)
	}
	for _, tr := range r.E.TaskRuns {
		if !tr.State.Terminal() {
			p.fail("after %T the execution is %s but task run %s (%s) is %s", in, r.E.State, tr.ID, tr.TaskID, tr.State)
		}
		for i, a := range tr.Attempts {
			if !a.State.Terminal() {
				p.fail("the execution is %s but attempt %d of %s (%s) is %s", r.E.State, i+1, tr.ID, tr.TaskID, a.State)
			}
		}
	}
}

func (p *propRun) checkEvent(ev *execution.Event, revives bool, in execution.Input) {
	p.t.Helper()
	sh := p.shadow
	where := fmt.Sprintf("step %d %T, event %d %s", len(p.r.Steps), in, ev.Seq, ev.Type)
	switch ev.Type {
	case execution.EvState:
		if sh.State.Terminal() && !revives {
			p.fail("%s: execution %s → %s", where, sh.State, ev.State)
		}
	case execution.EvTaskRunState, execution.EvOutputs:
		if ev.TaskRunID == "" {
			if sh.State.Terminal() && !revives {
				p.fail("%s: outputs of an ended execution", where)
			}
			return
		}
		tr, found := sh.TaskRun(ev.TaskRunID)
		if !found {
			p.fail("%s: no task run %s", where, ev.TaskRunID)
		}
		if tr.State.Terminal() && !revives {
			p.fail("%s: task run %s (%s) %s → %s", where, tr.ID, tr.TaskID, tr.State, ev.State)
		}
	case execution.EvAttempt:
		tr, found := sh.TaskRun(ev.TaskRunID)
		if !found {
			p.fail("%s: no task run %s", where, ev.TaskRunID)
		}
		if ev.Attempt <= len(tr.Attempts) {
			if a := tr.Attempts[ev.Attempt-1]; a.State.Terminal() {
				p.fail("%s: attempt %d of %s (%s) %s → %s", where, ev.Attempt, tr.ID, tr.TaskID, a.State, ev.State)
			}
		}
		if tr.State.Terminal() && !revives {
			p.fail("%s: attempt of ended task run %s (%s, %s)", where, tr.ID, tr.TaskID, tr.State)
		}
	case execution.EvTaskRunCreated:
		if ev.TaskRun.ParentID != "" {
			if parent, found := sh.TaskRun(ev.TaskRun.ParentID); found && parent.State.Terminal() {
				p.fail("%s: task run %s created under ended %s (%s)", where, ev.TaskRun.TaskID, parent.TaskID, parent.State)
			}
		}
	}
}

func resultJSON(tb testing.TB, res *execution.Result) string {
	tb.Helper()
	effs := make([]any, len(res.Effects))
	for i, ef := range res.Effects {
		effs[i] = map[string]any{fmt.Sprintf("%T", ef): ef}
	}
	return jsonOf(tb, map[string]any{"events": res.Events, "effects": effs})
}

func (p *propRun) randomResult(d execution.Dispatch) execution.TaskFinished {
	st := execution.Success
	switch x := p.rnd.IntN(10); {
	case x < 3:
		st = execution.Failed
	case x < 4:
		st = execution.Warning
	}
	return execution.TaskFinished{TaskRunID: d.TaskRunID, Attempt: d.Attempt, State: st,
		Outputs: map[string]any{"value": d.TaskRunID}}
}

// finish answers a live attempt (started first, or not).
func (p *propRun) finish(i int) {
	p.t.Helper()
	d := p.r.Live[i]
	if p.rnd.IntN(3) > 0 {
		p.send(execution.TaskStarted(d))
	}
	p.r.forget(d)
	p.send(p.randomResult(d))
}

// fire fires a pending timer, moving the clock to its due time if later.
func (p *propRun) fire(tm execution.Timer) {
	p.t.Helper()
	if tm.Due.After(p.r.Now) {
		p.r.Now = tm.Due
	}
	p.fired = append(p.fired, tm.ID)
	p.send(execution.TimerFired{TimerID: tm.ID})
}

// chaos sends random inputs.
func (p *propRun) chaos(steps int) {
	p.t.Helper()
	r := p.r
	for range steps {
		if r.E.Terminal() {
			switch x := p.rnd.IntN(10); {
			case x < 4 && p.restarts < 3:
				p.restarts++
				p.send(execution.Restart{})
				continue
			case x < 5 && p.restarts < 3 && len(r.E.TaskRuns) > 0:
				p.restarts++
				tr := r.E.TaskRuns[p.rnd.IntN(len(r.E.TaskRuns))]
				p.send(execution.Replay{TaskRunID: tr.ID})
				continue
			case x < 7:
				// Inputs an ended execution must ignore.
			default:
				return
			}
		}
		// Time passes a little now and then.
		if p.rnd.IntN(4) == 0 {
			r.Now = r.Now.Add(time.Duration(p.rnd.IntN(3000)) * time.Millisecond)
		}
		switch x := p.rnd.IntN(100); {
		case x < 45 && len(r.Live) > 0:
			p.finish(p.rnd.IntN(len(r.Live)))
		case x < 55 && len(r.Live) > 0:
			p.send(execution.TaskStarted(r.Live[p.rnd.IntN(len(r.Live))]))
		case x < 63 && len(p.sent) > 0:
			// A duplicate of an earlier result or start.
			switch in := p.sent[p.rnd.IntN(len(p.sent))].(type) {
			case execution.TaskFinished, execution.TaskStarted:
				p.send(in)
			}
		case x < 68 && len(p.all) > 0:
			// A stale result: any attempt ever dispatched, whatever its
			// state now.
			d := p.all[p.rnd.IntN(len(p.all))]
			p.r.forget(d)
			p.send(p.randomResult(d))
		case x < 83 && len(r.E.Timers) > 0:
			ts := r.E.SortedTimers()
			p.fire(ts[p.rnd.IntN(len(ts))])
		case x < 86 && len(p.fired) > 0:
			p.send(execution.TimerFired{TimerID: p.fired[p.rnd.IntN(len(p.fired))]})
		case x < 89:
			p.send(execution.Kill{})
		case x < 91:
			p.send(execution.Resume{})
		case x < 92:
			p.send(execution.Dequeue{})
		case x < 93 && !r.E.Terminal():
			p.send(execution.Restart{}) // on a live execution: ignored
		case x < 97 && len(p.children) > 0:
			p.endChild(p.rnd.IntN(len(p.children)))
		}
	}
}

// endChild ends a waited-for subflow execution with a random state.
func (p *propRun) endChild(i int) {
	p.t.Helper()
	c := p.children[i]
	p.children = append(p.children[:i:i], p.children[i+1:]...)
	st := []execution.State{execution.Success, execution.Success, execution.Failed, execution.Warning, execution.Killed}[p.rnd.IntN(5)]
	p.send(execution.ChildEnded{TaskRunID: c.TaskRunID, ChildID: c.ChildID, State: st, Outputs: map[string]any{"o": c.ChildID}})
}

// drain answers every live attempt and child, fires every timer and
// resumes pauses until nothing is left; then (c) the execution must have
// ended.
func (p *propRun) drain() {
	p.t.Helper()
	r := p.r
	for range 10_000 {
		switch {
		case len(r.Live) > 0:
			p.finish(p.rnd.IntN(len(r.Live)))
		case len(p.children) > 0:
			p.endChild(p.rnd.IntN(len(p.children)))
		case len(r.E.Timers) > 0:
			p.fire(r.E.SortedTimers()[0])
		case r.E.State == execution.Paused:
			p.send(execution.Resume{})
		default:
			if !r.E.Terminal() {
				p.fail("every attempt answered and every timer fired, yet the execution is %s", r.E.State)
			}
			return
		}
	}
	p.fail("the execution did not end after 10000 inputs")
}

func propCase(t testing.TB, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 0x6b697465))
	src := genFlow(rnd)
	p := &propRun{t: t, rnd: rnd, seed: seed, src: src, shadow: &execution.Execution{}}
	p.r = newRun(t, parseFlow(t, src))
	p.send(execution.Create{ID: fmt.Sprintf("exec-%d", seed)})
	for round := 0; round < 1+rnd.IntN(3); round++ {
		p.chaos(20 + rnd.IntN(80))
		p.drain()
		if !p.r.E.State.Failed() || p.restarts >= 3 {
			break
		}
		// Restart after the end, then go on.
		p.restarts++
		p.send(execution.Restart{})
	}
	p.drain()

	// (e) Seq has no gaps, events are unchanged, and replaying them
	// rebuilds the execution.
	checkReplay(t, p.r)
	if a, b := jsonOf(t, p.shadow), jsonOf(t, p.r.E); a != b {
		p.fail("the fold of the events differs from the execution:\nfold %s\nlive %s", a, b)
	}
	// Determinism: the same inputs on a fresh execution give the same events.
	again := newRun(t, p.r.F)
	for _, s := range p.r.Steps {
		again.Now = s.Now
		again.Step(s.In)
	}
	if a, b := jsonOf(t, again.Events), jsonOf(t, p.r.Events); a != b {
		p.fail("the same inputs gave other events")
	}
}

func TestProperties(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 40
	}
	if s := os.Getenv("KITE_PROP_CASES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	first := uint64(1)
	if s := os.Getenv("KITE_PROP_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		first, n = v, 1
	}
	failures := 0
	for seed := first; seed < first+uint64(n); seed++ {
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { propCase(t, seed) })
		if !ok {
			failures++
		}
		if failures >= 5 {
			t.Fatalf("stopping after %d failing seeds", failures)
		}
	}
}

// TestGenFlowParses makes sure the generator writes valid flows.
func TestGenFlowParses(t *testing.T) {
	for seed := range uint64(200) {
		parseFlow(t, genFlow(rand.New(rand.NewPCG(seed, 1))))
	}
}
