package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// linearLimit is the most the Kafka bytes per ForEach item may grow from
// the smallest run to the largest for the growth to count as linear.
const linearLimit = 1.25

// Table is the run's report for a person: where and how it ran, then a
// table per part of the benchmark. It is printed at the end of a run and
// saved as results.txt.
func (r *Result) Table() string {
	var b strings.Builder
	r.writeHeader(&b)

	b.WriteString("\nTwo-task flow (Log + Return) at fixed rates\n")
	if len(r.Rates) == 0 {
		b.WriteString("  not run\n")
	} else {
		b.WriteString(rateTable(r.Rates).String())
		b.WriteString(r.highestRateLine())
		b.WriteString(hopsTable(r.Rates))
	}

	if r.Ifs != nil {
		fmt.Fprintf(&b, "\nFive If tasks (10 task runs) at %d/min\n", r.Ifs.Rate)
		b.WriteString(rateTable([]RateRun{*r.Ifs}).String())
	}

	b.WriteString("\nForEach\n")
	if len(r.ForEach) == 0 {
		b.WriteString("  not run\n")
	} else {
		b.WriteString(forEachTable(r.ForEach).String())
		b.WriteString(linearityLine(r.ForEach))
	}
	return b.String()
}

func (r *Result) writeHeader(b *strings.Builder) {
	fmt.Fprintf(b, "kite bench: %s\n", r.Name)
	if !r.Started.IsZero() {
		fmt.Fprintf(b, "started %s", r.Started.Format(time.RFC3339))
		if r.Finished.After(r.Started) {
			fmt.Fprintf(b, ", took %s", r.Finished.Sub(r.Started).Round(time.Second))
		}
		b.WriteString("\n")
	}
	m := r.Machine
	fmt.Fprintf(b, "machine: %s\n", joinNonEmpty(m.Hostname, fmt.Sprintf("%d cores", m.Cores),
		fmt.Sprintf("%.1f GiB", float64(m.MemoryBytes)/(1<<30)), m.CPU, m.OS))
	if len(r.Versions) > 0 {
		var vs []string
		for _, k := range slices.Sorted(maps.Keys(r.Versions)) {
			vs = append(vs, k+" "+r.Versions[k])
		}
		fmt.Fprintf(b, "versions: %s\n", strings.Join(vs, ", "))
	}
	s := r.Settings
	concurrency := "all items at once"
	if s.ForEachConcurrency > 0 {
		concurrency = strconv.Itoa(s.ForEachConcurrency)
	}
	fmt.Fprintf(b, "settings: %s\n", joinNonEmpty(labelled("server", s.Server), labelled("brokers", s.Brokers),
		labelled("observed by", s.Observe), fmt.Sprintf("%g s per rate", s.StepSeconds),
		fmt.Sprintf("p99 limit %g ms", s.P99LimitMs), fmt.Sprintf("If rate %d/min", s.IfRate),
		"ForEach concurrency "+concurrency))
}

// highestRateLine names the highest rate that passed, with its p99.
func (r *Result) highestRateLine() string {
	prefix := fmt.Sprintf("highest rate with p99 < %g ms: ", r.Settings.P99LimitMs)
	if r.HighestRate == 0 {
		return prefix + "none of the rates passed\n"
	}
	for _, run := range r.Rates {
		if run.Rate == r.HighestRate && run.Passed {
			return fmt.Sprintf("%s%d/min (p99 %.1f ms)\n", prefix, run.Rate, run.Latency.P99)
		}
	}
	return fmt.Sprintf("%s%d/min\n", prefix, r.HighestRate)
}

// hopsTable is the latency breakdown of the first run that has one.
func hopsTable(runs []RateRun) string {
	for _, run := range runs {
		if len(run.Hops) == 0 {
			continue
		}
		t := &textTable{header: []string{"part", "p50-ms", "p95-ms", "p99-ms"}}
		for _, h := range run.Hops {
			t.rows = append(t.rows, []string{h.Name, msCell(h.Latency.P50), msCell(h.Latency.P95), msCell(h.Latency.P99)})
		}
		return fmt.Sprintf("\nWhere the time goes at %d/min\n%s", run.Rate, t)
	}
	return ""
}

func rateTable(runs []RateRun) *textTable {
	var usages []Usage
	for _, run := range runs {
		usages = append(usages, run.Usage)
	}
	procs := processNames(usages)
	t := &textTable{
		header: append([]string{"rate/min", "secs", "created", "ok", "failed", "unfinished", "create-err",
			"p50-ms", "p95-ms", "p99-ms", "max-ms", "done/min", "passed", "proj-docs/s", "lag-p50", "lag-p99"},
			usageHeader(procs)...),
		under: map[int][]string{},
	}
	for i, run := range runs {
		l := run.Latency
		row := []string{strconv.Itoa(run.Rate), fmt.Sprintf("%.0f", run.DurationSeconds),
			strconv.Itoa(run.Created), strconv.Itoa(run.Succeeded), strconv.Itoa(run.Failed),
			strconv.Itoa(run.Unfinished), strconv.Itoa(run.CreateErrors),
			msCell(l.P50), msCell(l.P95), msCell(l.P99), msCell(l.Max),
			fmt.Sprintf("%.1f", run.DonePerMinute), yesNo(run.Passed)}
		if p := run.Usage.Projection; p != nil {
			row = append(row, fmt.Sprintf("%.1f", p.DocsPerSecond), bucketCell(p.LagP50Ms), bucketCell(p.LagP99Ms))
		} else {
			row = append(row, "-", "-", "-")
		}
		t.rows = append(t.rows, append(row, usageCells(run.Usage, procs)...))
		for _, e := range run.Errors {
			t.under[i] = append(t.under[i], fmt.Sprintf("error (%d×): %s", e.Count, e.Message))
		}
	}
	return t
}

func forEachTable(runs []ForEachRun) *textTable {
	var usages []Usage
	topicSet := map[string]bool{}
	for _, run := range runs {
		usages = append(usages, run.Usage)
		for topic := range run.BytesByTopic {
			topicSet[topic] = true
		}
	}
	procs := processNames(usages)
	topics := slices.Sorted(maps.Keys(topicSet))
	t := &textTable{header: []string{"items", "state", "wall-ms", "task-runs", "tasks/s", "kafka-bytes", "bytes/item"}}
	for _, topic := range topics {
		t.header = append(t.header, "topic "+topic)
	}
	t.header = append(t.header, usageHeader(procs)...)
	for _, run := range runs {
		row := []string{strconv.Itoa(run.Items), run.State, msCell(run.WallMs), strconv.Itoa(run.TaskRuns),
			fmt.Sprintf("%.1f", run.TasksPerSec), fmt.Sprintf("%s (%d)", sizeText(run.KafkaBytes), run.KafkaBytes),
			fmt.Sprintf("%.0f B", bytesPerItem(run))}
		for _, topic := range topics {
			row = append(row, sizeText(run.BytesByTopic[topic]))
		}
		t.rows = append(t.rows, append(row, usageCells(run.Usage, procs)...))
	}
	return t
}

// linearityLine compares the Kafka bytes per item of the smallest and the
// largest ForEach run: they should stay about the same.
func linearityLine(runs []ForEachRun) string {
	small, large := runs[0], runs[0]
	for _, run := range runs {
		if run.Items < small.Items {
			small = run
		}
		if run.Items > large.Items {
			large = run
		}
	}
	a, z := bytesPerItem(small), bytesPerItem(large)
	switch {
	case small.Items == large.Items:
		return fmt.Sprintf("Kafka bytes per item: %d items → %.0f B (one size only: linearity not checked)\n", small.Items, a)
	case a <= 0 || z <= 0:
		return fmt.Sprintf("Kafka bytes per item: %d items → %.0f B, %d items → %.0f B (not measured at both: linearity not checked)\n",
			small.Items, a, large.Items, z)
	}
	ratio := z / a
	verdict := "linear"
	if ratio > linearLimit {
		verdict = "grows faster than linear"
	}
	return fmt.Sprintf("Kafka bytes per item: %d items → %.0f B, %d items → %.0f B (×%.2f per item: linear ≈ 1) — %s\n",
		small.Items, a, large.Items, z, ratio, verdict)
}

func bytesPerItem(run ForEachRun) float64 {
	if run.BytesPerItem > 0 || run.Items <= 0 {
		return run.BytesPerItem
	}
	return float64(run.KafkaBytes) / float64(run.Items)
}

// processNames are the processes of usages, in the order first seen.
func processNames(usages []Usage) []string {
	var names []string
	for _, u := range usages {
		for _, p := range u.Processes {
			if !slices.Contains(names, p.Name) {
				names = append(names, p.Name)
			}
		}
	}
	return names
}

func usageHeader(procs []string) []string {
	var h []string
	for _, name := range procs {
		h = append(h, "cpu-"+name)
	}
	for _, name := range procs {
		h = append(h, "rss-"+name+"-MiB")
	}
	return h
}

func usageCells(u Usage, procs []string) []string {
	cpu, rss := make([]string, len(procs)), make([]string, len(procs))
	for i, name := range procs {
		cpu[i], rss[i] = "-", "-"
		for _, p := range u.Processes {
			if p.Name == name {
				cpu[i] = fmt.Sprintf("%.2f", p.Cores)
				rss[i] = fmt.Sprintf("%.1f", float64(p.RSSMaxBytes)/(1<<20))
			}
		}
	}
	return append(cpu, rss...)
}

// textTable is rows of cells aligned in columns, with free lines under
// some rows (errors) that leave the columns aligned.
type textTable struct {
	header []string
	rows   [][]string
	under  map[int][]string // lines printed under rows[i]
}

func (t *textTable) String() string {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, row := range t.rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush() // writes to a bytes.Buffer, which does not fail
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		b.WriteString("  " + strings.TrimRight(line, " ") + "\n")
		for _, u := range t.under[i-1] {
			b.WriteString("      " + u + "\n")
		}
	}
	return b.String()
}

func msCell(v float64) string { return fmt.Sprintf("%.1f", v) }

// bucketCell is a histogram bucket's upper bound: the value is at most it.
func bucketCell(ms float64) string {
	if ms < 0 {
		return "> 120 s"
	}
	return "≤" + strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func labelled(label, value string) string {
	if value == "" {
		return ""
	}
	return label + " " + value
}

func joinNonEmpty(parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), ", ")
}

// WriteFiles writes the run into dir, created if need be, as results.json,
// results.txt (Table) and results.svg (Chart), and returns the paths it
// wrote, also when it fails part way.
func (r *Result) WriteFiles(dir string) (paths []string, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the results directory: %w", err)
	}
	outputs := []struct {
		name   string
		render func() ([]byte, error)
	}{
		{"results.json", func() ([]byte, error) {
			data, err := json.MarshalIndent(r, "", "  ")
			return append(data, '\n'), err
		}},
		{"results.txt", func() ([]byte, error) { return []byte(r.Table()), nil }},
		{"results.svg", r.Chart},
	}
	for _, o := range outputs {
		path := filepath.Join(dir, o.name)
		data, err := o.render()
		if err != nil {
			return paths, fmt.Errorf("rendering %s: %w", path, err)
		}
		if err := writeResultFile(path, data); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// writeResultFile replaces path with data, so that a reader sees either
// the old file or the whole new one.
func writeResultFile(path string, data []byte) error {
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, data, 0o644)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
