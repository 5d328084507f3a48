package streams

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kiteflow/kite/integration/kafkatest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

const nParts = 3

// env is a broker and the topics of one test: kfake in-process, or the real
// Kafka that make test starts (integration/kafkatest).
type env struct {
	Brokers                 []string
	In, Out, Changelog, DLQ string
	Group                   string
}

// fakeEnv starts a kfake cluster with the test's topics.
func fakeEnv(tb testing.TB) *env { return fakeEnvWith(tb, nParts) }

// fakeEnvWith starts a kfake cluster with the test's topics, and extra
// ones, of parts partitions.
func fakeEnvWith(tb testing.TB, parts int32, extra ...string) *env {
	tb.Helper()
	e := &env{In: "in", Out: "out", Changelog: "app-changelog", DLQ: "dlq", Group: "counter"}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, append([]string{e.In, e.Out, e.Changelog, e.DLQ}, extra...)...))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	e.Brokers = c.ListenAddrs()
	return e
}

// realEnv creates the test's topics on the real broker.
func realEnv(tb testing.TB) *env { return realEnvWith(tb, nParts) }

// realEnvWith creates the test's topics, of parts partitions, on the real
// broker.
func realEnvWith(tb testing.TB, parts int32) *env {
	tb.Helper()
	b := kafkatest.Brokers(tb)
	in := kafkatest.NewTopic(tb, b, parts)
	return &env{Brokers: b, In: in, Out: kafkatest.NewTopic(tb, b, parts), Changelog: kafkatest.NewTopic(tb, b, parts),
		DLQ: kafkatest.NewTopic(tb, b, parts), Group: in + "-group"}
}

// eachBroker runs a test on kfake and on the real broker.
func eachBroker(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("kfake", func(t *testing.T) { fn(t, fakeEnv(t)) })
	t.Run("kafka", func(t *testing.T) { fn(t, realEnv(t)) })
}

// counter counts the records of each key, writing key=count@offset to its
// output topic; a record whose value is "poison" fails; a record
// "timer:<ms>" sets a timer that outputs "fired:<key>".
type counter struct{ out string }

func (c counter) Process(pc *PartitionContext, rec *kgo.Record) error {
	switch v := string(rec.Value); {
	case v == "poison":
		return errors.New("poison record")
	case len(v) > 6 && v[:6] == "timer:":
		ms, _ := strconv.Atoi(v[6:])
		return pc.SetTimer(rec.Key, pc.Now.Add(time.Duration(ms)*time.Millisecond))
	}
	n := 0
	if v, ok, err := pc.Get(rec.Key); err != nil {
		return err
	} else if ok {
		n, _ = strconv.Atoi(string(v))
	}
	n++
	pc.Put(rec.Key, []byte(strconv.Itoa(n)))
	pc.Produce(&kgo.Record{Topic: c.out, Key: rec.Key, Value: []byte(fmt.Sprintf("%s=%d@%d", rec.Key, n, rec.Offset))})
	return nil
}

func (c counter) Timer(pc *PartitionContext, key []byte, _ time.Time) error {
	pc.Produce(&kgo.Record{Topic: c.out, Key: key, Value: []byte("fired:" + string(key))})
	return nil
}

func (e *env) appConfig(instance string) AppConfig {
	return AppConfig{Group: e.Group, Inputs: []string{e.In}, Changelog: e.Changelog, DeadLetter: e.DLQ,
		InstanceID: instance, TimerInterval: 20 * time.Millisecond}
}

func startApp(ctx context.Context, tb testing.TB, e *env, instance string) (stop func()) {
	tb.Helper()
	app, err := NewApp(e.appConfig(instance), counter{out: e.Out}, testLogger(tb), clientOpts(e.Brokers))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := app.Run(ctx); err != nil {
			tb.Errorf("app %s: %v", instance, err)
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func testLogger(tb testing.TB) *zap.Logger {
	if os.Getenv("KITE_DEBUG") != "" {
		return zaptest.NewLogger(tb)
	}
	return nil
}

func clientOpts(brokers []string) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if os.Getenv("KITE_DEBUG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)))
	}
	return opts
}

func produce(tb testing.TB, e *env, keys []string, values []string) {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...), kgo.MaxBufferedRecords(1_000_000))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i, k := range keys {
		rs = append(rs, &kgo.Record{Topic: e.In, Key: []byte(k), Value: []byte(values[i])})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		tb.Fatal(err)
	}
}

// readAll reads a topic, read committed, until want records arrived or the
// deadline passed.
func readAll(tb testing.TB, e *env, topic string, want int, deadline time.Duration) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func TestCountsExactlyOnceAcrossRestarts(t *testing.T) { eachBroker(t, testCountsAcrossRestarts) }

func testCountsAcrossRestarts(t *testing.T, e *env) {
	const n = 600
	keys, values := make([]string, n), make([]string, n)
	for i := range keys {
		keys[i], values[i] = "k"+strconv.Itoa(i%7), "x"
	}
	stop := startApp(t.Context(), t, e, "a")
	produce(t, e, keys[:n/3], values[:n/3])
	readAll(t, e, e.Out, n/3, 20*time.Second)
	stop() // a stop between batches; the next instance restores from the changelog

	produce(t, e, keys[n/3:], values[n/3:])
	stop = startApp(t.Context(), t, e, "a")
	out := readAll(t, e, e.Out, n, 30*time.Second)
	stop()

	if len(out) != n {
		t.Fatalf("got %d outputs, want %d", len(out), n)
	}
	seen := map[string]bool{}
	last := map[string]int{}
	for _, r := range out {
		if seen[string(r.Value)] {
			t.Errorf("duplicate output %s", r.Value)
		}
		seen[string(r.Value)] = true
		var k string
		var c, off int
		if _, err := fmt.Sscanf(string(r.Value), "%2s=%d@%d", &k, &c, &off); err == nil && c > last[k] {
			last[k] = c
		}
	}
	for i := range 7 {
		k := "k" + strconv.Itoa(i)
		want := 0
		for _, kk := range keys {
			if kk == k {
				want++
			}
		}
		if last[k] != want {
			t.Errorf("count of %s = %d, want %d", k, last[k], want)
		}
	}
}

func TestPoisonRecordGoesToDeadLetter(t *testing.T) { eachBroker(t, testPoison) }

func testPoison(t *testing.T, e *env) {
	stop := startApp(t.Context(), t, e, "a")
	defer stop()
	// One key, so one partition: the good records after the poison one
	// must still be processed.
	produce(t, e, []string{"p", "p", "p"}, []string{"x", "poison", "x"})
	out := readAll(t, e, e.Out, 2, 20*time.Second)
	dlq := readAll(t, e, e.DLQ, 1, 20*time.Second)
	if len(out) != 2 || string(out[1].Value) != "p=2@2" {
		t.Errorf("outputs: %v", values(out))
	}
	if len(dlq) != 1 || string(dlq[0].Value) != "poison" || header(dlq[0], HeaderError) != "poison record" || header(dlq[0], HeaderOffset) != "1" {
		t.Fatalf("dead letters: %v", values(dlq))
	}
	if got := testutil.ToFloat64(deadLettersTotal.WithLabelValues(e.Group)); got < 1 {
		t.Errorf("kite_streams_dead_letters_total = %v", got)
	}
	if got := testutil.ToFloat64(lagRecords.WithLabelValues(e.Group, e.In, strconv.Itoa(int(out[0].Partition)))); got != 0 {
		t.Errorf("kite_streams_consumer_lag_records = %v after everything was read", got)
	}
	if got := testutil.ToFloat64(recordsTotal.WithLabelValues(e.Group)); got < 2 {
		t.Errorf("kite_streams_records_processed_total = %v", got)
	}
}

func TestTimerFiresOnceAfterRestart(t *testing.T) { eachBroker(t, testTimer) }

func testTimer(t *testing.T, e *env) {
	stop := startApp(t.Context(), t, e, "a")
	produce(t, e, []string{"t1"}, []string{"timer:1500"})
	// The timer is set once the record is processed: its changelog entry
	// is committed.
	if got := readAll(t, e, e.Changelog, 2, 20*time.Second); len(got) < 2 {
		t.Fatalf("timer not recorded: %v", values(got))
	}
	stop()
	stop = startApp(t.Context(), t, e, "b")
	defer stop()
	out := readAll(t, e, e.Out, 1, 20*time.Second)
	if len(out) != 1 || string(out[0].Value) != "fired:t1" {
		t.Fatalf("outputs: %v", values(out))
	}
	// It does not fire again.
	if more := readAll(t, e, e.Out, 2, 2*time.Second); len(more) != 1 {
		t.Errorf("the timer fired %d times", len(more))
	}
}

func values(rs []*kgo.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestRebalanceNoLossNoDuplicate runs two instances of one group, the
// second joining mid-stream (a rebalance moves partitions with their state)
// and the first leaving later: every input gives exactly one output and the
// counts are exact.
func TestRebalanceNoLossNoDuplicate(t *testing.T) { eachBroker(t, testRebalance) }

func testRebalance(t *testing.T, e *env) {
	const n = 9000
	keys, values := make([]string, n), make([]string, n)
	for i := range keys {
		keys[i], values[i] = "k"+strconv.Itoa(i%11), "x"
	}
	stopA := startApp(t.Context(), t, e, "a")
	produce(t, e, keys[:n/3], values[:n/3])
	readAll(t, e, e.Out, n/3, 20*time.Second)
	stopB := startApp(t.Context(), t, e, "b")
	produce(t, e, keys[n/3:2*n/3], values[n/3:2*n/3])
	readAll(t, e, e.Out, 2*n/3, 20*time.Second)
	stopA()
	produce(t, e, keys[2*n/3:], values[2*n/3:])
	out := readAll(t, e, e.Out, n, 30*time.Second)
	stopB()
	checkCounts(t, out, keys)
}

// emptyValues writes an empty value for every key it sees; after a restart
// the key must still be there, empty (not deleted).
type emptyValues struct{ out string }

func (p emptyValues) Process(pc *PartitionContext, rec *kgo.Record) error {
	v, ok, err := pc.Get(rec.Key)
	if err != nil {
		return err
	}
	pc.Produce(&kgo.Record{Topic: p.out, Key: rec.Key, Value: []byte(fmt.Sprintf("present=%v len=%d", ok, len(v)))})
	pc.Put(rec.Key, []byte{})
	return nil
}

func (emptyValues) Timer(*PartitionContext, []byte, time.Time) error { return nil }

func TestEmptyValueSurvivesRestore(t *testing.T) {
	eachBroker(t, func(t *testing.T, e *env) {
		run := func(instance string) func() {
			app, err := NewApp(e.appConfig(instance), emptyValues{out: e.Out}, nil, clientOpts(e.Brokers))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); _ = app.Run(ctx) }()
			return func() { cancel(); <-done }
		}
		stop := run("a")
		produce(t, e, []string{"k"}, []string{"x"})
		readAll(t, e, e.Out, 1, 20*time.Second)
		stop()
		stop = run("b")
		defer stop()
		produce(t, e, []string{"k"}, []string{"x"})
		out := readAll(t, e, e.Out, 2, 20*time.Second)
		if len(out) != 2 || string(out[0].Value) != "present=false len=0" || string(out[1].Value) != "present=true len=0" {
			t.Fatalf("outputs: %v", values(out))
		}
	})
}
