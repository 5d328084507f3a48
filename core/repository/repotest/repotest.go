// Package repotest is the acceptance suite of repository implementations:
// every Sink and Repository (indexer/embedded, indexer/elasticsearch) runs
// it, so both answer every query, page and aggregation the same way.
package repotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// Open returns a new, empty repository for one test, closed by the test's
// cleanups.
type Open func(t *testing.T) (repository.Sink, repository.Repository)

// Refresher is implemented by repositories whose writes become searchable
// only after a refresh (Elasticsearch): the suite calls it after writing.
type Refresher interface {
	Refresh(ctx context.Context) error
}

// Run runs the suite.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, *suite)
	}{
		{"Queries", testQueries},
		{"HitsRoundTrip", testHitsRoundTrip},
		{"Versions", testVersions},
		{"TimeRangeAndSort", testTimeRangeAndSort},
		{"Pagination", testPagination},
		{"Aggregations", testAggregations},
		{"OtherKinds", testOtherKinds},
		{"InvalidRequests", testInvalidRequests},
		{"Generation", testGeneration},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink, repo := open(t)
			tc.fn(t, &suite{t: t, sink: sink, repo: repo})
		})
	}
}

type suite struct {
	t    *testing.T
	sink repository.Sink
	repo repository.Repository
}

// base is the start of the data set: every time is an hour after it.
var base = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// now is the time relative dates in queries resolve against.
var now = base.Add(48 * time.Hour)

func ptr[T any](v T) *T { return &v }

// executions is the data set: 24 executions an hour apart, over namespaces
// prod.sales, prod.ops and dev, flows load, report and test, states cycling
// SUCCESS, FAILED, RUNNING, WARNING.
func executions() []repository.Execution {
	namespaces := []string{"prod.sales", "prod.ops", "dev"}
	flows := []string{"load", "report", "test", "load"}
	states := []string{"SUCCESS", "FAILED", "RUNNING", "WARNING"}
	var out []repository.Execution
	for i := range 24 {
		e := repository.Execution{
			ID:           fmt.Sprintf("exec-%02d", i),
			Namespace:    namespaces[i%3],
			FlowID:       flows[i%4],
			FlowRevision: int32(1 + i%2),
			State:        states[i%4],
			Start:        base.Add(time.Duration(i) * time.Hour),
			Inputs:       map[string]any{"day": fmt.Sprintf("2026-03-%02d", 1+i/24), "n": float64(i)},
		}
		team := "data"
		if i%2 == 1 {
			team = "ml"
		}
		e.Labels = []repository.Label{{Key: "team", Value: team}}
		if strings.HasPrefix(e.Namespace, "prod") {
			e.Labels = append(e.Labels, repository.Label{Key: "env", Value: "prod"})
		}
		for _, l := range e.Labels {
			e.LabelPairs = append(e.LabelPairs, l.Key+"="+l.Value)
		}
		e.Updated = e.Start
		if e.State != "RUNNING" {
			end := e.Start.Add(time.Duration(i+1) * time.Second)
			e.End, e.Duration, e.Updated = &end, ptr(int64(i+1)*1000), end
			e.Outputs = map[string]any{"rows": float64(i * 10)}
		}
		if e.State == "FAILED" {
			e.Error = fmt.Sprintf("task load failed: connection refused by host db-%d", i)
		}
		if i == 5 {
			e.ParentID = "exec-04"
		}
		out = append(out, e)
	}
	return out
}

func execDocs(es []repository.Execution, version int64) []repository.Doc {
	docs := make([]repository.Doc, len(es))
	for i, e := range es {
		docs[i] = repository.Doc{Kind: repository.Executions, ID: e.ID, Version: version, Source: e}
	}
	return docs
}

// write writes docs, fails the test on any error or rejection, and
// refreshes.
func (s *suite) write(docs ...repository.Doc) {
	s.t.Helper()
	rejected, err := s.sink.Write(s.t.Context(), docs)
	if err != nil {
		s.t.Fatalf("Write(%d docs): %v", len(docs), err)
	}
	for _, r := range rejected {
		s.t.Errorf("Write rejected %s %s: %s", r.Doc.Kind, r.Doc.ID, r.Reason)
	}
	s.refresh()
}

func (s *suite) refresh() {
	s.t.Helper()
	if r, ok := s.repo.(Refresher); ok {
		if err := r.Refresh(s.t.Context()); err != nil {
			s.t.Fatalf("Refresh: %v", err)
		}
	}
}

func (s *suite) parse(kind repository.Kind, q string) query.Node {
	s.t.Helper()
	n, err := query.Parse(q, repository.Schema(kind), now)
	if err != nil {
		s.t.Fatalf("Parse(%q): %v", q, err)
	}
	return n
}

// search runs a search and returns the hits decoded as T.
func search[T any](s *suite, req repository.SearchRequest) ([]T, repository.SearchResult) {
	s.t.Helper()
	res, err := s.repo.Search(s.t.Context(), req)
	if err != nil {
		s.t.Fatalf("Search(%s %s): %v", req.Kind, fmtQuery(req.Query), err)
	}
	out := make([]T, len(res.Hits))
	for i, h := range res.Hits {
		if err := json.Unmarshal(h, &out[i]); err != nil {
			s.t.Fatalf("hit %d of %s is not a %T: %v\n%s", i, req.Kind, out[i], err, h)
		}
	}
	return out, res
}

func fmtQuery(n query.Node) string {
	if n == nil {
		return "(all)"
	}
	return query.Format(n)
}

func ids(es []repository.Execution) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func filter(es []repository.Execution, keep func(repository.Execution) bool) []string {
	var out []string
	for _, e := range es {
		if keep(e) {
			out = append(out, e.ID)
		}
	}
	return out
}

func hasLabel(e repository.Execution, k, v string) bool {
	return slices.Contains(e.Labels, repository.Label{Key: k, Value: v})
}

// testQueries: each construct of the query language selects the documents
// it says, whatever the backend.
func testQueries(t *testing.T, s *suite) {
	data := executions()
	s.write(execDocs(data, 1)...)
	cases := []struct {
		q    string
		want func(repository.Execution) bool
	}{
		{"", func(repository.Execution) bool { return true }},
		{"state:FAILED", func(e repository.Execution) bool { return e.State == "FAILED" }},
		{"state:failed", func(e repository.Execution) bool { return e.State == "FAILED" }},
		{"state:(FAILED or WARNING)", func(e repository.Execution) bool { return e.State == "FAILED" || e.State == "WARNING" }},
		{"not state:SUCCESS", func(e repository.Execution) bool { return e.State != "SUCCESS" }},
		{"namespace:prod*", func(e repository.Execution) bool { return strings.HasPrefix(e.Namespace, "prod") }},
		{"namespace:prod.sale?", func(e repository.Execution) bool { return e.Namespace == "prod.sales" }},
		{"namespace:*ops", func(e repository.Execution) bool { return e.Namespace == "prod.ops" }},
		{"namespace:Prod*", func(repository.Execution) bool { return false }}, // keywords are case-sensitive
		{"state:FAILED and namespace:prod* and not flow_id:test", func(e repository.Execution) bool {
			return e.State == "FAILED" && strings.HasPrefix(e.Namespace, "prod") && e.FlowID != "test"
		}},
		{"flow_id:report or (namespace:dev and state:RUNNING)", func(e repository.Execution) bool {
			return e.FlowID == "report" || (e.Namespace == "dev" && e.State == "RUNNING")
		}},
		{`id:"exec-07"`, func(e repository.Execution) bool { return e.ID == "exec-07" }},
		{"flow_revision:2", func(e repository.Execution) bool { return e.FlowRevision == 2 }},
		{"flow_revision < 2", func(e repository.Execution) bool { return e.FlowRevision < 2 }},
		{"duration >= 10s", func(e repository.Execution) bool { return e.Duration != nil && *e.Duration >= 10000 }},
		{"duration < 3000", func(e repository.Execution) bool { return e.Duration != nil && *e.Duration < 3000 }},
		{"start > now-1d", func(e repository.Execution) bool { return e.Start.After(now.Add(-24 * time.Hour)) }},
		{"start >= 2026-03-01T10:00:00Z and start < 2026-03-01T12:00:00Z", func(e repository.Execution) bool {
			return !e.Start.Before(base.Add(10*time.Hour)) && e.Start.Before(base.Add(12*time.Hour))
		}},
		{"end:*", func(e repository.Execution) bool { return e.End != nil }},
		{"not end:*", func(e repository.Execution) bool { return e.End == nil }},
		{"parent_id:*", func(e repository.Execution) bool { return e.ParentID != "" }},
		{"labels.team:data", func(e repository.Execution) bool { return hasLabel(e, "team", "data") }},
		{"labels.team:(ml) and labels.env:prod", func(e repository.Execution) bool { return hasLabel(e, "team", "ml") && hasLabel(e, "env", "prod") }},
		{"labels.team:d*", func(e repository.Execution) bool { return hasLabel(e, "team", "data") }},
		{"labels.env:*", func(e repository.Execution) bool { return hasLabel(e, "env", "prod") }},
		{"error:refused", func(e repository.Execution) bool { return e.State == "FAILED" }},
		{`error:"connection refused"`, func(e repository.Execution) bool { return e.State == "FAILED" }},
		{`error:"refused connection"`, func(repository.Execution) bool { return false }},
		{"error:conn*", func(e repository.Execution) bool { return e.State == "FAILED" }},
		{"error:REFUSED", func(e repository.Execution) bool { return e.State == "FAILED" }}, // text is case-insensitive
		{"refused", func(e repository.Execution) bool { return e.State == "FAILED" }},
		{`"db-13"`, func(e repository.Execution) bool { return e.ID == "exec-13" }},
		{"error:*", func(e repository.Execution) bool { return e.Error != "" }},
	}
	for _, c := range cases {
		want := filter(data, c.want)
		got, res := search[repository.Execution](s, repository.SearchRequest{
			Kind: repository.Executions, Query: s.parse(repository.Executions, c.q), Size: repository.MaxSize,
		})
		gotIDs := ids(got)
		slices.Sort(gotIDs)
		if !slices.Equal(gotIDs, want) {
			t.Errorf("%q: got %v, want %v", c.q, gotIDs, want)
		}
		if res.Total != int64(len(want)) {
			t.Errorf("%q: total %d, want %d", c.q, res.Total, len(want))
		}
		if res.Cursor != "" {
			t.Errorf("%q: a cursor on the only page", c.q)
		}
	}
}

// testHitsRoundTrip: a hit is the document as written.
func testHitsRoundTrip(t *testing.T, s *suite) {
	data := executions()
	s.write(execDocs(data, 1)...)
	got, _ := search[repository.Execution](s, repository.SearchRequest{
		Kind: repository.Executions, Query: s.parse(repository.Executions, "id:exec-01 or id:exec-02"), Sort: []repository.Sort{{Field: "id"}},
	})
	want := []repository.Execution{data[1], data[2]}
	if a, b := mustJSON(t, got), mustJSON(t, want); a != b {
		t.Errorf("hits\n%s\nwant\n%s", a, b)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testVersions: a write older than the stored version is ignored, and a
// delete is not undone by an older write.
func testVersions(t *testing.T, s *suite) {
	e := executions()[0]
	running, done := e, e
	running.State, running.End, running.Duration = "RUNNING", nil, nil
	done.State = "SUCCESS"
	s.write(repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 10, Source: done})
	s.write(repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 5, Source: running})
	got, _ := search[repository.Execution](s, repository.SearchRequest{Kind: repository.Executions})
	if len(got) != 1 || got[0].State != "SUCCESS" {
		t.Fatalf("after version 10 then 5: %+v, want the state of version 10", got)
	}
	// The same version again is a redelivery: ignored too.
	s.write(repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 10, Source: running})
	if got, _ = search[repository.Execution](s, repository.SearchRequest{Kind: repository.Executions}); len(got) != 1 || got[0].State != "SUCCESS" {
		t.Fatalf("after version 10 again: %+v", got)
	}
	// Within one batch, the last of increasing versions wins.
	failed := done
	failed.State = "FAILED"
	s.write(repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 11, Source: running},
		repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 12, Source: failed})
	if got, _ = search[repository.Execution](s, repository.SearchRequest{Kind: repository.Executions}); len(got) != 1 || got[0].State != "FAILED" {
		t.Fatalf("after versions 11 and 12 in one batch: %+v", got)
	}

	s.write(repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 20, Delete: true})
	s.write(repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 15, Source: done})
	if got, res := search[repository.Execution](s, repository.SearchRequest{Kind: repository.Executions}); len(got) != 0 || res.Total != 0 {
		t.Errorf("after a delete at version 20 then a write at 15: %+v", got)
	}
	// A later write brings it back.
	s.write(repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 21, Source: done})
	if got, _ := search[repository.Execution](s, repository.SearchRequest{Kind: repository.Executions}); len(got) != 1 {
		t.Errorf("after a write at version 21: %+v", got)
	}
}

// testTimeRangeAndSort: Since and Until bound the time field; sorts apply
// with id as the tiebreak; the default is the time field descending.
func testTimeRangeAndSort(t *testing.T, s *suite) {
	data := executions()
	s.write(execDocs(data, 1)...)

	got, _ := search[repository.Execution](s, repository.SearchRequest{Kind: repository.Executions,
		Since: base.Add(3 * time.Hour), Until: base.Add(6 * time.Hour)})
	if g := ids(got); !slices.Equal(g, []string{"exec-05", "exec-04", "exec-03"}) {
		t.Errorf("since 3h until 6h, default sort: %v, want exec-05, exec-04, exec-03", g)
	}

	// Duration ascending; executions without one (RUNNING) sort last.
	got, _ = search[repository.Execution](s, repository.SearchRequest{Kind: repository.Executions,
		Sort: []repository.Sort{{Field: "duration"}}, Size: 100})
	var want []string
	for _, e := range data {
		if e.Duration != nil {
			want = append(want, e.ID) // durations grow with the index
		}
	}
	for _, e := range data {
		if e.Duration == nil {
			want = append(want, e.ID)
		}
	}
	if g := ids(got); !slices.Equal(g[:len(want)-6], want[:len(want)-6]) {
		t.Errorf("by duration: %v, want %v (those without a duration last)", g, want)
	}
	if g := ids(got); !equalAsSets(g[len(want)-6:], want[len(want)-6:]) {
		t.Errorf("by duration, the last: %v, want the RUNNING %v", g[len(want)-6:], want[len(want)-6:])
	}

	// State ascending, then namespace descending, then id ascending.
	got, _ = search[repository.Execution](s, repository.SearchRequest{Kind: repository.Executions,
		Sort: []repository.Sort{{Field: "state"}, {Field: "namespace", Desc: true}}, Size: 100})
	sorted := slices.Clone(data)
	slices.SortFunc(sorted, func(a, b repository.Execution) int {
		if c := strings.Compare(a.State, b.State); c != 0 {
			return c
		}
		if c := strings.Compare(b.Namespace, a.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if g, w := ids(got), ids(sorted); !slices.Equal(g, w) {
		t.Errorf("by state, namespace desc:\n got %v\nwant %v", g, w)
	}
}

func equalAsSets(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// testPagination: a cursor walks every hit exactly once, in order, even
// while other documents are written; a cursor from another search fails.
func testPagination(t *testing.T, s *suite) {
	data := executions()
	s.write(execDocs(data, 1)...)
	req := repository.SearchRequest{Kind: repository.Executions, Query: s.parse(repository.Executions, "not state:RUNNING"), Size: 5}
	var seen []string
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("more than 10 pages of 5 for 18 hits")
		}
		got, res := search[repository.Execution](s, req)
		if page == 0 && res.Total != 18 {
			t.Errorf("page %d: total %d, want 18", page, res.Total)
		}
		seen = append(seen, ids(got)...)
		if page == 0 {
			// Writes between pages: a new execution, and one of the page's
			// changed; the walk goes on.
			extra := data[0]
			extra.ID, extra.Start = "exec-99", base.Add(-time.Hour)
			s.write(repository.Doc{Kind: repository.Executions, ID: extra.ID, Version: 1, Source: extra})
		}
		if res.Cursor == "" {
			if len(got) > 5 {
				t.Errorf("last page of %d hits, size 5", len(got))
			}
			break
		}
		if len(got) != 5 {
			t.Errorf("page %d has %d hits, want 5", page, len(got))
		}
		req.Cursor = res.Cursor
	}
	want := filter(data, func(e repository.Execution) bool { return e.State != "RUNNING" })
	slices.Reverse(want) // start descending
	// exec-99 may or may not be seen (a point in time hides it; a keyset
	// cursor shows it at the end); nothing else may change.
	if seen = slices.DeleteFunc(seen, func(id string) bool { return id == "exec-99" }); !slices.Equal(seen, want) {
		t.Errorf("pages walked %v, want %v", seen, want)
	}

	_, err := s.repo.Search(t.Context(), repository.SearchRequest{Kind: repository.Executions, Size: 5,
		Query: s.parse(repository.Executions, "state:FAILED"), Cursor: req.Cursor})
	if !errors.Is(err, repository.ErrBadCursor) {
		t.Errorf("a cursor with another query: %v, want ErrBadCursor", err)
	}
	_, err = s.repo.Search(t.Context(), repository.SearchRequest{Kind: repository.Executions, Cursor: "garbage"})
	if !errors.Is(err, repository.ErrBadCursor) {
		t.Errorf("a garbage cursor: %v, want ErrBadCursor", err)
	}

	// Size is capped, never an error.
	if _, res := search[repository.Execution](s, repository.SearchRequest{Kind: repository.Executions, Size: 1_000_000}); len(res.Hits) != 25 {
		t.Errorf("size 1,000,000: %d hits, want all 25", len(res.Hits))
	}
}

// testAggregations: histogram by state, terms, percentiles and count.
func testAggregations(t *testing.T, s *suite) {
	data := executions()
	s.write(execDocs(data, 1)...)
	res, err := s.repo.Aggregate(t.Context(), repository.AggregateRequest{
		Kind:  repository.Executions,
		Query: s.parse(repository.Executions, "namespace:prod*"),
		Since: base, Until: base.Add(24 * time.Hour),
		Histogram:   &repository.DateHistogram{Interval: 6 * time.Hour, SplitBy: "state"},
		Terms:       []repository.Terms{{Field: "flow_id"}, {Field: "labels", Size: 2}, {Field: "state", Size: 1}},
		Percentiles: &repository.Percentiles{Field: "duration", Percents: []float64{50, 100}},
	})
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	prod := slices.DeleteFunc(slices.Clone(data), func(e repository.Execution) bool { return !strings.HasPrefix(e.Namespace, "prod") })
	if res.Count != int64(len(prod)) {
		t.Errorf("count %d, want %d", res.Count, len(prod))
	}
	if len(res.Buckets) != 4 {
		t.Fatalf("%d buckets, want 4 of 6h over a day: %+v", len(res.Buckets), res.Buckets)
	}
	for i, b := range res.Buckets {
		start := base.Add(time.Duration(i) * 6 * time.Hour)
		want := map[string]int64{}
		var n int64
		for _, e := range prod {
			if !e.Start.Before(start) && e.Start.Before(start.Add(6*time.Hour)) {
				want[e.State]++
				n++
			}
		}
		if !b.Start.Equal(start) || b.Count != n || fmt.Sprint(b.Split) != fmt.Sprint(want) {
			t.Errorf("bucket %d: %s %d %v, want %s %d %v", i, b.Start, b.Count, b.Split, start, n, want)
		}
	}
	counts := map[string]int64{}
	for _, e := range prod {
		counts[e.FlowID]++
	}
	wantFlows := []repository.TermCount{{Value: "load", Count: counts["load"]}, {Value: "report", Count: counts["report"]}, {Value: "test", Count: counts["test"]}}
	slices.SortStableFunc(wantFlows, func(a, b repository.TermCount) int { return int(b.Count - a.Count) })
	if got := res.Terms["flow_id"]; fmt.Sprint(got) != fmt.Sprint(wantFlows) {
		t.Errorf("terms flow_id %v, want %v", got, wantFlows)
	}
	// Every prod execution has env=prod; half team=data, half team=ml:
	// env=prod first, then team=data (ties by value).
	if got := res.Terms["labels"]; fmt.Sprint(got) != fmt.Sprint([]repository.TermCount{{Value: "env=prod", Count: 16}, {Value: "team=data", Count: 8}}) {
		t.Errorf("terms labels %v", got)
	}
	if got := res.Terms["state"]; len(got) != 1 {
		t.Errorf("terms state of size 1: %v", got)
	}
	var durations []float64
	for _, e := range prod {
		if e.Duration != nil {
			durations = append(durations, float64(*e.Duration))
		}
	}
	slices.Sort(durations)
	if got := res.Percentiles[100]; got != durations[len(durations)-1] {
		t.Errorf("p100 %v, want the longest, %v", got, durations[len(durations)-1])
	}
	// The median of 12 values: backends interpolate differently; it must
	// lie between the two middle values' neighbours.
	if got := res.Percentiles[50]; got < durations[4] || got > durations[7] {
		t.Errorf("p50 %v, want about %v", got, durations[5:7])
	}

	// Empty buckets are there; Until defaults to now for a histogram.
	res, err = s.repo.Aggregate(t.Context(), repository.AggregateRequest{
		Kind: repository.Executions, Since: base.Add(-48 * time.Hour), Until: base.Add(24 * time.Hour),
		Histogram: &repository.DateHistogram{Interval: 24 * time.Hour},
	})
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	if got := fmt.Sprint(bucketCounts(res.Buckets)); got != "[0 0 24]" {
		t.Errorf("daily buckets from 2 days before: %s, want [0 0 24]", got)
	}
	// Percentiles over nothing: empty, not an error.
	res, err = s.repo.Aggregate(t.Context(), repository.AggregateRequest{Kind: repository.Executions,
		Query: s.parse(repository.Executions, "state:RUNNING"), Percentiles: &repository.Percentiles{Field: "duration", Percents: []float64{99}}})
	if err != nil || res.Count != 6 || len(res.Percentiles) != 0 && !math.IsNaN(res.Percentiles[99]) {
		t.Errorf("percentiles of RUNNING executions (no duration): %+v, %v", res, err)
	}
}

func bucketCounts(bs []repository.Bucket) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.Count
	}
	return out
}

// testOtherKinds: task runs, events, logs, flows and triggers are written
// and found by their fields and full text.
func testOtherKinds(t *testing.T, s *suite) {
	at := base.Add(time.Hour)
	end := at.Add(2 * time.Second)
	s.write(
		repository.Doc{Kind: repository.TaskRuns, ID: "tr-1", Version: 1, Source: repository.TaskRun{ID: "tr-1", ExecutionID: "exec-01",
			Namespace: "prod.sales", FlowID: "load", TaskID: "extract", State: "FAILED", Start: at, End: &end, Duration: ptr(int64(2000)),
			Attempts: 3, Error: "HTTP 503 from upstream"}},
		repository.Doc{Kind: repository.TaskRuns, ID: "tr-2", Version: 1, Source: repository.TaskRun{ID: "tr-2", ExecutionID: "exec-01",
			Namespace: "prod.sales", FlowID: "load", TaskID: "each", Value: ptr("a"), State: "SUCCESS", Start: at, Attempts: 1}},
		repository.Doc{Kind: repository.Events, ID: "exec-01/1", Version: 1, Source: repository.Event{ExecutionID: "exec-01", Seq: 1, Type: "CREATED", Time: at}},
		repository.Doc{Kind: repository.Events, ID: "exec-01/2", Version: 2, Source: repository.Event{ExecutionID: "exec-01", Seq: 2, Type: "STATE", State: "RUNNING", Time: at.Add(time.Millisecond)}},
		repository.Doc{Kind: repository.Logs, ID: "0-1", Version: 1, Source: repository.Log{ExecutionID: "exec-01", Namespace: "prod.sales", FlowID: "load",
			TaskID: "extract", Level: "ERROR", Message: "Connection refused: db.internal:5432", Time: at}},
		repository.Doc{Kind: repository.Logs, ID: "0-2", Version: 2, Source: repository.Log{ExecutionID: "exec-01", Namespace: "prod.sales", FlowID: "load",
			TaskID: "extract", Level: "INFO", Message: "retrying in 5s", Time: at.Add(time.Second)}},
		repository.Doc{Kind: repository.Logs, ID: "0-3", Version: 3, Source: repository.Log{ExecutionID: "exec-02", Namespace: "dev", FlowID: "load",
			Level: "WARN", Message: "slow query", Time: at.Add(-30 * 24 * time.Hour)}},
		repository.Doc{Kind: repository.Flows, ID: "prod.sales/load", Version: 7, Source: repository.Flow{Namespace: "prod.sales", ID: "load", Revision: 3,
			Labels: []repository.Label{{Key: "team", Value: "data"}}, LabelPairs: []string{"team=data"},
			Source: "id: load\nnamespace: prod.sales\ntasks:\n  - id: extract\n    type: io.kestra.plugin.core.http.Request\n", Updated: at}},
		repository.Doc{Kind: repository.Flows, ID: "dev/other", Version: 8, Source: repository.Flow{Namespace: "dev", ID: "other", Revision: 1,
			Disabled: true, Source: "id: other\nnamespace: dev\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n", Updated: at}},
		repository.Doc{Kind: repository.Triggers, ID: "prod.sales/load/daily", Version: 1, Source: repository.Trigger{Namespace: "prod.sales", FlowID: "load",
			TriggerID: "daily", Type: "io.kestra.plugin.core.trigger.Schedule", FlowRevision: 3, NextTime: &end, Updated: at}},
	)
	cases := []struct {
		kind repository.Kind
		q    string
		want []string // a distinguishing field of each hit, sorted
	}{
		{repository.TaskRuns, "state:FAILED and attempts >= 2", []string{"tr-1"}},
		{repository.TaskRuns, "namespace:prod* and task_id:each and value:a", []string{"tr-2"}},
		{repository.TaskRuns, "upstream", []string{"tr-1"}},
		{repository.TaskRuns, "duration > 1s", []string{"tr-1"}},
		{repository.Events, "execution_id:exec-01 and type:state", []string{"2"}},
		{repository.Events, "seq <= 2", []string{"1", "2"}},
		{repository.Logs, "level:(ERROR or WARN)", []string{"Connection refused: db.internal:5432", "slow query"}},
		{repository.Logs, `"connection refused"`, []string{"Connection refused: db.internal:5432"}},
		{repository.Logs, "retry*", []string{"retrying in 5s"}},
		{repository.Logs, "execution_id:exec-01 and not level:INFO", []string{"Connection refused: db.internal:5432"}},
		{repository.Logs, "time < now-7d", []string{"slow query"}},
		{repository.Flows, "io.kestra.plugin.core.log.Log", []string{"other"}},
		{repository.Flows, `source:"type: io.kestra.plugin.core.http.Request"`, []string{"load"}},
		{repository.Flows, "labels.team:data", []string{"load"}},
		{repository.Flows, "disabled:true", []string{"other"}},
		{repository.Flows, "revision > 1 and namespace:prod.sales", []string{"load"}},
		{repository.Triggers, "type:*Schedule and disabled:false", []string{"daily"}},
		{repository.Triggers, "next_time > 2026-03-01T00:00:00Z", []string{"daily"}},
	}
	for _, c := range cases {
		res, err := s.repo.Search(t.Context(), repository.SearchRequest{Kind: c.kind, Query: s.parse(c.kind, c.q)})
		if err != nil {
			t.Errorf("%s %q: %v", c.kind, c.q, err)
			continue
		}
		var got []string
		for _, h := range res.Hits {
			var m map[string]any
			if err := json.Unmarshal(h, &m); err != nil {
				t.Fatal(err)
			}
			key := map[repository.Kind]string{repository.TaskRuns: "id", repository.Events: "seq", repository.Logs: "message",
				repository.Flows: "id", repository.Triggers: "trigger_id"}[c.kind]
			got = append(got, fmt.Sprint(m[key]))
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s %q: %q, want %q", c.kind, c.q, got, c.want)
		}
	}
	// Logs sort by time, newest first, by default.
	got, _ := search[repository.Log](s, repository.SearchRequest{Kind: repository.Logs})
	if len(got) != 3 || got[0].Message != "retrying in 5s" || got[2].Message != "slow query" {
		t.Errorf("logs by default order: %+v", got)
	}
}

// testInvalidRequests: aggregations that cannot be served are
// ErrInvalidRequest, with nothing half done.
func testInvalidRequests(t *testing.T, s *suite) {
	s.write(execDocs(executions()[:2], 1)...)
	bad := []repository.AggregateRequest{
		{Kind: repository.Executions, Terms: []repository.Terms{{Field: "nope"}}},
		{Kind: repository.Executions, Terms: []repository.Terms{{Field: "error"}}},                                   // text
		{Kind: repository.Executions, Percentiles: &repository.Percentiles{Field: "state", Percents: []float64{50}}}, // not a number
		{Kind: repository.Executions, Histogram: &repository.DateHistogram{Interval: time.Hour}},                     // no Since
		{Kind: repository.Executions, Since: base, Until: base.Add(1000 * time.Hour), Histogram: &repository.DateHistogram{Interval: time.Hour}},
		{Kind: repository.Executions, Since: base, Until: base.Add(time.Hour), Histogram: &repository.DateHistogram{Interval: time.Minute, SplitBy: "duration"}},
	}
	for i, req := range bad {
		if _, err := s.repo.Aggregate(t.Context(), req); !errors.Is(err, repository.ErrInvalidRequest) {
			t.Errorf("request %d: %v, want ErrInvalidRequest", i, err)
		}
	}
	if _, err := s.repo.Search(t.Context(), repository.SearchRequest{Kind: repository.Executions, Sort: []repository.Sort{{Field: "error"}}}); !errors.Is(err, repository.ErrInvalidRequest) {
		t.Errorf("sort by a text field: %v, want ErrInvalidRequest", err)
	}
	if _, err := s.repo.Search(t.Context(), repository.SearchRequest{Kind: "nope"}); !errors.Is(err, repository.ErrInvalidRequest) {
		t.Errorf("unknown kind: %v, want ErrInvalidRequest", err)
	}
}

// testGeneration: a repository has one generation, the same on every call.
func testGeneration(t *testing.T, s *suite) {
	g1, err := s.sink.Generation(t.Context())
	if err != nil || g1 == "" {
		t.Fatalf("Generation() = %q, %v", g1, err)
	}
	if g2, err := s.sink.Generation(t.Context()); err != nil || g2 != g1 {
		t.Errorf("Generation() again = %q, %v, want %q", g2, err, g1)
	}
}
