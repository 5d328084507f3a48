package app_test

import (
	"bytes"
	"fmt"
	"google.golang.org/grpc"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/local"
	"github.com/kiteflow/kite/core/storage"
	storagelocal "github.com/kiteflow/kite/core/storage/local"
	"github.com/kiteflow/kite/core/tasks"
	"github.com/kiteflow/kite/integration/clustertest"
	"github.com/kiteflow/kite/proto/codec"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/app"
	"github.com/kiteflow/kite/streams"
)

const examplesDir = "../../examples/flows"

// summary is what a user compares of two runs of a flow: the execution's
// state and outputs, and each task's task run states in order.
func summary(e *execution.Execution) string {
	byTask := map[string][]string{}
	var order []string
	for _, tr := range e.TaskRuns {
		if _, ok := byTask[tr.TaskID]; !ok {
			order = append(order, tr.TaskID)
		}
		byTask[tr.TaskID] = append(byTask[tr.TaskID], string(tr.State))
	}
	slices.Sort(order)
	var b strings.Builder
	fmt.Fprintf(&b, "state %s, outputs %v", e.State, expr.Stringify(e.Outputs))
	for _, id := range order {
		fmt.Fprintf(&b, "; %s %s", id, strings.Join(byTask[id], ","))
	}
	return b.String()
}

// TestStandaloneRunsTheExamples applies examples/flows to a standalone
// server and runs each flow through the gRPC API: every execution ends as
// `kite flow test` (the in-process runtime) ends it, and a Watch started
// after the end still delivers every event, in order.
func TestStandaloneRunsTheExamples(t *testing.T) {
	a := startApp(t, "standalone", nil, nil)
	lines, err := a.ApplyDir(t.Context(), examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatal("no example flow applied")
	}
	conn := dial(t, a)
	executions := kitev1.NewExecutionServiceClient(conn)
	parser := &flow.Parser{Registry: tasks.Registry(), CheckExpr: expr.Default.Check}
	dir, problems := local.LoadDir(parser, examplesDir)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	entries, _ := os.ReadDir(examplesDir)
	for _, entry := range entries {
		t.Run(entry.Name(), func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(examplesDir, entry.Name()))
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.Parse(entry.Name(), src)
			if err != nil {
				t.Fatal(err)
			}
			// A FILE input gets the same small file in both runs.
			rt := local.New(dir)
			if rt.Store, err = storagelocal.New(t.TempDir()); err != nil {
				t.Fatal(err)
			}
			given, fileInput := map[string]any{}, ""
			content := []byte("pear\napple\nfig\n")
			for _, in := range f.Inputs {
				if in.Type == flow.InputFile {
					fileInput = in.ID
					uri, err := storage.InputFile(f.Namespace, f.ID, "local", in.ID, "example.txt")
					if err != nil {
						t.Fatal(err)
					}
					if _, err := rt.Store.Put(t.Context(), uri, bytes.NewReader(content)); err != nil {
						t.Fatal(err)
					}
					given[in.ID] = uri
				}
			}
			want, err := rt.Run(t.Context(), f, given, local.Options{})
			if err != nil {
				t.Fatal(err)
			}
			req := &kitev1.ExecutionServiceCreateRequest{Namespace: f.Namespace, FlowId: f.ID}
			var created *kitev1.Execution
			if fileInput != "" {
				created, err = uploadFile(t, conn, req, fileInput, "example.txt", content, 1<<20)
			} else {
				var resp *kitev1.ExecutionServiceCreateResponse
				resp, err = executions.Create(t.Context(), req)
				created = resp.GetExecution()
			}
			if err != nil {
				t.Fatal(err)
			}
			id := created.GetId()
			evs := watch(t, conn, id, nil)
			got, err := executions.Get(t.Context(), &kitev1.ExecutionServiceGetRequest{ExecutionId: id})
			if err != nil {
				t.Fatal(err)
			}
			e := codec.FromExecution(got.GetExecution())
			if g, w := summary(e), summary(want.Execution); g != w {
				t.Errorf("through the API:\n  %s\nkite flow test:\n  %s", g, w)
			}
			if int64(len(evs)) != e.Seq {
				t.Errorf("watch delivered %d events, the execution has %d", len(evs), e.Seq)
			}
			// Started late, from the start: the same events.
			late := watch(t, conn, id, nil)
			if len(late) != len(evs) {
				t.Errorf("a late watch delivered %d events, want %d", len(late), len(evs))
			}
			for i := range min(len(late), len(evs)) {
				if !proto.Equal(late[i], evs[i]) {
					t.Errorf("event %d differs in the late watch", i+1)
					break
				}
			}
		})
	}
}

// sleepFlow sleeps long enough for the test to kill the worker running it.
const sleepFlow = `
id: nap
namespace: kite.e2e
tasks:
  - {id: nap, type: io.kestra.plugin.core.flow.Sleep, duration: PT4S}
  - {id: done, type: io.kestra.plugin.core.debug.Return, format: rested}
`

// TestWorkerKilledMidTask SIGKILLs the worker process running a task: the
// executor notices its heartbeats stopped and runs the task again as a new
// attempt on another worker, and the execution ends SUCCESS.
func TestWorkerKilledMidTask(t *testing.T) {
	clustertest.Each(t, func(t *testing.T, kafka streams.Config) {
		a := startApp(t, "api,executor", &kafka, nil)
		conn := dial(t, a)
		if _, err := kitev1.NewFlowServiceClient(conn).Apply(t.Context(), &kitev1.FlowServiceApplyRequest{Source: sleepFlow}); err != nil {
			t.Fatal(err)
		}
		workerEnv := []string{"KITE_WORKER_HEARTBEAT_INTERVAL=300ms", "KITE_WORKER_ID=w-doomed"}
		doomed := startProcess(t, "worker", kafka, workerEnv...)
		created, err := kitev1.NewExecutionServiceClient(conn).Create(t.Context(), &kitev1.ExecutionServiceCreateRequest{Namespace: "kite.e2e", FlowId: "nap"})
		if err != nil {
			t.Fatal(err)
		}
		id := created.GetExecution().GetId()
		watch(t, conn, id, func(ev *kitev1.ExecutionEvent) bool {
			return ev.GetType() == kitev1.EventType_EVENT_TYPE_ATTEMPT && ev.GetState() == kitev1.State_STATE_RUNNING
		})
		doomed.kill()
		startProcess(t, "worker", kafka, "KITE_WORKER_HEARTBEAT_INTERVAL=300ms", "KITE_WORKER_ID=w-rescuer")
		if got := napAttempts(t, conn, id); got != "KILLED,SUCCESS" {
			t.Errorf("nap attempts %s, want the killed worker's KILLED then SUCCESS", got)
		}
	})
}

// napAttempts waits for the end of an execution of sleepFlow, which must
// be SUCCESS, and returns the states of its nap task run's attempts.
func napAttempts(tb testing.TB, conn *grpc.ClientConn, id string) string {
	tb.Helper()
	watch(tb, conn, id, nil)
	got, err := kitev1.NewExecutionServiceClient(conn).Get(tb.Context(), &kitev1.ExecutionServiceGetRequest{ExecutionId: id})
	if err != nil {
		tb.Fatal(err)
	}
	e := codec.FromExecution(got.GetExecution())
	if e.State != execution.Success {
		tb.Fatalf("execution %s, want SUCCESS: %s", e.State, summary(e))
	}
	var attempts []string
	for _, at := range e.TaskRuns[0].Attempts {
		attempts = append(attempts, string(at.State))
	}
	return strings.Join(attempts, ",")
}

// TestExecutorKilledUnderLoad SIGKILLs the executor process while 1,000
// executions run, and starts it again: every execution ends, every task run
// has exactly one terminal result, and every execution's events have no gap
// and no duplicate (Apply refuses both).
func TestExecutorKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 executions and two executor processes; not in -short")
	}
	const n = 1000
	clustertest.Each(t, func(t *testing.T, kafka streams.Config) {
		startApp(t, "worker", &kafka, func(c *app.Config) { c.Worker.Concurrency = 32 })
		executorEnv := []string{"KITE_EXECUTOR_INSTANCE_ID=x1", "KITE_EXECUTOR_STATIC_MEMBERSHIP=true", "KITE_EXECUTOR_WORKER_TIMEOUT=5s"}
		first := startProcess(t, "executor", kafka, executorEnv...)

		// The sleep keeps hundreds of executions in flight when the executor dies.
		src := "id: pair\nnamespace: kite.e2e\ntasks:\n  - {id: nap, type: io.kestra.plugin.core.flow.Sleep, duration: PT0.2S}\n" +
			"  - {id: ret, type: io.kestra.plugin.core.debug.Return, format: \"{{ execution.id }}\"}\n"
		cl := clustertest.Client(t, kafka)
		ids := map[string]bool{}
		create := func(count int) {
			var recs []*kgo.Record
			for range count {
				id := execution.RandomExecutionID(time.Now())
				ids[id] = true
				b, err := proto.Marshal(&eventv1.Command{ExecutionId: id, CommandId: id, Kind: &eventv1.Command_Create{Create: &eventv1.CreateCommand{
					Namespace: "kite.e2e", FlowId: "pair", Revision: 1, FlowSource: src}}})
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, &kgo.Record{Topic: kafka.Topic(streams.TopicCommands), Key: []byte(id), Value: b})
			}
			if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		// Half now; the other half while the executor is dead, so that the
		// second executor has at least that much to do.
		create(n / 2)
		allIDs := maps.Clone(ids)
		restarted := false
		onEnd := func(ended int) {
			if ended == n/10 && !restarted {
				restarted = true
				first.kill()
				create(n / 2)
				for id := range ids {
					allIDs[id] = true
				}
				startProcess(t, "executor", kafka, executorEnv...)
			}
		}
		execs, results := foldEvents(t, kafka, allIDs, onEnd)
		if !restarted {
			t.Fatal("the executor was never killed")
		}
		for id, e := range execs {
			if e.State != execution.Success {
				t.Errorf("execution %s ended %s: %s", id, e.State, summary(e))
				continue
			}
			if len(e.TaskRuns) != 2 {
				t.Errorf("execution %s has %d task runs, want 2", id, len(e.TaskRuns))
			}
			for _, tr := range e.TaskRuns {
				if got := results[id+"/"+tr.ID]; got != 1 {
					t.Errorf("execution %s task run %s (%s) has %d terminal results, want 1", id, tr.ID, tr.TaskID, got)
				}
				if tr.TaskID == "ret" && fmt.Sprint(tr.Outputs["value"]) != id {
					t.Errorf("execution %s: ret.value %v", id, tr.Outputs["value"])
				}
			}
		}
	})
}
