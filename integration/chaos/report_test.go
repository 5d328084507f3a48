package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kiteflow/kite/core/execution"
)

// summary is everything the run's report prints.
type summary struct {
	o       options
	wall    time.Duration
	phases  []phase
	ld      *load
	view    *kafkaView
	effects effectStats
	cl      *cluster
	sched   *schedule
	checks  []check
}

// phase is a part of the run and how long it took.
type phase struct {
	name string
	took time.Duration
}

// String renders the summary table.
func (s *summary) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(cols ...any) {
		for i, c := range cols {
			if i > 0 {
				fmt.Fprint(w, "\t")
			}
			fmt.Fprint(w, c)
		}
		fmt.Fprintln(w)
	}
	kills := "off (KITE_CHAOS_KILLS=0)"
	if s.o.kills {
		kills = "a random role every 2–5 s, the broker once"
	}
	fmt.Fprintf(&b, "\n=== Kite chaos run: seed %d, %d executions over %s, chaos %s ===\n", s.o.seed, s.o.executions, s.o.duration, kills)
	var ph []string
	for _, p := range s.phases {
		ph = append(ph, fmt.Sprintf("%s %s", p.name, p.took.Round(time.Second)))
	}
	fmt.Fprintf(&b, "wall time %s (%s)\n\n", s.wall.Round(time.Second), strings.Join(ph, ", "))

	s.ld.mu.Lock()
	created, byFlow, failures, recovered, abandoned, lag := len(s.ld.created), maps.Clone(s.ld.byFlow), maps.Clone(s.ld.failures), s.ld.recovered, len(s.ld.abandoned), s.ld.maxLag
	s.ld.mu.Unlock()
	nFailures := 0
	for _, n := range failures {
		nFailures += n
	}
	row("executions created by the driver", fmt.Sprintf("%d of %d %s (max start lag %s)", created, s.o.executions, fmtCounts(byFlow), lag.Round(time.Millisecond)))
	row("  Create calls failed and retried", fmt.Sprintf("%d %s; answered DEADLINE_EXCEEDED with the id (not retried): %d; abandoned: %d",
		nFailures, fmtCounts(failures), recovered, abandoned))
	if s.view != nil {
		v := s.view
		byFlow, byState, trByState, atByState := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
		children, extra, taskRuns, attempts, multi := 0, 0, 0, 0, 0
		mine := s.ld.createdIDs()
		for id, f := range v.execs {
			byFlow[f.e.FlowID]++
			byState[string(f.e.State)]++
			_, ours := mine[id]
			switch {
			case f.e.Parent != nil:
				children++
			case !ours:
				extra++
			}
			for _, tr := range f.e.TaskRuns {
				taskRuns++
				trByState[string(tr.State)]++
				attempts += len(tr.Attempts)
				if len(tr.Attempts) > 1 {
					multi++
				}
				for _, at := range tr.Attempts {
					atByState[string(at.State)]++
				}
			}
		}
		row("executions found on Kafka", fmt.Sprintf("%d: subflow children %d, created by a retried or unanswered Create %d", len(v.execs), children, extra))
		row("  by flow", fmtCounts(byFlow))
		row("  ended by state", fmtCounts(byState))
		row("task runs", fmt.Sprintf("%d %s", taskRuns, fmtCounts(trByState)))
		row("attempts", fmt.Sprintf("%d %s; task runs with more than one: %d", attempts, fmtCounts(atByState), multi))
		row("events", fmt.Sprintf("%d records read (read committed) in %s", v.records, v.took.Round(time.Millisecond)))
		row("side effects", fmt.Sprintf("%d lines for %d attempts of effect tasks (%d started); %d attempts KILLED after their worker died, %d of them had appended",
			s.effects.lines, s.effects.attempts, s.effects.started, s.effects.killed, s.effects.killedRan))
	}
	counts := s.cl.counts()
	names := slices.Sorted(maps.Keys(counts))
	var starts, killed, crashed []string
	total := 0
	for _, n := range names {
		c := counts[n]
		starts = append(starts, fmt.Sprintf("%s=%d", n, c[0]))
		killed = append(killed, fmt.Sprintf("%s=%d", n, c[1]))
		crashed = append(crashed, fmt.Sprintf("%s=%d", n, c[2]))
		total += c[1]
	}
	row("SIGKILLs by role process", fmt.Sprintf("%d {%s}", total, strings.Join(killed, " ")))
	row("process starts", "{"+strings.Join(starts, " ")+"}")
	row("exits on their own (restarted)", "{"+strings.Join(crashed, " ")+"}")
	if s.sched != nil {
		br := fmt.Sprintf("%d", s.sched.brokerRestarts)
		if s.sched.brokerRestarts > 0 {
			br += fmt.Sprintf(" (stopped with SIGTERM, serving again %s after)", s.sched.brokerDown.Round(time.Millisecond))
		}
		if s.sched.brokerErr != nil {
			br += fmt.Sprintf(" FAILED: %v", s.sched.brokerErr)
		}
		row("broker restarts", br)
	}
	_ = w.Flush()

	b.WriteString("\nchecks\n")
	for i, c := range s.checks {
		verdict := "PASS"
		if len(c.bad) > 0 {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "  %s  %d. %s: %d checked", verdict, i+1, c.name, c.checked)
		if len(c.bad) > 0 {
			fmt.Fprintf(&b, ", %d violations", len(c.bad))
		}
		if c.note != "" {
			fmt.Fprintf(&b, " (%s)", c.note)
		}
		b.WriteString("\n")
		for _, bad := range first(c.bad, 5) {
			fmt.Fprintf(&b, "        %s\n", bad)
		}
	}
	for _, c := range s.cl.crashList() {
		fmt.Fprintf(&b, "  note: exited on its own: %s\n", c)
	}
	return b.String()
}

// attemptStates is for a reader of a failed check: the attempts of a task run.
func attemptStates(tr *execution.TaskRun) string {
	var out []string
	for _, at := range tr.Attempts {
		out = append(out, string(at.State))
	}
	return strings.Join(out, ",")
}
