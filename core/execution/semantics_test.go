package execution_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

const header = "id: t\nnamespace: company.team\n"

// simulate runs tasks the way their runners would, without I/O: a return
// task renders its format (outputs.value), a fail task fails, anything
// else succeeds.
func simulate(c call) outcome {
	switch c.Task.Type {
	case "return":
		v, err := expr.Default.Render(context.Background(), fmt.Sprint(c.Task.Props["format"]), execution.Vars(c.Flow, c.Exec, c.TaskRun))
		if err != nil {
			return outcome{State: execution.Failed, Error: err.Error()}
		}
		return outcome{State: execution.Success, Outputs: map[string]any{"value": v}}
	case "fail":
		return resFail
	}
	return resOK
}

type semCase struct {
	name   string
	yaml   string // after the id and namespace
	inputs map[string]any
	script script
	// then feeds more inputs once the first drive settled.
	then func(t *testing.T, r *run)
	// state is the execution's final state; states the task runs' states
	// by task id (several task runs of one task joined by ",").
	state  execution.State
	states map[string]string
	check  func(t *testing.T, r *run)
}

func runSem(t *testing.T, tc semCase) *run {
	t.Helper()
	sc := tc.script
	if sc == nil {
		sc = simulate
	}
	r := newRun(t, parseFlow(t, header+tc.yaml))
	r.Step(execution.Create{ID: "exec-1", Inputs: tc.inputs})
	r.Drive(sc)
	if tc.then != nil {
		tc.then(t, r)
	}
	if tc.state != "" && r.E.State != tc.state {
		t.Errorf("execution state %s, want %s\n%s", r.E.State, tc.state, r.Dump())
	}
	if tc.states != nil {
		if got := r.States(); !equalMaps(got, tc.states) {
			t.Errorf("task run states\n got  %v\n want %v\n%s", sortedStrings(got), sortedStrings(tc.states), r.Dump())
		}
	}
	if tc.check != nil {
		tc.check(t, r)
	}
	checkReplay(t, r)
	return r
}

func TestSemantics(t *testing.T) {
	for _, tc := range semCases() {
		t.Run(tc.name, func(t *testing.T) { runSem(t, tc) })
	}
}

func attemptStates(tr *execution.TaskRun) string {
	var s []string
	for _, a := range tr.Attempts {
		s = append(s, string(a.State))
	}
	return strings.Join(s, ",")
}

func semCases() []semCase {
	return []semCase{
		{
			name: "sequential runs its tasks one after the other",
			yaml: `
tasks:
  - id: seq
    type: sequential
    tasks:
      - {id: a, type: log, message: a}
      - {id: b, type: return, format: "{{ taskrun.attemptsCount }}"}
      - {id: c, type: log, message: c}
`,
			state:  execution.Success,
			states: map[string]string{"seq": "SUCCESS", "a": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if r.MaxLive != 1 {
					t.Errorf("%d attempts ran at once, want 1", r.MaxLive)
				}
				// attemptsCount counts the attempts before the live one, as Kestra.
				if got := r.Run("b").Outputs["value"]; got != "0" {
					t.Errorf("b output %v, want 0", got)
				}
				order := []string{}
				for _, d := range effectsOf[execution.Dispatch](r.Effects) {
					tr, _ := r.E.TaskRun(d.TaskRunID)
					order = append(order, tr.TaskID)
				}
				if !slices.Equal(order, []string{"a", "b", "c"}) {
					t.Errorf("dispatch order %v", order)
				}
				if got := r.Ended(); !slices.Equal(got, []execution.State{execution.Success}) {
					t.Errorf("Ended effects %v", got)
				}
			},
		},
		{
			name: "sequential stops after a failure",
			yaml: `
tasks:
  - id: seq
    type: sequential
    tasks:
      - {id: a, type: log, message: a}
      - {id: b, type: fail}
      - {id: c, type: log, message: c}
  - {id: d, type: log, message: d}
`,
			state:  execution.Failed,
			states: map[string]string{"seq": "FAILED", "a": "SUCCESS", "b": "FAILED"},
			check: func(t *testing.T, r *run) {
				if e := r.Run("b").Error; e != "boom" {
					t.Errorf("b error %q", e)
				}
			},
		},
		{
			name: "parallel dispatches every task at once",
			yaml: `
tasks:
  - id: par
    type: parallel
    tasks:
      - {id: a, type: log, message: a}
      - {id: b, type: log, message: b}
      - {id: c, type: log, message: c}
`,
			state:  execution.Success,
			states: map[string]string{"par": "SUCCESS", "a": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if n := len(effectsOf[execution.Dispatch](r.Steps[0].Result.Effects)); n != 3 {
					t.Errorf("Create dispatched %d attempts, want 3", n)
				}
			},
		},
		{
			name: "parallel concurrent 2 never runs more than 2",
			yaml: `
tasks:
  - id: par
    type: parallel
    concurrent: 2
    tasks:
      - {id: a, type: log, message: a}
      - {id: b, type: log, message: b}
      - {id: c, type: log, message: c}
      - {id: d, type: log, message: d}
      - {id: e, type: log, message: e}
`,
			state:  execution.Success,
			states: map[string]string{"par": "SUCCESS", "a": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS", "d": "SUCCESS", "e": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if r.MaxLive != 2 {
					t.Errorf("at most %d attempts ran at once, want 2", r.MaxLive)
				}
			},
		},
		{
			name: "parallel concurrent 2 with every task left running",
			yaml: `
tasks:
  - id: par
    type: parallel
    concurrent: 2
    tasks:
      - {id: a, type: log, message: a}
      - {id: b, type: log, message: b}
      - {id: c, type: log, message: c}
`,
			script: byTask(map[string][]outcome{"a": {resLeave}, "b": {resLeave}, "c": {resLeave}}),
			then: func(t *testing.T, r *run) {
				if len(r.Live) != 2 || len(r.Runs("c")) != 0 {
					t.Fatalf("%d live attempts, %d task runs of c; want 2 and 0", len(r.Live), len(r.Runs("c")))
				}
				r.Finish(r.LiveOf("b")[0], resOK)
				if len(r.Live) != 2 || len(r.Runs("c")) != 1 {
					t.Fatalf("after b: %d live, %d task runs of c; want 2 and 1", len(r.Live), len(r.Runs("c")))
				}
				r.Finish(r.LiveOf("a")[0], resOK)
				r.Finish(r.LiveOf("c")[0], resOK)
			},
			state: execution.Success,
		},
		{
			name:   "if takes then",
			inputs: map[string]any{"go": true},
			yaml: `
inputs:
  - {id: go, type: BOOLEAN}
tasks:
  - id: cond
    type: if
    condition: "{{ inputs.go }}"
    then:
      - {id: yes, type: log, message: y}
    else:
      - {id: no, type: log, message: n}
`,
			state:  execution.Success,
			states: map[string]string{"cond": "SUCCESS", "yes": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if d := r.Run("cond").Decision; d != "then" {
					t.Errorf("decision %q", d)
				}
				if b := r.Run("yes").Branch; b != "then" {
					t.Errorf("branch %q", b)
				}
			},
		},
		{
			name:   "if takes else",
			inputs: map[string]any{"go": false},
			yaml: `
inputs:
  - {id: go, type: BOOLEAN}
tasks:
  - id: cond
    type: if
    condition: "{{ inputs.go }}"
    then:
      - {id: yes, type: log, message: y}
    else:
      - {id: no, type: log, message: n}
`,
			state:  execution.Success,
			states: map[string]string{"cond": "SUCCESS", "no": "SUCCESS"},
		},
		{
			name: "if false without else",
			yaml: `
tasks:
  - id: cond
    type: if
    condition: "{{ 1 > 2 }}"
    then:
      - {id: yes, type: log, message: y}
  - {id: after, type: log, message: a}
`,
			state:  execution.Success,
			states: map[string]string{"cond": "SUCCESS", "after": "SUCCESS"},
		},
		{
			name: "switch runs the matching case",
			yaml: `
tasks:
  - id: sw
    type: switch
    value: "{{ 'b' }}"
    cases:
      a: [{id: ca, type: log, message: a}]
      b: [{id: cb, type: log, message: b}, {id: cb2, type: log, message: b2}]
    defaults: [{id: dflt, type: log, message: d}]
`,
			state:  execution.Success,
			states: map[string]string{"sw": "SUCCESS", "cb": "SUCCESS", "cb2": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				sw := r.Run("sw")
				if sw.Outputs["value"] != "b" || sw.Outputs["defaults"] != false {
					t.Errorf("switch outputs %v", sw.Outputs)
				}
			},
		},
		{
			name: "switch runs the defaults",
			yaml: `
tasks:
  - id: sw
    type: switch
    value: zzz
    cases:
      a: [{id: ca, type: log, message: a}]
    defaults: [{id: dflt, type: log, message: d}]
`,
			state:  execution.Success,
			states: map[string]string{"sw": "SUCCESS", "dflt": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if d := r.Run("sw").Outputs["defaults"]; d != true {
					t.Errorf("defaults output %v", d)
				}
			},
		},
		{
			// As Kestra: a Switch with no matching case and no defaults fails.
			name: "switch value with no case and no defaults",
			yaml: `
tasks:
  - id: sw
    type: switch
    value: zzz
    cases:
      a: [{id: ca, type: log, message: a}]
  - {id: after, type: log, message: a}
`,
			state:  execution.Failed,
			states: map[string]string{"sw": "FAILED"},
			check: func(t *testing.T, r *run) {
				if e := r.Run("sw").Error; !strings.Contains(e, "zzz") {
					t.Errorf("error %q does not name the value", e)
				}
			},
		},
		{
			name: "unbounded parallel: a failure does not stop the other branches",
			yaml: `
tasks:
  - id: par
    type: parallel
    tasks:
      - {id: a, type: fail}
      - {id: b, type: log, message: b}
      - {id: c, type: log, message: c}
  - {id: d, type: log, message: d}
`,
			state:  execution.Failed,
			states: map[string]string{"par": "FAILED", "a": "FAILED", "b": "SUCCESS", "c": "SUCCESS"},
		},
		{
			name: "parallel concurrent 1: no branch starts after a failure",
			yaml: `
tasks:
  - id: par
    type: parallel
    concurrent: 1
    tasks:
      - {id: a, type: fail}
      - {id: b, type: log, message: b}
`,
			state:  execution.Failed,
			states: map[string]string{"par": "FAILED", "a": "FAILED"},
		},
		{
			name: "for-each over a list, one value at a time",
			yaml: `
tasks:
  - id: each
    type: for-each
    values: [a, b, c]
    tasks:
      - {id: t, type: return, format: "{{ taskrun.value }}-{{ taskrun.iteration }}"}
  - {id: after, type: return, format: "{{ outputs.t['b'].value }}"}
`,
			state:  execution.Success,
			states: map[string]string{"each": "SUCCESS", "t": "SUCCESS,SUCCESS,SUCCESS", "after": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				for i, tr := range r.Runs("t") {
					want := []string{"a", "b", "c"}[i]
					if !tr.HasValue || tr.Value != want || tr.Iteration != i {
						t.Errorf("task run %d: value %q (%v) iteration %d", i, tr.Value, tr.HasValue, tr.Iteration)
					}
					if got := tr.Outputs["value"]; got != fmt.Sprintf("%s-%d", want, i) {
						t.Errorf("task run %d output %v", i, got)
					}
				}
				if r.MaxLive != 1 {
					t.Errorf("%d iterations ran at once, want 1", r.MaxLive)
				}
				if got := r.Run("after").Outputs["value"]; got != "b-1" {
					t.Errorf("after = %v, want b-1", got)
				}
			},
		},
		{
			name: "for-each over a JSON string, all at once",
			yaml: `
tasks:
  - id: each
    type: for-each
    values: '["x", 2, {"k": "v"}]'
    concurrencyLimit: 0
    tasks:
      - {id: t, type: return, format: "{{ taskrun.value }}"}
`,
			state:  execution.Success,
			states: map[string]string{"each": "SUCCESS", "t": "SUCCESS,SUCCESS,SUCCESS"},
			check: func(t *testing.T, r *run) {
				if n := len(effectsOf[execution.Dispatch](r.Steps[0].Result.Effects)); n != 3 {
					t.Errorf("Create dispatched %d attempts, want 3", n)
				}
				var vals []string
				for _, tr := range r.Runs("t") {
					vals = append(vals, tr.Value)
				}
				if !slices.Equal(vals, []string{"x", "2", `{"k":"v"}`}) {
					t.Errorf("values %q", vals)
				}
			},
		},
		{
			name: "for-each concurrencyLimit 2 with two tasks per value",
			yaml: `
tasks:
  - id: each
    type: for-each
    values: [a, b, c, d]
    concurrencyLimit: 2
    tasks:
      - {id: t1, type: log, message: x}
      - {id: t2, type: log, message: y}
`,
			state:  execution.Success,
			states: map[string]string{"each": "SUCCESS", "t1": "SUCCESS,SUCCESS,SUCCESS,SUCCESS", "t2": "SUCCESS,SUCCESS,SUCCESS,SUCCESS"},
			check: func(t *testing.T, r *run) {
				if r.MaxLive != 2 {
					t.Errorf("at most %d attempts at once, want 2", r.MaxLive)
				}
			},
		},
		{
			name: "for-each stops at a failed value",
			yaml: `
tasks:
  - id: each
    type: for-each
    values: [a, b, c]
    tasks:
      - {id: t, type: log, message: x}
`,
			script: func(c call) outcome {
				if c.TaskRun.Value == "b" {
					return resFail
				}
				return resOK
			},
			state:  execution.Failed,
			states: map[string]string{"each": "FAILED", "t": "SUCCESS,FAILED"},
		},
		{
			name: "for-each of an empty list",
			yaml: `
tasks:
  - id: each
    type: for-each
    values: "[]"
    tasks:
      - {id: t, type: log, message: x}
  - {id: after, type: log, message: x}
`,
			state:  execution.Success,
			states: map[string]string{"each": "SUCCESS", "after": "SUCCESS"},
		},
		{
			name: "nested for-each and outputs by value",
			yaml: `
tasks:
  - id: outer
    type: for-each
    values: [a, b]
    tasks:
      - id: inner
        type: for-each
        values: [x, y]
        tasks:
          - id: t
            type: return
            format: "{{ parent.taskrun.value }}{{ taskrun.value }}"
  - id: after
    type: return
    format: "{{ outputs.t['b']['x'].value }} {{ outputs.t.a.y.value }}"
`,
			state:  execution.Success,
			states: map[string]string{"outer": "SUCCESS", "inner": "SUCCESS,SUCCESS", "t": "SUCCESS,SUCCESS,SUCCESS,SUCCESS", "after": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				var got []string
				for _, tr := range r.Runs("t") {
					got = append(got, fmt.Sprint(tr.Outputs["value"]))
				}
				if !slices.Equal(got, []string{"ax", "ay", "bx", "by"}) {
					t.Errorf("inner outputs %v", got)
				}
				if v := r.Run("after").Outputs["value"]; v != "bx ay" {
					t.Errorf("after = %q, want %q", v, "bx ay")
				}
				for _, tr := range r.Runs("inner") {
					if !tr.HasValue {
						t.Errorf("inner task run without a value")
					}
				}
			},
		},
		{
			name: "each-sequential runs values one at a time",
			yaml: `
tasks:
  - id: each
    type: each-sequential
    value: [a, b, c]
    tasks:
      - {id: t1, type: log, message: x}
      - {id: t2, type: log, message: y}
`,
			state:  execution.Success,
			states: map[string]string{"each": "SUCCESS", "t1": "SUCCESS,SUCCESS,SUCCESS", "t2": "SUCCESS,SUCCESS,SUCCESS"},
			check: func(t *testing.T, r *run) {
				if r.MaxLive != 1 {
					t.Errorf("at most %d attempts at once, want 1", r.MaxLive)
				}
			},
		},
		{
			name: "each-parallel runs every task of every value at once",
			yaml: `
tasks:
  - id: each
    type: each-parallel
    value: '["a", "b", "c"]'
    tasks:
      - {id: t1, type: log, message: x}
      - {id: t2, type: log, message: y}
`,
			state:  execution.Success,
			states: map[string]string{"each": "SUCCESS", "t1": "SUCCESS,SUCCESS,SUCCESS", "t2": "SUCCESS,SUCCESS,SUCCESS"},
			check: func(t *testing.T, r *run) {
				if n := len(effectsOf[execution.Dispatch](r.Steps[0].Result.Effects)); n != 6 {
					t.Errorf("Create dispatched %d attempts, want 6", n)
				}
			},
		},
		{
			name: "flow errors run after a failure; the execution stays FAILED",
			yaml: `
tasks:
  - {id: a, type: fail}
  - {id: b, type: log, message: b}
errors:
  - {id: h1, type: log, message: h}
  - {id: h2, type: log, message: h}
`,
			state:  execution.Failed,
			states: map[string]string{"a": "FAILED", "h1": "SUCCESS", "h2": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if b := r.Run("h1").Branch; b != "errors" {
					t.Errorf("h1 branch %q", b)
				}
			},
		},
		{
			name: "flow errors do not run after a success",
			yaml: `
tasks:
  - {id: a, type: log, message: a}
errors:
  - {id: h, type: log, message: h}
`,
			state:  execution.Success,
			states: map[string]string{"a": "SUCCESS"},
		},
		{
			name: "task-level errors on a sequential",
			yaml: `
tasks:
  - id: seq
    type: sequential
    tasks:
      - {id: a, type: fail}
    errors:
      - {id: h, type: log, message: h}
  - {id: b, type: log, message: b}
`,
			state:  execution.Failed,
			states: map[string]string{"seq": "FAILED", "a": "FAILED", "h": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if h := r.Run("h"); h.ParentID != r.Run("seq").ID {
					t.Errorf("h parent %q", h.ParentID)
				}
			},
		},
		{
			name: "finally runs after a success",
			yaml: `
tasks:
  - {id: a, type: log, message: a}
finally:
  - {id: fin, type: log, message: f}
`,
			state:  execution.Success,
			states: map[string]string{"a": "SUCCESS", "fin": "SUCCESS"},
		},
		{
			name: "finally runs after a failure and the errors",
			yaml: `
tasks:
  - {id: a, type: fail}
errors:
  - {id: h, type: log, message: h}
finally:
  - {id: fin, type: log, message: f}
`,
			state:  execution.Failed,
			states: map[string]string{"a": "FAILED", "h": "SUCCESS", "fin": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if r.E.TaskRuns[1].TaskID != "h" || r.E.TaskRuns[2].TaskID != "fin" {
					t.Errorf("errors should run before finally:\n%s", r.Dump())
				}
			},
		},
		{
			name: "a failing finally fails the execution",
			yaml: `
tasks:
  - {id: a, type: log, message: a}
finally:
  - {id: fin, type: fail}
`,
			state:  execution.Failed,
			states: map[string]string{"a": "SUCCESS", "fin": "FAILED"},
		},
		{
			name: "allowFailure: the list goes on and the execution ends WARNING",
			yaml: `
tasks:
  - {id: a, type: fail, allowFailure: true}
  - {id: b, type: log, message: b}
`,
			state:  execution.Warning,
			states: map[string]string{"a": "FAILED", "b": "SUCCESS"},
		},
		{
			name: "a WARNING task makes the execution WARNING",
			yaml: `
tasks:
  - {id: a, type: log, message: a}
`,
			script: byTask(map[string][]outcome{"a": {resWarn}}),
			state:  execution.Warning,
			states: map[string]string{"a": "WARNING"},
		},
		{
			name: "allowWarning: a WARNING task counts as SUCCESS",
			yaml: `
tasks:
  - {id: a, type: log, message: a, allowWarning: true}
`,
			script: byTask(map[string][]outcome{"a": {resWarn}}),
			state:  execution.Success,
			states: map[string]string{"a": "WARNING"},
		},
		{
			name: "runIf false skips the task and the list goes on",
			yaml: `
tasks:
  - {id: a, type: log, message: a, runIf: "{{ 1 == 2 }}"}
  - {id: b, type: log, message: b, runIf: "true"}
`,
			state:  execution.Success,
			states: map[string]string{"a": "SKIPPED", "b": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if n := len(r.DispatchesOf("a")); n != 0 {
					t.Errorf("a dispatched %d times", n)
				}
			},
		},
		{
			name: "a disabled task has no task run",
			yaml: `
tasks:
  - {id: a, type: log, message: a, disabled: true}
  - {id: b, type: log, message: b}
`,
			state:  execution.Success,
			states: map[string]string{"b": "SUCCESS"},
		},
		{
			name: "constant retry: 3 attempts with timers between",
			yaml: `
tasks:
  - id: a
    type: log
    message: a
    retry: {type: constant, interval: PT10S, maxAttempt: 3}
`,
			script: byTask(map[string][]outcome{"a": {resFail}}),
			state:  execution.Failed,
			states: map[string]string{"a": "FAILED"},
			check: func(t *testing.T, r *run) {
				if got := attemptStates(r.Run("a")); got != "FAILED,FAILED,FAILED" {
					t.Errorf("attempts %s", got)
				}
				ts := r.TimersSet(execution.TimerRetry)
				if len(ts) != 2 || !ts[0].Due.Equal(t0.Add(10*time.Second)) || !ts[1].Due.Equal(t0.Add(20*time.Second)) {
					t.Errorf("retry timers %+v", ts)
				}
				if len(r.DispatchesOf("a")) != 3 {
					t.Errorf("%d dispatches", len(r.DispatchesOf("a")))
				}
			},
		},
		{
			name: "constant retry: success on the third attempt",
			yaml: `
tasks:
  - id: a
    type: log
    message: a
    retry: {type: constant, interval: PT10S, maxAttempt: 3}
  - {id: b, type: log, message: b}
`,
			script: byTask(map[string][]outcome{"a": {resFail, resFail, resOK}}),
			state:  execution.Success,
			states: map[string]string{"a": "SUCCESS", "b": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if got := attemptStates(r.Run("a")); got != "FAILED,FAILED,SUCCESS" {
					t.Errorf("attempts %s", got)
				}
			},
		},
		{
			name: "exponential retry: growing delays",
			yaml: `
tasks:
  - id: a
    type: log
    message: a
    retry: {type: exponential, interval: PT1S, maxInterval: PT5S, delayFactor: 2, maxAttempt: 5}
`,
			script: byTask(map[string][]outcome{"a": {resFail}}),
			state:  execution.Failed,
			check: func(t *testing.T, r *run) {
				ts := r.TimersSet(execution.TimerRetry)
				var gaps []time.Duration
				prev := t0
				for _, tm := range ts {
					gaps = append(gaps, tm.Due.Sub(prev))
					prev = tm.Due
				}
				want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}
				if !slices.Equal(gaps, want) {
					t.Errorf("retry delays %v, want %v", gaps, want)
				}
				if n := len(r.Run("a").Attempts); n != 5 {
					t.Errorf("%d attempts", n)
				}
			},
		},
		{
			name: "maxDuration stops the retries",
			yaml: `
tasks:
  - id: a
    type: log
    message: a
    retry: {type: constant, interval: PT10S, maxDuration: PT25S}
`,
			script: byTask(map[string][]outcome{"a": {resFail}}),
			state:  execution.Failed,
			check: func(t *testing.T, r *run) {
				if n := len(r.Run("a").Attempts); n != 3 {
					t.Errorf("%d attempts, want 3 (at 0s, 10s, 20s; the next at 30s is past 25s)", n)
				}
			},
		},
		{
			name: "warningOnRetry: a success after a retry is a WARNING",
			yaml: `
tasks:
  - id: a
    type: log
    message: a
    retry: {type: constant, interval: PT1S, maxAttempt: 3, warningOnRetry: true}
`,
			script: byTask(map[string][]outcome{"a": {resFail, resOK}}),
			state:  execution.Warning,
			states: map[string]string{"a": "WARNING"},
		},
		{
			name: "timeout cancels the attempt and fails the task run",
			yaml: `
tasks:
  - {id: a, type: log, message: a, timeout: PT1M}
  - {id: b, type: log, message: b}
`,
			script: byTask(map[string][]outcome{"a": {resLeave}}),
			state:  execution.Failed,
			states: map[string]string{"a": "FAILED"},
			check: func(t *testing.T, r *run) {
				last := r.Steps[len(r.Steps)-1]
				if _, isT := last.In.(execution.TimerFired); !isT {
					t.Fatalf("last input %T, want TimerFired", last.In)
				}
				a := r.Run("a")
				if c := effectsOf[execution.CancelTask](last.Result.Effects); len(c) != 1 || c[0].TaskRunID != a.ID || c[0].Attempt != 1 {
					t.Errorf("CancelTask effects %+v", c)
				}
				if !r.Now.Equal(t0.Add(time.Minute)) {
					t.Errorf("timed out at %s", r.Now)
				}
				if !strings.Contains(a.Error, "timed out") {
					t.Errorf("error %q", a.Error)
				}
				// The cancelled worker's late result is ignored.
				before := r.E.Seq
				r.Step(execution.TaskFinished{TaskRunID: a.ID, Attempt: 1, State: execution.Killed})
				if r.E.Seq != before {
					t.Errorf("a late result changed the execution")
				}
			},
		},
		{
			name: "timeout then retry",
			yaml: `
tasks:
  - id: a
    type: log
    message: a
    timeout: PT1M
    retry: {type: constant, interval: PT1S, maxAttempt: 2}
`,
			script: byTask(map[string][]outcome{"a": {resLeave, resOK}}),
			state:  execution.Success,
			states: map[string]string{"a": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if got := attemptStates(r.Run("a")); got != "FAILED,SUCCESS" {
					t.Errorf("attempts %s", got)
				}
			},
		},
		{
			name: "a lost worker's attempt is KILLED and the task runs again as a new attempt",
			yaml: `
tasks:
  - {id: a, type: log, message: a}
  - {id: b, type: log, message: b}
`,
			script: byTask(map[string][]outcome{"a": {resLeave, resOK}}),
			then: func(t *testing.T, r *run) {
				lost := r.LiveOf("a")[0]
				r.forget(lost)
				r.Step(execution.WorkerLost{TaskRunID: lost.TaskRunID, Attempt: lost.Attempt, WorkerID: "w1"})
				// A late result of the lost attempt is recorded and ignored.
				before := len(r.DispatchesOf("a"))
				r.Step(execution.TaskFinished{TaskRunID: lost.TaskRunID, Attempt: lost.Attempt, State: execution.Failed})
				if r.Run("a").State != execution.Running || len(r.DispatchesOf("a")) != before {
					t.Errorf("the lost attempt's late result changed the task run: %s", r.Run("a").State)
				}
				r.Drive(byTask(map[string][]outcome{}))
			},
			state:  execution.Success,
			states: map[string]string{"a": "SUCCESS", "b": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if got := attemptStates(r.Run("a")); got != "KILLED,SUCCESS" {
					t.Errorf("attempts %s, want KILLED,SUCCESS", got)
				}
			},
		},
		{
			name: "pause with a delay: PAUSED, then SUCCESS after the timer",
			yaml: `
tasks:
  - {id: p, type: pause, delay: PT5M}
  - {id: b, type: log, message: b}
`,
			state:  execution.Success,
			states: map[string]string{"p": "SUCCESS", "b": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				paused := false
				for _, ev := range r.Steps[0].Result.Events {
					if ev.Type == execution.EvState && ev.State == execution.Paused {
						paused = true
					}
				}
				if !paused {
					t.Errorf("Create did not pause the execution")
				}
				if d := r.DispatchesOf("b"); len(d) != 1 {
					t.Fatalf("b dispatched %d times", len(d))
				}
				if !r.Now.Equal(t0.Add(5 * time.Minute)) {
					t.Errorf("clock at %s", r.Now)
				}
			},
		},
		{
			name: "pause with a delay and behavior FAIL",
			yaml: `
tasks:
  - {id: p, type: pause, delay: PT5M, behavior: FAIL}
  - {id: b, type: log, message: b}
`,
			state:  execution.Failed,
			states: map[string]string{"p": "FAILED"},
		},
		{
			name: "pause without a delay waits for Resume; onResume inputs validated",
			yaml: `
tasks:
  - id: p
    type: pause
    onResume:
      - {id: n, type: INT}
  - {id: b, type: log, message: b}
`,
			then: func(t *testing.T, r *run) {
				if r.E.State != execution.Paused {
					t.Fatalf("state %s, want PAUSED", r.E.State)
				}
				before := r.E.Seq
				res := r.Step(execution.Resume{Inputs: map[string]any{"n": "not a number"}})
				if r.E.Seq != before || r.E.State != execution.Paused {
					t.Errorf("a bad resume changed the execution: %s", r.E.State)
				}
				if logs := effectsOf[execution.Log](res.Effects); len(logs) == 0 || logs[0].Level != "ERROR" {
					t.Errorf("a bad resume logged %+v", logs)
				}
				r.Step(execution.Resume{Inputs: map[string]any{"n": "42"}})
				r.Drive(simulate)
			},
			state:  execution.Success,
			states: map[string]string{"p": "SUCCESS", "b": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				on, _ := r.Run("p").Outputs["onResume"].(map[string]any)
				if on == nil || fmt.Sprint(on["n"]) != "42" {
					t.Errorf("onResume outputs %v", r.Run("p").Outputs)
				}
			},
		},
		{
			name: "resume of an execution that is not paused is ignored",
			yaml: `
tasks:
  - {id: a, type: log, message: a}
`,
			then: func(t *testing.T, r *run) {
				before := r.E.Seq
				r.Step(execution.Resume{})
				if r.E.Seq != before {
					t.Errorf("resume changed an ended execution")
				}
			},
			state: execution.Success,
		},
		{
			name:   "subflow: StartChild with rendered inputs, then the child's SUCCESS",
			inputs: map[string]any{"who": "Rick"},
			yaml: `
inputs:
  - {id: who, type: STRING}
tasks:
  - id: sub
    type: subflow
    namespace: company.team
    flowId: "child-{{ inputs.who }}"
    inputs:
      user: "{{ inputs.who }}"
      n: 3
  - {id: b, type: log, message: b}
`,
			then: func(t *testing.T, r *run) {
				if len(r.Children) != 1 {
					t.Fatalf("%d StartChild effects", len(r.Children))
				}
				c := r.Children[0]
				if c.FlowID != "child-Rick" || c.Namespace != "company.team" || c.Inputs["user"] != "Rick" || fmt.Sprint(c.Inputs["n"]) != "3" || !c.Wait {
					t.Errorf("StartChild %+v", c)
				}
				if r.E.State != execution.Running || r.Run("sub").State != execution.Running {
					t.Fatalf("waiting for the child: %s", r.Dump())
				}
				r.Step(execution.ChildEnded{TaskRunID: c.TaskRunID, ChildID: c.ChildID, State: execution.Success, Outputs: map[string]any{"o": "x"}})
				r.Drive(simulate)
			},
			state:  execution.Success,
			states: map[string]string{"sub": "SUCCESS", "b": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				out := r.Run("sub").Outputs
				if out["state"] != "SUCCESS" || out["executionId"] != r.Children[0].ChildID {
					t.Errorf("subflow outputs %v", out)
				}
			},
		},
		{
			name: "subflow: a FAILED child fails the task (transmitFailed true)",
			yaml: `
tasks:
  - {id: sub, type: subflow, namespace: company.team, flowId: child}
  - {id: b, type: log, message: b}
`,
			then: func(t *testing.T, r *run) {
				c := r.Children[0]
				// An end from another child is ignored.
				before := r.E.Seq
				r.Step(execution.ChildEnded{TaskRunID: c.TaskRunID, ChildID: "someone-else", State: execution.Success})
				if r.E.Seq != before {
					t.Errorf("an unrelated child's end changed the execution")
				}
				r.Step(execution.ChildEnded{TaskRunID: c.TaskRunID, ChildID: c.ChildID, State: execution.Failed})
				r.Drive(simulate)
			},
			state:  execution.Failed,
			states: map[string]string{"sub": "FAILED"},
		},
		{
			name: "subflow: a FAILED child with transmitFailed false",
			yaml: `
tasks:
  - {id: sub, type: subflow, namespace: company.team, flowId: child, transmitFailed: false}
  - {id: b, type: log, message: b}
`,
			then: func(t *testing.T, r *run) {
				c := r.Children[0]
				r.Step(execution.ChildEnded{TaskRunID: c.TaskRunID, ChildID: c.ChildID, State: execution.Failed})
				r.Drive(simulate)
			},
			state:  execution.Success,
			states: map[string]string{"sub": "SUCCESS", "b": "SUCCESS"},
		},
		{
			name: "subflow without waiting",
			yaml: `
tasks:
  - {id: sub, type: subflow, namespace: company.team, flowId: child, wait: false}
  - {id: b, type: log, message: b}
`,
			state:  execution.Success,
			states: map[string]string{"sub": "SUCCESS", "b": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if len(r.Children) != 1 || r.Children[0].Wait {
					t.Errorf("StartChild %+v", r.Children)
				}
			},
		},
		{
			name: "kill: everything KILLED, running attempts cancelled, a late result ignored",
			yaml: `
tasks:
  - id: par
    type: parallel
    tasks:
      - {id: a, type: log, message: a}
      - {id: b, type: log, message: b}
      - {id: c, type: log, message: c}
  - {id: d, type: log, message: d}
`,
			script: byTask(map[string][]outcome{"a": {resLeave}, "b": {resLeave}}),
			then: func(t *testing.T, r *run) {
				a, b := r.LiveOf("a")[0], r.LiveOf("b")[0]
				res := r.Step(execution.Kill{})
				cancels := effectsOf[execution.CancelTask](res.Effects)
				if len(cancels) != 2 {
					t.Errorf("CancelTask effects %+v, want a and b", cancels)
				}
				if e := effectsOf[execution.Ended](res.Effects); len(e) != 1 || e[0].State != execution.Killed {
					t.Errorf("Ended effects %+v", e)
				}
				before := r.E.Seq
				r.Step(execution.TaskFinished{TaskRunID: a.TaskRunID, Attempt: a.Attempt, State: execution.Success})
				r.Step(execution.TaskFinished{TaskRunID: b.TaskRunID, Attempt: b.Attempt, State: execution.Failed})
				r.Step(execution.Kill{})
				if r.E.Seq != before {
					t.Errorf("late results or a second kill changed the execution")
				}
				if n := len(effectsOf[execution.Dispatch](r.Effects)); n != 3 {
					t.Errorf("%d dispatches in all, want 3", n)
				}
			},
			state:  execution.Killed,
			states: map[string]string{"par": "KILLED", "a": "KILLED", "b": "KILLED", "c": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				for _, id := range []string{"a", "b"} {
					if got := attemptStates(r.Run(id)); got != "KILLED" {
						t.Errorf("%s attempts %s", id, got)
					}
				}
			},
		},
		{
			name: "kill while retrying cancels the retry timer",
			yaml: `
tasks:
  - id: a
    type: log
    message: a
    retry: {type: constant, interval: PT1H, maxAttempt: 3}
`,
			script: byTask(map[string][]outcome{"a": {resFail}}),
			then: func(t *testing.T, r *run) {
				// Drive fired every retry; start again and kill while retrying.
				r2 := newRun(t, r.F)
				r2.Step(execution.Create{ID: "exec-2"})
				r2.answerOne(r2ScriptFail)
				if r2.Run("a").State != execution.Retrying {
					t.Fatalf("a is %s, want RETRYING", r2.Run("a").State)
				}
				r2.Step(execution.Kill{})
				if r2.E.State != execution.Killed || r2.Run("a").State != execution.Killed || len(r2.E.Timers) != 0 {
					t.Errorf("after kill: %s, timers %v", r2.Dump(), r2.E.Timers)
				}
				if n := len(effectsOf[execution.Dispatch](r2.Effects)); n != 1 {
					t.Errorf("%d dispatches", n)
				}
				checkReplay(t, r2)
			},
			state: execution.Failed,
		},
		{
			name: "restart of a FAILED execution",
			yaml: `
tasks:
  - {id: a, type: log, message: a}
  - id: seq
    type: sequential
    tasks:
      - {id: b, type: log, message: b}
      - {id: c, type: log, message: c}
errors:
  - {id: h, type: log, message: h}
`,
			script: byTask(map[string][]outcome{"b": {resFail, resOK}}),
			then: func(t *testing.T, r *run) {
				if r.E.State != execution.Failed || len(r.Runs("h")) != 1 {
					t.Fatalf("before restart: %s", r.Dump())
				}
				r.Step(execution.Restart{})
				r.Drive(byTask(map[string][]outcome{"b": {resFail, resOK}}))
			},
			state:  execution.Success,
			states: map[string]string{"a": "SUCCESS", "seq": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS"},
			check: func(t *testing.T, r *run) {
				if got := attemptStates(r.Run("b")); got != "FAILED,SUCCESS" {
					t.Errorf("b attempts %s", got)
				}
				if got := attemptStates(r.Run("a")); got != "SUCCESS" {
					t.Errorf("a attempts %s (a succeeded, it must not rerun)", got)
				}
				if got := r.Ended(); !slices.Equal(got, []execution.State{execution.Failed, execution.Success}) {
					t.Errorf("Ended effects %v", got)
				}
			},
		},
		{
			name: "restart of a SUCCESS execution is ignored",
			yaml: `
tasks:
  - {id: a, type: log, message: a}
`,
			then: func(t *testing.T, r *run) {
				before := r.E.Seq
				r.Step(execution.Restart{})
				if r.E.Seq != before {
					t.Errorf("restart changed a SUCCESS execution")
				}
			},
			state: execution.Success,
		},
		{
			name:   "flow outputs rendered at the end",
			inputs: map[string]any{"n": 2},
			yaml: `
inputs:
  - {id: n, type: INT}
tasks:
  - {id: r, type: return, format: "v{{ inputs.n }}"}
outputs:
  - {id: o, type: STRING, value: "{{ outputs.r.value }}"}
  - {id: i, type: INT, value: "{{ inputs.n + 1 }}"}
`,
			state: execution.Success,
			check: func(t *testing.T, r *run) {
				if r.E.Outputs["o"] != "v2" || fmt.Sprint(r.E.Outputs["i"]) != "3" {
					t.Errorf("flow outputs %v", r.E.Outputs)
				}
			},
		},
		{
			name: "flow outputs that do not render fail the execution",
			yaml: `
tasks:
  - {id: r, type: log, message: x}
outputs:
  - {id: o, type: INT, value: "not a number"}
`,
			state: execution.Failed,
			check: func(t *testing.T, r *run) {
				if r.E.Error == "" {
					t.Errorf("no execution error")
				}
			},
		},
		{
			name: "labels set by a task replace the flow's",
			yaml: `
labels:
  env: dev
  team: data
tasks:
  - {id: a, type: log, message: a}
  - {id: b, type: log, message: b}
`,
			script: byTask(map[string][]outcome{
				"a": {{State: execution.Success, Labels: []flow.Label{{Key: "env", Value: "prod"}}}},
				"b": {{State: execution.Success, Labels: []flow.Label{{Key: "env", Value: "qa"}, {Key: "new", Value: "x"}}}},
			}),
			state: execution.Success,
			check: func(t *testing.T, r *run) {
				if got := r.E.LabelMap(); got["env"] != "qa" || got["team"] != "data" || got["new"] != "x" {
					t.Errorf("labels %v", got)
				}
				created := r.Events[0].Execution
				if got := created.LabelMap(); got["env"] != "dev" {
					t.Errorf("the CREATED event's labels were changed after it was emitted: env=%q, want dev", got["env"])
				}
			},
		},
	}
}

// r2ScriptFail fails every attempt.
func r2ScriptFail(call) outcome { return resFail }

func TestCreateWithErrorFails(t *testing.T) {
	r := newRun(t, parseFlow(t, header+"tasks:\n  - {id: a, type: log, message: a}\n"))
	res := r.Step(execution.Create{ID: "exec-1", Error: "invalid inputs: n: expected a number"})
	if r.E.State != execution.Failed || r.E.Error != "invalid inputs: n: expected a number" || len(r.Live) != 0 {
		t.Fatalf("state %s, error %q, %d dispatched; want FAILED with the error and nothing run", r.E.State, r.E.Error, len(r.Live))
	}
	ended := false
	for _, ef := range res.Effects {
		if e, ok := ef.(execution.Ended); ok && e.State == execution.Failed {
			ended = true
		}
	}
	if !ended {
		t.Error("no Ended effect: a parent waiting for this subflow would never hear of it")
	}
}

func TestFlowConcurrency(t *testing.T) {
	for _, tc := range []struct {
		behavior string
		want     execution.State
	}{
		{"QUEUE", execution.Queued},
		{"CANCEL", execution.Cancelled},
		{"FAIL", execution.Failed},
	} {
		t.Run(tc.behavior, func(t *testing.T) {
			src := header + fmt.Sprintf(`
concurrency: {limit: 1, behavior: %s}
tasks:
  - {id: a, type: log, message: a}
`, tc.behavior)
			r := newRun(t, parseFlow(t, src))
			res := r.Step(execution.Create{ID: "exec-1", Limited: true})
			r.Drive(simulate)
			if r.E.State != tc.want {
				t.Fatalf("state %s, want %s", r.E.State, tc.want)
			}
			if len(r.E.TaskRuns) != 0 || len(effectsOf[execution.Dispatch](r.Effects)) != 0 {
				t.Errorf("a limited execution ran something:\n%s", r.Dump())
			}
			ended := effectsOf[execution.Ended](res.Effects)
			if tc.want == execution.Queued {
				if len(ended) != 0 {
					t.Errorf("a queued execution ended: %v", ended)
				}
				r.Step(execution.Dequeue{})
				r.Drive(simulate)
				if r.E.State != execution.Success || r.Run("a").State != execution.Success {
					t.Errorf("after Dequeue: %s", r.Dump())
				}
				before := r.E.Seq
				r.Step(execution.Dequeue{})
				if r.E.Seq != before {
					t.Errorf("a second Dequeue changed the execution")
				}
			} else if len(ended) != 1 || ended[0].State != tc.want {
				t.Errorf("Ended effects %v", ended)
			}
			checkReplay(t, r)
		})
	}
	t.Run("not limited", func(t *testing.T) {
		r := start(t, header+`
concurrency: {limit: 1, behavior: QUEUE}
tasks:
  - {id: a, type: log, message: a}
`, simulate)
		if r.E.State != execution.Success {
			t.Errorf("state %s", r.E.State)
		}
	})
}

func TestApplyRefusesOutOfSequence(t *testing.T) {
	r := start(t, header+`
tasks:
  - {id: a, type: log, message: a}
  - {id: b, type: log, message: b}
`, simulate)
	evs := r.Events
	if len(evs) < 5 {
		t.Fatalf("only %d events", len(evs))
	}
	tests := []struct {
		name  string
		order []int // indexes into evs
	}{
		{"gap", []int{0, 1, 3}},
		{"duplicate", []int{0, 1, 2, 2}},
		{"backwards", []int{0, 1, 2, 1}},
		{"created twice", []int{0, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &execution.Execution{}
			for i, idx := range tc.order {
				err := execution.Apply(e, evs[idx])
				last := i == len(tc.order)-1
				if !last && err != nil {
					t.Fatalf("event %d: %v", idx, err)
				}
				if last {
					if err == nil {
						t.Fatalf("event seq %d applied after seq %d", evs[idx].Seq, evs[tc.order[i-1]].Seq)
					}
					if e.Seq != evs[tc.order[i-1]].Seq {
						t.Errorf("a refused event moved Seq to %d", e.Seq)
					}
				}
			}
		})
	}
	t.Run("transition the table forbids", func(t *testing.T) {
		e := &execution.Execution{}
		for _, ev := range evs {
			if err := execution.Apply(e, ev); err != nil {
				t.Fatal(err)
			}
		}
		err := execution.Apply(e, &execution.Event{Seq: e.Seq + 1, Type: execution.EvState, State: execution.Running})
		var te *execution.ErrTransition
		if !errors.As(err, &te) {
			t.Fatalf("SUCCESS → RUNNING: %v, want an ErrTransition", err)
		}
	})
}

// TestDeterminism steps two copies of the same execution with the same
// inputs and compares the events.
func TestDeterminism(t *testing.T) {
	src := header + `
tasks:
  - id: each
    type: for-each
    values: [a, b, c]
    concurrencyLimit: 0
    tasks:
      - id: t
        type: return
        format: "{{ taskrun.value }}"
        retry: {type: random, minInterval: PT1S, maxInterval: PT1M, maxAttempt: 3}
  - id: par
    type: parallel
    tasks:
      - {id: x, type: log, message: x}
      - {id: y, type: fail, allowFailure: true}
`
	sc := func(c call) outcome {
		if c.TaskRun.TaskID == "t" && c.Attempt == 1 {
			return resFail
		}
		return simulate(c)
	}
	a, b := start(t, src, sc), start(t, src, sc)
	if ja, jb := jsonOf(t, a.Events), jsonOf(t, b.Events); ja != jb {
		t.Errorf("two runs differ:\n%s\n%s", ja, jb)
	}
	if a.E.State != execution.Warning {
		t.Errorf("state %s\n%s", a.E.State, a.Dump())
	}
	// One step on an execution and on its JSON copy gives the same result.
	c := newRun(t, a.F)
	c.Step(execution.Create{ID: "exec-1"})
	var cp execution.Execution
	if err := json.Unmarshal([]byte(jsonOf(t, c.E)), &cp); err != nil {
		t.Fatal(err)
	}
	d := c.Live[0]
	in := execution.TaskFinished{TaskRunID: d.TaskRunID, Attempt: d.Attempt, State: execution.Failed}
	r1, err1 := c.M.Step(c.F, c.E, in, t0)
	r2, err2 := c.M.Step(c.F, &cp, in, t0)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if j1, j2 := jsonOf(t, r1), jsonOf(t, r2); j1 != j2 {
		t.Errorf("a step on a JSON copy differs:\n%s\n%s", j1, j2)
	}
}

// TestRestartAllowedFailure restarts an execution with a FAILED task whose
// failure was allowed (its sequential ended WARNING). Whatever restart does
// with it, the execution must not end while the task run is left RUNNING.
func TestRestartAllowedFailure(t *testing.T) {
	r := start(t, header+`
tasks:
  - id: outer
    type: sequential
    tasks:
      - {id: a, type: fail, allowFailure: true}
  - {id: b, type: fail}
`, simulate)
	if r.E.State != execution.Failed || r.Run("outer").State != execution.Warning {
		t.Fatalf("before restart:\n%s", r.Dump())
	}
	r.Step(execution.Restart{})
	// b's new attempt ends first; a's is still running.
	if len(r.LiveOf("b")) != 1 {
		t.Fatalf("b was not restarted:\n%s", r.Dump())
	}
	r.Finish(r.LiveOf("b")[0], resOK)
	if r.E.Terminal() && len(r.Live) > 0 {
		t.Errorf("the execution ended %s while attempt %d of %s still runs:\n%s", r.E.State, r.Live[0].Attempt, r.Live[0].TaskRunID, r.Dump())
	}
	r.Drive(func(call) outcome { return resOK })
	if !r.E.Terminal() {
		t.Fatalf("the restarted execution did not end:\n%s", r.Dump())
	}
	for _, tr := range r.E.TaskRuns {
		if !tr.State.Terminal() {
			t.Errorf("the execution ended %s with task run %s %s:\n%s", r.E.State, tr.TaskID, tr.State, r.Dump())
		}
	}
	checkReplay(t, r)
}

// TestRestartSubflow restarts an execution whose Subflow task failed: a new
// child execution must be started.
func TestRestartSubflow(t *testing.T) {
	r := start(t, header+`
tasks:
  - {id: sub, type: subflow, namespace: company.team, flowId: child}
`, simulate)
	c := r.Children[0]
	r.Step(execution.ChildEnded{TaskRunID: c.TaskRunID, ChildID: c.ChildID, State: execution.Failed})
	if r.E.State != execution.Failed {
		t.Fatalf("state %s", r.E.State)
	}
	r.Step(execution.Restart{})
	if len(r.Children) != 2 {
		t.Fatalf("restart started %d new child executions, want 1; the execution is %s:\n%s", len(r.Children)-1, r.E.State, r.Dump())
	}
	c = r.Children[1]
	r.Step(execution.ChildEnded{TaskRunID: c.TaskRunID, ChildID: c.ChildID, State: execution.Success})
	if r.E.State != execution.Success {
		t.Errorf("state %s after the new child succeeded", r.E.State)
	}
	checkReplay(t, r)
}

func TestReplay(t *testing.T) {
	src := header + `
tasks:
  - {id: a, type: log, message: a}
  - {id: s, type: log, message: s, runIf: "{{ false }}"}
  - id: seq
    type: sequential
    tasks:
      - {id: b, type: log, message: b}
      - {id: c, type: log, message: c}
  - {id: d, type: log, message: d}
`
	t.Run("from a task inside a flowable", func(t *testing.T) {
		r := start(t, src, simulate)
		b := r.Run("b")
		r.Step(execution.Replay{TaskRunID: b.ID})
		if len(r.Runs("c")) != 0 || len(r.Runs("d")) != 0 || len(r.Run("a").Attempts) != 1 {
			t.Errorf("after replay from b:\n%s", r.Dump())
		}
		r.Drive(simulate)
		if r.E.State != execution.Success || len(r.Run("b").Attempts) != 2 || r.Run("seq").State != execution.Success {
			t.Errorf("after the replay ran:\n%s", r.Dump())
		}
		checkReplay(t, r)
	})
	t.Run("into a new execution, leaving the original as it was", func(t *testing.T) {
		r := start(t, src, simulate)
		before, _ := json.Marshal(r.E)
		copied := newRun(t, r.F)
		for _, ev := range execution.ReplayCopy(r.E, "exec-2", r.Now) {
			if err := execution.Apply(copied.E, ev); err != nil {
				t.Fatalf("applying the copy's event %d: %v", ev.Seq, err)
			}
		}
		if copied.E.ID != "exec-2" || len(copied.E.TaskRuns) != len(r.E.TaskRuns) || copied.E.State != execution.Success {
			t.Fatalf("copy: id %s, %d task runs, state %s", copied.E.ID, len(copied.E.TaskRuns), copied.E.State)
		}
		copied.Step(execution.Replay{TaskRunID: r.Run("b").ID})
		copied.Drive(simulate)
		if copied.E.State != execution.Success || len(copied.Run("b").Attempts) != 2 || len(copied.Runs("d")) != 1 {
			t.Errorf("the copy after the replay ran:\n%s", copied.Dump())
		}
		if after, _ := json.Marshal(r.E); string(after) != string(before) {
			t.Errorf("replaying the copy changed the original")
		}
	})
	t.Run("of a SKIPPED task run", func(t *testing.T) {
		r := start(t, src, simulate)
		r.AllowErr = true
		before := jsonOf(t, r.E)
		r.Step(execution.Replay{TaskRunID: r.Run("s").ID})
		if len(r.Errs) > 0 {
			t.Errorf("replay of a SKIPPED task run: %v", r.Errs[0])
			if after := jsonOf(t, r.E); after != before {
				t.Errorf("and the failed step left the execution changed: now %s with %d task runs", r.E.State, len(r.E.TaskRuns))
			}
			return
		}
		r.Drive(simulate)
		if !r.E.Terminal() {
			t.Errorf("state %s", r.E.State)
		}
	})
	t.Run("of a running execution is ignored", func(t *testing.T) {
		r := start(t, src, byTask(map[string][]outcome{"d": {resLeave}}))
		before := r.E.Seq
		r.Step(execution.Replay{TaskRunID: r.Run("a").ID})
		if r.E.Seq != before {
			t.Errorf("replay changed a running execution")
		}
	})
}
