package embedded

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// sortData is executions with repeated values and missing durations and
// ends, for sorts and their ties.
func sortData() []repository.Execution {
	var out []repository.Execution
	for i := range 40 {
		e := repository.Execution{
			ID:        fmt.Sprintf("e%02d", (i*17)%40), // ids not in time order
			Namespace: []string{"prod.a", "prod.b", "dev"}[i%3],
			FlowID:    []string{"x", "y"}[i%2],
			State:     []string{"SUCCESS", "FAILED", "RUNNING", "KILLED"}[i%4],
			Start:     t0.Add(time.Duration(i/3) * time.Minute), // ties of three
		}
		if e.State != "RUNNING" {
			e.Duration = ptr(int64(i%5) * 1000)
			end := e.Start.Add(time.Duration(*e.Duration) * time.Millisecond)
			e.End = &end
		}
		out = append(out, e)
	}
	return out
}

// expectOrder orders executions as a search sorted by keys must: missing
// values last, ties by id.
func expectOrder(data []repository.Execution, sorts []repository.Sort) []string {
	es := slices.Clone(data)
	val := func(e repository.Execution, f string) (any, bool) {
		switch f {
		case "namespace":
			return e.Namespace, true
		case "flow_id":
			return e.FlowID, true
		case "state":
			return e.State, true
		case "start":
			return e.Start.UnixMilli(), true
		case "duration":
			if e.Duration == nil {
				return nil, false
			}
			return *e.Duration, true
		case "end":
			if e.End == nil {
				return nil, false
			}
			return e.End.UnixMilli(), true
		}
		panic(f)
	}
	slices.SortFunc(es, func(a, b repository.Execution) int {
		for _, s := range sorts {
			va, oka := val(a, s.Field)
			vb, okb := val(b, s.Field)
			switch {
			case !oka && !okb:
				continue
			case !oka:
				return 1
			case !okb:
				return -1
			}
			var c int
			switch va := va.(type) {
			case string:
				c = cmp.Compare(va, vb.(string))
			case int64:
				c = cmp.Compare(va, vb.(int64))
			}
			if s.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a.ID, b.ID)
	})
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}

func TestSortAndPages(t *testing.T) {
	x := openTest(t, Config{})
	data := sortData()
	var docs []repository.Doc
	for _, e := range data {
		docs = append(docs, execDoc(1, e))
	}
	mustWrite(t, x, docs...)
	sorts := [][]repository.Sort{
		nil, // start descending
		{{Field: "start"}},
		{{Field: "duration"}},
		{{Field: "duration", Desc: true}},
		{{Field: "end", Desc: true}, {Field: "namespace"}},
		{{Field: "state"}, {Field: "duration", Desc: true}, {Field: "flow_id", Desc: true}},
		{{Field: "namespace", Desc: true}, {Field: "end"}},
	}
	for _, s := range sorts {
		want := expectOrder(data, s)
		if s == nil {
			want = expectOrder(data, []repository.Sort{{Field: "start", Desc: true}})
		}
		for _, size := range []int{1, 3, 7, 40, 100} {
			got := searchAll(t, x, repository.SearchRequest{Kind: repository.Executions, Sort: s, Size: size})
			if !slices.Equal(got, want) {
				t.Errorf("sort %v, pages of %d:\n got %v\nwant %v", s, size, got, want)
			}
		}
	}
}

func TestPaginationUnderConcurrentWrites(t *testing.T) {
	x := openTest(t, Config{})
	var docs []repository.Doc
	var want []repository.Execution
	for i := range 500 {
		e := repository.Execution{ID: fmt.Sprintf("p%03d", i), Namespace: "prod", State: "SUCCESS",
			Start: t0.Add(time.Duration(i%50) * time.Second), Duration: ptr(int64(i % 7))}
		docs = append(docs, execDoc(1, e))
		want = append(want, e)
	}
	mustWrite(t, x, docs...)

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		// Unrelated documents, new and updated, at the times of the hits.
		for i := 0; ctx.Err() == nil; i++ {
			var batch []repository.Doc
			for j := range 20 {
				batch = append(batch, execDoc(int64(i+1), repository.Execution{ID: fmt.Sprintf("n%03d", (i*20+j)%300), Namespace: "noise",
					State: "RUNNING", Start: t0.Add(time.Duration(j) * time.Second)}))
			}
			if _, err := x.Write(ctx, batch); err != nil && ctx.Err() == nil {
				t.Errorf("Write: %v", err)
				return
			}
		}
	})
	defer wg.Wait()
	defer cancel()

	q := exact("namespace", "prod")
	for _, s := range [][]repository.Sort{nil, {{Field: "duration"}, {Field: "start", Desc: true}}} {
		wantIDs := expectOrder(want, s)
		if s == nil {
			wantIDs = expectOrder(want, []repository.Sort{{Field: "start", Desc: true}})
		}
		req := repository.SearchRequest{Kind: repository.Executions, Query: q, Sort: s, Size: 13}
		var got []string
		for {
			res, err := x.Search(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != 500 {
				t.Errorf("total %d, want 500", res.Total)
			}
			got = append(got, hitIDs(t, res.Hits)...)
			if res.Cursor == "" {
				break
			}
			req.Cursor = res.Cursor
		}
		if !slices.Equal(got, wantIDs) {
			t.Errorf("sort %v: walked %d hits (%d distinct), want each of the %d once, in order", s, len(got), len(slices.Compact(sorted(got))), len(wantIDs))
		}
	}
}

func TestCursorChecks(t *testing.T) {
	x := fixture(t)
	first := func(req repository.SearchRequest) string {
		t.Helper()
		req.Size = 1
		res, err := x.Search(t.Context(), req)
		if err != nil || res.Cursor == "" {
			t.Fatalf("first page: %v, cursor %q", err, res.Cursor)
		}
		return res.Cursor
	}
	base := repository.SearchRequest{Kind: repository.Executions, Query: wildcard("namespace", "prod*")}
	cur := first(base)
	bad := map[string]repository.SearchRequest{
		"another query":   {Kind: repository.Executions, Query: wildcard("namespace", "dev*")},
		"another sort":    {Kind: repository.Executions, Query: base.Query, Sort: []repository.Sort{{Field: "namespace"}}},
		"another kind":    {Kind: repository.TaskRuns},
		"another field":   {Kind: repository.Executions, Query: wildcard("flow_id", "prod*")},
		"another label":   {Kind: repository.Executions, Query: label("a", query.Exact, "b")},
		"no query":        {Kind: repository.Executions},
		"descending sort": {Kind: repository.Executions, Query: base.Query, Sort: []repository.Sort{{Field: "start"}}},
	}
	for name, req := range bad {
		req.Cursor = cur
		if _, err := x.Search(t.Context(), req); !errors.Is(err, repository.ErrBadCursor) {
			t.Errorf("%s: %v, want ErrBadCursor", name, err)
		}
	}
	for _, c := range []string{"!!!", "e30", "eyJkIjoieCJ9"} { // not base64, {}, {"d":"x"}
		if _, err := x.Search(t.Context(), repository.SearchRequest{Kind: repository.Executions, Cursor: c}); !errors.Is(err, repository.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
	// Instants may move between pages (now-1d resolved again): the cursor
	// still fits, the range applies.
	timed := repository.SearchRequest{Kind: repository.Executions, Since: t0.Add(-time.Hour),
		Query: &query.Range{Field: field("start"), Op: query.GTE, Time: t0.Add(-time.Hour)}, Sort: []repository.Sort{{Field: "start"}}}
	timed.Cursor = first(timed)
	timed.Since = t0.Add(-time.Hour + time.Minute)
	timed.Query.(*query.Range).Time = timed.Since
	res, err := x.Search(t.Context(), timed)
	if err != nil || !slices.Equal(hitIDs(t, res.Hits), []string{"e2", "e3", "e4", "e5"}) {
		t.Errorf("moved instants: %v, %v", hitIDs(t, res.Hits), err)
	}
}

func TestSearchSizes(t *testing.T) {
	x := openTest(t, Config{})
	var docs []repository.Doc
	for i := range repository.MaxSize + 10 {
		docs = append(docs, execDoc(1, repository.Execution{ID: fmt.Sprintf("e%04d", i), Start: t0}))
	}
	mustWrite(t, x, docs...)
	for size, want := range map[int]int{0: repository.DefaultSize, -1: repository.DefaultSize, 3: 3, 5000: repository.MaxSize} {
		res, err := x.Search(t.Context(), repository.SearchRequest{Kind: repository.Executions, Size: size})
		if err != nil || len(res.Hits) != want || res.Total != int64(len(docs)) || res.Cursor == "" {
			t.Errorf("size %d: %d hits, total %d, cursor %q, %v; want %d hits", size, len(res.Hits), res.Total, res.Cursor, err, want)
		}
	}
}
