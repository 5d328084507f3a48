package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
	"github.com/kiteflow/kite/integration/kafkatest"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// env is a broker with Kite's topics: kfake in-process, or the real Kafka
// that make test starts (integration/kafkatest).
type env struct {
	kafka   streams.Config
	cluster *kfake.Cluster // nil on the real broker
}

const testPartitions = 3

// fakeEnv starts a kfake cluster with Kite's topics.
func fakeEnv(tb testing.TB) *env {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	e := &env{kafka: streams.Defaults(), cluster: c}
	e.kafka.Brokers = c.ListenAddrs()
	e.kafka.Partitions = testPartitions
	e.ensureTopics(tb)
	return e
}

// realEnv creates Kite's topics, under a prefix of the test's own, on the
// real broker, and deletes them when the test ends.
func realEnv(tb testing.TB) *env {
	tb.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	e := &env{kafka: streams.Defaults()}
	e.kafka.Brokers = kafkatest.Brokers(tb)
	e.kafka.Partitions = testPartitions
	e.kafka.TopicPrefix = "kite-test-api-" + hex.EncodeToString(b[:]) + "."
	e.ensureTopics(tb)
	tb.Cleanup(func() {
		// tb.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var names []string
		for _, s := range streams.TopicSpecs() {
			names = append(names, e.kafka.Topic(s.Base))
		}
		if _, err := e.admin(tb).DeleteTopics(ctx, names...); err != nil {
			tb.Errorf("deleting topics %v: %v", names, err)
		}
	})
	return e
}

// eachBroker runs a test on kfake and on the real broker.
func eachBroker(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("kfake", func(t *testing.T) { fn(t, fakeEnv(t)) })
	t.Run("kafka", func(t *testing.T) { fn(t, realEnv(t)) })
}

func (e *env) client(tb testing.TB, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	all, err := e.kafka.ClientOpts(testLogger(tb), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	cl, err := kgo.NewClient(all...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

func (e *env) admin(tb testing.TB) *kadm.Client { return kadm.NewClient(e.client(tb)) }

func (e *env) ensureTopics(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := streams.EnsureTopics(ctx, e.admin(tb), e.kafka); err != nil {
		tb.Fatalf("creating Kite's topics: %v", err)
	}
}

func testLogger(tb testing.TB) *zap.Logger {
	if os.Getenv("KITE_DEBUG") != "" {
		return zaptest.NewLogger(tb)
	}
	return zap.NewNop()
}

// Labels that steer the stand-in executor: holdLabel keeps an execution
// RUNNING until the test calls finish; pauseLabel pauses it at task "wait"
// (a Pause task of flow hello).
const (
	holdLabel  = "test.hold"
	pauseLabel = "test.pause"
)

// standIn plays the executor's part in these tests, until services/executor
// exists: it is NOT an engine. It reads the commands topic and writes, in
// transactions as the executor does, what an executor would record:
//   - create: CREATED and STATE RUNNING in one transaction; then, unless the
//     execution has label test.hold, a second transaction with three log
//     lines (DEBUG, INFO and ERROR, of task "t1") and STATE SUCCESS. finish
//     writes that second transaction for a held execution.
//   - create with label test.pause: CREATED, STATE RUNNING, the task run of
//     Pause task "wait" created and PAUSED, STATE PAUSED, in one transaction.
//   - resume: task run "tr-wait" SUCCESS and STATE RUNNING.
//   - kill: STATE KILLED, for an execution that has not ended.
//
// Every command it reads goes to the commands channel, for the tests to look at.
type standIn struct {
	tb       testing.TB
	topics   streams.Config
	consumer *kgo.Client
	producer *kgo.Client
	commands chan *eventv1.Command

	mu    sync.Mutex // one transaction at a time, and what follows
	execs map[string]*standInExecution
}

type standInExecution struct {
	create *eventv1.CreateCommand
	seq    int64
	ended  bool
}

// startStandIn starts the stand-in executor; it stops when the test ends.
func startStandIn(tb testing.TB, e *env) *standIn {
	tb.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	x := &standIn{
		tb:     tb,
		topics: e.kafka,
		consumer: e.client(tb, kgo.ConsumeTopics(e.kafka.Topic(streams.TopicCommands)),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
		producer: e.client(tb, kgo.TransactionalID("api-test-stand-in-"+hex.EncodeToString(b[:]))),
		commands: make(chan *eventv1.Command, 1000),
		execs:    map[string]*standInExecution{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { x.run(ctx) })
	tb.Cleanup(func() { cancel(); wg.Wait() })
	return x
}

func (x *standIn) run(ctx context.Context) {
	for {
		fetches := x.consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			x.tb.Errorf("stand-in executor: reading %s[%d]: %v", topic, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			cmd := &eventv1.Command{}
			if err := proto.Unmarshal(r.Value, cmd); err != nil {
				x.tb.Errorf("stand-in executor: command at offset %d: %v", r.Offset, err)
				return
			}
			if string(r.Key) != cmd.GetExecutionId() {
				x.tb.Errorf("stand-in executor: command keyed %q for execution %q", r.Key, cmd.GetExecutionId())
			}
			x.apply(ctx, cmd)
			x.commands <- cmd
		})
	}
}

func (x *standIn) apply(ctx context.Context, cmd *eventv1.Command) {
	x.mu.Lock()
	defer x.mu.Unlock()
	id := cmd.GetExecutionId()
	switch {
	case cmd.GetCreate() != nil:
		c := cmd.GetCreate()
		ex := &standInExecution{create: c}
		x.execs[id] = ex
		recs := []*kgo.Record{
			x.event(ex, id, &kitev1.ExecutionEvent{Type: kitev1.EventType_EVENT_TYPE_CREATED, Execution: &kitev1.Execution{
				Id: id, Namespace: c.GetNamespace(), FlowId: c.GetFlowId(), FlowRevision: c.GetRevision(),
				Inputs: c.GetInputs(), Labels: c.GetLabels(), Trigger: c.GetTrigger(), State: kitev1.State_STATE_CREATED,
			}}),
			x.event(ex, id, &kitev1.ExecutionEvent{Type: kitev1.EventType_EVENT_TYPE_STATE, State: kitev1.State_STATE_RUNNING}),
		}
		labels := map[string]bool{}
		for _, l := range c.GetLabels() {
			labels[l.GetKey()] = true
		}
		if labels[pauseLabel] {
			recs = append(recs,
				x.event(ex, id, &kitev1.ExecutionEvent{Type: kitev1.EventType_EVENT_TYPE_TASK_RUN_CREATED, TaskRun: &kitev1.TaskRun{
					Id: "tr-wait", TaskId: "wait", Branch: "tasks", State: kitev1.State_STATE_CREATED,
				}}),
				x.event(ex, id, &kitev1.ExecutionEvent{Type: kitev1.EventType_EVENT_TYPE_TASK_RUN_STATE, TaskRunId: "tr-wait", State: kitev1.State_STATE_PAUSED}),
				x.event(ex, id, &kitev1.ExecutionEvent{Type: kitev1.EventType_EVENT_TYPE_STATE, State: kitev1.State_STATE_PAUSED}),
			)
		}
		x.transact(ctx, id, recs...)
		if !labels[holdLabel] && !labels[pauseLabel] {
			x.finishLocked(ctx, id)
		}
	case cmd.GetResume() != nil:
		if ex := x.execs[id]; ex != nil && !ex.ended {
			x.transact(ctx, id,
				x.event(ex, id, &kitev1.ExecutionEvent{Type: kitev1.EventType_EVENT_TYPE_TASK_RUN_STATE, TaskRunId: "tr-wait", State: kitev1.State_STATE_SUCCESS}),
				x.event(ex, id, &kitev1.ExecutionEvent{Type: kitev1.EventType_EVENT_TYPE_STATE, State: kitev1.State_STATE_RUNNING}),
			)
		}
	case cmd.GetKill() != nil:
		if ex := x.execs[id]; ex != nil && !ex.ended {
			ex.ended = true
			x.transact(ctx, id, x.event(ex, id, &kitev1.ExecutionEvent{Type: kitev1.EventType_EVENT_TYPE_STATE, State: kitev1.State_STATE_KILLED}))
		}
	}
}

// finish ends a held execution: its log lines, then SUCCESS.
func (x *standIn) finish(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.finishLocked(x.tb.Context(), id)
}

func (x *standIn) finishLocked(ctx context.Context, id string) {
	ex := x.execs[id]
	if ex == nil {
		x.tb.Errorf("stand-in executor: finish of unknown execution %s", id)
		return
	}
	ex.ended = true
	var recs []*kgo.Record
	for _, l := range []struct {
		level kitev1.LogLevel
		msg   string
	}{{kitev1.LogLevel_LOG_LEVEL_DEBUG, "debug line"}, {kitev1.LogLevel_LOG_LEVEL_INFO, "info line"}, {kitev1.LogLevel_LOG_LEVEL_ERROR, "error line"}} {
		recs = append(recs, x.record(streams.TopicLogs, id, &kitev1.LogEntry{
			Namespace: ex.create.GetNamespace(), FlowId: ex.create.GetFlowId(), ExecutionId: id,
			TaskRunId: "tr-1", TaskId: "t1", Attempt: 1, Level: l.level, Message: l.msg, Time: timestamppb.Now(),
		}))
	}
	recs = append(recs, x.event(ex, id, &kitev1.ExecutionEvent{Type: kitev1.EventType_EVENT_TYPE_STATE, State: kitev1.State_STATE_SUCCESS}))
	x.transact(ctx, id, recs...)
}

// event numbers an event of ex and makes its record.
func (x *standIn) event(ex *standInExecution, id string, ev *kitev1.ExecutionEvent) *kgo.Record {
	ex.seq++
	ev.Seq, ev.ExecutionId, ev.Time = ex.seq, id, timestamppb.Now()
	return x.record(streams.TopicExecutionEvents, id, ev)
}

func (x *standIn) record(topic, key string, m proto.Message) *kgo.Record {
	v, err := proto.Marshal(m)
	if err != nil {
		x.tb.Errorf("stand-in executor: %v", err)
	}
	return &kgo.Record{Topic: x.topics.Topic(topic), Key: []byte(key), Value: v}
}

// transact writes recs in one committed transaction.
func (x *standIn) transact(ctx context.Context, id string, recs ...*kgo.Record) {
	if err := x.producer.BeginTransaction(); err != nil {
		x.tb.Errorf("stand-in executor: begin transaction: %v", err)
		return
	}
	err := x.producer.ProduceSync(ctx, recs...).FirstErr()
	commit := kgo.TryCommit
	if err != nil {
		commit = kgo.TryAbort
	}
	if endErr := x.producer.EndTransaction(ctx, commit); err == nil {
		err = endErr
	}
	if err != nil && ctx.Err() == nil {
		x.tb.Errorf("stand-in executor: writing the records of execution %s: %v", id, err)
	}
}

// waitCommand returns the next command the stand-in read for which match is
// true, failing the test after 30s.
func (x *standIn) waitCommand(tb testing.TB, match func(*eventv1.Command) bool) *eventv1.Command {
	tb.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case cmd := <-x.commands:
			if match(cmd) {
				return cmd
			}
		case <-timeout:
			tb.Fatal("the stand-in executor did not read the command within 30s")
			return nil
		}
	}
}

// flowMap is a FlowSource of parsed flows, one revision each.
type flowMap map[string]*flow.Flow

var _ FlowSource = flowMap(nil)

func (m flowMap) Flow(namespace, id string, revision int) (*flow.Flow, error) {
	f, ok := m[namespace+"/"+id]
	if !ok || (revision != 0 && revision != f.Revision) {
		return nil, fmt.Errorf("flow %s.%s revision %d: %w", namespace, id, revision, flow.ErrNotFound)
	}
	return f, nil
}

func (m flowMap) Latest() []*flow.Flow {
	var out []*flow.Flow
	for _, f := range m {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace+"/"+out[i].ID < out[j].Namespace+"/"+out[j].ID })
	return out
}

// The flows of the tests.
const (
	testNamespace = "test.api"
	flowHello     = `id: hello
namespace: test.api
revision: 1
inputs:
  - id: name
    type: STRING
  - id: count
    type: INT
    required: false
tasks:
  - id: t1
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.name }}"
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: approved
        type: BOOLEAN
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: s3cret
    inputs:
      name: "{{ trigger.body.who }}"
  - id: off
    type: io.kestra.plugin.core.trigger.Webhook
    key: disabled-key
    disabled: true
`
	flowOff = `id: off
namespace: test.api
revision: 1
disabled: true
tasks:
  - id: t1
    type: io.kestra.plugin.core.log.Log
    message: never
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: s3cret
`
)

func testFlows(tb testing.TB) flowMap {
	tb.Helper()
	p := &flow.Parser{Registry: tasks.Registry()}
	m := flowMap{}
	for _, src := range []string{flowHello, flowOff} {
		f, err := p.Parse("test.yaml", []byte(src))
		if err != nil {
			tb.Fatalf("parsing a test flow: %v", err)
		}
		m[f.Namespace+"/"+f.ID] = f
	}
	return m
}

// harness is a running API server and clients of it.
type harness struct {
	srv        *Server
	conn       *grpc.ClientConn
	executions kitev1.ExecutionServiceClient
	logs       kitev1.LogServiceClient
	httpURL    string
}

// testConfig is the configuration of the tests' servers: loopback ports of
// their own, short waits.
func testConfig() Config {
	cfg := Defaults()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.WatchNotFoundWait = 500 * time.Millisecond
	cfg.TailGrace = 200 * time.Millisecond
	cfg.KafkaTimeout = 5 * time.Second
	return cfg
}

// startServer runs an API server on e until the test ends.
func startServer(tb testing.TB, e *env, cfg Config, deps Deps) *harness {
	tb.Helper()
	if deps.Flows == nil {
		deps.Flows = testFlows(tb)
	}
	deps.Kafka = e.kafka
	srv, err := New(cfg, deps, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Run(ctx); err != nil {
			tb.Errorf("Run() = %v", err)
		}
	})
	tb.Cleanup(func() { cancel(); wg.Wait() })

	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := conn.Close(); err != nil && !errors.Is(err, context.Canceled) {
			tb.Errorf("closing the gRPC connection: %v", err)
		}
	})
	return &harness{
		srv: srv, conn: conn,
		executions: kitev1.NewExecutionServiceClient(conn),
		logs:       kitev1.NewLogServiceClient(conn),
		httpURL:    "http://" + srv.HTTPAddr(),
	}
}
