package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// Issue 7's file flow: a FILE input copied by a shell task to an output
// file.
const (
	filesFlowID   = "file-copy"
	filesFlowYAML = `id: file-copy
namespace: kite.bench
inputs:
  - id: data
    type: FILE
tasks:
  - id: copy
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      data.bin: "{{ inputs.data }}"
    outputFiles: ["out.bin"]
    commands:
      - cp data.bin out.bin
`
)

// rssLimit is how much the server's resident memory may grow while a file
// goes through it: bounded buffers, never the whole file.
const rssLimit = 64 << 20

// warmupSize is the file of the warm-up execution, which is not measured.
const warmupSize = 64 << 10

// fileOptions are the file benchmark's settings, from the environment.
type fileOptions struct {
	size     int64         // KITE_BENCH_FILE_SIZE: bytes of the file, with an optional unit (1GiB)
	timeout  time.Duration // KITE_BENCH_FILE_TIMEOUT: the longest one phase may take (30m)
	logLevel string        // KITE_BENCH_LOG_LEVEL: the server's log level (warn)
	out      string        // KITE_BENCH_OUT: the results file, appended to (bin/bench-files.txt); the server's logs beside it (bin/bench-files-local.log)
}

func loadFileOptions(t *testing.T) fileOptions {
	t.Helper()
	o := fileOptions{size: 1 << 30, timeout: 30 * time.Minute, logLevel: "warn",
		out: filepath.Join(moduleRoot(t), "bin", "bench-files.txt")}
	var err error
	if v := strings.TrimSpace(os.Getenv("KITE_BENCH_FILE_SIZE")); v != "" {
		if o.size, err = parseSize(v); err != nil {
			t.Fatalf("KITE_BENCH_FILE_SIZE=%q: %v", v, err)
		}
	}
	if v := strings.TrimSpace(os.Getenv("KITE_BENCH_FILE_TIMEOUT")); v != "" {
		if o.timeout, err = time.ParseDuration(v); err != nil || o.timeout <= 0 {
			t.Fatalf("KITE_BENCH_FILE_TIMEOUT=%q: a positive duration (30m)", v)
		}
	}
	if v := strings.TrimSpace(os.Getenv("KITE_BENCH_LOG_LEVEL")); v != "" {
		o.logLevel = v
	}
	if v := os.Getenv("KITE_BENCH_OUT"); v != "" {
		o.out = v
	}
	return o
}

// parseSize reads 1073741824, 64MiB, 1GiB, 500MB, 1G (binary units unless
// the unit says otherwise: KB, MB and GB are powers of 1000).
func parseSize(s string) (int64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	units := map[string]float64{"": 1, "B": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20,
		"G": 1 << 30, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9}
	mult, ok := units[unit]
	n, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || n <= 0 {
		return 0, errors.New("a positive size: bytes, or a number with B, KiB, MiB, GiB (K, M, G) or KB, MB, GB")
	}
	return int64(n * mult), nil
}

// TestFiles is issue 7's performance requirement: a file (1 GiB) goes
// through a FILE input (kite execution run --input data=@file), a shell task
// that copies it to an output file, and a download (kite execution files
// --download), on a `kite server standalone` process with local storage,
// then with GCS storage on fake-gcs-server. It reports each phase's
// throughput and how much the server's resident memory grew: a file must
// stream, never sit whole in memory (under 64 MiB of growth). It asserts
// that the file comes back whole, and no speed nor memory bound: those are
// reported (PASS/FAIL for the memory). Only with KITE_BENCH=1 (`make
// bench-files`); the gcs subtest needs integration/gcs/with-gcs.sh.
// KITE_BENCH_* variables tune it (fileOptions), KITE_<SECTION>_<FIELD> ones
// the server (KITE_STORAGE_GCS_CHUNK_SIZE=4194304).
func TestFiles(t *testing.T) {
	if os.Getenv("KITE_BENCH") != "1" {
		t.Skip("the file benchmark moves gigabytes: KITE_BENCH=1 go test -run TestFiles -v ./integration/bench (make bench-files)")
	}
	o := loadFileOptions(t)
	dir := t.TempDir()
	kite := buildKite(t, dir)
	input := writeInput(t, filepath.Join(dir, "data.bin"), o.size)
	small := writeInput(t, filepath.Join(dir, "small.bin"), warmupSize)
	t.Logf("input %s: %d bytes, sha256 %s", input.path, input.size, input.sum)

	t.Run("local", func(t *testing.T) {
		benchFiles(t, o, kite, "local storage (a folder of the server's data dir)", input, small, nil, 0)
	})
	t.Run("gcs", func(t *testing.T) {
		addr := strings.TrimSpace(os.Getenv("KITE_TEST_GCS_EMULATOR"))
		if addr == "" {
			const how = "run under integration/gcs/with-gcs.sh (make bench-files does)"
			if os.Getenv("KITE_REAL_GCS") == "1" {
				t.Fatal("KITE_TEST_GCS_EMULATOR is empty though with-gcs.sh ran: " + how)
			}
			t.Skip("no fake-gcs-server: KITE_TEST_GCS_EMULATOR is unset; " + how)
		}
		bucket := createBucket(t, addr)
		env := []string{"KITE_STORAGE_TYPE=gcs", "KITE_STORAGE_GCS_BUCKET=" + bucket, "STORAGE_EMULATOR_HOST=" + addr}
		benchFiles(t, o, kite, "GCS storage on fake-gcs-server "+addr+" (filesystem backend)", input, small, env, fakeGCSPID(addr))
	})
}

// buildKite builds cmd/kite into dir.
func buildKite(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "kite")
	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, "./cmd/kite")
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kite: %v\n%s", err, out)
	}
	return bin
}

// inputFile is a file to send and its digest.
type inputFile struct {
	path string
	size int64
	sum  string // sha256, hex
}

// writeInput writes size bytes that do not compress, fast: a random MiB
// repeated, each copy starting with its index so that no two are alike.
func writeInput(t *testing.T, path string, size int64) inputFile {
	t.Helper()
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	for i, left := uint64(0), size; left > 0; i++ {
		binary.LittleEndian.PutUint64(block, i)
		n := min(left, int64(len(block)))
		if _, err := w.Write(block[:n]); err != nil {
			_ = f.Close()
			t.Fatalf("writing %s: %v", path, err)
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	return inputFile{path: path, size: size, sum: hex.EncodeToString(h.Sum(nil))}
}

// digest is the size and sha256 of a file, read as a stream.
func digest(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// The measured phases.
const (
	phaseUpload = iota
	phaseRun
	phaseDownload
	numPhases
)

var phaseNames = [numPhases]string{"upload", "run", "download"}

// filesResult is what one backend measured.
type filesResult struct {
	*transferred
	name     string
	size     int64
	baseline int64 // the server's VmRSS after the warm-up
	baseHeap int64 // its Go heap in use then
	baseIdle int64 // its idle heap not returned to the OS then
	peak     int64 // its VmHWM at the end
	hwmReset bool  // VmHWM was reset after the warm-up (clear_refs)
	samples  *sampler
}

// benchFiles runs a server with env (storage settings), a warm-up
// execution, then the measured one, and reports them.
func benchFiles(t *testing.T, o fileOptions, kite, name string, input, small inputFile, env []string, gcsPID int) {
	logPath := strings.TrimSuffix(o.out, ".txt") + "-" + t.Name()[strings.LastIndexByte(t.Name(), '/')+1:] + ".log"
	srv := startKite(t, kite, o.logLevel, logPath, env)
	cli := &kiteCLI{bin: kite, server: srv.grpc, timeout: o.timeout, serverPID: srv.pid}
	flow := filepath.Join(t.TempDir(), "flow.yaml")
	if err := os.WriteFile(flow, []byte(filesFlowYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.run(t, "flow", "apply", flow); err != nil {
		t.Fatalf("applying the flow: %v", err)
	}

	// The warm-up counts what is set up lazily (gRPC streams, the storage
	// client, the worker's first task) in the baseline.
	if _, err := transfer(t, cli, small, nil); err != nil {
		t.Fatalf("warm-up execution: %v", err)
	}
	res := &filesResult{name: name, size: input.size}
	res.baseline = procStatus(srv.pid, "VmRSS")
	res.baseHeap, res.baseIdle = heapStats(t.Context(), "http://"+srv.http+"/metrics")
	// Writing 5 to clear_refs resets VmHWM to the current RSS, so that it
	// is the peak since the baseline and not since the start.
	res.hwmReset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", srv.pid), []byte("5"), 0o600) == nil

	s := newSampler(srv.pid, gcsPID, "http://"+srv.http+"/metrics")
	stop := s.start()
	res.samples = s
	ex, err := transfer(t, cli, input, func(p int) { s.setPhase(p) })
	stop()
	res.peak = procStatus(srv.pid, "VmHWM")
	if err != nil {
		t.Fatalf("the %s file: %v", sizeText(input.size), err)
	}
	res.transferred = ex
	if !ex.contentOK {
		t.Errorf("the downloaded out.bin is not the input: %s", ex.contentNote)
	}

	text := res.String(describeHost(t, kite))
	t.Log("\n" + text)
	if err := appendFile(o.out, text); err != nil {
		t.Errorf("writing %s: %v", o.out, err)
	} else {
		t.Logf("results appended to %s", o.out)
	}
}

// transferred is one file's way through an execution.
type transferred struct {
	took        [numPhases]time.Duration
	cpu         [numPhases]float64 // the server's CPU seconds
	clientRSS   [numPhases]int64   // the kite command's peak RSS
	task        time.Duration      // the shell task, RUNNING to its end, on the server's clock
	contentOK   bool               // out.bin is the input
	contentNote string
}

// transfer sends in through an execution of the flow and downloads its
// out.bin, calling phase (when not nil) as each phase starts.
func transfer(t *testing.T, cli *kiteCLI, in inputFile, phase func(int)) (*transferred, error) {
	t.Helper()
	var x transferred
	step := func(p int, fn func() (cliResult, error)) (cliResult, error) {
		if phase != nil {
			phase(p)
		}
		before := readProc(cli.serverPID).cpu
		r, err := fn()
		x.took[p], x.clientRSS[p] = r.took, r.maxRSS
		x.cpu[p] = readProc(cli.serverPID).cpu - before
		return r, err
	}

	// Upload: the command returns once CreateWithFiles has stored the file
	// and created the execution.
	r, err := step(phaseUpload, func() (cliResult, error) {
		return cli.run(t, "execution", "run", "kite.bench", filesFlowID, "--input", "data=@"+in.path, "-o", "json")
	})
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	var created kitev1.Execution
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(r.out, &created); err != nil {
		return nil, fmt.Errorf("reading the execution created: %w\n%s", err, r.out)
	}
	id := created.GetId()

	// Run: from the upload's end until the execution's end is seen.
	if _, err := step(phaseRun, func() (cliResult, error) { return cli.run(t, "execution", "watch", id) }); err != nil {
		return nil, fmt.Errorf("execution %s: %w", id, err)
	}
	ended := new(kitev1.Execution)
	if err := cli.runJSON(t, ended, "execution", "get", id, "-o", "json"); err != nil {
		return nil, err
	}
	for _, tr := range ended.GetTaskRuns() {
		if tr.GetTaskId() != "copy" {
			continue
		}
		var start time.Time
		for _, h := range tr.GetHistory() {
			if h.GetState() == kitev1.State_STATE_RUNNING && start.IsZero() {
				start = h.GetTime().AsTime()
			}
		}
		if hs := tr.GetHistory(); len(hs) > 0 && !start.IsZero() {
			x.task = hs[len(hs)-1].GetTime().AsTime().Sub(start)
		}
	}

	// Download: only out.bin, not the input kept beside it.
	files := new(kitev1.FileServiceListResponse)
	if err := cli.runJSON(t, files, "execution", "files", id, "-o", "json"); err != nil {
		return nil, err
	}
	var name string
	for _, f := range files.GetFiles() {
		if strings.HasPrefix(f.GetName(), "tasks/copy/") && strings.HasSuffix(f.GetName(), "/out.bin") {
			name = f.GetName()
		}
	}
	if name == "" {
		return nil, fmt.Errorf("execution %s has no out.bin of task copy: %v", id, files.GetFiles())
	}
	dir, err := os.MkdirTemp(filepath.Dir(in.path), "download-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }() // a copy of the file less on disk
	if _, err := step(phaseDownload, func() (cliResult, error) {
		return cli.run(t, "execution", "files", id, "--download", "--file", name, "--dir", dir)
	}); err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	n, sum, err := digest(filepath.Join(dir, id, filepath.FromSlash(name)))
	if err != nil {
		return nil, fmt.Errorf("reading the download: %w", err)
	}
	x.contentOK = n == in.size && sum == in.sum
	x.contentNote = fmt.Sprintf("%d bytes, sha256 %s (input: %d bytes, sha256 %s)", n, sum, in.size, in.sum)
	return &x, nil
}

// kiteCLI runs the kite command against a server.
type kiteCLI struct {
	bin, server string
	timeout     time.Duration
	serverPID   int
}

// cliResult is one command's output, duration and peak RSS.
type cliResult struct {
	out    []byte
	took   time.Duration
	maxRSS int64
}

func (c *kiteCLI) run(t *testing.T, args ...string) (cliResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), c.timeout)
	defer cancel()
	args = append(args, "--server", c.server)
	cmd := exec.CommandContext(ctx, c.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := cliResult{out: stdout.Bytes(), took: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.maxRSS = ru.Maxrss << 10 // KiB on Linux
		}
	}
	if err != nil {
		return r, fmt.Errorf("kite %s: %w\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return r, nil
}

// runJSON runs a command whose -o json output is one message.
func (c *kiteCLI) runJSON(t *testing.T, m proto.Message, args ...string) error {
	t.Helper()
	r, err := c.run(t, args...)
	if err != nil {
		return err
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(r.out, m); err != nil {
		return fmt.Errorf("kite %s: reading its output: %w\n%s", strings.Join(args, " "), err, r.out)
	}
	return nil
}

// kiteServer is a `kite server standalone` child process.
type kiteServer struct {
	pid        int
	grpc, http string
}

// startKite starts `kite server standalone` in a temp dir, on free ports of
// 127.0.0.1, with the environment's KITE_<SECTION>_<FIELD> overrides (to
// try a setting: KITE_STORAGE_GCS_CHUNK_SIZE=8388608) and then env's, its
// standard error to logPath, and waits until it prints where it listens. It
// stops it (SIGTERM) at cleanup.
func startKite(t *testing.T, bin, logLevel, logPath string, env []string) *kiteServer {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", "standalone", "--data-dir", filepath.Join(dir, "data"))
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "KITE_KAFKA_BROKERS", "KITE_CONFIG", "STORAGE_EMULATOR_HOST": // the embedded broker, env's storage
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "KITE_API_GRPC_ADDR=127.0.0.1:0", "KITE_API_HTTP_ADDR=127.0.0.1:0", "KITE_METRICS_ADDR=",
		"KITE_LOG_LEVEL="+logLevel)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kite server: %v", err)
	}
	_ = logFile.Close() // the child has its own
	tail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}

	// The server prints "gRPC API  ADDR" and "HTTP  http://ADDR …" once
	// started; stdout is read to its end, then the process waited for.
	addrs := make(chan [2]string, 1)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var grpcAddr string
		sent := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) >= 3 && f[0] == "gRPC" && f[1] == "API":
				grpcAddr = f[2]
			case len(f) >= 2 && f[0] == "HTTP" && grpcAddr != "" && !sent:
				addrs <- [2]string{grpcAddr, strings.TrimPrefix(f[1], "http://")}
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("kite server stopped with %v; its log ends with:\n%s", err, tail())
			}
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			err := <-exited
			t.Errorf("kite server did not stop within a minute of SIGTERM; killed (%v). Its log ends with:\n%s", err, tail())
		}
	})
	select {
	case a := <-addrs:
		t.Logf("kite server standalone (pid %d) on %s, log in %s", cmd.Process.Pid, a[0], logPath)
		return &kiteServer{pid: cmd.Process.Pid, grpc: a[0], http: a[1]}
	case err := <-exited:
		exited <- err
		t.Fatalf("kite server exited while starting (%v):\n%s", err, tail())
	case <-time.After(3 * time.Minute):
		t.Fatalf("kite server did not start within 3 minutes:\n%s", tail())
	}
	return nil
}

// sampler reads, every 100 ms, the server's VmRSS and fake-gcs-server's,
// and every 500 ms the Go heap in use of the server's /metrics, keeping the
// highest of each phase.
type sampler struct {
	pid, gcsPID int
	metricsURL  string

	mu      sync.Mutex
	phase   int
	rss     [numPhases]int64 // the server's highest VmRSS
	gcs     [numPhases]int64 // fake-gcs-server's
	heap    [numPhases]int64 // go_memstats_heap_inuse_bytes
	samples int
}

func newSampler(pid, gcsPID int, metricsURL string) *sampler {
	return &sampler{pid: pid, gcsPID: gcsPID, metricsURL: metricsURL}
}

func (s *sampler) setPhase(p int) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// start samples until the function it returns is called, which waits for
// the sampling goroutine to end.
func (s *sampler) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			rss := procStatus(s.pid, "VmRSS")
			var gcs, heap int64
			if s.gcsPID != 0 {
				gcs = procStatus(s.gcsPID, "VmRSS")
			}
			if n%5 == 0 {
				heap, _ = heapStats(ctx, s.metricsURL)
			}
			s.mu.Lock()
			p := s.phase
			s.rss[p], s.gcs[p], s.heap[p] = max(s.rss[p], rss), max(s.gcs[p], gcs), max(s.heap[p], heap)
			s.samples++
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// heapStats reads the server's Go heap in use, and its idle memory not yet
// returned to the OS (which the heap can grow into without growing the
// RSS); zeros when unknown.
func heapStats(ctx context.Context, metricsURL string) (inuse, idle int64) {
	m, err := scrape(ctx, metricsURL)
	if err != nil {
		return 0, 0
	}
	return int64(m["go_memstats_heap_inuse_bytes"]), int64(m["go_memstats_heap_idle_bytes"] - m["go_memstats_heap_released_bytes"])
}

// procStatus is a memory field of /proc/PID/status (VmRSS, VmHWM) in
// bytes; 0 when unknown.
func procStatus(pid int, field string) int64 {
	return kBField(fmt.Sprintf("/proc/%d/status", pid), field)
}

// fakeGCSPID finds the fake-gcs-server listening on addr (fake-gcs.sh's:
// -host and -port on its command line); 0 when there is none here.
func fakeGCSPID(addr string) int {
	_, port, _ := strings.Cut(addr, ":")
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) != "fake-gcs-server" {
			continue
		}
		for i := 1; i+1 < len(args); i++ {
			if args[i] == "-port" && args[i+1] == port {
				return pid
			}
		}
	}
	return 0
}

// createBucket creates a bucket of the test's own on the emulator, and
// empties and deletes it at cleanup (the files are big).
func createBucket(t *testing.T, addr string) string {
	t.Helper()
	name := fmt.Sprintf("kite-bench-%d", time.Now().UnixNano())
	base := "http://" + addr + "/storage/v1/b"
	do := func(ctx context.Context, method, u string, body []byte, into any) error {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, b)
		}
		if into != nil {
			return json.Unmarshal(b, into)
		}
		return nil
	}
	body, _ := json.Marshal(map[string]string{"name": name})
	if err := do(t.Context(), http.MethodPost, base+"?project=kite-bench", body, nil); err != nil {
		t.Fatalf("creating bucket %s on fake-gcs-server: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var list struct {
			Items []struct {
				Name string `json:"name"`
			} `json:"items"`
		}
		err := do(ctx, http.MethodGet, base+"/"+name+"/o", nil, &list)
		for _, o := range list.Items {
			if err == nil {
				err = do(ctx, http.MethodDelete, base+"/"+name+"/o/"+url.PathEscape(o.Name), nil, nil)
			}
		}
		if err == nil {
			err = do(ctx, http.MethodDelete, base+"/"+name, nil, nil)
		}
		if err != nil {
			t.Logf("deleting bucket %s: %v", name, err)
		}
	})
	return name
}

// describeHost is the line saying what was measured on what.
func describeHost(t *testing.T, kite string) string {
	t.Helper()
	version := "unknown"
	if out, err := exec.CommandContext(t.Context(), kite, "version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	m := ThisMachine()
	cpu, mem, load := "", "", ""
	if m.CPU != "" {
		cpu = " (" + m.CPU + ")"
	}
	if m.MemoryBytes > 0 {
		mem = fmt.Sprintf(", %s RAM (%s available)", sizeText(m.MemoryBytes), sizeText(kBField("/proc/meminfo", "MemAvailable")))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = ", load " + strings.Join(f[:3], " ")
		}
	}
	return fmt.Sprintf("%s, commit %s, %s; %s/%s, %d CPUs%s%s%s; test %s", time.Now().Format(time.RFC3339),
		gitDescribe(t.Context()), version, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu, mem, load, runtime.Version())
}

func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

func (r *filesResult) String(host string) string {
	var b strings.Builder
	rate := func(d time.Duration) string {
		if d <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(r.size)/(1<<20)/d.Seconds())
	}
	orDash := func(n int64) string {
		if n <= 0 {
			return "-"
		}
		return mib(n)
	}
	fmt.Fprintf(&b, "== Kite files: %s through a FILE input, a shell task (cp) to an output file, and a download; %s\n", sizeText(r.size), r.name)
	fmt.Fprintf(&b, "%s\n", host)
	b.WriteString("phases: upload = kite execution run --input data=@file (until CreateWithFiles returns); run = kite execution watch until the end;\n" +
		"download = kite execution files --download --file <out.bin>. Memory in MiB; server = kite server standalone (every role, embedded broker)\n\n")
	s := r.samples
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&b, "%-11s %9s %8s %10s %16s %15s %12s %13s\n", "phase", "seconds", "MiB/s", "server-cpu", "server-rss-max+", "server-heap-max", "client-rss", "fake-gcs-rss")
	var total time.Duration
	for p := range numPhases {
		total += r.took[p]
		fmt.Fprintf(&b, "%-11s %9.2f %8s %10.1f %16s %15s %12s %13s\n", phaseNames[p], r.took[p].Seconds(), rate(r.took[p]), r.cpu[p],
			mib(s.rss[p]-r.baseline), orDash(s.heap[p]), orDash(r.clientRSS[p]), orDash(s.gcs[p]))
	}
	fmt.Fprintf(&b, "%-11s %9.2f %8s\n", "end-to-end", total.Seconds(), rate(total))
	fmt.Fprintf(&b, "  task copy on the server's clock (RUNNING → end: input to the working dir, cp, out.bin to storage): %.2fs, %s MiB/s\n",
		r.task.Seconds(), rate(r.task))
	var sampled int64
	for p := range numPhases {
		sampled = max(sampled, s.rss[p])
	}
	growth := r.peak - r.baseline
	verdict := "PASS"
	if growth >= rssLimit {
		verdict = "FAIL"
	}
	since := "reset after the warm-up"
	if !r.hwmReset {
		since = "since the server started: clear_refs could not reset it, so an upper bound"
	}
	fmt.Fprintf(&b, "server peak RSS growth: %s MiB (%s; limit %s MiB): VmHWM %s MiB (%s) - baseline VmRSS %s MiB (after a warm-up execution of %s)\n",
		mib(growth), verdict, mib(rssLimit), mib(r.peak), since, mib(r.baseline), sizeText(warmupSize))
	fmt.Fprintf(&b, "  cross-check: highest VmRSS of %d samples every 100ms: %s MiB, growth %s MiB\n", s.samples, mib(sampled), mib(sampled-r.baseline))
	var heap int64
	for p := range numPhases {
		heap = max(heap, s.heap[p])
	}
	fmt.Fprintf(&b, "  Go heap in use (/metrics every 500ms): baseline %s MiB, highest %s MiB, growth %s MiB; at the baseline %s MiB of idle heap were not yet returned to the OS (the heap can grow that much more than the RSS shows)\n",
		mib(r.baseHeap), mib(heap), mib(heap-r.baseHeap), mib(r.baseIdle))
	ok := "the input's"
	if !r.contentOK {
		ok = "NOT the input's"
	}
	fmt.Fprintf(&b, "downloaded out.bin: %s — %s\n", r.contentNote, ok)
	return b.String()
}
