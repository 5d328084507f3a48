package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// probe samples the CPU time of this process, of the Kafka broker's JVM
// (when it runs on this host) and of the host (Linux /proc), and the
// executor's transaction metrics (the API's /metrics).
type probe struct {
	metricsURL string
	brokerPID  int // 0: none found (kfake runs in this process)
}

type sample struct {
	at                       time.Time
	proc, broker, host, idle uint64 // CPU ticks
	commits, commitSum       float64
	commitBuckets            map[float64]float64 // le → cumulative count
	records                  float64
	docs, lags               float64             // the indexer's documents written, and records timed
	lagBuckets               map[float64]float64 // projection lag: le → cumulative count
}

func (p *probe) sample(t *testing.T) sample {
	t.Helper()
	s := sample{at: time.Now(), commitBuckets: map[float64]float64{}, lagBuckets: map[float64]float64{}}
	s.proc = processTicks("/proc/self/stat")
	if p.brokerPID != 0 {
		s.broker = processTicks(fmt.Sprintf("/proc/%d/stat", p.brokerPID))
	}
	s.host, s.idle = hostTicks()
	m, err := scrape(t.Context(), p.metricsURL)
	if err != nil {
		t.Logf("reading %s: %v", p.metricsURL, err)
		return s
	}
	for series, v := range m {
		switch {
		case strings.HasPrefix(series, "kite_indexer_documents_total"):
			s.docs += v
		case strings.HasPrefix(series, "kite_indexer_projection_lag_seconds_count"):
			s.lags += v
		case strings.HasPrefix(series, "kite_indexer_projection_lag_seconds_bucket"):
			_, le, _ := strings.Cut(series, `le="`)
			le, _, _ = strings.Cut(le, `"`)
			if b, err := strconv.ParseFloat(le, 64); err == nil {
				s.lagBuckets[b] += v
			}
		}
		if !strings.Contains(series, `group="`) || !strings.Contains(series, `-executor"`) {
			continue
		}
		switch {
		case strings.HasPrefix(series, "kite_streams_transaction_commit_seconds_count"):
			s.commits += v
		case strings.HasPrefix(series, "kite_streams_transaction_commit_seconds_sum"):
			s.commitSum += v
		case strings.HasPrefix(series, "kite_streams_transaction_commit_seconds_bucket"):
			_, le, _ := strings.Cut(series, `le="`)
			le, _, _ = strings.Cut(le, `"`)
			if b, err := strconv.ParseFloat(le, 64); err == nil {
				s.commitBuckets[b] += v
			}
		case strings.HasPrefix(series, "kite_streams_records_processed_total"):
			s.records += v
		}
	}
	return s
}

// usage is what a step used: the difference of two samples.
type usage struct {
	wall                     time.Duration
	proc, broker, host, idle uint64
	commits, commitSum       float64
	commitBuckets            map[float64]float64
	records                  float64
	docs, lags               float64
	lagBuckets               map[float64]float64
}

func (s sample) since(b sample) usage {
	u := usage{wall: s.at.Sub(b.at), proc: s.proc - b.proc, broker: s.broker - b.broker, host: s.host - b.host,
		idle: s.idle - b.idle, commits: s.commits - b.commits, commitSum: s.commitSum - b.commitSum,
		records: s.records - b.records, commitBuckets: map[float64]float64{},
		docs: s.docs - b.docs, lags: s.lags - b.lags, lagBuckets: map[float64]float64{}}
	for le, n := range s.commitBuckets {
		u.commitBuckets[le] = n - b.commitBuckets[le]
	}
	for le, n := range s.lagBuckets {
		u.lagBuckets[le] = n - b.lagBuckets[le]
	}
	return u
}

// cores is the CPU cores that ticks of one process stand for, on average.
func (u usage) cores(ticks uint64) string {
	if u.host == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(ticks)/float64(u.host)*float64(runtime.NumCPU()))
}

// otherCores is the cores the host was busy with besides this process and
// the broker: the kernel's network stack on loopback, other processes.
func (u usage) otherCores() string {
	if u.host == 0 {
		return "-"
	}
	busy := float64(u.host-u.idle) - float64(u.proc) - float64(u.broker)
	return fmt.Sprintf("%.2f", max(busy, 0)/float64(u.host)*float64(runtime.NumCPU()))
}

func (u usage) txnRate() string {
	return fmt.Sprintf("%.1f", u.commits/u.wall.Seconds())
}

func (u usage) recordsPerTxn() string {
	if u.commits == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", u.records/u.commits)
}

func (u usage) commitAvg() string {
	if u.commits == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", 1000*u.commitSum/u.commits)
}

// commitQuantile is the upper bound of the histogram bucket that holds the
// q-quantile of the executor's commit times.
func (u usage) commitQuantile(q float64) string {
	return bucketQuantile(u.commitBuckets, u.commits, q)
}

// indexRate is the indexer's documents written per second; "-" without an
// indexer in the process.
func (u usage) indexRate() string {
	if u.docs == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", u.docs/u.wall.Seconds())
}

// lagQuantile is the upper bound of the histogram bucket that holds the
// q-quantile of the indexer's projection lag (record timestamp → written).
func (u usage) lagQuantile(q float64) string {
	return bucketQuantile(u.lagBuckets, u.lags, q)
}

// bucketQuantile reads a quantile off cumulative histogram buckets (in
// seconds), as "≤Nms".
func bucketQuantile(buckets map[float64]float64, count, q float64) string {
	if count == 0 {
		return "-"
	}
	les := slices.Sorted(maps.Keys(buckets))
	for _, le := range les {
		if buckets[le] >= q*count {
			if math.IsInf(le, 1) {
				break
			}
			return fmt.Sprintf("≤%gms", le*1000)
		}
	}
	return fmt.Sprintf(">%gms", les[max(len(les)-2, 0)]*1000)
}

// brokerPID finds the Kafka broker JVM that listens on addr on this host
// (integration/kafka/kafka.sh's: a java process running kafka.Kafka with a
// server.properties that lists addr); 0 when there is none.
func brokerPID(addr string) int {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmd), "\x00")
		i := slices.Index(args, "kafka.Kafka")
		if i < 0 || i+1 >= len(args) {
			continue
		}
		props, err := os.ReadFile(args[i+1])
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(props), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && k == "listeners" && slices.Contains(strings.Split(v, ","), "PLAINTEXT://"+addr) {
				return pid
			}
		}
	}
	return 0
}

// processTicks reads the CPU ticks (user+system) of a process from its
// /proc/PID/stat; 0 where there is none.
func processTicks(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := string(b)
	// The fields after the command (which may hold spaces): state is the
	// third field, utime the 14th, stime the 15th.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) <= 12 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st
}

// hostTicks reads the host's total and idle CPU ticks from /proc/stat.
func hostTicks() (total, idle uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	if len(f) < 9 {
		return 0, 0
	}
	for i, v := range f[1:9] { // guest time is counted in user already
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return total, idle
}

// metricsText reads the API's /metrics.
func metricsText(ctx context.Context, url string) (string, error) {
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
		return "", fmt.Errorf("status %s", resp.Status)
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
