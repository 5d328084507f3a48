package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// repoRoot is the module's root, two folders above this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// goTool is the go command: $GO (the Makefile passes it) or go.
func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// buildKite builds cmd/kite once into dir.
func buildKite(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "kite")
	cmd := exec.CommandContext(t.Context(), goTool(), "build", "-o", bin, "./cmd/kite")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kite: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns 127.0.0.1:PORT with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// broker is the Apache Kafka of integration/kafka/kafka.sh, in a dir of the test.
type broker struct {
	script, dir, addr string
}

// startBroker starts a broker in dir and stops it (removing dir) when the test ends.
func startBroker(t *testing.T, dir string) *broker {
	t.Helper()
	b := &broker{script: filepath.Join(repoRoot(), "integration", "kafka", "kafka.sh"), dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			// kafka.sh stop removes the broker's dir: keep its logs beside the others.
			for _, name := range []string{"server.log", "stdout.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
					_ = os.WriteFile(filepath.Join(filepath.Dir(dir), "kafka-"+name), b, 0o644)
				}
			}
		}
		if out, err := exec.Command(b.script, "stop", b.dir).CombinedOutput(); err != nil {
			t.Errorf("kafka.sh stop: %v\n%s", err, out)
		}
	})
	out, err := b.run(t.Context(), "start")
	if err != nil {
		t.Fatalf("kafka.sh start: %v\n%s", err, out)
	}
	return b
}

// restart stops the broker (SIGTERM) and starts it again on the same
// address with its data (kafka.sh restart, which says why not SIGKILL); it
// returns once the broker serves again.
func (b *broker) restart(ctx context.Context) (string, error) { return b.run(ctx, "restart") }

func (b *broker) run(ctx context.Context, verb string) (string, error) {
	cmd := exec.CommandContext(ctx, b.script, verb, b.dir)
	cmd.Env = append(os.Environ(), "GO="+goTool())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), err
	}
	_, addr, ok := strings.Cut(strings.TrimSpace(string(out)), "KAFKA_BROKERS=")
	if !ok {
		return string(out), fmt.Errorf("kafka.sh %s printed no KAFKA_BROKERS=", verb)
	}
	if b.addr != "" && addr != b.addr {
		return string(out), fmt.Errorf("kafka.sh %s: the broker came back on %s, not %s", verb, addr, b.addr)
	}
	b.addr = addr
	return string(out), nil
}

// slot is one role process of the cluster: `kite server ROLE`, started again
// after each kill. Its output goes to its log file, appended across starts.
type slot struct {
	name    string // executor, worker-1 …
	role    string
	env     []string
	logPath string
	health  string // its health_addr

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed once the current process exited
	killing bool          // the current process is being killed by the driver
	starts  int
	kills   int
	crashes int // exits the driver did not cause
}

// cluster runs the role processes.
type cluster struct {
	t      *testing.T
	bin    string
	slots  []*slot // in start order
	byName map[string]*slot
	log    func(format string, args ...any)

	mu       sync.Mutex
	stopping bool
	crashes  []string // "TIME slot: exit status" of processes that exited on their own
}

// startAll starts every slot's process.
func (c *cluster) startAll() error {
	for _, s := range c.slots {
		if err := c.start(s); err != nil {
			return err
		}
	}
	return nil
}

// start starts the slot's process unless it runs already.
func (c *cluster) start(s *slot) error {
	c.mu.Lock()
	stopping := c.stopping
	c.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if stopping || s.running() {
		return nil
	}
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, "server", s.role)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = f, f
	s.starts++
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("starting %s: %w", s.name, err)
	}
	fmt.Fprintf(f, "\n===== chaos: kite server %s, start #%d, pid %d, at %s =====\n",
		s.role, s.starts, cmd.Process.Pid, time.Now().Format(time.RFC3339Nano))
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	go c.reap(s, cmd, f, done)
	return nil
}

// reap waits for a process to exit; one that exits without being killed by
// the driver is a crash: it is logged and started again a second later, as
// Kubernetes would.
func (c *cluster) reap(s *slot, cmd *exec.Cmd, f *os.File, done chan struct{}) {
	err := cmd.Wait()
	s.mu.Lock()
	crashed := !s.killing
	if crashed {
		s.crashes++
	}
	s.mu.Unlock()
	fmt.Fprintf(f, "===== chaos: pid %d exited at %s: %v (killed by the driver: %t) =====\n",
		cmd.Process.Pid, time.Now().Format(time.RFC3339Nano), err, !crashed)
	_ = f.Close()
	close(done)
	c.mu.Lock()
	stopping := c.stopping
	if crashed && !stopping {
		c.crashes = append(c.crashes, fmt.Sprintf("%s %s (pid %d): %v", time.Now().Format("15:04:05"), s.name, cmd.Process.Pid, err))
	}
	c.mu.Unlock()
	if !crashed || stopping {
		return
	}
	c.log("%s (pid %d) exited on its own (%v); starting it again in 1s", s.name, cmd.Process.Pid, err)
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	<-timer.C
	if err := c.start(s); err != nil {
		c.log("starting %s again: %v", s.name, err)
	}
}

// running reports whether the slot's process runs; s.mu is held.
func (s *slot) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to the slot's process and waits until it is gone. It
// reports the pid killed, 0 when nothing ran.
func (c *cluster) kill(s *slot) int {
	s.mu.Lock()
	if !s.running() {
		s.mu.Unlock()
		return 0
	}
	s.killing = true
	s.kills++
	pid, done := s.cmd.Process.Pid, s.done
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	s.mu.Unlock()
	<-done
	s.mu.Lock()
	s.killing = false
	s.mu.Unlock()
	return pid
}

// stopAll kills every process for good.
func (c *cluster) stopAll() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	for _, s := range c.slots {
		c.kill(s)
	}
}

// waitReady waits until every slot's process runs and its health service
// says SERVING.
func (c *cluster) waitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for _, s := range c.slots {
		if err := c.start(s); err != nil {
			return err
		}
		if err := waitServing(ctx, s.health); err != nil {
			return fmt.Errorf("%s is not ready after %s: %w", s.name, within, err)
		}
	}
	return nil
}

// waitServing polls the standard gRPC health service of a process until it
// answers SERVING for "" (every module started).
func waitServing(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	client := healthpb.NewHealthClient(conn)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := client.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("health %s", resp.GetStatus())
		}
		last = err
		select {
		case <-ctx.Done():
			return last
		case <-tick.C:
		}
	}
}

// counts returns, per slot, its starts, kills and crashes.
func (c *cluster) counts() map[string][3]int {
	out := map[string][3]int{}
	for _, s := range c.slots {
		s.mu.Lock()
		out[s.name] = [3]int{s.starts, s.kills, s.crashes}
		s.mu.Unlock()
	}
	return out
}

// crashList returns the processes that exited on their own.
func (c *cluster) crashList() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.crashes...)
}

// logTails logs the last lines of every process's log, and of the broker's.
func (c *cluster) logTails(brokerDir string, lines int) {
	c.t.Helper()
	paths := []string{}
	for _, s := range c.slots {
		paths = append(paths, s.logPath)
	}
	paths = append(paths, filepath.Join(brokerDir, "server.log"))
	for _, p := range paths {
		c.t.Logf("--- last %d lines of %s ---\n%s", lines, p, tail(p, lines))
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }()
	var ring []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		ring = append(ring, sc.Text())
		if len(ring) > n {
			ring = ring[1:]
		}
	}
	return strings.Join(ring, "\n")
}
