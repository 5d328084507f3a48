package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/integration/bench"
)

// freePort returns a port of 127.0.0.1 that nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// TestBench runs kite bench, briefly, against a `kite server standalone`
// child process, and checks what a user reads in its results.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a standalone server and runs kite bench for about 20 s")
	}
	bin := kite(t)
	broker, grpcPort, httpPort := freePort(t), freePort(t), freePort(t)
	srv := exec.Command(bin, "server", "standalone", "--data-dir", t.TempDir())
	srv.Env = append(os.Environ(), fmt.Sprintf("KITE_BROKER_PORT=%d", broker), "KITE_LOG_LEVEL=warn", "KITE_KAFKA_BROKERS=", "KITE_PPROF=true",
		fmt.Sprintf("KITE_API_GRPC_ADDR=127.0.0.1:%d", grpcPort), fmt.Sprintf("KITE_API_HTTP_ADDR=127.0.0.1:%d", httpPort))
	var srvOut strings.Builder
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("server output:\n%s", srvOut.String())
		}
	})
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort)
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(metrics)
		if err == nil {
			_ = resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server's %s did not answer within a minute: %v", metrics, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	out := t.TempDir()
	stdout, stderr, code := run(t, bin, "bench", "--server", fmt.Sprintf("127.0.0.1:%d", grpcPort),
		"--brokers", fmt.Sprintf("127.0.0.1:%d", broker), "--process", "standalone="+metrics,
		"--rates", "600,1200", "--step", "3s", "--warmup", "2s", "--drain", "20s", "--if-rate", "600", "--if-for", "3s",
		"--foreach", "10,40", "--version", "broker=kfake", "--cpu-profile", "--out", out)
	if code != 0 {
		t.Fatalf("kite bench: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"Two-task flow (Log + Return) at fixed rates", "highest rate with p99 < 1000 ms: 1200/min",
		"Five If tasks", "ForEach", "Kafka bytes per item"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the table has no %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "two-task flow at 600/min for 3s…") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Machine.Cores == 0 || res.Versions["broker"] != "kfake" || res.Versions["go"] == "" {
		t.Errorf("machine %+v, versions %v: want the cores and the versions recorded", res.Machine, res.Versions)
	}
	if len(res.Rates) != 2 || res.HighestRate != 1200 {
		t.Fatalf("rates %+v, highest %d: want 600 and 1200/min run and passed", res.Rates, res.HighestRate)
	}
	for _, r := range res.Rates {
		if r.Created != r.Rate/20 || r.Succeeded != r.Created || r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 || r.TaskRunsPerExecution != 2 {
			t.Errorf("rate %d: %+v: want %d created and succeeded, 2 task runs each, ordered latencies", r.Rate, r, r.Rate/20)
		}
		if len(r.Usage.Processes) != 2 || r.Usage.Processes[0].Name != "standalone" || r.Usage.Processes[1].Name != "kite-bench" {
			t.Fatalf("rate %d: usage %+v: want the standalone process's and kite bench's own", r.Rate, r.Usage)
		}
		for _, p := range r.Usage.Processes {
			if p.RSSMaxBytes <= 0 || p.Cores <= 0 {
				t.Errorf("rate %d: %s used %.2f cores, %d bytes RSS: want both measured", r.Rate, p.Name, p.Cores, p.RSSMaxBytes)
			}
		}
		if p := r.Usage.Projection; p == nil || p.DocsPerSecond <= 0 || p.LagP99Ms <= 0 {
			t.Errorf("rate %d: projection %+v: want the embedded indexer's documents and lag", r.Rate, p)
		}
	}
	if res.Ifs == nil || res.Ifs.Succeeded != 30 || res.Ifs.TaskRunsPerExecution != 10 {
		t.Errorf("five-If run %+v: want 30 executions of 10 task runs each", res.Ifs)
	}
	if len(res.ForEach) != 2 {
		t.Fatalf("ForEach runs %+v: want 2", res.ForEach)
	}
	for _, f := range res.ForEach {
		if f.State != "SUCCESS" || f.TaskRuns != f.Items+1 || f.KafkaBytes <= 0 || f.BytesByTopic["execution-events"] <= 0 {
			t.Errorf("ForEach of %d: %+v: want SUCCESS, one task run per item and the ForEach's, bytes written to execution-events", f.Items, f)
		}
	}
	if svg, err := os.ReadFile(filepath.Join(out, "results.svg")); err != nil || !strings.Contains(string(svg), "<svg") {
		t.Errorf("results.svg: %v", err)
	}
	// A CPU profile of the server during each rate, gzipped protobuf.
	for _, rate := range []string{"600", "1200"} {
		prof, err := os.ReadFile(filepath.Join(out, "standalone-log-return-"+rate+".pprof"))
		if err != nil || len(prof) < 2 || prof[0] != 0x1f || prof[1] != 0x8b {
			t.Errorf("CPU profile at %s/min: %v (%d bytes): want a pprof file", rate, err, len(prof))
		}
	}
}

func TestBenchFlags(t *testing.T) {
	bin := kite(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "--brokers is required"},
		{[]string{"bench", "--brokers", "127.0.0.1:1", "--rates", "1000,x"}, `--rates: "x" is not a positive integer`},
		{[]string{"bench", "--brokers", "127.0.0.1:1", "--process", "executor"}, "want NAME=URL"},
		{[]string{"bench", "--brokers", "127.0.0.1:1", "--process", "kafka=ftp://x"}, "neither a PID nor an http(s) URL"},
		{[]string{"bench", "--brokers", "127.0.0.1:1", "--step", "0s"}, "--step must be positive"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Setenv("KITE_KAFKA_BROKERS", "")
			_, stderr, code := run(t, bin, tc.args...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q: want an error with %q", code, stderr, tc.want)
			}
		})
	}
}
