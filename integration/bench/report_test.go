package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// gitDescribe names the commit of the code measured ("unknown" outside a
// git checkout).
func gitDescribe(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func appendFile(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text + "\n"); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// report is the results of one broker.
type report struct {
	name      string
	commit    string // git describe of the code measured
	opts      options
	lines     []string
	main      *Step
	sustained *Step
	searched  bool
}

func (r *report) add(st *Step, u usage) { r.lines = append(r.lines, r.stepLine(st, u)) }

const stepHeader = "rate/min  for    created  ok     fail  unfin  p50      p90      p99      max      done/min  create-p50  create-p99  lag-max  cpu-kite  cpu-kafka  cpu-other  exec-txn/s  rec/txn  commit-avg  commit-p50  commit-p99  p99<1s  index-docs/s  proj-lag-p50  proj-lag-p99"

func (r *report) stepLine(st *Step, u usage) string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
	verdict := "no"
	if st.OK(p99Limit) {
		verdict = "yes"
	}
	kafka := "-"
	if u.broker > 0 {
		kafka = u.cores(u.broker)
	}
	line := fmt.Sprintf("%-9d %-6s %-8d %-6d %-5d %-6d %-8s %-8s %-8s %-8s %-9.0f %-11s %-11s %-8s %-9s %-10s %-10s %-11s %-8s %-11s %-11s %-11s %-7s %-13s %-13s %s",
		st.Rate, st.Duration, st.Scheduled-st.CreateErrors, st.Succeeded, st.CreateErrors+st.Failed, st.Unfinished,
		ms(Percentile(st.Latency, 0.5)), ms(Percentile(st.Latency, 0.9)), ms(Percentile(st.Latency, 0.99)), ms(Percentile(st.Latency, 1)),
		st.DonePerMinute(), ms(Percentile(st.Hops[hopCreate], 0.5)), ms(Percentile(st.Hops[hopCreate], 0.99)), ms(st.MaxLag),
		u.cores(u.proc), kafka, u.otherCores(), u.txnRate(), u.recordsPerTxn(), u.commitAvg(), u.commitQuantile(0.5), u.commitQuantile(0.99), verdict,
		u.indexRate(), u.lagQuantile(0.5), u.lagQuantile(0.99))
	for _, e := range st.Errors {
		line += fmt.Sprintf("\n    error (%d×): %s", e.Count, e.Message)
	}
	return line
}

func (r *report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "== Kite end-to-end latency: two-task flow (Log + Return), %s\n", r.name)
	fmt.Fprintf(&b, "%s, commit %s, %s/%s, %d CPUs (GOMAXPROCS %d), %s\n", time.Now().Format(time.RFC3339), r.commit,
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	observe := "one read_committed consumer of execution-events"
	if r.opts.watch {
		observe = "one ExecutionService.Watch per execution"
	}
	fmt.Fprintf(&b, "latency: Create call's scheduled start → terminal event seen (%s); open loop; drain %s\n\n", observe, r.opts.drain)
	b.WriteString(stepHeader + "\n")
	for _, l := range r.lines {
		b.WriteString(l + "\n")
	}
	if m := r.main; m != nil {
		fmt.Fprintf(&b, "\nat %d/min: p50 %s, p99 %s (%d executions, %d failed, %d unfinished)\n", m.Rate,
			Percentile(m.Latency, 0.5).Round(time.Millisecond), Percentile(m.Latency, 0.99).Round(time.Millisecond),
			m.Scheduled, m.CreateErrors+m.Failed, m.Unfinished)
		if !r.opts.watch {
			b.WriteString("where the time goes at that rate (p50 / p90 / p99 of each part):\n")
			for h, name := range HopNames {
				hs := m.Hops[h]
				fmt.Fprintf(&b, "  %-32s %8s %8s %8s\n", name, Percentile(hs, 0.5).Round(100*time.Microsecond),
					Percentile(hs, 0.9).Round(100*time.Microsecond), Percentile(hs, 0.99).Round(100*time.Microsecond))
			}
		}
	}
	if r.searched {
		if r.sustained != nil {
			fmt.Fprintf(&b, "highest sustained rate with p99 < %s: %d/min (p99 %s)\n", p99Limit, r.sustained.Rate,
				Percentile(r.sustained.Latency, 0.99).Round(time.Millisecond))
		} else {
			fmt.Fprintf(&b, "highest sustained rate with p99 < %s: below the first step\n", p99Limit)
		}
	}
	return b.String()
}
