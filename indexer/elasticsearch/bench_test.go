package elasticsearch

// Benchmarks against the real OpenSearch (skipped without one):
//
//	integration/opensearch/with-opensearch.sh go test ./indexer/elasticsearch/ -run '^$' -bench . -benchtime 20x
//	KITE_BENCH_DOCS=1000000 … -bench SearchHistogram

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// benchNow is the end of the benchmark's 30 days of executions.
var benchNow = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)

// benchExecution is a plausible execution: states mostly SUCCESS, five
// namespaces, labels, inputs and outputs, started within 30 days.
func benchExecution(r *rand.Rand, i int) repository.Execution {
	namespaces := []string{"prod.sales", "prod.ops", "prod.web", "dev.sandbox", "staging"}
	states := []string{"SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "FAILED", "WARNING", "RUNNING", "KILLED"}
	start := benchNow.Add(-time.Duration(r.Int64N(int64(30 * 24 * time.Hour))))
	e := repository.Execution{
		ID:           fmt.Sprintf("bench-%08d", i),
		Namespace:    namespaces[r.IntN(len(namespaces))],
		FlowID:       fmt.Sprintf("flow-%02d", r.IntN(40)),
		FlowRevision: int32(1 + r.IntN(5)),
		State:        states[r.IntN(len(states))],
		Start:        start,
		Labels:       []repository.Label{{Key: "team", Value: []string{"data", "ml", "web"}[r.IntN(3)]}, {Key: "env", Value: "prod"}},
		Inputs:       map[string]any{"day": start.Format(time.DateOnly), "rows": r.IntN(1_000_000)},
		Updated:      start,
	}
	for _, l := range e.Labels {
		e.LabelPairs = append(e.LabelPairs, l.Key+"="+l.Value)
	}
	if e.State != "RUNNING" {
		d := int64(100 + r.IntN(600_000))
		end := start.Add(time.Duration(d) * time.Millisecond)
		e.End, e.Duration, e.Updated = &end, &d, end
		e.Outputs = map[string]any{"written": r.IntN(1000)}
	}
	if e.State == "FAILED" {
		e.Error = fmt.Sprintf("task load failed: connection refused by host db-%d", r.IntN(20))
	}
	return e
}

// BenchmarkBulkWrite measures Write's throughput: batches of 1000 new
// executions (the indexer's poll size is of that order).
func BenchmarkBulkWrite(b *testing.B) {
	s := newTestStore(b, Config{})
	const batch = 1000
	r := rand.New(rand.NewPCG(1, 2))
	n := 0
	start := time.Now()
	for b.Loop() {
		docs := make([]repository.Doc, batch)
		for j := range docs {
			e := benchExecution(r, n)
			docs[j] = repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 1, Source: e}
			n++
		}
		if rej, err := s.Write(b.Context(), docs); err != nil || len(rej) > 0 {
			b.Fatalf("Write: %v, %d rejected", err, len(rej))
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "docs/s")
}

// BenchmarkSearchHistogram loads KITE_BENCH_DOCS executions (default
// 100,000) over 30 days, then measures the dashboard's query: failed
// executions of prod namespaces as a daily histogram split by state over
// the 30 days, and the first page of the same search.
func BenchmarkSearchHistogram(b *testing.B) {
	n := 100_000
	if v := os.Getenv("KITE_BENCH_DOCS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("KITE_BENCH_DOCS=%q is not a positive number", v)
		}
	}
	s := newTestStore(b, Config{})
	r := rand.New(rand.NewPCG(3, 4))
	loadStart := time.Now()
	const batch = 5000
	for i := 0; i < n; i += batch {
		docs := make([]repository.Doc, 0, batch)
		for j := i; j < min(n, i+batch); j++ {
			e := benchExecution(r, j)
			docs = append(docs, repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 1, Source: e})
		}
		if rej, err := s.Write(b.Context(), docs); err != nil || len(rej) > 0 {
			b.Fatalf("Write: %v, %d rejected", err, len(rej))
		}
	}
	if err := s.Refresh(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d executions in %s (%.0f docs/s)", n, time.Since(loadStart).Round(time.Millisecond), float64(n)/time.Since(loadStart).Seconds())

	const q = "state:FAILED and namespace:prod*"
	var aggTimes, searchTimes []time.Duration
	i := 0
	for b.Loop() {
		// The window moves a second per round, as a dashboard's now does,
		// so that the shard request cache does not answer.
		now := benchNow.Add(time.Duration(i) * time.Second)
		i++
		node, err := query.Parse(q, repository.Schema(repository.Executions), now)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		res, err := s.Aggregate(b.Context(), repository.AggregateRequest{
			Kind: repository.Executions, Query: node, Since: now.Add(-30 * 24 * time.Hour), Until: now,
			Histogram: &repository.DateHistogram{Interval: 24 * time.Hour, SplitBy: "state"},
		})
		aggTimes = append(aggTimes, time.Since(t0))
		if err != nil || res.Count == 0 || len(res.Buckets) < 30 {
			b.Fatalf("Aggregate: %v (count %d, %d buckets)", err, res.Count, len(res.Buckets))
		}
		t0 = time.Now()
		page, err := s.Search(b.Context(), repository.SearchRequest{Kind: repository.Executions, Query: node,
			Since: now.Add(-30 * 24 * time.Hour), Until: now})
		searchTimes = append(searchTimes, time.Since(t0))
		if err != nil || len(page.Hits) == 0 {
			b.Fatalf("Search: %v (%d hits)", err, len(page.Hits))
		}
	}
	b.ReportMetric(percentile(aggTimes, 50), "agg-p50-ms")
	b.ReportMetric(percentile(aggTimes, 95), "agg-p95-ms")
	b.ReportMetric(percentile(searchTimes, 95), "search-p95-ms")
	b.ReportMetric(float64(n), "docs")
}

// percentile is the nearest-rank percentile of durations, in milliseconds.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	rank := int(p/100*float64(len(ds))+0.999999) - 1
	return float64(ds[max(0, min(rank, len(ds)-1))]) / float64(time.Millisecond)
}
