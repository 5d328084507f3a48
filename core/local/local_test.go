package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/local"
	"github.com/kiteflow/kite/core/tasks"
)

func parser() *flow.Parser {
	return &flow.Parser{Registry: tasks.Registry(), CheckExpr: expr.Default.Check}
}

func parseFlow(tb testing.TB, src string) *flow.Flow {
	tb.Helper()
	f, err := parser().Parse("test.yaml", []byte(src))
	if err != nil {
		tb.Fatalf("parsing the flow: %v", err)
	}
	return f
}

// taskRuns returns the task runs of a task.
func taskRuns(e *execution.Execution, taskID string) []*execution.TaskRun {
	var out []*execution.TaskRun
	for _, tr := range e.TaskRuns {
		if tr.TaskID == taskID {
			out = append(out, tr)
		}
	}
	return out
}

func dump(e *execution.Execution, logs []local.LogLine) string {
	s := fmt.Sprintf("execution %s %s %q\n", e.ID, e.State, e.Error)
	for _, tr := range e.TaskRuns {
		s += fmt.Sprintf("  %s %s value=%q outputs=%v %q\n", tr.TaskID, tr.State, tr.Value, tr.Outputs, tr.Error)
	}
	for _, l := range logs {
		s += fmt.Sprintf("  log %s %s: %s\n", l.Level, l.TaskID, l.Message)
	}
	return s
}

func TestShellAndForEach(t *testing.T) {
	f := parseFlow(t, `
id: shell
namespace: company.team
inputs:
  - {id: greeting, type: STRING, defaults: hello}
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo "{{ inputs.greeting }}"
      - 'echo ''::{"outputs": {"n": 3}}::'''
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", "c"]
    concurrencyLimit: 0
    tasks:
      - id: ret
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}{{ outputs.sh.vars.n }}"
outputs:
  - {id: last, type: STRING, value: "{{ outputs.ret['c'].value }}"}
`)
	res, err := local.New(nil).Run(t.Context(), f, nil, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Execution
	if e.State != execution.Success {
		t.Fatalf("state %s\n%s", e.State, dump(e, res.Logs))
	}
	sh := taskRuns(e, "sh")[0]
	if fmt.Sprint(sh.Outputs["exitCode"]) != "0" {
		t.Errorf("exit code %v", sh.Outputs["exitCode"])
	}
	hello := false
	for _, l := range res.Logs {
		if l.TaskID == "sh" && l.Message == "hello" {
			hello = true
		}
	}
	if !hello {
		t.Errorf("no log line hello from sh\n%s", dump(e, res.Logs))
	}
	rets := taskRuns(e, "ret")
	if len(rets) != 3 {
		t.Fatalf("%d ret task runs", len(rets))
	}
	for i, tr := range rets {
		want := []string{"a3", "b3", "c3"}[i]
		if tr.Value != []string{"a", "b", "c"}[i] || tr.Outputs["value"] != want {
			t.Errorf("ret %d: value %q outputs %v, want %s", i, tr.Value, tr.Outputs, want)
		}
	}
	if e.Outputs["last"] != "c3" {
		t.Errorf("flow outputs %v", e.Outputs)
	}
}

func TestSubflowFromDir(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"parent.yaml": `
id: parent
namespace: company.team
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: child
    inputs:
      who: "{{ flow.id }}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.call.outputs.greeting }}"
`,
		"child.yaml": `
id: child
namespace: company.team
inputs:
  - {id: who, type: STRING}
tasks:
  - id: hi
    type: io.kestra.plugin.core.debug.Return
    format: "hi {{ inputs.who }}"
outputs:
  - {id: greeting, type: STRING, value: "{{ outputs.hi.value }}"}
`,
		"failing.yaml": `
id: failing
namespace: company.team
inputs:
  - {id: who, type: STRING}
tasks:
  - {id: boom, type: io.kestra.plugin.core.execution.Fail}
`,
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	flows, problems := local.LoadDir(parser(), dir)
	if len(problems) > 0 {
		t.Fatalf("loading %s: %v", dir, problems)
	}
	tests := []struct {
		name      string
		childFlow string
		want      execution.State
		childWant execution.State
	}{
		{"child succeeds", "child", execution.Success, execution.Success},
		{"child fails", "failing", execution.Failed, execution.Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := flows.Flow("company.team", "parent", 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.childFlow != "child" {
				// Same parent, pointing at another child.
				src := files["parent.yaml"]
				f = parseFlow(t, replaceOnce(t, src, "flowId: child", "flowId: "+tc.childFlow))
			}
			res, err := local.New(flows).Run(t.Context(), f, nil, local.Options{})
			if err != nil {
				t.Fatal(err)
			}
			e := res.Execution
			if e.State != tc.want {
				t.Errorf("parent %s, want %s\n%s", e.State, tc.want, dump(e, res.Logs))
			}
			if len(res.Children) != 1 {
				t.Fatalf("%d children\n%s", len(res.Children), dump(e, res.Logs))
			}
			child := res.Children[0]
			if child.State != tc.childWant || child.Parent == nil || child.Parent.ExecutionID != e.ID {
				t.Errorf("child %s, parent link %+v", child.State, child.Parent)
			}
			call := taskRuns(e, "call")[0]
			if call.ChildExecutionID != child.ID || call.Outputs["executionId"] != child.ID {
				t.Errorf("call task run: child %q, outputs %v; the child is %s", call.ChildExecutionID, call.Outputs, child.ID)
			}
			if tc.want == execution.Success {
				if got := taskRuns(e, "after")[0].Outputs["value"]; got != "hi parent" {
					t.Errorf("after = %v, want the child's output %q\n%s", got, "hi parent", dump(e, res.Logs))
				}
			}
		})
	}
}

func replaceOnce(tb testing.TB, s, old, repl string) string {
	tb.Helper()
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + repl + s[i+len(old):]
		}
	}
	tb.Fatalf("%q not in the flow", old)
	return ""
}

// TestCancelMidSleep cancels the context while a task sleeps: Run returns
// the context's error soon after (not after the hour of sleep), having
// killed the execution and stopped the sleeping attempt.
func TestCancelMidSleep(t *testing.T) {
	f := parseFlow(t, `
id: sleepy
namespace: company.team
tasks:
  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - {id: nap, type: io.kestra.plugin.core.flow.Sleep, duration: PT1H}
      - {id: nap2, type: io.kestra.plugin.core.flow.Sleep, duration: PT1H}
  - {id: after, type: io.kestra.plugin.core.log.Log, message: never}
`)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rt := local.New(nil)
	var events []*execution.Event
	started := 0
	rt.OnEvent = func(ev *execution.Event) {
		// OnEvent runs on the runtime's loop goroutine only.
		events = append(events, ev)
		if ev.Type == execution.EvAttempt && ev.State == execution.Running {
			if started++; started == 2 {
				cancel() // both attempts are sleeping
			}
		}
	}
	type out struct {
		res *local.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := rt.Run(ctx, f, nil, local.Options{})
		done <- out{res, err}
	}()
	var o out
	select {
	case o = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of the cancel (the task sleeps for an hour)")
	}
	if !errors.Is(o.err, context.Canceled) {
		t.Fatalf("Run returned %v, %v; want context.Canceled", o.res, o.err)
	}
	// Run has returned, so the loop goroutine is done with events.
	e := &execution.Execution{}
	for _, ev := range events {
		if err := execution.Apply(e, ev); err != nil {
			t.Fatalf("replaying event %d: %v", ev.Seq, err)
		}
	}
	if e.State != execution.Killed {
		t.Errorf("execution %s, want KILLED\n%s", e.State, dump(e, nil))
	}
	for _, tr := range e.TaskRuns {
		if tr.State != execution.Killed {
			t.Errorf("task run %s is %s, want KILLED", tr.TaskID, tr.State)
		}
	}
	if len(taskRuns(e, "after")) != 0 {
		t.Errorf("after ran")
	}
}
