package streams

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkExactlyOnce measures records per second through the counting
// processor with exactly-once transactions on kfake, at batch sizes 1, 100
// and 1,000, and the transaction commit latency (p50, p99), on kfake and on
// the real broker (integration/kafka/with-kafka.sh go test -bench ...).
func BenchmarkExactlyOnce(b *testing.B) {
	b.Run("kfake", func(b *testing.B) { benchExactlyOnce(b, fakeEnv) })
	b.Run("kafka", func(b *testing.B) { benchExactlyOnce(b, realEnv) })
}

func benchExactlyOnce(b *testing.B, newEnv func(testing.TB) *env) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			n := 20 * batch
			if n < 2000 {
				n = 2000
			}
			var lat []time.Duration
			var mu sync.Mutex
			total := 0
			var elapsed time.Duration
			for range b.N {
				e := newEnv(b)
				keys, values := make([]string, n), make([]string, n)
				for i := range keys {
					keys[i], values[i] = "k"+strconv.Itoa(i%64), "x"
				}
				produce(b, e, keys, values)
				cfg := e.appConfig("bench")
				cfg.MaxPollRecords, cfg.TimerInterval = batch, 50*time.Millisecond
				cfg.OnCommit = func(d time.Duration, _ int) { mu.Lock(); lat = append(lat, d); mu.Unlock() }
				app, err := NewApp(cfg, counter{out: e.Out}, nil, []kgo.Opt{kgo.SeedBrokers(e.Brokers...)})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				start := time.Now()
				done := make(chan struct{})
				go func() { defer close(done); _ = app.Run(ctx) }()
				out := readAll(b, e, e.Out, n, 5*time.Minute)
				elapsed += time.Since(start)
				cancel()
				<-done
				if len(out) != n {
					b.Fatalf("%d outputs, want %d", len(out), n)
				}
				total += n
			}
			b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "commit-p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "commit-p99-µs")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkRestore1M measures the restore of a 1,000,000-entry store from
// its changelog, into the in-memory store, on kfake and on the real broker.
func BenchmarkRestore1M(b *testing.B) {
	b.Run("kfake", func(b *testing.B) { benchRestore(b, fakeEnv(b)) })
	b.Run("kafka", func(b *testing.B) { benchRestore(b, realEnv(b)) })
}

func benchRestore(b *testing.B, e *env) {
	const n = 1_000_000
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var wg sync.WaitGroup
	var perr error
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: e.Changelog, Partition: 0, Key: []byte("key-" + strconv.Itoa(i)), Value: encodeChangelogValue([]byte("value-" + strconv.Itoa(i)))},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					perr = err
					mu.Unlock()
				}
				wg.Done()
			})
	}
	wg.Wait()
	if perr != nil {
		b.Fatal(perr)
	}
	b.ResetTimer()
	for range b.N {
		rc, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
		if err != nil {
			b.Fatal(err)
		}
		st := NewMemoryStore()
		start := time.Now()
		got, err := restoreChangelog(context.Background(), rc, e.Changelog, 0, st, nil)
		took := time.Since(start)
		rc.Close()
		if err != nil || got != n {
			b.Fatalf("restored %d, %v", got, err)
		}
		b.ReportMetric(took.Seconds(), "s/restore")
		b.ReportMetric(float64(n)/took.Seconds(), "entries/s")
	}
}
