package execution_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

// A transition is one Step call (one input).

// benchDrive runs an execution of f to its end, answering every dispatch
// with SUCCESS (outputs {value: taskrun.value} in iterations). onStep, when
// set, sees each step's result and how long it took.
func benchDrive(tb testing.TB, f *flow.Flow, onStep func(res *execution.Result, d time.Duration)) (*execution.Execution, int) {
	m := &execution.Machine{}
	e := &execution.Execution{}
	steps := 0
	var queue []execution.Dispatch
	do := func(in execution.Input) {
		start := time.Now()
		res, err := m.Step(f, e, in, t0)
		d := time.Since(start)
		if err != nil {
			tb.Fatal(err)
		}
		steps++
		if onStep != nil {
			onStep(res, d)
		}
		for _, ef := range res.Effects {
			if dp, isD := ef.(execution.Dispatch); isD {
				queue = append(queue, dp)
			}
		}
	}
	do(execution.Create{ID: "bench"})
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		do(execution.TaskStarted(d))
		var out map[string]any
		if tr, found := e.TaskRun(d.TaskRunID); found && tr.HasValue {
			out = map[string]any{"value": tr.Value}
		}
		do(execution.TaskFinished{TaskRunID: d.TaskRunID, Attempt: d.Attempt, State: execution.Success, Outputs: out})
	}
	if e.State != execution.Success {
		tb.Fatalf("the execution ended %s", e.State)
	}
	return e, steps
}

func BenchmarkTransitions2Task(b *testing.B) {
	f := parseFlow(b, header+`
tasks:
  - {id: hello, type: log, message: "Hello {{ flow.id }}"}
  - {id: ret, type: return, format: "{{ execution.id }}"}
`)
	steps := 0
	for b.Loop() {
		_, n := benchDrive(b, f, nil)
		steps += n
	}
	b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "transitions/s")
	b.ReportMetric(float64(steps)/float64(b.N), "transitions/op")
}

func forEachFlow(tb testing.TB, n, limit int) *flow.Flow {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprint(i)
	}
	return parseFlow(tb, header+fmt.Sprintf(`
tasks:
  - id: each
    type: for-each
    concurrencyLimit: %d
    values: [%s]
    tasks:
      - {id: t, type: return, format: "{{ taskrun.value }}"}
`, limit, strings.Join(vals, ", ")))
}

// BenchmarkForEach1000 runs a ForEach of 1,000 values with one task each.
// It reports, from one measured run, the JSON size of the events of the
// first and of the last 100 transitions (does the delta stay flat as the
// execution grows?) and their mean step time; ns/op is a whole execution.
func BenchmarkForEach1000(b *testing.B) {
	for _, limit := range []int{1, 0} {
		b.Run(fmt.Sprintf("concurrencyLimit=%d", limit), func(b *testing.B) {
			f := forEachFlow(b, 1000, limit)
			var sizes []int
			var times []time.Duration
			events := 0
			_, steps := benchDrive(b, f, func(res *execution.Result, d time.Duration) {
				js, err := json.Marshal(res.Events)
				if err != nil {
					b.Fatal(err)
				}
				sizes = append(sizes, len(js))
				times = append(times, d)
				events += len(res.Events)
			})
			mean := func(xs []int) float64 {
				s := 0
				for _, x := range xs {
					s += x
				}
				return float64(s) / float64(len(xs))
			}
			meanD := func(xs []time.Duration) float64 {
				var s time.Duration
				for _, x := range xs {
					s += x
				}
				return float64(s.Nanoseconds()) / float64(len(xs))
			}
			b.ResetTimer()
			for b.Loop() {
				benchDrive(b, f, nil)
			}
			b.ReportMetric(float64(steps), "transitions/op")
			b.ReportMetric(float64(events), "events/op")
			b.ReportMetric(mean(sizes[:100]), "B/transition-first100")
			b.ReportMetric(mean(sizes[len(sizes)-100:]), "B/transition-last100")
			b.ReportMetric(meanD(times[:100]), "ns/transition-first100")
			b.ReportMetric(meanD(times[len(times)-100:]), "ns/transition-last100")
		})
	}
}

// BenchmarkRenderVars renders an expression with the variables of the last
// task run of a finished ForEach of 100 values nested in a ForEach of 10
// (1,120 task runs):
// building the variables (outputs of every task run) and rendering.
func BenchmarkRenderVars(b *testing.B) {
	vals := make([]string, 100)
	for i := range vals {
		vals[i] = fmt.Sprint(i)
	}
	f := parseFlow(b, header+fmt.Sprintf(`
tasks:
  - id: outer
    type: for-each
    values: [x, y, z, w, v, u, s, r, q, p]
    tasks:
      - id: inner
        type: for-each
        values: [%s]
        tasks:
          - {id: t, type: return, format: "{{ taskrun.value }}"}
`, strings.Join(vals, ", ")))
	e, _ := benchDrive(b, f, nil)
	tr := e.TaskRuns[len(e.TaskRuns)-1]
	if tr.TaskID != "t" || tr.Value != "99" {
		b.Fatalf("last task run %s %q", tr.TaskID, tr.Value)
	}
	const src = "{{ outputs.t['x']['50'].value }}/{{ taskrun.value }}/{{ parent.taskrun.value }}"
	ctx := context.Background()
	check, err := expr.Default.Render(ctx, src, execution.Vars(f, e, tr))
	if err != nil || check != "50/99/p" {
		b.Fatalf("render = %q, %v", check, err)
	}
	b.Run("vars", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			execution.Vars(f, e, tr)
		}
	})
	b.Run("vars+render", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := expr.Default.Render(ctx, src, execution.Vars(f, e, tr)); err != nil {
				b.Fatal(err)
			}
		}
	})
	vars := execution.Vars(f, e, tr)
	b.Run("render", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := expr.Default.Render(ctx, src, vars); err != nil {
				b.Fatal(err)
			}
		}
	})
}
