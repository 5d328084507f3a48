package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Process is a process whose CPU and memory kite bench follows: a Kite
// process by its /metrics URL (which also gives the indexer's projection
// lag), or any process on this host by its PID (a broker's or a search
// server's JVM).
type Process struct {
	Name       string
	MetricsURL string
	PID        int
}

// ParseProcess parses NAME=URL (a Kite process's metrics endpoint, e.g.
// executor=http://127.0.0.1:9464/metrics) or NAME=PID.
func ParseProcess(s string) (Process, error) {
	name, v, ok := strings.Cut(s, "=")
	if !ok || name == "" || v == "" {
		return Process{}, fmt.Errorf("%q: want NAME=URL (a Kite process's /metrics) or NAME=PID", s)
	}
	if pid, err := strconv.Atoi(v); err == nil {
		if pid <= 0 {
			return Process{}, fmt.Errorf("%q: the PID must be positive", s)
		}
		return Process{Name: name, PID: pid}, nil
	}
	if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
		return Process{}, fmt.Errorf("%q: %q is neither a PID nor an http(s) URL", s, v)
	}
	return Process{Name: name, MetricsURL: v}, nil
}

// Probe samples the processes: CPU time at the start and end of a run, RSS
// about once a second in between, and the indexer's histogram of projection
// lag from the Kite processes' metrics.
type Probe struct {
	Processes []Process
	// Every is the RSS sampling period (1s when zero).
	Every time.Duration
}

// Check reads every process once and says which cannot be read.
func (p *Probe) Check(ctx context.Context) error {
	s := p.sample(ctx)
	var bad []string
	for i, pr := range p.Processes {
		if s.procs[i].err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", pr.Name, s.procs[i].err))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("cannot read %s", strings.Join(bad, "; "))
	}
	return nil
}

// procSample is one reading of one process.
type procSample struct {
	cpu float64 // seconds
	rss int64
	err error
}

// probeSample is one reading of every process.
type probeSample struct {
	at    time.Time
	procs []procSample
	// The indexer's counters, summed over the Kite processes.
	docs, lags float64
	lagBuckets map[float64]float64 // le (seconds) → cumulative count
	indexer    bool                // some process has the indexer's metrics
}

func (p *Probe) sample(ctx context.Context) probeSample {
	s := probeSample{at: time.Now(), procs: make([]procSample, len(p.Processes)), lagBuckets: map[float64]float64{}}
	for i, pr := range p.Processes {
		if pr.PID != 0 {
			s.procs[i] = readProc(pr.PID)
			continue
		}
		m, err := scrape(ctx, pr.MetricsURL)
		if err != nil {
			s.procs[i].err = err
			continue
		}
		cpu, ok := m["process_cpu_seconds_total"]
		rss, ok2 := m["process_resident_memory_bytes"]
		if !ok || !ok2 {
			s.procs[i].err = fmt.Errorf("%s has no process_cpu_seconds_total or process_resident_memory_bytes", pr.MetricsURL)
		}
		s.procs[i].cpu, s.procs[i].rss = cpu, int64(rss)
		for series, v := range m {
			switch {
			case strings.HasPrefix(series, "kite_indexer_documents_total"):
				s.docs += v
				s.indexer = true
			case strings.HasPrefix(series, "kite_indexer_projection_lag_seconds_count"):
				s.lags += v
			case strings.HasPrefix(series, "kite_indexer_projection_lag_seconds_bucket"):
				_, le, _ := strings.Cut(series, `le="`)
				le, _, _ = strings.Cut(le, `"`)
				if b, err := strconv.ParseFloat(le, 64); err == nil {
					s.lagBuckets[b] += v
				}
			}
		}
	}
	return s
}

// Span is a run being measured: Start it before, End it after.
type Span struct {
	p      *Probe
	first  probeSample
	mu     sync.Mutex
	rssMax []int64
	stop   context.CancelFunc
	done   chan struct{}
}

// Start takes the first reading and samples RSS until End.
func (p *Probe) Start(ctx context.Context) *Span {
	s := &Span{p: p, first: p.sample(ctx), rssMax: make([]int64, len(p.Processes)), done: make(chan struct{})}
	s.note(s.first)
	ctx, s.stop = context.WithCancel(ctx)
	every := p.Every
	if every <= 0 {
		every = time.Second
	}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.note(p.sample(ctx))
			}
		}
	}()
	return s
}

func (s *Span) note(ps probeSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, pr := range ps.procs {
		if pr.err == nil {
			s.rssMax[i] = max(s.rssMax[i], pr.rss)
		}
	}
}

// End takes the last reading and returns the usage between the two.
func (s *Span) End(ctx context.Context) Usage {
	s.stop()
	<-s.done
	last := s.p.sample(ctx)
	s.note(last)
	wall := last.at.Sub(s.first.at).Seconds()
	u := Usage{}
	for i, pr := range s.p.Processes {
		pu := ProcessUsage{Name: pr.Name, RSSMaxBytes: s.rssMax[i]}
		if a, b := s.first.procs[i], last.procs[i]; a.err == nil && b.err == nil && wall > 0 {
			pu.Cores = (b.cpu - a.cpu) / wall
		}
		u.Processes = append(u.Processes, pu)
	}
	if last.indexer && wall > 0 {
		lags := last.lags - s.first.lags
		buckets := map[float64]float64{}
		for le, n := range last.lagBuckets {
			buckets[le] = n - s.first.lagBuckets[le]
		}
		u.Projection = &Projection{DocsPerSecond: (last.docs - s.first.docs) / wall,
			LagP50Ms: lagMs(bucketQuantile(buckets, lags, 0.5)), LagP99Ms: lagMs(bucketQuantile(buckets, lags, 0.99))}
	}
	return u
}

// lagMs is a bucket bound in milliseconds; -1 for +Inf, which JSON cannot
// hold.
func lagMs(le float64) float64 {
	if math.IsInf(le, 1) {
		return -1
	}
	return 1000 * le
}

// bucketQuantile reads the q-quantile off cumulative histogram buckets: the
// upper bound of the bucket that holds it (+Inf past the last bound, 0 for
// no observations).
func bucketQuantile(buckets map[float64]float64, count, q float64) float64 {
	if count == 0 {
		return 0
	}
	for _, le := range slices.Sorted(maps.Keys(buckets)) {
		if buckets[le] >= q*count {
			return le
		}
	}
	return math.Inf(1)
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// readProc reads a process's CPU time (user+system) from /proc/PID/stat and
// its RSS from /proc/PID/status.
func readProc(pid int) procSample {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{err: err}
	}
	s := string(b)
	// After the command (which may hold spaces), state is the first field,
	// utime the 12th, stime the 13th.
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) <= 12 {
		return procSample{err: fmt.Errorf("/proc/%d/stat: unexpected format", pid)}
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	out := procSample{cpu: float64(u+st) / clockTicks}
	out.rss = kBField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
	return out
}

// metricsText reads a Prometheus text exposition.
func metricsText(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: status %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// scrape reads a Prometheus text exposition into series → value.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	text, err := metricsText(ctx, url)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// profileCPU takes a CPU profile of every Kite process (its /debug/pprof,
// served with pprof: true) for d, in the background; the returned function
// waits for them and writes each to dir as NAME-label.pprof, returning the
// paths written and what failed.
func (p *Probe) profileCPU(ctx context.Context, dir, label string, d time.Duration) func() ([]string, error) {
	type got struct {
		path string
		err  error
	}
	results := make(chan got, len(p.Processes))
	n := 0
	for _, pr := range p.Processes {
		if pr.MetricsURL == "" {
			continue
		}
		n++
		go func() {
			url := strings.TrimSuffix(pr.MetricsURL, "/metrics") + fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds()))
			path := filepath.Join(dir, pr.Name+"-"+label+".pprof")
			results <- got{path, fetchTo(ctx, url, path, d+30*time.Second)}
		}()
	}
	return func() ([]string, error) {
		var paths []string
		var errs []error
		for range n {
			g := <-results
			if g.err != nil {
				errs = append(errs, g.err)
				continue
			}
			paths = append(paths, g.path)
		}
		return paths, errors.Join(errs...)
	}
}

// fetchTo writes what url answers to path.
func fetchTo(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %s (is pprof: true, KITE_PPROF=true, set on the server?)", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: %w", url, err)
	}
	return f.Close()
}
