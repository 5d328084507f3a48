package embedded

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// benchExecutions sizes BenchmarkSearchHistogram's data set:
//
//	go test -run '^$' -bench BenchmarkSearchHistogram -embedded.executions 1000000 ./indexer/embedded/
var benchExecutions = flag.Int("embedded.executions", 100_000, "executions BenchmarkSearchHistogram loads")

// genExecutions makes n executions that start in order between from and
// to, as the indexer sees them: 20 namespaces (prod.*, dev.*,
// staging.*), 50 flows, states mostly SUCCESS (FAILED 10%), two labels, an
// error for the failed ones, ids as Kite makes them (time-ordered).
func genExecutions(n int, from, to time.Time, seed uint64) []repository.Execution {
	r := rand.New(rand.NewPCG(seed, 1))
	states := []string{"SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "FAILED", "WARNING", "RUNNING"}
	starts := make([]time.Time, n)
	for i := range starts {
		starts[i] = from.Add(time.Duration(r.Int64N(int64(to.Sub(from)))))
	}
	slices.SortFunc(starts, time.Time.Compare)
	out := make([]repository.Execution, n)
	for i := range out {
		ns := []string{"prod", "dev", "staging", "prod"}[i%4] + fmt.Sprintf(".team%d", r.IntN(5))
		start := starts[i]
		e := repository.Execution{
			ID:           execution.NewExecutionID(start, r.Uint64()),
			Namespace:    ns,
			FlowID:       fmt.Sprintf("flow-%02d", r.IntN(50)),
			FlowRevision: int32(1 + r.IntN(5)),
			State:        states[r.IntN(len(states))],
			Start:        start,
			Labels:       []repository.Label{{Key: "team", Value: fmt.Sprintf("t%d", r.IntN(8))}, {Key: "env", Value: ns[:4]}},
			Inputs:       map[string]any{"date": start.Format(time.DateOnly), "count": r.IntN(1000)},
			Updated:      start,
		}
		for _, l := range e.Labels {
			e.LabelPairs = append(e.LabelPairs, l.Key+"="+l.Value)
		}
		if e.State != "RUNNING" {
			d := int64(r.ExpFloat64() * 30_000)
			end := start.Add(time.Duration(d) * time.Millisecond)
			e.End, e.Duration, e.Updated = &end, &d, end
		}
		if e.State == "FAILED" {
			e.Error = fmt.Sprintf("task %s failed: connection refused by host db-%d.internal:5432", e.FlowID, r.IntN(20))
		}
		out[i] = e
	}
	return out
}

// genLogs makes n log lines of the hour after from, in order.
func genLogs(n int, from time.Time, seed uint64) []repository.Log {
	r := rand.New(rand.NewPCG(seed, 2))
	words := []string{"starting", "task", "connection", "refused", "retrying", "rows", "written", "done", "in", "ms", "upstream", "timeout"}
	out := make([]repository.Log, n)
	for i := range out {
		msg := make([]string, 0, 8)
		for range 4 + r.IntN(5) {
			msg = append(msg, words[r.IntN(len(words))])
		}
		out[i] = repository.Log{ExecutionID: fmt.Sprintf("%016x", r.Uint64()), Namespace: "prod.team1", FlowID: "flow-01",
			TaskID: "t1", TaskRunID: fmt.Sprintf("%016x", r.Uint64()), Level: []string{"INFO", "INFO", "INFO", "WARN", "ERROR"}[r.IntN(5)],
			Message: fmt.Sprint(msg), Time: from.Add(time.Duration(i) * time.Hour / time.Duration(n))}
	}
	return out
}

// BenchmarkWrite writes batches of 1,000 documents: new executions, updates
// of existing executions (a new state, version), and new log lines.
func BenchmarkWrite(b *testing.B) {
	const batch = 1000
	now := time.Now()
	b.Run("executions-new", func(b *testing.B) {
		x := openTest(b, Config{})
		es := genExecutions(batch*b.N, now, now.Add(time.Hour), 1)
		b.ResetTimer()
		cpu := cpuTime()
		for i := range b.N {
			docs := make([]repository.Doc, batch)
			for j := range docs {
				docs[j] = execDoc(1, es[i*batch+j])
			}
			mustWrite(b, x, docs...)
		}
		reportWrite(b, batch*b.N, cpu)
	})
	b.Run("executions-update", func(b *testing.B) {
		x := openTest(b, Config{})
		es := genExecutions(batch*10, now, now.Add(time.Hour), 2)
		docs := make([]repository.Doc, len(es))
		for j := range es {
			docs[j] = execDoc(1, es[j])
		}
		mustWrite(b, x, docs...)
		b.ResetTimer()
		cpu := cpuTime()
		for i := range b.N {
			docs := make([]repository.Doc, batch)
			for j := range docs {
				e := es[(i*batch+j)%len(es)]
				e.State = []string{"RUNNING", "SUCCESS", "FAILED"}[i%3]
				docs[j] = execDoc(int64(i+2), e)
			}
			mustWrite(b, x, docs...)
		}
		reportWrite(b, batch*b.N, cpu)
	})
	b.Run("logs", func(b *testing.B) {
		x := openTest(b, Config{})
		ls := genLogs(batch*b.N, now, 3)
		b.ResetTimer()
		cpu := cpuTime()
		for i := range b.N {
			docs := make([]repository.Doc, batch)
			for j := range docs {
				docs[j] = repository.Doc{Kind: repository.Logs, ID: fmt.Sprintf("0-%d", i*batch+j), Version: int64(i*batch + j), Source: ls[i*batch+j]}
			}
			mustWrite(b, x, docs...)
		}
		reportWrite(b, batch*b.N, cpu)
	})
}

// cpuTime is the process's CPU time (user and system) so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportWrite reports docs/s (wall time) and the CPU time per document,
// which a busy machine disturbs less.
func reportWrite(b *testing.B, docs int, cpuAtStart time.Duration) {
	b.ReportMetric(float64(docs)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(float64((cpuTime()-cpuAtStart).Microseconds())/float64(docs), "cpu-µs/doc")
}

// BenchmarkSearchHistogram loads -embedded.executions executions over 30
// days (in batches of 1,000, as the indexer writes), then measures
// state:FAILED and namespace:prod* with a daily histogram split by state
// (histogram-N), and other queries of a dashboard. The load is reported
// (load-s, load-docs/s) with each sub-benchmark; p95-ms is the 95th
// percentile of the iterations' latencies.
func BenchmarkSearchHistogram(b *testing.B) {
	now := time.Now().UTC()
	x := openTest(b, Config{Now: func() time.Time { return now }})
	n := *benchExecutions
	es := genExecutions(n, now.Add(-30*24*time.Hour), now, 1)
	start := time.Now()
	const batch = 1000
	for i := 0; i < n; i += batch {
		docs := make([]repository.Doc, 0, batch)
		for _, e := range es[i:min(i+batch, n)] {
			docs = append(docs, execDoc(1, e))
		}
		mustWrite(b, x, docs...)
	}
	es = nil
	load := time.Since(start)
	b.Logf("loaded %d executions in %s (%.0f docs/s)", n, load.Round(time.Millisecond), float64(n)/load.Seconds())
	schema := repository.Schema(repository.Executions)
	q, err := query.Parse("state:FAILED and namespace:prod*", schema, now)
	if err != nil {
		b.Fatal(err)
	}
	measure := func(b *testing.B, f func() error) {
		b.Helper()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			t := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[(len(lat)*95+99)/100-1].Microseconds())/1000, "p95-ms")
		b.ReportMetric(load.Seconds(), "load-s")
		b.ReportMetric(float64(n)/load.Seconds(), "load-docs/s")
	}
	b.Run(fmt.Sprintf("histogram-%d", n), func(b *testing.B) {
		// state:FAILED and namespace:prod*, 30 daily buckets split by state.
		req := repository.AggregateRequest{Kind: repository.Executions, Query: q, Since: now.Add(-30 * 24 * time.Hour), Until: now,
			Histogram: &repository.DateHistogram{Interval: 24 * time.Hour, SplitBy: "state"}}
		measure(b, func() error {
			res, err := x.Aggregate(b.Context(), req)
			if err == nil && (len(res.Buckets) < 30 || res.Count == 0) {
				err = fmt.Errorf("%d buckets, count %d", len(res.Buckets), res.Count)
			}
			return err
		})
	})
	b.Run(fmt.Sprintf("dashboard-%d", n), func(b *testing.B) {
		// Every execution of the last 30 days: daily by state, top flows,
		// duration percentiles.
		req := repository.AggregateRequest{Kind: repository.Executions, Since: now.Add(-30 * 24 * time.Hour), Until: now,
			Histogram:   &repository.DateHistogram{Interval: 24 * time.Hour, SplitBy: "state"},
			Terms:       []repository.Terms{{Field: "flow_id"}},
			Percentiles: &repository.Percentiles{Field: "duration", Percents: []float64{50, 95, 99}}}
		measure(b, func() error {
			_, err := x.Aggregate(b.Context(), req)
			return err
		})
	})
	b.Run(fmt.Sprintf("search-pages-%d", n), func(b *testing.B) {
		// The first three pages of the query, newest first.
		measure(b, func() error {
			req := repository.SearchRequest{Kind: repository.Executions, Query: q, Size: 50}
			for range 3 {
				res, err := x.Search(b.Context(), req)
				if err != nil {
					return err
				}
				req.Cursor = res.Cursor
			}
			return nil
		})
	})
	b.Run(fmt.Sprintf("full-text-%d", n), func(b *testing.B) {
		ft, err := query.Parse(`"db-7.internal" and start > now-7d`, schema, now)
		if err != nil {
			b.Fatal(err)
		}
		measure(b, func() error {
			_, err := x.Search(b.Context(), repository.SearchRequest{Kind: repository.Executions, Query: ft})
			return err
		})
	})
}
