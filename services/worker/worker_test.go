package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/integration/clustertest"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// waitTimeout bounds every wait for a record. It is well under the 30s of
// the sleep task, so an attempt seen KILLED within it was killed.
const waitTimeout = 20 * time.Second

// testFlow is the flow every job of these tests comes from.
const testFlow = `
id: hello
namespace: kite.test
tasks:
  - id: say
    type: log
    message: "hello {{ inputs.name }}"
  - id: give
    type: return
    format: "{{ inputs.name }}: {{ errorLogs() | length }} error(s), first in {{ errorLogs()[0].taskId }}: {{ errorLogs()[0].message }}"
  - id: nap
    type: sleep
    duration: PT30S
  - id: doze
    type: sleep
    duration: PT0.5S
`

// env is a broker with Kite's topics: kfake in-process, or the real Kafka
// that make test starts (integration/kafkatest), with topics of the test's own.
type env struct {
	kafka streams.Config
}

// eachBroker runs a test on kfake and on the real broker.
func eachBroker(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("kfake", func(t *testing.T) { fn(t, fakeEnv(t)) })
	t.Run("kafka", func(t *testing.T) { fn(t, realEnv(t)) })
}

func fakeEnv(tb testing.TB) *env { return &env{kafka: clustertest.Fake(tb)} }

// realEnv gives the test topics, group and transactional ids of its own on
// the shared broker, and deletes the topics afterwards.
func realEnv(tb testing.TB) *env { return &env{kafka: clustertest.Real(tb)} }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func testLogger(tb testing.TB) *zap.Logger {
	level := zap.WarnLevel
	if os.Getenv("KITE_DEBUG") != "" {
		level = zap.DebugLevel
	}
	return zaptest.NewLogger(tb, zaptest.Level(level))
}

// testConfig is a worker config with short intervals.
func testConfig(id string) Config {
	c := Defaults()
	c.ID = id
	c.HeartbeatInterval = 50 * time.Millisecond
	c.ShutdownGrace = 200 * time.Millisecond
	return c
}

// startWorker runs a worker until the returned stop is called (or the test
// ends); stop returns once Run has.
func startWorker(t *testing.T, e *env, cfg Config) (stop func()) {
	t.Helper()
	w, err := New(cfg, e.kafka, Files{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("worker %s: Run: %v", cfg.ID, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// jobs makes the jobs of one execution of testFlow.
type jobs struct {
	execID string
	n      int
}

func newJobs() *jobs { return &jobs{execID: "exec-" + randomHex(6)} }

// job is attempt 1 of a new task run of taskID.
func (j *jobs) job(tb testing.TB, taskID string) *eventv1.WorkerJob {
	tb.Helper()
	j.n++
	vars, err := structpb.NewStruct(map[string]any{"inputs": map[string]any{"name": "kite"}})
	if err != nil {
		tb.Fatal(err)
	}
	return &eventv1.WorkerJob{
		ExecutionId: j.execID, TaskRunId: fmt.Sprintf("%s-tr%d-%s", j.execID, j.n, taskID), Attempt: 1,
		Time: timestamppb.Now(), Namespace: "kite.test", FlowId: "hello", FlowRevision: 1,
		FlowSource: testFlow, TaskId: taskID, Vars: vars,
	}
}

// produce writes records to partition 0 of their topics, in order, and
// returns them with their offsets.
func (e *env) produce(tb testing.TB, recs ...*kgo.Record) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(tb.Context(), recs...).FirstErr(); err != nil {
		tb.Fatalf("producing test records: %v", err)
	}
	return recs
}

func (e *env) jobRecord(tb testing.TB, job *eventv1.WorkerJob) *kgo.Record {
	tb.Helper()
	return &kgo.Record{Topic: e.kafka.Topic(streams.TopicWorkerJobs), Key: []byte(job.GetTaskRunId()), Value: mustMarshal(tb, job)}
}

func (e *env) produceJobs(tb testing.TB, js ...*eventv1.WorkerJob) {
	tb.Helper()
	var recs []*kgo.Record
	for _, j := range js {
		recs = append(recs, e.jobRecord(tb, j))
	}
	e.produce(tb, recs...)
}

func (e *env) produceKills(tb testing.TB, js ...*eventv1.WorkerJob) {
	tb.Helper()
	var recs []*kgo.Record
	for _, j := range js {
		k := &eventv1.WorkerKill{ExecutionId: j.GetExecutionId(), TaskRunId: j.GetTaskRunId(), Attempt: j.GetAttempt(), Time: timestamppb.Now()}
		recs = append(recs, &kgo.Record{Topic: e.kafka.Topic(streams.TopicWorkerKills), Key: []byte(j.GetTaskRunId()), Value: mustMarshal(tb, k)})
	}
	e.produce(tb, recs...)
}

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// tail reads a topic, read committed, from its start, for the whole test.
type tail struct {
	topic string
	mu    sync.Mutex
	recs  []*kgo.Record
	grew  chan struct{} // closed, and replaced, when records arrive
}

func (e *env) tail(tb testing.TB, base string) *tail {
	tb.Helper()
	tl := &tail{topic: e.kafka.Topic(base), grew: make(chan struct{})}
	// A short fetch wait: a read-committed fetch is not always answered
	// when a transaction commits, only when it times out.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...), kgo.ConsumeTopics(tl.topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			var got []*kgo.Record
			fetches.EachRecord(func(r *kgo.Record) { got = append(got, r) })
			if len(got) > 0 {
				tl.mu.Lock()
				tl.recs = append(tl.recs, got...)
				close(tl.grew)
				tl.grew = make(chan struct{})
				tl.mu.Unlock()
			}
		}
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return tl
}

// waitFor waits until ok holds for the records read so far, and returns them.
func (tl *tail) waitFor(tb testing.TB, what string, ok func([]*kgo.Record) bool) []*kgo.Record {
	tb.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		tl.mu.Lock()
		recs, grew := slices.Clone(tl.recs), tl.grew
		tl.mu.Unlock()
		if ok(recs) {
			return recs
		}
		select {
		case <-grew:
		case <-deadline.C:
			tb.Fatalf("no %s on %s after %s; read %d records", what, tl.topic, waitTimeout, len(recs))
		}
	}
}

// results decodes worker-results records, those of execID only, in order.
func results(tb testing.TB, recs []*kgo.Record, execID string) []*eventv1.WorkerResult {
	tb.Helper()
	var out []*eventv1.WorkerResult
	for _, r := range recs {
		res := &eventv1.WorkerResult{}
		if err := proto.Unmarshal(r.Value, res); err != nil {
			tb.Fatalf("worker-results record at offset %d: %v", r.Offset, err)
		}
		if res.GetExecutionId() != execID {
			continue
		}
		if string(r.Key) != execID {
			tb.Errorf("result of %s keyed %q, want the execution id", res.GetTaskRunId(), r.Key)
		}
		out = append(out, res)
	}
	return out
}

func of(rs []*eventv1.WorkerResult, job *eventv1.WorkerJob) []*eventv1.WorkerResult {
	var out []*eventv1.WorkerResult
	for _, r := range rs {
		if r.GetTaskRunId() == job.GetTaskRunId() && r.GetAttempt() == job.GetAttempt() {
			out = append(out, r)
		}
	}
	return out
}

func finishedOf(rs []*eventv1.WorkerResult, job *eventv1.WorkerJob) *eventv1.TaskFinished {
	for _, r := range of(rs, job) {
		if f := r.GetFinished(); f != nil {
			return f
		}
	}
	return nil
}

// waitFinished waits for the finished results of the jobs and returns every
// result of their execution read so far.
func waitFinished(tb testing.TB, tl *tail, js ...*eventv1.WorkerJob) []*eventv1.WorkerResult {
	tb.Helper()
	var rs []*eventv1.WorkerResult
	tl.waitFor(tb, fmt.Sprintf("finished result of %d jobs", len(js)), func(recs []*kgo.Record) bool {
		rs = results(tb, recs, js[0].GetExecutionId())
		for _, j := range js {
			if finishedOf(rs, j) == nil {
				return false
			}
		}
		return true
	})
	return rs
}

// kinds describes results as "<task run>:started" / "<task run>:<STATE>".
func kinds(rs []*eventv1.WorkerResult, names map[string]string) []string {
	var out []string
	for _, r := range rs {
		k := "started"
		if f := r.GetFinished(); f != nil {
			k = strings.TrimPrefix(f.GetState().String(), "STATE_")
		}
		out = append(out, names[r.GetTaskRunId()]+":"+k)
	}
	return out
}

func TestRunsJobs(t *testing.T) { eachBroker(t, testRunsJobs) }

// A log and a return job run; their results, outputs and log line are on
// the topics; their offsets are committed, so a second worker of the group
// does not run them again.
func testRunsJobs(t *testing.T, e *env) {
	res, logs := e.tail(t, streams.TopicWorkerResults), e.tail(t, streams.TopicLogs)
	started0, success0 := testutil.ToFloat64(jobsStarted), testutil.ToFloat64(jobsFinished.WithLabelValues("SUCCESS"))
	js := newJobs()
	say, give := js.job(t, "say"), js.job(t, "give")
	give.ErrorLogs = []*kitev1.LogEntry{{
		ExecutionId: js.execID, TaskRunId: "tr0", TaskId: "earlier", Level: kitev1.LogLevel_LOG_LEVEL_ERROR,
		Message: "boom", Time: timestamppb.Now(),
	}}
	e.produceJobs(t, say, give)

	stop := startWorker(t, e, testConfig("w1"))
	rs := waitFinished(t, res, say, give)
	for _, j := range []*eventv1.WorkerJob{say, give} {
		got := of(rs, j)
		if len(got) != 2 || got[0].GetStarted() == nil || got[1].GetFinished() == nil {
			t.Fatalf("%s: results %v, want started then finished", j.GetTaskId(), got)
		}
		for _, r := range got {
			if r.GetWorkerId() != "w1" || r.GetTime() == nil {
				t.Errorf("%s: result from worker %q at %v, want w1 and a time", j.GetTaskId(), r.GetWorkerId(), r.GetTime())
			}
		}
		if f := got[1].GetFinished(); f.GetState() != kitev1.State_STATE_SUCCESS || f.GetError() != "" {
			t.Errorf("%s: finished %v %q, want SUCCESS", j.GetTaskId(), f.GetState(), f.GetError())
		}
	}
	wantValue := "kite: 1 error(s), first in earlier: boom"
	if v := finishedOf(rs, give).GetOutputs().GetFields()["value"].GetStringValue(); v != wantValue {
		t.Errorf("return output value = %q, want %q", v, wantValue)
	}

	var line *kitev1.LogEntry
	logs.waitFor(t, "log line of the log task", func(recs []*kgo.Record) bool {
		for _, r := range recs {
			l := &kitev1.LogEntry{}
			if err := proto.Unmarshal(r.Value, l); err == nil && l.GetTaskRunId() == say.GetTaskRunId() {
				if string(r.Key) != js.execID {
					t.Errorf("log line keyed %q, want the execution id", r.Key)
				}
				line = l
				return true
			}
		}
		return false
	})
	want := &kitev1.LogEntry{Namespace: "kite.test", FlowId: "hello", ExecutionId: js.execID, TaskRunId: say.GetTaskRunId(),
		TaskId: "say", Attempt: 1, Level: kitev1.LogLevel_LOG_LEVEL_INFO, Message: "hello kite", Time: line.GetTime()}
	if !proto.Equal(line, want) || line.GetTime() == nil {
		t.Errorf("log line = %v, want %v", line, want)
	}

	stop()
	if d := testutil.ToFloat64(jobsStarted) - started0; d != 2 {
		t.Errorf("jobs started metric grew by %v, want 2", d)
	}
	if d := testutil.ToFloat64(jobsFinished.WithLabelValues("SUCCESS")) - success0; d != 2 {
		t.Errorf("jobs finished SUCCESS metric grew by %v, want 2", d)
	}

	// A second worker of the group starts after the committed offsets: the
	// marker job behind the first two (same partition) runs, they do not.
	marker := js.job(t, "say")
	e.produceJobs(t, marker)
	startWorker(t, e, testConfig("w2"))
	rs = waitFinished(t, res, marker)
	names := map[string]string{say.GetTaskRunId(): "say", give.GetTaskRunId(): "give", marker.GetTaskRunId(): "marker"}
	wantKinds := []string{"say:started", "give:started", "say:SUCCESS", "give:SUCCESS", "marker:started", "marker:SUCCESS"}
	got := kinds(rs, names)
	slices.Sort(got[:4]) // the two attempts ran concurrently
	slices.Sort(wantKinds[:4])
	if !slices.Equal(got, wantKinds) {
		t.Errorf("results = %v, want %v", got, wantKinds)
	}
	if w := of(rs, marker)[0].GetWorkerId(); w != "w2" {
		t.Errorf("marker ran on %q, want w2", w)
	}
}

func TestKillsAndConcurrency(t *testing.T) { eachBroker(t, testKillsAndConcurrency) }

// With one slot, a second job is not acknowledged while the first runs; a
// kill stops a running sleep at once; a job killed while it waits is
// reported KILLED without running.
func testKillsAndConcurrency(t *testing.T, e *env) {
	res := e.tail(t, streams.TopicWorkerResults)
	js := newJobs()
	a, b, c := js.job(t, "nap"), js.job(t, "nap"), js.job(t, "say")
	e.produceJobs(t, a, b, c)
	cfg := testConfig("w1")
	cfg.Concurrency = 1
	startWorker(t, e, cfg)

	res.waitFor(t, "started result of the first job", func(recs []*kgo.Record) bool {
		return len(of(results(t, recs, js.execID), a)) > 0
	})
	// b's kill first, in the same partition: once a is killed, b's kill
	// has been read too.
	e.produceKills(t, b, a)
	rs := waitFinished(t, res, a, b, c)

	names := map[string]string{a.GetTaskRunId(): "a", b.GetTaskRunId(): "b", c.GetTaskRunId(): "c"}
	want := []string{"a:started", "a:KILLED", "b:KILLED", "c:started", "c:SUCCESS"}
	if got := kinds(rs, names); !slices.Equal(got, want) {
		t.Fatalf("results = %v, want %v", got, want)
	}
	if msg := finishedOf(rs, a).GetError(); !strings.Contains(msg, "interrupted") {
		t.Errorf("killed attempt's error = %q, want the interrupted sleep", msg)
	}
	if msg := finishedOf(rs, b).GetError(); msg != "killed before it started" {
		t.Errorf("job killed while waiting: error = %q", msg)
	}
}

func TestDeadLetters(t *testing.T) { eachBroker(t, testDeadLetters) }

// Records that are not jobs go to the dead-letter topic with the reason;
// the job behind them still runs.
func testDeadLetters(t *testing.T, e *env) {
	res, dlq := e.tail(t, streams.TopicWorkerResults), e.tail(t, streams.TopicDeadLetter)
	js := newJobs()
	good := js.job(t, "say")
	jobsTopic := e.kafka.Topic(streams.TopicWorkerJobs)
	bad := e.produce(t,
		&kgo.Record{Topic: jobsTopic, Key: []byte("garbage"), Value: []byte("this is not a worker job")},
		&kgo.Record{Topic: jobsTopic, Key: []byte("incomplete"), Value: mustMarshal(t, &eventv1.WorkerJob{TaskRunId: "tr", Attempt: 1})},
		e.jobRecord(t, good),
	)[:2]
	startWorker(t, e, testConfig("w1"))

	if f := finishedOf(waitFinished(t, res, good), good); f.GetState() != kitev1.State_STATE_SUCCESS {
		t.Errorf("the job after the bad records finished %v %q", f.GetState(), f.GetError())
	}
	recs := dlq.waitFor(t, "two dead letters", func(recs []*kgo.Record) bool { return len(recs) >= 2 })
	if len(recs) != 2 {
		t.Fatalf("%d dead letters, want 2", len(recs))
	}
	// Dead letters keep their original key, so they may be in different
	// partitions: match them by key.
	wantErr := map[string]string{"garbage": "decoding worker job", "incomplete": "worker job without execution_id, task_id"}
	for _, r := range recs {
		var orig *kgo.Record
		for _, b := range bad {
			if string(b.Key) == string(r.Key) {
				orig = b
			}
		}
		if orig == nil || string(r.Value) != string(orig.Value) {
			t.Errorf("dead letter %q: %q is not one of the bad records", r.Key, r.Value)
			continue
		}
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if !strings.Contains(h[streams.HeaderError], wantErr[string(r.Key)]) {
			t.Errorf("dead letter %q: error header %q, want it to say %q", r.Key, h[streams.HeaderError], wantErr[string(r.Key)])
		}
		if h[streams.HeaderTopic] != jobsTopic || h[streams.HeaderOffset] != fmt.Sprint(orig.Offset) {
			t.Errorf("dead letter %q: origin %s@%s, want %s@%d", r.Key, h[streams.HeaderTopic], h[streams.HeaderOffset], jobsTopic, orig.Offset)
		}
	}
}

func TestFailedAttempts(t *testing.T) { eachBroker(t, testFailedAttempts) }

// An attempt whose task cannot be found or that outlives its timeout ends
// FAILED, saying why.
func testFailedAttempts(t *testing.T, e *env) {
	res := e.tail(t, streams.TopicWorkerResults)
	js := newJobs()
	missing := js.job(t, "nope")
	broken := js.job(t, "say")
	broken.FlowRevision, broken.FlowSource = 2, "id: hello\nnamespace: kite.test\ntasks: [\n"
	slow := js.job(t, "nap")
	slow.TimeoutMillis = 100
	noLogs := js.job(t, "give") // errorLogs()[0] of no error logs
	tests := []struct {
		job  *eventv1.WorkerJob
		want string
	}{
		{missing, `task "nope" is not in flow kite.test.hello revision 1`},
		{broken, "flow kite.test.hello revision 2 does not parse"},
		{slow, "task nap timed out after PT0.1S"},
		{noLogs, "format"},
	}
	for _, tt := range tests {
		e.produceJobs(t, tt.job)
	}
	startWorker(t, e, testConfig("w1"))
	rs := waitFinished(t, res, missing, broken, slow, noLogs)
	for _, tt := range tests {
		f := finishedOf(rs, tt.job)
		if f.GetState() != kitev1.State_STATE_FAILED || !strings.Contains(f.GetError(), tt.want) {
			t.Errorf("%s: finished %v %q, want FAILED with %q", tt.job.GetTaskRunId(), f.GetState(), f.GetError(), tt.want)
		}
	}
}

func TestHeartbeatsAndShutdown(t *testing.T) { eachBroker(t, testHeartbeatsAndShutdown) }

// Heartbeats list the running attempts; on shutdown an attempt still running
// after the grace period is handed back (no result), then the last heartbeat
// says stopping.
func testHeartbeatsAndShutdown(t *testing.T, e *env) {
	res, hbs := e.tail(t, streams.TopicWorkerResults), e.tail(t, streams.TopicWorkerHeartbeat)
	js := newJobs()
	nap := js.job(t, "nap")
	e.produceJobs(t, nap)
	cfg := testConfig("w-" + randomHex(3))
	stop := startWorker(t, e, cfg)

	running := nap.GetTaskRunId() + "/1"
	beats := func(recs []*kgo.Record) []*eventv1.Heartbeat {
		var out []*eventv1.Heartbeat
		for _, r := range recs {
			hb := &eventv1.Heartbeat{}
			if err := proto.Unmarshal(r.Value, hb); err != nil {
				t.Fatalf("heartbeat record: %v", err)
			}
			if hb.GetWorkerId() == cfg.ID && string(r.Key) == cfg.ID {
				out = append(out, hb)
			}
		}
		return out
	}
	hbs.waitFor(t, "heartbeat listing the running attempt", func(recs []*kgo.Record) bool {
		for _, hb := range beats(recs) {
			if slices.Contains(hb.GetRunning(), running) && hb.GetIntervalMillis() == 50 && !hb.GetStopping() {
				return true
			}
		}
		return false
	})

	stop()
	recs := hbs.waitFor(t, "stopping heartbeat", func(recs []*kgo.Record) bool {
		all := beats(recs)
		return len(all) > 0 && all[len(all)-1].GetStopping()
	})
	// Handed back, not killed: the attempt has its started result and no
	// finished one (the worker produced everything before its last
	// heartbeat), so the executor runs it again.
	var rs []*eventv1.WorkerResult
	res.waitFor(t, "the started result", func(recs []*kgo.Record) bool {
		rs = results(t, recs, nap.GetExecutionId())
		return len(of(rs, nap)) > 0
	})
	if f := finishedOf(rs, nap); f != nil {
		t.Errorf("attempt running at shutdown finished %v %q, want it handed back without a result", f.GetState(), f.GetError())
	}
	all := beats(recs)
	if last := all[len(all)-1]; len(last.GetRunning()) != 0 {
		t.Errorf("stopping heartbeat lists %v running, want none", last.GetRunning())
	}
	for _, hb := range all[:len(all)-1] {
		if hb.GetStopping() {
			t.Errorf("a heartbeat before the last one says stopping")
		}
	}
}

func TestShutdownLetsAttemptsFinish(t *testing.T) { eachBroker(t, testShutdownLetsAttemptsFinish) }

// An attempt that ends within the grace period reports its own result.
func testShutdownLetsAttemptsFinish(t *testing.T, e *env) {
	res := e.tail(t, streams.TopicWorkerResults)
	js := newJobs()
	doze := js.job(t, "doze")
	e.produceJobs(t, doze)
	cfg := testConfig("w1")
	cfg.ShutdownGrace = 30 * time.Second
	stop := startWorker(t, e, cfg)
	res.waitFor(t, "started result", func(recs []*kgo.Record) bool { return len(of(results(t, recs, js.execID), doze)) > 0 })
	stop()
	if f := finishedOf(waitFinished(t, res, doze), doze); f.GetState() != kitev1.State_STATE_SUCCESS {
		t.Errorf("attempt running at shutdown finished %v %q, want SUCCESS within the grace period", f.GetState(), f.GetError())
	}
}
