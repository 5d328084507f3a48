package app_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/kiteflow/kite/integration/clustertest"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// freeAddr returns a free 127.0.0.1 address.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// healthOf asks the process's gRPC health server about service.
func healthOf(tb testing.TB, addr, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	r, err := healthpb.NewHealthClient(conn).Check(tb.Context(), &healthpb.HealthCheckRequest{Service: service})
	return r.GetStatus(), err
}

// TestSIGTERMHandsBackTheRunningTask stops a worker process with SIGTERM, as
// Kubernetes does, while it runs a task longer than its shutdown grace: the
// process, ready on its gRPC health before, stops within the grace, exits 0,
// and the task runs again on another worker; the execution ends SUCCESS.
func TestSIGTERMHandsBackTheRunningTask(t *testing.T) {
	clustertest.Each(t, func(t *testing.T, kafka streams.Config) {
		a := startApp(t, "api,executor", &kafka, nil)
		conn := dial(t, a)
		if _, err := kitev1.NewFlowServiceClient(conn).Apply(t.Context(), &kitev1.FlowServiceApplyRequest{Source: sleepFlow}); err != nil {
			t.Fatal(err)
		}
		health := freeAddr(t)
		leaving := startProcess(t, "worker", kafka, "KITE_WORKER_HEARTBEAT_INTERVAL=300ms", "KITE_WORKER_ID=w-leaving",
			"KITE_WORKER_SHUTDOWN_GRACE=1s", "KITE_HEALTH_ADDR="+health)
		waitFor(t, "the worker to be ready", func() bool {
			st, err := healthOf(t, health, "")
			return err == nil && st == healthpb.HealthCheckResponse_SERVING
		})
		if st, err := healthOf(t, health, "kite.worker"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of kite.worker = %v, %v; want SERVING", st, err)
		}
		created, err := kitev1.NewExecutionServiceClient(conn).Create(t.Context(), &kitev1.ExecutionServiceCreateRequest{Namespace: "kite.e2e", FlowId: "nap"})
		if err != nil {
			t.Fatal(err)
		}
		id := created.GetExecution().GetId()
		watch(t, conn, id, func(ev *kitev1.ExecutionEvent) bool {
			return ev.GetType() == kitev1.EventType_EVENT_TYPE_ATTEMPT && ev.GetState() == kitev1.State_STATE_RUNNING
		})

		sent := time.Now()
		if err := leaving.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- leaving.cmd.Wait() }()
		var err2 error
		select {
		case err2 = <-exited:
		case <-time.After(30 * time.Second):
			t.Fatal("the worker did not exit within 30s of SIGTERM (shutdown grace 1s)")
		}
		if err2 != nil {
			t.Fatalf("the worker exited with %v after SIGTERM, want status 0", err2)
		}
		t.Logf("the worker exited 0, %s after SIGTERM", time.Since(sent).Round(time.Millisecond))

		startProcess(t, "worker", kafka, "KITE_WORKER_HEARTBEAT_INTERVAL=300ms", "KITE_WORKER_ID=w-next")
		// The handed-back attempt ends KILLED when the executor gives the
		// task run to another worker, which runs it to SUCCESS.
		if got := napAttempts(t, conn, id); got != "KILLED,SUCCESS" {
			t.Errorf("nap attempts %s, want the handed-back attempt then SUCCESS", got)
		}
		leaving.mu.Lock()
		out := leaving.out.String()
		leaving.mu.Unlock()
		if !strings.Contains(out, "attempt handed back at shutdown") {
			t.Errorf("the worker's log does not say it handed the attempt back:\n%s", out)
		}
	})
}

// TestSIGTERMStopsStandalone: a standalone process (every role, the
// embedded broker and index), ready on its gRPC health for each role and
// running an execution, stops on SIGTERM and exits 0.
func TestSIGTERMStopsStandalone(t *testing.T) {
	health, grpcAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(kiteBinary(t), "server", "standalone", "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "KITE_HEALTH_ADDR="+health, "KITE_API_GRPC_ADDR="+grpcAddr,
		"KITE_API_HTTP_ADDR="+freeAddr(t), "KITE_METRICS_ADDR=", "KITE_BROKER_PORT=0", "KITE_WORKER_SHUTDOWN_GRACE=1s")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			if err := <-exited; err != nil {
				t.Logf("kite server standalone, killed: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("kite server standalone output:\n%s", out.String())
		}
	})
	waitFor(t, "standalone to be ready", func() bool {
		st, err := healthOf(t, health, "")
		return err == nil && st == healthpb.HealthCheckResponse_SERVING
	})
	for _, role := range []string{"api", "executor", "worker", "scheduler", "indexer"} {
		if st, err := healthOf(t, health, "kite."+role); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of kite.%s = %v, %v; want SERVING", role, st, err)
		}
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := kitev1.NewFlowServiceClient(conn).Apply(t.Context(), &kitev1.FlowServiceApplyRequest{Source: sleepFlow}); err != nil {
		t.Fatal(err)
	}
	if _, err := kitev1.NewExecutionServiceClient(conn).Create(t.Context(), &kitev1.ExecutionServiceCreateRequest{Namespace: "kite.e2e", FlowId: "nap"}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("standalone exited with %v after SIGTERM, want status 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("standalone did not exit within 60s of SIGTERM")
	}
}
