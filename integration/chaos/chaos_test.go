package chaos

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kiteflow/kite/integration/clustertest"
	"github.com/kiteflow/kite/integration/searchtest"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// options are the run's settings, from the environment (see doc.go).
type options struct {
	executions int
	duration   time.Duration // of the creation
	quiesce    time.Duration // for every execution to end after the creation
	stall      time.Duration // no execution ended for this long: the run is stuck
	indexWait  time.Duration // for the index to match Kafka
	seed       uint64
	kills      bool
	dir        string
}

func loadOptions(t *testing.T) options {
	t.Helper()
	o := options{executions: 10000, duration: 9 * time.Minute, quiesce: 5 * time.Minute, stall: 3 * time.Minute,
		indexWait: 3 * time.Minute, kills: true}
	var b [8]byte
	_, _ = crand.Read(b[:])
	o.seed = binary.LittleEndian.Uint64(b[:]) % 1_000_000_000
	env := func(name string, parse func(string) error) {
		if v := strings.TrimSpace(os.Getenv(name)); v != "" {
			if err := parse(v); err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
		}
	}
	duration := func(p *time.Duration) func(string) error {
		return func(s string) (err error) { *p, err = time.ParseDuration(s); return err }
	}
	env("KITE_CHAOS_EXECUTIONS", func(s string) (err error) {
		if o.executions, err = strconv.Atoi(s); err == nil && o.executions < 1 {
			err = fmt.Errorf("must be positive")
		}
		return err
	})
	env("KITE_CHAOS_DURATION", duration(&o.duration))
	env("KITE_CHAOS_QUIESCE", duration(&o.quiesce))
	env("KITE_CHAOS_SEED", func(s string) (err error) { o.seed, err = strconv.ParseUint(s, 10, 64); return err })
	env("KITE_CHAOS_KILLS", func(s string) (err error) { o.kills, err = strconv.ParseBool(s); return err })
	o.dir = os.Getenv("KITE_CHAOS_DIR")
	return o
}

// logger prints timestamped lines to the test log and to DIR/chaos.log.
type logger struct {
	t     *testing.T
	begin time.Time
	mu    sync.Mutex
	f     *os.File
	done  bool
}

func (l *logger) logf(format string, args ...any) {
	msg := fmt.Sprintf("%s +%s %s", time.Now().Format("15:04:05.000"), time.Since(l.begin).Round(time.Second), fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	fmt.Fprintln(l.f, msg)
	l.t.Log(msg)
}

func (l *logger) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	_ = l.f.Close()
}

// TestChaos creates thousands of executions of a mix of flows through the
// API while it SIGKILLs a random role process every few seconds and restarts
// the broker once, then checks on Kafka itself that nothing was lost or
// applied twice, that the search index matches Kafka, and that a task's side
// effect happened once per attempt. See doc.go.
func TestChaos(t *testing.T) {
	if os.Getenv("KITE_CHAOS") != "1" {
		t.Skip("the chaos test runs for about 11 minutes: KITE_CHAOS=1 integration/opensearch/with-opensearch.sh " +
			"go test -count=1 -timeout 25m -run '^TestChaos$' -v ./integration/chaos (make chaos)")
	}
	o := loadOptions(t)
	searchURL := searchtest.URL(t)
	began := time.Now()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lf, err := os.Create(filepath.Join(dir, "chaos.log"))
	if err != nil {
		t.Fatal(err)
	}
	lg := &logger{t: t, begin: began, f: lf}
	t.Cleanup(lg.close)
	logf := lg.logf
	logf("seed %d (KITE_CHAOS_SEED=%d replays the chaos order), %d executions over %s, chaos %t, files in %s",
		o.seed, o.seed, o.executions, o.duration, o.kills, dir)

	bin := buildKite(t, dir)
	br := startBroker(t, filepath.Join(dir, "kafka"))
	var suffix [4]byte
	_, _ = crand.Read(suffix[:])
	kafka := streams.Defaults()
	kafka.Brokers = []string{br.addr}
	kafka.TopicPrefix = "chaos-" + hex.EncodeToString(suffix[:]) + "."
	kafka.TransactionalIDPrefix = strings.TrimSuffix(kafka.TopicPrefix, ".")
	ctx := t.Context()
	{
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := streams.EnsureTopics(tctx, kadm.NewClient(clustertest.Client(t, kafka)), kafka)
		cancel()
		if err != nil {
			t.Fatalf("creating Kite's topics: %v", err)
		}
	}
	indexPrefix := kafka.TransactionalIDPrefix + "-"
	t.Cleanup(func() { searchtest.DeleteIndices(t, searchURL, indexPrefix+"*") })
	effects := filepath.Join(dir, "effects.log")

	cl, apiAddr := newCluster(t, bin, dir, kafka, searchURL, indexPrefix, logf)
	t.Cleanup(func() {
		if t.Failed() {
			cl.logTails(br.dir, 40)
			logf("logs, the side-effect file and the broker's data: %s", dir)
		}
		cl.stopAll()
	})
	if err := cl.startAll(); err != nil {
		t.Fatal(err)
	}
	if err := cl.waitReady(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(apiAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := applyFlows(ctx, kitev1.NewFlowServiceClient(conn), effects); err != nil {
		t.Fatal(err)
	}
	setup := time.Since(began)
	logf("cluster ready and flows applied in %s", setup.Round(time.Second))

	mon, err := newMonitor(kafka.Brokers, kafka.Topic(streams.TopicExecutionEvents))
	if err != nil {
		t.Fatal(err)
	}
	monCtx, stopMon := context.WithCancel(context.Background())
	monDone := make(chan error, 1)
	go func() { monDone <- mon.run(monCtx) }()
	t.Cleanup(func() {
		stopMon()
		if err := <-monDone; err != nil {
			t.Errorf("monitor: %v", err)
		}
	})

	// The creation, with the chaos beside it and a watchdog that stops
	// everything when no execution ends for o.stall.
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
				if err := mon.stalled(o.stall); err != nil {
					stopRun(err)
					return
				}
			}
		}
	}()
	ld := newLoad(kitev1.NewExecutionServiceClient(conn), o.executions, o.duration, logf)
	sched := &schedule{rng: rand.New(rand.NewPCG(o.seed, o.seed^0x5eed)), cl: cl, broker: br, brokerAt: o.duration / 3,
		log: logf, kills: map[string]int{}}
	chaosCtx, stopChaos := context.WithCancel(runCtx)
	var chaos sync.WaitGroup
	mon.resetProgress()
	begin := time.Now()
	if o.kills {
		chaos.Go(func() { sched.run(chaosCtx, begin) })
	}
	progressDone := make(chan struct{})
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-tick.C:
				seen, ended := mon.counts()
				logf("progress: %d executions seen on Kafka, %d ended", seen, ended)
			}
		}
	}()
	defer close(progressDone)
	ld.run(runCtx)
	stopChaos()
	chaos.Wait()
	creation := time.Since(begin)
	if err := context.Cause(runCtx); err != nil {
		logf("%s", diagnoseKafka(ctx, kafka.Brokers, kafka.TransactionalIDPrefix))
		t.Fatalf("the run stopped during the creation: %v", err)
	}
	logf("creation done in %s: %d executions created; chaos stopped", creation.Round(time.Second), len(ld.createdIDs()))

	// Quiescence: every role runs again, every execution ends.
	qBegin := time.Now()
	if err := cl.waitReady(ctx, 3*time.Minute); err != nil {
		t.Fatalf("after the chaos: %v", err)
	}
	created := ld.createdIDs()
	if err := mon.waitEnded(ctx, created, o.quiesce, o.stall, logf); err != nil {
		logf("%s", diagnoseKafka(ctx, kafka.Brokers, kafka.TransactionalIDPrefix))
		t.Errorf("quiescence: %v", err)
	}
	quiesce := time.Since(qBegin)
	seen, ended := mon.counts()
	logf("quiescence done in %s: %d executions seen, %d ended; verifying", quiesce.Round(time.Second), seen, ended)

	// Verification, from Kafka itself.
	vBegin := time.Now()
	s := &summary{o: o, ld: ld, cl: cl, sched: sched}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	view, err := readEvents(vctx, kafka.Brokers, kafka.Topic(streams.TopicExecutionEvents))
	if err != nil {
		t.Fatalf("reading the events: %v", err)
	}
	s.view = view
	logf("read %d events of %d executions in %s", view.records, len(view.execs), view.took.Round(time.Millisecond))
	lines, malformed, err := readEffects(effects)
	if err != nil {
		t.Fatalf("reading the side effects: %v", err)
	}
	effectCheck, st := checkEffects(view, lines, malformed)
	s.effects = st
	s.checks = []check{
		checkCreated(view, created),
		checkEnded(view),
		checkSequences(view),
		checkResults(view),
		checkIndex(vctx, kitev1.NewSearchServiceClient(conn), view, o.indexWait, logf),
		effectCheck,
		checkSucceeded(view),
	}
	if sched.brokerErr != nil {
		t.Errorf("the broker restart failed: %v", sched.brokerErr)
	}
	s.wall = time.Since(began)
	s.phases = []phase{{"setup", setup}, {"creation", creation}, {"quiescence", quiesce}, {"verification", time.Since(vBegin)}}
	text := s.String()
	t.Log(text)
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(text), 0o644); err != nil {
		t.Error(err)
	}
	for i, c := range s.checks {
		if len(c.bad) > 0 {
			t.Errorf("check %d failed: %s: %d violations, first: %s", i+1, c.name, len(c.bad), c.bad[0])
		}
	}
}

// newCluster prepares the role processes: one executor, two workers, a
// scheduler, an indexer and an api, on the run's topics, OpenSearch indices
// and local storage. It returns the API's fixed gRPC address.
func newCluster(t *testing.T, bin, dir string, kafka streams.Config, searchURL, indexPrefix string, logf func(string, ...any)) (*cluster, string) {
	t.Helper()
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KITE_") { // the test's own settings are not Kite's
			base = append(base, kv)
		}
	}
	base = append(base,
		"KITE_KAFKA_BROKERS="+strings.Join(kafka.Brokers, ","), "KITE_KAFKA_TOPIC_PREFIX="+kafka.TopicPrefix,
		"KITE_KAFKA_TRANSACTIONAL_ID_PREFIX="+kafka.TransactionalIDPrefix, fmt.Sprintf("KITE_KAFKA_PARTITIONS=%d", kafka.Partitions),
		"KITE_KAFKA_SESSION_TIMEOUT=6s", "KITE_METRICS_ADDR=", "KITE_LOG_LEVEL=info",
		"KITE_REPOSITORY_TYPE=elasticsearch", "KITE_REPOSITORY_ELASTICSEARCH_URLS="+searchURL,
		"KITE_REPOSITORY_ELASTICSEARCH_FLAVOR=opensearch", "KITE_REPOSITORY_ELASTICSEARCH_INDEX_PREFIX="+indexPrefix,
		"KITE_REPOSITORY_ELASTICSEARCH_SHARDS=1", "KITE_REPOSITORY_ELASTICSEARCH_REPLICAS=0",
		"KITE_STORAGE_TYPE=local", "KITE_STORAGE_LOCAL_DIR="+filepath.Join(dir, "storage"),
		// A fixed instance id: a restarted executor takes its partitions back
		// at once and fences its predecessor's transaction.
		"KITE_EXECUTOR_INSTANCE_ID=chaos", "KITE_EXECUTOR_STATIC_MEMBERSHIP=true", "KITE_EXECUTOR_WORKER_TIMEOUT=6s",
		// Workers keep their default id (host-pid-random): a new one per process.
		"KITE_WORKER_HEARTBEAT_INTERVAL=1s",
		"KITE_SCHEDULER_INSTANCE_ID=chaos",
	)
	apiAddr := freeAddr(t)
	cl := &cluster{t: t, bin: bin, log: logf, byName: map[string]*slot{}}
	for _, name := range []string{"executor", "worker-1", "worker-2", "scheduler", "indexer", "api"} {
		role, _, _ := strings.Cut(name, "-")
		s := &slot{name: name, role: role, logPath: filepath.Join(dir, name+".log"), health: freeAddr(t)}
		s.env = append(append([]string(nil), base...), "KITE_HEALTH_ADDR="+s.health, "KITE_DATA_DIR="+filepath.Join(dir, "data", name))
		if role == "api" {
			s.env = append(s.env, "KITE_API_GRPC_ADDR="+apiAddr, "KITE_API_HTTP_ADDR="+freeAddr(t))
		}
		cl.slots = append(cl.slots, s)
		cl.byName[name] = s
	}
	return cl, apiAddr
}
