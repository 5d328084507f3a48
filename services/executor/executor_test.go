package executor_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
	"github.com/kiteflow/kite/integration/clustertest"
	"github.com/kiteflow/kite/proto/codec"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/executor"
	"github.com/kiteflow/kite/streams"
)

// flows is the FlowSource of the tests: parsed sources by namespace/id.
type flows struct{ m map[string]*flow.Flow }

func (s *flows) Flow(namespace, id string, _ int) (*flow.Flow, error) {
	if f, ok := s.m[namespace+"/"+id]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("flow %s.%s: %w", namespace, id, errNotFound)
}

func (s *flows) Latest() []*flow.Flow {
	var out []*flow.Flow
	for _, f := range s.m {
		out = append(out, f)
	}
	return out
}

var errNotFound = errors.New("not found")

func parse(tb testing.TB, src string) *flow.Flow {
	tb.Helper()
	f, err := (&flow.Parser{Registry: tasks.Registry(), CheckExpr: expr.Default.Check}).Parse("test.yaml", []byte(src))
	if err != nil {
		tb.Fatal(err)
	}
	f.Revision = 1
	return f
}

func newFlows(tb testing.TB, srcs ...string) *flows {
	s := &flows{m: map[string]*flow.Flow{}}
	for _, src := range srcs {
		f := parse(tb, src)
		s.m[f.Namespace+"/"+f.ID] = f
	}
	return s
}

// startExecutor runs an executor until the test ends.
func startExecutor(tb testing.TB, cfg streams.Config, src executor.FlowSource, instance string) {
	tb.Helper()
	c := executor.Defaults()
	c.InstanceID = instance
	c.WorkerTimeout = time.Second
	c.TimerInterval = 20 * time.Millisecond
	x, err := executor.New(c, cfg, src, zaptest.NewLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	run(tb, x.Run)
}

// run runs fn until the test ends and checks it returned no error.
func run(tb testing.TB, fn func(context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("stopped with: %v", err)
		}
	})
}

// testWorker stands in for the worker role (services/worker has its own
// tests; the end-to-end tests of services/app run both): it runs each job
// with the built-in runners and reports started and finished. lose names
// tasks whose first attempt it reports started as worker "w-dead" and then
// abandons, as a worker killed mid-task would.
func testWorker(tb testing.TB, cfg streams.Config, lose map[string]bool) {
	tb.Helper()
	cl := clustertest.Client(tb, cfg, kgo.ConsumerGroup(tb.Name()+"-workers"),
		kgo.ConsumeTopics(cfg.Topic(streams.TopicWorkerJobs)), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	parser := &flow.Parser{Registry: tasks.Registry()}
	run(tb, func(ctx context.Context) error {
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return nil
			}
			var wg sync.WaitGroup
			fetches.EachRecord(func(r *kgo.Record) {
				var job eventv1.WorkerJob
				if err := proto.Unmarshal(r.Value, &job); err != nil {
					tb.Errorf("job: %v", err)
					return
				}
				f, err := parser.Parse("job.yaml", []byte(job.GetFlowSource()))
				if err != nil {
					tb.Errorf("job flow: %v", err)
					return
				}
				t, _ := f.FindTask(job.GetTaskId())
				worker := "w-live"
				if lose[t.ID] && job.GetAttempt() == 1 {
					worker = "w-dead"
				}
				report(ctx, tb, cl, cfg, &job, worker, &eventv1.WorkerResult{Result: &eventv1.WorkerResult_Started{Started: &eventv1.TaskStarted{}}})
				if worker == "w-dead" {
					return
				}
				wg.Go(func() {
					rc := &tasks.RunContext{Task: t, Vars: codec.FromStruct(job.GetVars()), Engine: expr.Default,
						ExecutionID: job.GetExecutionId(), TaskRunID: job.GetTaskRunId(), Attempt: int(job.GetAttempt())}
					fin := tasks.RunAttempt(ctx, tasks.Runners(), rc)
					outputs, err := codec.ToStruct(fin.Outputs)
					if err != nil {
						tb.Errorf("outputs: %v", err)
					}
					report(ctx, tb, cl, cfg, &job, worker, &eventv1.WorkerResult{Result: &eventv1.WorkerResult_Finished{Finished: &eventv1.TaskFinished{
						State: codec.State(fin.State), Outputs: outputs, Error: fin.Error, Labels: codec.Labels(fin.Labels)}}})
				})
			})
			wg.Wait()
		}
	})
}

func report(ctx context.Context, tb testing.TB, cl *kgo.Client, cfg streams.Config, job *eventv1.WorkerJob, worker string, r *eventv1.WorkerResult) {
	r.ExecutionId, r.TaskRunId, r.Attempt, r.WorkerId = job.GetExecutionId(), job.GetTaskRunId(), job.GetAttempt(), worker
	b, _ := proto.Marshal(r)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.Topic(streams.TopicWorkerResults), Key: []byte(r.ExecutionId), Value: b}).FirstErr(); err != nil && ctx.Err() == nil {
		tb.Errorf("producing a result: %v", err)
	}
}

// create produces the create command of a new execution of f.
func create(tb testing.TB, cfg streams.Config, f *flow.Flow, inputs map[string]any) string {
	tb.Helper()
	id := execution.RandomExecutionID(time.Now())
	in, err := codec.ToStruct(inputs)
	if err != nil {
		tb.Fatal(err)
	}
	command(tb, cfg, &eventv1.Command{ExecutionId: id, CommandId: id, Kind: &eventv1.Command_Create{Create: &eventv1.CreateCommand{
		Namespace: f.Namespace, FlowId: f.ID, Revision: 1, Inputs: in, FlowSource: f.Source}}})
	return id
}

func command(tb testing.TB, cfg streams.Config, c *eventv1.Command) {
	tb.Helper()
	b, err := proto.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	cl := clustertest.Client(tb, cfg)
	if err := cl.ProduceSync(tb.Context(), &kgo.Record{Topic: cfg.Topic(streams.TopicCommands), Key: []byte(c.GetExecutionId()), Value: b}).FirstErr(); err != nil {
		tb.Fatal(err)
	}
}

// events reads execution-events (read committed) and folds each
// execution's events, checking their sequence, until every execution in
// ids has ended or the deadline passes.
func events(tb testing.TB, cfg streams.Config, ids ...string) map[string]*execution.Execution {
	tb.Helper()
	return eventsUntil(tb, cfg, ids, nil)
}

// eventsUntil is events, also waiting for more(executions) to be true.
func eventsUntil(tb testing.TB, cfg streams.Config, ids []string, more func(map[string]*execution.Execution) bool) map[string]*execution.Execution {
	tb.Helper()
	cl := clustertest.Client(tb, cfg, kgo.ConsumeTopics(cfg.Topic(streams.TopicExecutionEvents)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	out := map[string]*execution.Execution{}
	ctx, cancel := context.WithTimeout(tb.Context(), 60*time.Second)
	defer cancel()
	ended := func() bool {
		for _, id := range ids {
			if e, ok := out[id]; !ok || !e.Terminal() {
				return false
			}
		}
		return more == nil || more(out)
	}
	for !ended() {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			for _, id := range ids {
				if e := out[id]; e != nil {
					tb.Logf("execution %s: %s", id, e.State)
				}
			}
			tb.Fatalf("executions %v did not all end in time", ids)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			var pe kitev1.ExecutionEvent
			if err := proto.Unmarshal(r.Value, &pe); err != nil {
				tb.Fatalf("event: %v", err)
			}
			ev := codec.FromEvent(&pe)
			e, ok := out[ev.ExecutionID]
			if !ok {
				e = &execution.Execution{}
				out[ev.ExecutionID] = e
			}
			if err := execution.Apply(e, ev); err != nil {
				tb.Fatalf("event %d of %s: %v", ev.Seq, ev.ExecutionID, err)
			}
		})
	}
	return out
}

func TestExecutorRunsExecutions(t *testing.T) {
	clustertest.Each(t, func(t *testing.T, cfg streams.Config) {
		fs := newFlows(t, `
id: child
namespace: kite.test
inputs:
  - {id: name, type: STRING}
tasks:
  - {id: hello, type: io.kestra.plugin.core.debug.Return, format: "hello {{ inputs.name }}"}
outputs:
  - {id: greeting, type: STRING, value: "{{ outputs.hello.value }}"}
`)
		two := parse(t, `
id: two
namespace: kite.test
inputs:
  - {id: n, type: INT, defaults: 2}
tasks:
  - {id: log, type: io.kestra.plugin.core.log.Log, message: "n is {{ inputs.n }}"}
  - {id: ret, type: io.kestra.plugin.core.debug.Return, format: "{{ inputs.n * 21 }}"}
`)
		parent := parse(t, `
id: parent
namespace: kite.test
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: kite.test
    flowId: child
    inputs: {name: kite}
  - {id: after, type: io.kestra.plugin.core.debug.Return, format: "{{ outputs.sub.outputs.greeting }}"}
`)
		paused := parse(t, `
id: paused
namespace: kite.test
tasks:
  - {id: wait, type: io.kestra.plugin.core.flow.Pause, pauseDuration: PT0.5S}
  - {id: after, type: io.kestra.plugin.core.log.Log, message: resumed}
`)
		lost := parse(t, `
id: lost
namespace: kite.test
tasks:
  - {id: a, type: io.kestra.plugin.core.debug.Return, format: again}
`)
		badInput := parse(t, `
id: typed
namespace: kite.test
inputs:
  - {id: n, type: INT}
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, message: never}
`)
		downstream := parse(t, `
id: downstream
namespace: kite.test
inputs:
  - {id: upstream, type: STRING}
tasks:
  - {id: echo, type: io.kestra.plugin.core.debug.Return, format: "after {{ inputs.upstream }}"}
triggers:
  - id: after-two
    type: io.kestra.plugin.core.trigger.Flow
    inputs: {upstream: "{{ trigger.executionId }}"}
    conditions:
      - {type: io.kestra.plugin.core.condition.ExecutionFlow, namespace: kite.test, flowId: two}
      - {type: io.kestra.plugin.core.condition.ExecutionStatus, in: [SUCCESS]}
`)
		fs.m["kite.test/downstream"] = downstream
		startExecutor(t, cfg, fs, "x1")
		testWorker(t, cfg, map[string]bool{"a": true})

		ids := map[string]string{
			"two": create(t, cfg, two, map[string]any{"n": "2"}), "parent": create(t, cfg, parent, nil),
			"paused": create(t, cfg, paused, nil), "lost": create(t, cfg, lost, nil),
			"typed": create(t, cfg, badInput, map[string]any{"n": "not a number"}),
		}
		// A result for an execution nobody created is recorded and ignored.
		unknown := execution.RandomExecutionID(time.Now())
		b, _ := proto.Marshal(&eventv1.WorkerResult{ExecutionId: unknown, TaskRunId: "tr", Attempt: 1,
			Result: &eventv1.WorkerResult_Finished{Finished: &eventv1.TaskFinished{State: kitev1.State_STATE_SUCCESS}}})
		if err := clustertest.Client(t, cfg).ProduceSync(t.Context(), &kgo.Record{Topic: cfg.Topic(streams.TopicWorkerResults), Key: []byte(unknown), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, id := range ids {
			all = append(all, id)
		}
		// The Flow trigger of downstream fires once, after "two" succeeded.
		triggered := func(execs map[string]*execution.Execution) []*execution.Execution {
			var out []*execution.Execution
			for _, e := range execs {
				if e.FlowID == "downstream" && e.Terminal() {
					out = append(out, e)
				}
			}
			return out
		}
		got := eventsUntil(t, cfg, all, func(m map[string]*execution.Execution) bool { return len(triggered(m)) > 0 })
		if d := triggered(got); len(d) != 1 || d[0].State != execution.Success || fmt.Sprint(d[0].TaskRuns[0].Outputs["value"]) != "after "+ids["two"] {
			t.Errorf("downstream executions %+v, want one SUCCESS echoing the upstream id", d)
		}

		checks := []struct {
			name, state, task, output string
		}{
			{"two", "SUCCESS", "ret", "42"},
			{"parent", "SUCCESS", "after", "hello kite"},
			{"paused", "SUCCESS", "", ""},
			{"lost", "SUCCESS", "a", "again"},
			{"typed", "FAILED", "", ""},
		}
		for _, c := range checks {
			e := got[ids[c.name]]
			if string(e.State) != c.state {
				t.Errorf("%s: state %s (%s), want %s", c.name, e.State, e.Error, c.state)
				continue
			}
			if c.task == "" {
				continue
			}
			var found bool
			for _, tr := range e.TaskRuns {
				if tr.TaskID == c.task {
					found = true
					if v := fmt.Sprint(tr.Outputs["value"]); v != c.output {
						t.Errorf("%s: %s.value = %q, want %q", c.name, c.task, v, c.output)
					}
				}
			}
			if !found {
				t.Errorf("%s: no task run of %s", c.name, c.task)
			}
		}
		if tr := got[ids["lost"]].TaskRuns[0]; len(tr.Attempts) != 2 || tr.Attempts[0].State != execution.Killed {
			t.Errorf("lost: attempts %+v, want the lost one KILLED and a second one", tr.Attempts)
		}
		if e := got[ids["typed"]]; e.Error == "" || len(e.TaskRuns) != 0 {
			t.Errorf("typed: error %q and %d task runs; want the input error and nothing run", e.Error, len(e.TaskRuns))
		}
		if _, ok := got[unknown]; ok {
			t.Errorf("a result for an unknown execution created events")
		}

		// Replay "two" from its task ret into a new execution.
		var ret string
		for _, tr := range got[ids["two"]].TaskRuns {
			if tr.TaskID == "ret" {
				ret = tr.ID
			}
		}
		replayed := execution.RandomExecutionID(time.Now())
		command(t, cfg, &eventv1.Command{ExecutionId: ids["two"], CommandId: replayed,
			Kind: &eventv1.Command_Replay{Replay: &eventv1.ReplayCommand{NewExecutionId: replayed, TaskRunId: ret}}})
		again := events(t, cfg, replayed)
		e := again[replayed]
		if e.State != execution.Success || len(e.TaskRuns) != 2 || len(e.TaskRuns[1].Attempts) != 2 || len(e.TaskRuns[0].Attempts) != 1 {
			t.Errorf("replay: state %s, task runs %+v; want SUCCESS with ret run twice and log once", e.State, e.TaskRuns)
		}
		if orig := again[ids["two"]]; orig.Seq != got[ids["two"]].Seq {
			t.Errorf("the replay changed the original execution: seq %d, was %d", orig.Seq, got[ids["two"]].Seq)
		}
	})
}
