package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// Phase 3 runs the cases of phase 2 through the gRPC API of a Kite server
// (serverrun.go runs one case). This file holds the phase itself: the server
// it starts or connects to, the flows it applies, and the report.

// How long the phase waits for a server to start and to answer.
const (
	serverStartTimeout = 2 * time.Minute
	serverStopTimeout  = 30 * time.Second
	apiCallTimeout     = 30 * time.Second
)

type serverOptions struct {
	Dir     string // the corpus
	Kite    string // the kite binary, for -server auto
	Server  string // "auto", or host:port of a running server
	Timeout time.Duration
	Workers int
	Report  string // JSON report path; empty for none
	// FlowTest holds phase 2's results, to compare with; nil when phase 2
	// did not run.
	FlowTest []execResult
}

// serverReport is phase 3's JSON report: phase 2's, with what only the
// server has.
type serverReport struct {
	execReport
	Server      string       `json:"server,omitempty"`
	NotApplied  []notApplied `json:"not_applied"`
	Differences []difference `json:"differences"`
}

// notApplied is a flow file FlowService.Apply refused.
type notApplied struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// difference is a run whose verdict differs between phase 2 and phase 3.
type difference struct {
	File     string   `json:"file"`
	Scenario int      `json:"scenario"`
	FlowTest string   `json:"flow_test"` // passed, failed or skipped
	Server   string   `json:"server"`
	Reasons  []string `json:"reasons"` // why the server's run failed or was skipped, else phase 2's
}

// appliedFlow is the revision Apply stored for a flow file.
type appliedFlow struct {
	Namespace string
	ID        string
	Revision  int32
}

// serverCorpus is phase 3. It returns false when a run failed or the server
// could not be used; an error only when the corpus cannot be read.
func serverCorpus(ctx context.Context, w io.Writer, opts serverOptions) (bool, error) {
	cases, err := loadCases(opts.Dir)
	if err != nil {
		return false, err
	}
	addr, what := opts.Server, "kite server at "+opts.Server
	if opts.Server == "auto" {
		env, conflicts := serverEnv(cases)
		for _, c := range conflicts {
			fmt.Fprintf(w, "server: environment %s\n", c)
		}
		srv, err := startServer(ctx, opts.Kite, env, serverLogPath(opts.Report))
		if err != nil {
			return false, notRun(w, opts, fmt.Sprintf("could not start `%s server standalone`: %v", opts.Kite, err))
		}
		defer func() {
			srv.stop()
			// Wait reports the interrupt that stopped it as context.Canceled
			// when it then exited with status 0.
			if srv.exitErr != nil && !errors.Is(srv.exitErr, context.Canceled) {
				fmt.Fprintf(w, "server: it did not stop cleanly (%v): %s\n", srv.exitErr, srv.lastLog)
			}
		}()
		addr, what = srv.addr, fmt.Sprintf("`kite server standalone` started at %s (log: %s)", srv.addr, srv.logPath)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false, notRun(w, opts, fmt.Sprintf("connecting to %s: %v", addr, err))
	}
	defer func() { _ = conn.Close() }()
	if err := waitServing(ctx, conn); err != nil {
		return false, notRun(w, opts, fmt.Sprintf("%s does not serve: %v", addr, err))
	}

	s := &session{
		dir: opts.Dir, timeout: opts.Timeout,
		flows: kitev1.NewFlowServiceClient(conn), execs: kitev1.NewExecutionServiceClient(conn),
	}
	refused, err := s.applyFlows(ctx)
	if err != nil {
		return false, notRun(w, opts, err.Error())
	}
	unsupported := 0
	for _, n := range refused {
		if strings.Contains(n.Reason, "not supported yet") {
			unsupported++
			continue
		}
		fmt.Fprintf(w, "NOT APPLIED %s: %s\n", n.File, n.Reason)
	}
	fmt.Fprintf(w, "server: %s; %d/%d flows applied (%d refused as not supported yet",
		what, len(s.applied), len(s.applied)+len(refused), unsupported)
	if other := len(refused) - unsupported; other > 0 {
		fmt.Fprintf(w, ", %d for another reason, listed above", other)
	}
	fmt.Fprintln(w, ")")
	if opts.Server != "auto" && slices.ContainsFunc(cases, func(c execCase) bool { return len(c.Env) > 0 }) {
		fmt.Fprintln(w, "server: some runs need environment variables, which only -server auto gives the server")
	}

	locks := &flowLocks{}
	results := runCases(ctx, opts.Workers, cases, func(ctx context.Context, c execCase) execResult {
		// Runs of one flow could meet each other's concurrency limits on
		// one server, where phase 2 runs each alone: they take turns.
		defer locks.lock(c.Flow)()
		return s.runCase(ctx, c)
	})
	report := serverReport{execReport: summarise(w, "server", results), Server: what, NotApplied: refused, Differences: []difference{}}
	if report.NotApplied == nil {
		report.NotApplied = []notApplied{}
	}
	if opts.FlowTest != nil {
		report.Differences = compareVerdicts(opts.FlowTest, results)
		for _, d := range report.Differences {
			label := execResult{File: d.File, Scenario: d.Scenario}.label()
			fmt.Fprintf(w, "DIFF %s: kite flow test %s, server %s: %s\n", label, d.FlowTest, d.Server, strings.Join(d.Reasons, "; "))
		}
		fmt.Fprintf(w, "server: %d runs with another verdict than kite flow test's\n", len(report.Differences))
	}
	if err := writeReport(opts.Report, report); err != nil {
		return false, err
	}
	return report.Passed == report.Total, nil
}

// notRun reports a phase that could not run; it counts as a failure.
func notRun(w io.Writer, opts serverOptions, why string) error {
	fmt.Fprintf(w, "server: not run, %s\n", why)
	return writeReport(opts.Report, serverReport{
		execReport: execReport{Skipped: why, Flows: []execResult{}},
		NotApplied: []notApplied{}, Differences: []difference{},
	})
}

// serverLogPath is where -server auto writes the server's output: beside
// the report, or in the data dir (removed at the end) when there is none.
func serverLogPath(report string) string {
	if report == "" {
		return ""
	}
	return strings.TrimSuffix(report, filepath.Ext(report)) + ".log"
}

// serverEnv merges the environment of every case, which phase 2 gives each
// `kite flow test` and phase 3 can only give the whole server. It also
// returns the variables that cases set to different values (the first wins).
func serverEnv(cases []execCase) (map[string]string, []string) {
	env := map[string]string{}
	var conflicts []string
	for _, c := range cases {
		for _, k := range slices.Sorted(maps.Keys(c.Env)) {
			if v, ok := env[k]; ok && v != c.Env[k] {
				conflicts = append(conflicts, fmt.Sprintf("%s is %q for %s but %q for an earlier run; the server gets the first", k, c.Env[k], c.Flow, v))
				continue
			}
			env[k] = c.Env[k]
		}
	}
	return env, conflicts
}

// serverProcess is a `kite server standalone` started by -server auto.
type serverProcess struct {
	addr    string
	logPath string
	dataDir string
	cancel  context.CancelFunc
	exited  chan error // receives cmd.Wait's error, once
	log     *os.File
	lastLog string // the last lines of the log, once stopped
	exitErr error  // cmd.Wait's error, once stopped
}

// startServer starts `kite server standalone` on free ports with a fresh
// data dir and env added to this process's environment (less its KITE_
// variables), and waits until it says it is running. Its output goes to logPath (in the data dir when
// empty).
func startServer(ctx context.Context, kite string, env map[string]string, logPath string) (*serverProcess, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "kite-conformance-server-")
	if err != nil {
		return nil, fmt.Errorf("creating the data dir: %w", err)
	}
	if logPath == "" {
		logPath = filepath.Join(dataDir, "server.log")
	} else if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, fmt.Errorf("creating the log's folder: %w", err)
	}
	log, err := os.Create(logPath)
	if err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, fmt.Errorf("creating the server's log: %w", err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(runCtx, kite, "server", "standalone", "--data-dir", filepath.Join(dataDir, "data"))
	// Stopping is an interrupt, as Ctrl-C: the server stops its roles in
	// order. One that has not stopped within serverStopTimeout is killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = serverStopTimeout
	// The server is this phase's own: no KITE_ variable of this process
	// (KITE_CONFIG, KITE_KAFKA_BROKERS of bin/kafka.env…) reaches it.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "KITE_") })
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Env = append(cmd.Env, "KITE_API_GRPC_ADDR="+grpcAddr, "KITE_API_HTTP_ADDR="+httpAddr)
	running := &lineWatcher{w: log, want: []byte("Kite is running"), seen: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = running, log
	if err := cmd.Start(); err != nil {
		cancel()
		_ = log.Close()
		_ = os.RemoveAll(dataDir)
		return nil, err
	}
	p := &serverProcess{addr: grpcAddr, logPath: logPath, dataDir: dataDir, cancel: cancel, exited: make(chan error, 1), log: log}
	go func() { p.exited <- cmd.Wait() }() // stop waits for it

	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case <-running.seen:
		return p, nil
	case err := <-p.exited:
		p.exited <- err
		p.stop() // the log is read after the process wrote its last line, and before it is removed with the data dir
		return nil, fmt.Errorf("it exited (%w) before it was running: %s", err, p.lastLog)
	case <-timer.C:
		p.stop()
		return nil, fmt.Errorf("it was not running after %s: %s", serverStartTimeout, p.lastLog)
	}
}

// stop interrupts the server, waits for it to exit and removes its data;
// p.lastLog keeps the end of its log.
func (p *serverProcess) stop() {
	p.cancel()
	p.exitErr = <-p.exited
	_ = p.log.Close()
	p.lastLog = lastLines(p.logPath, 5)
	_ = os.RemoveAll(p.dataDir)
}

// freeAddr returns a localhost address with a port free now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// lineWatcher writes to w and closes seen once what it wrote holds want.
type lineWatcher struct {
	w    io.Writer
	want []byte
	seen chan struct{}

	mu   sync.Mutex
	buf  []byte
	done bool
}

func (l *lineWatcher) Write(p []byte) (int, error) {
	l.mu.Lock()
	if !l.done {
		l.buf = append(l.buf, p...)
		if bytes.Contains(l.buf, l.want) {
			l.done, l.buf = true, nil
			close(l.seen)
		}
	}
	l.mu.Unlock()
	return l.w.Write(p)
}

// lastLines returns the last n non-blank lines of a file, for an error.
func lastLines(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for line := range strings.Lines(string(raw)) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}

// waitServing waits until the server's gRPC health says SERVING.
func waitServing(ctx context.Context, conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, serverStartTimeout)
	defer cancel()
	health := healthpb.NewHealthClient(conn)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		callCtx, callCancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := health.Check(callCtx, &healthpb.HealthCheckRequest{})
		callCancel()
		switch {
		case err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
			return nil
		case err == nil:
			last = fmt.Errorf("health %s", resp.GetStatus())
		default:
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not serving after %s: %w", serverStartTimeout, last)
		case <-tick.C:
		}
	}
}

// applyFlows applies every flow file of the corpus, and returns those
// refused. It fails only when the flows cannot be read.
func (s *session) applyFlows(ctx context.Context) ([]notApplied, error) {
	dir := filepath.Join(s.dir, "flows")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the flows: %w", err)
	}
	s.applied = map[string]appliedFlow{}
	s.refused = map[string]string{}
	var refused []notApplied
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (!strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml")) {
			continue
		}
		file := filepath.Join("flows", name)
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading the flows: %w", err)
		}
		callCtx, cancel := context.WithTimeout(ctx, apiCallTimeout)
		resp, err := s.flows.Apply(callCtx, &kitev1.FlowServiceApplyRequest{Source: string(src)})
		cancel()
		if err != nil {
			reason := describe(err)
			s.refused[file] = reason
			refused = append(refused, notApplied{File: file, Reason: reason})
			continue
		}
		f := resp.GetFlow()
		s.applied[file] = appliedFlow{Namespace: f.GetNamespace(), ID: f.GetId(), Revision: f.GetRevision()}
	}
	return refused, nil
}

// describe renders a gRPC error on one line: its code, its message and the
// field violations of a google.rpc.BadRequest the message does not show.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	text := fmt.Sprintf("%s: %s", st.Code(), st.Message())
	var extra []string
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			if !strings.Contains(text, v.GetDescription()) {
				extra = append(extra, v.GetField()+": "+v.GetDescription())
			}
		}
	}
	if len(extra) > 0 {
		text += " (" + strings.Join(extra, "; ") + ")"
	}
	return firstLines(text, 3)
}

// flowLocks hands out one lock per flow.
type flowLocks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// lock locks the flow's lock and returns its unlock.
func (l *flowLocks) lock(flow string) func() {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*sync.Mutex{}
	}
	m, ok := l.locks[flow]
	if !ok {
		m = &sync.Mutex{}
		l.locks[flow] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// verdictOf names how a run ended: passed, failed or skipped.
func verdictOf(r execResult) string {
	switch {
	case r.Skipped != "":
		return "skipped"
	case r.Passed:
		return "passed"
	default:
		return "failed"
	}
}

// compareVerdicts lists the runs of server whose verdict differs from the
// same run's in flowTest, in server's order.
func compareVerdicts(flowTest, server []execResult) []difference {
	before := make(map[string]execResult, len(flowTest))
	for _, r := range flowTest {
		before[r.label()] = r
	}
	diffs := []difference{}
	for _, r := range server {
		b, ok := before[r.label()]
		if !ok || verdictOf(b) == verdictOf(r) {
			continue
		}
		d := difference{File: r.File, Scenario: r.Scenario, FlowTest: verdictOf(b), Server: verdictOf(r)}
		switch {
		case r.Skipped != "":
			d.Reasons = []string{r.Skipped}
		case !r.Passed:
			d.Reasons = r.Reasons
		case b.Skipped != "":
			d.Reasons = []string{"kite flow test: " + b.Skipped}
		default:
			d.Reasons = prefixed("kite flow test: ", b.Reasons)
		}
		diffs = append(diffs, d)
	}
	return diffs
}

func prefixed(prefix string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = prefix + s
	}
	return out
}
