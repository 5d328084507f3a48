package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kiteflow/kite/integration/kafkatest"
	"github.com/kiteflow/kite/integration/searchtest"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/app"
	"github.com/kiteflow/kite/streams"
)

// The two-task flow of issue 5, with Kestra's type names.
const (
	flowNamespace = "kite.bench"
	flowID        = "log-return"
	flowYAML      = `id: log-return
namespace: kite.bench
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "benchmark execution {{ execution.id }}"
  - id: value
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.id }}"
`
)

// p99Limit is the latency a sustained rate keeps its p99 under.
const p99Limit = time.Second

// options are the benchmark's settings, from the environment.
type options struct {
	rate     int           // KITE_BENCH_RATE: executions per minute of the main run (1000)
	duration time.Duration // KITE_BENCH_DURATION: of the main run (60s)
	steps    []int         // KITE_BENCH_STEPS: rates of the search, stopping at the first that fails ("1000,2000,4000,6000,8000,12000,16000,24000"; "" skips it)
	stepFor  time.Duration // KITE_BENCH_STEP_DURATION: of each step (30s)
	refine   bool          // KITE_BENCH_REFINE: try the middle of the last passed and first failed steps (1)
	drain    time.Duration // KITE_BENCH_DRAIN: wait after the last Create for executions to end (20s)
	watch    bool          // KITE_BENCH_OBSERVE=watch: one Watch per execution instead of one events reader
	logLevel zapcore.Level // KITE_BENCH_LOG_LEVEL: the server's log level (warn), logs to stderr
	out      string        // KITE_BENCH_OUT: the results file, appended to (bin/bench-e2e.txt)
	warmup   time.Duration // KITE_BENCH_WARMUP: at the main run's rate, not measured (30s)
	timeout  time.Duration // Create deadline (30s)
}

func loadOptions(t *testing.T) options {
	t.Helper()
	o := options{rate: 1000, duration: time.Minute, steps: []int{1000, 2000, 4000, 6000, 8000, 12000, 16000, 24000},
		stepFor: 30 * time.Second, refine: true, drain: 20 * time.Second, logLevel: zapcore.WarnLevel,
		warmup: 30 * time.Second, timeout: 30 * time.Second}
	env := func(name string, parse func(string) error) {
		if v, ok := os.LookupEnv(name); ok {
			if err := parse(strings.TrimSpace(v)); err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
		}
	}
	positive := func(p *int) func(string) error {
		return func(s string) error {
			n, err := strconv.Atoi(s)
			if err == nil && n <= 0 {
				err = fmt.Errorf("must be positive")
			}
			*p = n
			return err
		}
	}
	duration := func(p *time.Duration) func(string) error {
		return func(s string) error {
			d, err := time.ParseDuration(s)
			if err == nil && d <= 0 {
				err = fmt.Errorf("must be positive")
			}
			*p = d
			return err
		}
	}
	env("KITE_BENCH_RATE", positive(&o.rate))
	env("KITE_BENCH_DURATION", duration(&o.duration))
	env("KITE_BENCH_STEP_DURATION", duration(&o.stepFor))
	env("KITE_BENCH_DRAIN", duration(&o.drain))
	env("KITE_BENCH_WARMUP", duration(&o.warmup))
	env("KITE_BENCH_STEPS", func(s string) error {
		o.steps = nil
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			var n int
			if err := positive(&n)(f); err != nil {
				return fmt.Errorf("rate %q: %w", f, err)
			}
			o.steps = append(o.steps, n)
		}
		return nil
	})
	env("KITE_BENCH_REFINE", func(s string) (err error) { o.refine, err = strconv.ParseBool(s); return err })
	env("KITE_BENCH_OBSERVE", func(s string) error {
		switch s {
		case "events":
		case "watch":
			o.watch = true
		default:
			return fmt.Errorf("is events (one reader of the execution-events topic) or watch (one Watch per execution)")
		}
		return nil
	})
	env("KITE_BENCH_LOG_LEVEL", func(s string) (err error) { o.logLevel, err = zapcore.ParseLevel(s); return err })
	o.out = os.Getenv("KITE_BENCH_OUT")
	if o.out == "" {
		o.out = filepath.Join(moduleRoot(t), "bin", "bench-e2e.txt")
	}
	return o
}

// moduleRoot is the directory of go.mod above the test's.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// TestEndToEnd is issue 5's benchmark: the latency of a two-task flow (Log,
// Return) from the Create call to the terminal event seen, at 1,000
// executions a minute for a minute, then a search of the highest rate whose
// p99 stays under 1s, on standalone's embedded broker (kfake) and on the
// real Kafka. It measures and asserts no speed; it fails only when it cannot
// run. It runs for minutes, so only with KITE_BENCH=1 (`make bench-e2e`);
// the kafka subtest needs integration/kafka/with-kafka.sh.
func TestEndToEnd(t *testing.T) {
	if os.Getenv("KITE_BENCH") != "1" {
		t.Skip("the end-to-end benchmark runs for minutes: KITE_BENCH=1 go test -run TestEndToEnd -v ./integration/bench (make bench-e2e)")
	}
	o := loadOptions(t)
	t.Run("kfake", func(t *testing.T) {
		bench(t, o, "kfake (standalone, embedded broker)", startStandalone(t, o))
	})
	t.Run("kafka", func(t *testing.T) {
		brokers := kafkatest.Brokers(t)
		name := "kafka (Apache Kafka, roles api,executor,worker,scheduler)"
		if os.Getenv(searchtest.EnvURL) != "" {
			name = "kafka (Apache Kafka, roles api,executor,worker,scheduler,indexer; OpenSearch)"
		}
		bench(t, o, name, startOnKafka(t, o, brokers))
	})
}

// server is a running Kite process under test.
type server struct {
	app     *app.App
	cfg     app.Config
	brokers []string
}

// config is the defaults with the KITE_<SECTION>_<FIELD> overrides of the
// environment (to try a setting: KITE_KAFKA_PRODUCER_LINGER=1ms), on free
// ports in a temp dir.
func config(t *testing.T, o options) app.Config {
	t.Helper()
	cfg, err := app.Load("", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.MetricsAddr = ""
	cfg.API.GRPCAddr, cfg.API.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Log.Level = o.logLevel.String()
	return cfg
}

func startStandalone(t *testing.T, o options) *server {
	t.Helper()
	cfg := config(t, o)
	cfg.Kafka.Brokers = nil // KITE_KAFKA_BROKERS is the real Kafka's under with-kafka.sh
	return start(t, o, cfg, app.Standalone)
}

func startOnKafka(t *testing.T, o options, brokers []string) *server {
	t.Helper()
	cfg := config(t, o)
	cfg.Kafka.Brokers = brokers
	var b [4]byte
	_, _ = rand.Read(b[:])
	cfg.Kafka.TopicPrefix = "kite-bench-" + hex.EncodeToString(b[:]) + "."
	cfg.Kafka.TransactionalIDPrefix = strings.TrimSuffix(cfg.Kafka.TopicPrefix, ".")
	t.Cleanup(func() { deleteTopics(t, cfg.Kafka) })
	roles := "api,executor,worker,scheduler"
	// With the OpenSearch of with-opensearch.sh, the indexer runs too, so
	// its throughput and projection lag are measured under the same load.
	if url := os.Getenv(searchtest.EnvURL); url != "" {
		roles += ",indexer"
		prefix := strings.TrimSuffix(cfg.Kafka.TopicPrefix, ".") + "-"
		cfg.Repository.Type = app.RepositoryElasticsearch
		cfg.Repository.Elasticsearch = app.ElasticsearchConfig{URLs: []string{url}, Flavor: "opensearch", IndexPrefix: prefix, Shards: 1}
		t.Cleanup(func() { searchtest.DeleteIndices(t, url, prefix+"*") })
	}
	return start(t, o, cfg, roles)
}

func start(t *testing.T, o options, cfg app.Config, roleList string) *server {
	t.Helper()
	roles, err := app.ParseRoles(roleList)
	if err != nil {
		t.Fatal(err)
	}
	logger := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
		zapcore.Lock(os.Stderr), o.logLevel))
	a, err := app.New(cfg, roles, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kite stopped with: %v", err)
		}
	})
	select {
	case err := <-done:
		done <- err
		t.Fatalf("kite did not start: %v", err)
	case <-a.Started():
	case <-time.After(3 * time.Minute):
		t.Fatal("kite did not start within 3 minutes")
	}
	brokers := cfg.Kafka.Brokers
	if len(brokers) == 0 {
		brokers = []string{a.BrokerAddr()}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flow.yaml"), []byte(flowYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApplyDir(t.Context(), dir); err != nil {
		t.Fatalf("applying the flow: %v", err)
	}
	return &server{app: a, cfg: cfg, brokers: brokers}
}

func deleteTopics(t *testing.T, cfg streams.Config) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Errorf("deleting the benchmark's topics: %v", err)
		return
	}
	defer cl.Close()
	var names []string
	for _, s := range streams.TopicSpecs() {
		names = append(names, cfg.Topic(s.Base))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).DeleteTopics(ctx, names...); err != nil {
		t.Errorf("deleting the benchmark's topics: %v", err)
	}
}

// bench runs the main run and the search against s, and reports them.
func bench(t *testing.T, o options, name string, s *server) {
	ctx := t.Context()
	obs := NewObserver()
	if !o.watch {
		rd, err := NewEventsReader(ctx, s.brokers, s.cfg.Kafka.Topic(streams.TopicExecutionEvents))
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- rd.Run(rctx, obs) }()
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("events reader: %v", err)
			}
			rd.Close()
		})
	}
	grpcAddr, httpAddr := s.app.APIAddrs()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	load := &Load{Executions: kitev1.NewExecutionServiceClient(conn), Namespace: flowNamespace, FlowID: flowID,
		Observer: obs, Watch: o.watch, CreateTimeout: o.timeout}
	probe := &probe{metricsURL: "http://" + httpAddr + "/metrics", brokerPID: brokerPID(s.brokers[0])}

	// Warm-up: the first Creates wait for the executor to join its group
	// and take its partitions, and a broker's JVM just started compiles its
	// hot paths in its first minute.
	warm := load.Run(ctx, o.rate, o.warmup, time.Minute)
	if warm.Succeeded == 0 || warm.Unfinished > 0 {
		t.Fatalf("warm-up: %d of %d executions succeeded, %d unfinished, errors %v", warm.Succeeded, warm.Scheduled, warm.Unfinished, warm.Errors)
	}
	t.Logf("warm-up: %d executions, p99 %s", warm.Succeeded, Percentile(warm.Latency, 0.99).Round(time.Millisecond))

	rep := &report{name: name, opts: o, commit: gitDescribe(ctx)}
	var last *Step
	run := func(rate int, d time.Duration) *Step {
		// What a step that fell behind left running ends first.
		if left := obs.running(); len(left) > 0 {
			n := obs.wait(ctx, left, time.Now().Add(2*time.Minute))
			t.Logf("waited for %d executions of the last step to end (%d still running)", len(left), n)
		}
		if last != nil && !last.OK(p99Limit) && !o.watch && !obs.waitQuiet(ctx, 2*time.Second, 2*time.Minute) {
			t.Log("the events of the last step still come after 2 minutes")
		}
		before := probe.sample(t)
		st := load.Run(ctx, rate, d, o.drain)
		usage := probe.sample(t).since(before)
		rep.add(st, usage)
		t.Log("\n" + rep.stepLine(st, usage))
		last = st
		return st
	}

	rep.main = run(o.rate, o.duration)
	var passed, failed *Step
	for _, rate := range o.steps {
		st := run(rate, o.stepFor)
		if !st.OK(p99Limit) {
			failed = st
			break
		}
		passed = st
	}
	if o.refine && passed != nil && failed != nil {
		if mid := (passed.Rate + failed.Rate) / 2; mid != passed.Rate && mid != failed.Rate {
			if st := run(mid, o.stepFor); st.OK(p99Limit) {
				passed = st
			}
		}
	}
	rep.sustained, rep.searched = passed, len(o.steps) > 0
	// The metrics of the whole run, for a closer look.
	if m, err := metricsText(ctx, probe.metricsURL); err == nil {
		path := strings.TrimSuffix(o.out, ".txt") + "-" + strings.Fields(name)[0] + ".metrics"
		if err := os.WriteFile(path, []byte(m), 0o600); err != nil {
			t.Errorf("writing %s: %v", path, err)
		}
	}
	text := rep.String()
	t.Log("\n" + text)
	if err := appendFile(o.out, text); err != nil {
		t.Errorf("writing %s: %v", o.out, err)
	} else {
		t.Logf("results appended to %s", o.out)
	}
}
