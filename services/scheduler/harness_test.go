package scheduler

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/integration/clustertest"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 30 * time.Second

// newKafka returns the Kafka config of a test's own topics, created by
// streams.EnsureTopics: on kfake in-process, or on the real Kafka that make
// test starts (integration/kafkatest), under a prefix of the test's own.
type newKafka func(tb testing.TB) streams.Config

func fakeKafka(tb testing.TB) streams.Config { return clustertest.Fake(tb) }

func realKafka(tb testing.TB) streams.Config { return clustertest.Real(tb) }

// eachBroker runs a test on kfake and on the real broker.
func eachBroker(t *testing.T, fn func(t *testing.T, kafka newKafka)) {
	t.Run("kfake", func(t *testing.T) { fn(t, fakeKafka) })
	t.Run("kafka", func(t *testing.T) { fn(t, realKafka) })
}

func newClient(tb testing.TB, cfg streams.Config, extra ...kgo.Opt) *kgo.Client {
	tb.Helper()
	opts, err := cfg.ClientOpts(testLogger(tb), extra...)
	if err != nil {
		tb.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

func testLogger(tb testing.TB) *zap.Logger {
	if os.Getenv("KITE_DEBUG") != "" {
		return zaptest.NewLogger(tb)
	}
	return zap.NewNop()
}

// clock is a clock that moves only when the test says.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// t0 is when the tests start: half a second past a whole second, so that
// the ticks of a per-second cron are t0's next whole seconds.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 5e8, time.UTC)

// sec returns the whole second n seconds after t0's.
func sec(n int) time.Time { return t0.Truncate(time.Second).Add(time.Duration(n) * time.Second) }

// harness runs schedulers and a TriggerService on a test's topics, with a
// fake clock.
type harness struct {
	tb       testing.TB
	kafka    streams.Config
	clock    *clock
	cfg      Config
	svc      *TriggerService
	producer *kgo.Client
}

func newHarness(tb testing.TB, kafka streams.Config, configure ...func(*Config)) *harness {
	tb.Helper()
	h := &harness{tb: tb, kafka: kafka, clock: &clock{t: t0}}
	h.cfg = Defaults()
	h.cfg.InstanceID = "a"
	h.cfg.TimerInterval = 10 * time.Millisecond
	h.cfg.Now = h.clock.Now
	for _, c := range configure {
		c(&h.cfg)
	}
	svc, err := NewTriggerService(h.cfg, kafka, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	h.svc = svc
	h.run(svc.Run)
	h.producer = newClient(tb, kafka)
	return h
}

// run runs fn until the test ends and returns its stop: cancel, then wait.
func (h *harness) run(fn func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil {
			h.tb.Errorf("run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	h.tb.Cleanup(stop)
	return stop
}

// start starts a scheduler instance.
func (h *harness) start(instance string) (stop func()) {
	h.tb.Helper()
	cfg := h.cfg
	cfg.InstanceID = instance
	s, err := New(cfg, h.kafka, testLogger(h.tb))
	if err != nil {
		h.tb.Fatal(err)
	}
	return h.run(s.Run)
}

// applyFlow writes a flow revision to the flows topic, as the flow service does.
func (h *harness) applyFlow(f *kitev1.Flow) {
	h.tb.Helper()
	v, err := proto.Marshal(f)
	if err != nil {
		h.tb.Fatal(err)
	}
	rec := &kgo.Record{Topic: h.kafka.Topic(streams.TopicFlows), Key: []byte(streams.FlowKey(f.GetNamespace(), f.GetId())), Value: v}
	if err := h.producer.ProduceSync(h.tb.Context(), rec).FirstErr(); err != nil {
		h.tb.Fatal(err)
	}
}

// trigger returns a trigger as List shows it, nil when it does not exist.
func (h *harness) trigger(namespace, flowID, triggerID string) *kitev1.Trigger {
	h.tb.Helper()
	resp, err := h.svc.List(h.tb.Context(), &kitev1.TriggerServiceListRequest{NamespacePrefix: namespace, FlowId: flowID})
	if err != nil {
		h.tb.Fatal(err)
	}
	for _, t := range resp.GetTriggers() {
		if t.GetTriggerId() == triggerID {
			return t
		}
	}
	return nil
}

// waitTrigger waits until a trigger's state, as List shows it, meets cond.
func (h *harness) waitTrigger(namespace, flowID, triggerID, what string, cond func(*kitev1.Trigger) bool) *kitev1.Trigger {
	h.tb.Helper()
	var t *kitev1.Trigger
	waitFor(h.tb, what, func() bool {
		t = h.trigger(namespace, flowID, triggerID)
		return cond(t)
	})
	return t
}

// waitNext waits until a trigger's next tick is at.
func (h *harness) waitNext(namespace, flowID, triggerID string, at time.Time) {
	h.tb.Helper()
	h.waitTrigger(namespace, flowID, triggerID, "next tick at "+at.Format(time.RFC3339), func(t *kitev1.Trigger) bool {
		return t != nil && t.GetNextTime() != nil && t.GetNextTime().AsTime().Equal(at)
	})
}

// commands returns every create command committed to the commands topic.
func (h *harness) commands() []*eventv1.Command {
	h.tb.Helper()
	topic := h.kafka.Topic(streams.TopicCommands)
	cl := newClient(h.tb, h.kafka, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	defer cl.Close()
	ctx, cancel := context.WithTimeout(h.tb.Context(), waitTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	var ends kadm.ListedOffsets
	waitFor(h.tb, "the end offsets of "+topic, func() bool {
		// A topic just created may not have its partition leaders yet.
		var err error
		ends, err = adm.ListCommittedOffsets(ctx, topic)
		return err == nil && ends.Error() == nil
	})
	next := map[int32]int64{}
	caughtUp := func() bool {
		done := true
		ends.Each(func(o kadm.ListedOffset) { done = done && next[o.Partition] >= o.Offset })
		return done
	}
	var out []*eventv1.Command
	for !caughtUp() {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			h.tb.Fatalf("reading %s: %v", topic, err)
		}
		if err := fetches.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			h.tb.Fatalf("reading %s: %v", topic, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			c := &eventv1.Command{}
			if err := proto.Unmarshal(r.Value, c); err != nil {
				h.tb.Fatalf("command at %s[%d]@%d: %v", topic, r.Partition, r.Offset, err)
			}
			if string(r.Key) != c.GetExecutionId() {
				h.tb.Errorf("command key %q, execution id %q", r.Key, c.GetExecutionId())
			}
			out = append(out, c)
		})
	}
	return out
}

// waitCommands waits until the committed create commands meet cond.
func (h *harness) waitCommands(what string, cond func([]*eventv1.Command) bool) []*eventv1.Command {
	h.tb.Helper()
	var cmds []*eventv1.Command
	waitFor(h.tb, what, func() bool {
		cmds = h.commands()
		return cond(cmds)
	})
	return cmds
}

// tickDates returns the trigger.date of the commands of one flow, in order,
// those of backfills (label backfill) apart.
func tickDates(cmds []*eventv1.Command, flowID string) (dates, backfilled []time.Time) {
	for _, c := range cmds {
		cr := c.GetCreate()
		if cr.GetFlowId() != flowID {
			continue
		}
		d, err := time.Parse(time.RFC3339, cr.GetTrigger().GetFields()["date"].GetStringValue())
		if err != nil {
			continue
		}
		if slices.ContainsFunc(cr.GetLabels(), func(l *kitev1.Label) bool { return l.GetKey() == "backfill" }) {
			backfilled = append(backfilled, d)
		} else {
			dates = append(dates, d)
		}
	}
	return dates, backfilled
}

// hasDate returns a condition: the flow has a command of the tick at.
func hasDate(flowID string, at time.Time) func([]*eventv1.Command) bool {
	return func(cmds []*eventv1.Command) bool {
		dates, _ := tickDates(cmds, flowID)
		return slices.ContainsFunc(dates, at.Equal)
	}
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-tb.Context().Done():
			tb.Fatalf("test ended while waiting for %s", what)
		}
	}
}

// advance moves the clock by n seconds, one at a time, waiting after each
// for the command of the flow's tick at that second.
func (h *harness) advance(flowID string, n int) {
	h.tb.Helper()
	for range n {
		h.clock.Advance(time.Second)
		at := h.clock.Now().Truncate(time.Second)
		h.waitCommands("the tick of "+at.Format(time.RFC3339), hasDate(flowID, at))
	}
}

// checkOnce fails unless the flow's regular ticks are exactly want, each
// once, and its backfilled ticks exactly backfill, each once.
func checkOnce(tb testing.TB, cmds []*eventv1.Command, flowID string, want, backfill []time.Time) {
	tb.Helper()
	dates, backfilled := tickDates(cmds, flowID)
	for _, c := range []struct {
		what      string
		got, want []time.Time
	}{{"ticks", dates, want}, {"backfilled ticks", backfilled, backfill}} {
		slices.SortFunc(c.got, time.Time.Compare)
		if !slices.EqualFunc(c.got, c.want, time.Time.Equal) {
			tb.Errorf("flow %s: %s %v, want %v", flowID, c.what, fmtTimes(c.got), fmtTimes(c.want))
		}
	}
	ids := map[string]int{}
	for _, c := range cmds {
		ids[c.GetExecutionId()]++
	}
	for id, n := range ids {
		if n > 1 {
			tb.Errorf("execution %s created %d times", id, n)
		}
	}
}

func fmtTimes(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Format("15:04:05")
	}
	return out
}

// secs returns the whole seconds from..to after t0's, inclusive.
func secs(from, to int) []time.Time {
	var out []time.Time
	for n := from; n <= to; n++ {
		out = append(out, sec(n))
	}
	return out
}
