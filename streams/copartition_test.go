package streams

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kiteflow/kite/integration/kafkatest"
)

// TestCoPartitionedInputsStayTogether: an app reading two co-partitioned
// topics (as the executor reads commands and worker results) keeps one
// state per partition number, so partition p of both must go to the same
// instance. Four instances join and three leave while records of the same
// keys arrive on both topics: every count is exact, which it cannot be if
// two instances ever held the same partition's state.
func TestCoPartitionedInputsStayTogether(t *testing.T) {
	const parts = 6
	run := func(t *testing.T, e *env, in2 string) {
		const n = 6000
		keys := make([]string, n)
		for i := range keys {
			keys[i] = "k" + strconv.Itoa(i%23)
		}
		cfg := func(instance string) AppConfig {
			c := e.appConfig(instance)
			c.Inputs = []string{e.In, in2}
			return c
		}
		start := func(instance string) func() {
			app, err := NewApp(cfg(instance), counter{out: e.Out}, testLogger(t), clientOpts(e.Brokers))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				if err := app.Run(ctx); err != nil {
					t.Errorf("app %s: %v", instance, err)
				}
			}()
			return func() { cancel(); <-done }
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...), kgo.MaxBufferedRecords(1_000_000))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		send := func(from, to int) {
			var rs []*kgo.Record
			for i := from; i < to; i++ {
				topic := e.In
				if i%2 == 1 {
					topic = in2
				}
				rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(keys[i]), Value: []byte("x")})
			}
			if err := cl.ProduceSync(t.Context(), rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		var stops []func()
		for i, name := range []string{"a", "b", "c", "d"} {
			stops = append(stops, start(name))
			send(i*n/8, (i+1)*n/8)
		}
		readAll(t, e, e.Out, n/2, 60*time.Second)
		for i := range 3 {
			stops[i]()
			send(n/2+i*n/6, n/2+(i+1)*n/6)
		}
		out := readAll(t, e, e.Out, n, 60*time.Second)
		stops[3]()
		checkCounts(t, out, keys)
	}
	t.Run("kfake", func(t *testing.T) { run(t, fakeEnvWith(t, parts, "in2"), "in2") })
	t.Run("kafka", func(t *testing.T) {
		e := realEnvWith(t, parts)
		run(t, e, kafkatest.NewTopic(t, e.Brokers, parts))
	})
}
