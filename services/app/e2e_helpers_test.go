package app_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/integration/clustertest"
	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/app"
	"github.com/kiteflow/kite/streams"
)

// startApp runs roles in this process until the test ends. kafka is the
// cluster (nil: standalone with its embedded broker in a temp dir).
func startApp(tb testing.TB, roles string, kafka *streams.Config, tune func(*app.Config)) *app.App {
	tb.Helper()
	cfg := app.Defaults()
	cfg.DataDir = tb.TempDir()
	cfg.API.GRPCAddr, cfg.API.HTTPAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.Executor.WorkerTimeout = 2 * time.Second
	cfg.Worker.HeartbeatInterval = 500 * time.Millisecond
	cfg.Worker.ShutdownGrace = time.Second
	cfg.Kafka.ProducerLinger = time.Millisecond
	if kafka != nil {
		cfg.Kafka = *kafka
	} else {
		cfg.Kafka.Partitions = 3
	}
	cfg.Kafka.SessionTimeout = 6 * time.Second
	if tune != nil {
		tune(&cfg)
	}
	r, err := app.ParseRoles(roles)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := app.New(cfg, r, zaptest.NewLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("app stopped with: %v", err)
		}
	})
	select {
	case <-a.Started():
	case err := <-done:
		tb.Fatalf("app did not start: %v", err)
	case <-time.After(60 * time.Second):
		tb.Fatal("app did not start within 60s")
	}
	return a
}

// dial connects a gRPC client to the app's API.
func dial(tb testing.TB, a *app.App) *grpc.ClientConn {
	tb.Helper()
	addr, _ := a.APIAddrs()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// watch streams an execution's events from seq 1 until it ends, checking
// their order.
func watch(tb testing.TB, conn *grpc.ClientConn, id string, until func(*kitev1.ExecutionEvent) bool) []*kitev1.ExecutionEvent {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 90*time.Second)
	defer cancel()
	stream, err := kitev1.NewExecutionServiceClient(conn).Watch(ctx, &kitev1.ExecutionServiceWatchRequest{ExecutionId: id})
	if err != nil {
		tb.Fatal(err)
	}
	var evs []*kitev1.ExecutionEvent
	for {
		resp, err := stream.Recv()
		if err != nil {
			if len(evs) > 0 && until == nil && codec.FromState(evs[len(evs)-1].GetState()).Terminal() {
				return evs
			}
			tb.Fatalf("watching %s after %d events: %v", id, len(evs), err)
		}
		ev := resp.GetEvent()
		if want := int64(len(evs) + 1); ev.GetSeq() != want {
			tb.Fatalf("watching %s: event seq %d, want %d", id, ev.GetSeq(), want)
		}
		evs = append(evs, ev)
		if until != nil && until(ev) {
			return evs
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// kiteBinary builds cmd/kite once per test binary.
func kiteBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kite-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "kite")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/kite")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// process is a `kite server ROLES` child process.
type process struct {
	cmd *exec.Cmd
	out *bytes.Buffer
	mu  *sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startProcess starts `kite server roles` on the cluster with extra
// KITE_* settings; it is killed when the test ends, and its output shown
// if the test failed.
func startProcess(tb testing.TB, roles string, kafka streams.Config, env ...string) *process {
	tb.Helper()
	cmd := exec.Command(kiteBinary(tb), "server", roles)
	cmd.Env = append(os.Environ(),
		"KITE_KAFKA_BROKERS="+kafka.Brokers[0], "KITE_KAFKA_TOPIC_PREFIX="+kafka.TopicPrefix,
		"KITE_KAFKA_TRANSACTIONAL_ID_PREFIX="+kafka.TransactionalIDPrefix,
		fmt.Sprintf("KITE_KAFKA_PARTITIONS=%d", kafka.Partitions),
		"KITE_KAFKA_SESSION_TIMEOUT=6s", "KITE_KAFKA_PRODUCER_LINGER=1ms", "KITE_METRICS_ADDR=", "KITE_LOG_LEVEL=info")
	cmd.Env = append(cmd.Env, env...)
	p := &process{cmd: cmd, out: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cmd.Stdout = lockedWriter{p.mu, p.out}
	cmd.Stderr = lockedWriter{p.mu, p.out}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.kill()
		if tb.Failed() {
			p.mu.Lock()
			tb.Logf("kite server %s output:\n%s", roles, p.out.String())
			p.mu.Unlock()
		}
	})
	return p
}

// kill sends SIGKILL: no cleanup, no last words, as a crash or OOM kill.
func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// foldEvents reads execution-events until every id ended, folding each
// execution with execution.Apply (which refuses a gap or a duplicate) and
// counting the terminal TASK_RUN_STATE events of each task run.
func foldEvents(tb testing.TB, kafka streams.Config, ids map[string]bool, onEnd func(ended int)) (map[string]*execution.Execution, map[string]int) {
	tb.Helper()
	cl := clustertest.Client(tb, kafka, kgo.ConsumeTopics(kafka.Topic(streams.TopicExecutionEvents)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	execs := map[string]*execution.Execution{}
	terminalResults := map[string]int{}
	ended := 0
	ctx, cancel := context.WithTimeout(tb.Context(), 5*time.Minute)
	defer cancel()
	for ended < len(ids) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("%d of %d executions ended in time", ended, len(ids))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			var pe kitev1.ExecutionEvent
			if err := proto.Unmarshal(r.Value, &pe); err != nil {
				tb.Fatalf("event: %v", err)
			}
			ev := codec.FromEvent(&pe)
			if !ids[ev.ExecutionID] {
				return
			}
			e := execs[ev.ExecutionID]
			if e == nil {
				e = &execution.Execution{}
				execs[ev.ExecutionID] = e
			}
			wasTerminal := e.Terminal() && e.Seq > 0
			if err := execution.Apply(e, ev); err != nil {
				tb.Fatalf("execution %s, event %d: %v", ev.ExecutionID, ev.Seq, err)
			}
			if ev.Type == execution.EvTaskRunState && ev.State.Terminal() {
				terminalResults[ev.ExecutionID+"/"+ev.TaskRunID]++
			}
			if !wasTerminal && e.Terminal() {
				ended++
				if onEnd != nil {
					onEnd(ended)
				}
			}
		})
	}
	return execs, terminalResults
}
