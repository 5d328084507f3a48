package embedded

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// find returns the ids of the executions a query matches.
func find(tb testing.TB, x *Index, q query.Node) []string {
	tb.Helper()
	return sorted(searchAll(tb, x, repository.SearchRequest{Kind: repository.Executions, Query: q}))
}

func TestWriteVersions(t *testing.T) {
	x := openTest(t, Config{})
	e := repository.Execution{ID: "a", Namespace: "ns", State: "RUNNING", Start: t0}
	done := e
	done.State = "SUCCESS"
	mustWrite(t, x, execDoc(5, e))
	steps := []struct {
		name  string
		docs  []repository.Doc
		state string // "" for no document
	}{
		{"newer", []repository.Doc{execDoc(6, done)}, "SUCCESS"},
		{"older ignored", []repository.Doc{execDoc(4, e)}, "SUCCESS"},
		{"same version ignored", []repository.Doc{execDoc(6, e)}, "SUCCESS"},
		{"last of a batch wins", []repository.Doc{execDoc(7, e), execDoc(8, done), execDoc(7, e)}, "SUCCESS"},
		{"delete", []repository.Doc{{Kind: repository.Executions, ID: "a", Version: 10, Delete: true}}, ""},
		{"older write after a delete stays deleted", []repository.Doc{execDoc(9, e)}, ""},
		{"older delete is ignored too", []repository.Doc{{Kind: repository.Executions, ID: "a", Version: 9, Delete: true}}, ""},
		{"newer write after a delete", []repository.Doc{execDoc(11, e)}, "RUNNING"},
		{"delete and write in a batch", []repository.Doc{{Kind: repository.Executions, ID: "a", Version: 12, Delete: true}, execDoc(13, done)}, "SUCCESS"},
	}
	for _, s := range steps {
		if rej := mustWrite(t, x, s.docs...); len(rej) != 0 {
			t.Fatalf("%s: rejected %v", s.name, rej)
		}
		res, err := x.Search(t.Context(), repository.SearchRequest{Kind: repository.Executions})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if len(res.Hits) == 1 {
			var d repository.Execution
			if err := json.Unmarshal(res.Hits[0], &d); err != nil {
				t.Fatal(err)
			}
			got = d.State
		}
		if got != s.state || res.Total != int64(len(res.Hits)) || len(res.Hits) > 1 {
			t.Errorf("%s: state %q (%d hits, total %d), want %q", s.name, got, len(res.Hits), res.Total, s.state)
		}
	}
}

func TestWriteDeleteBeforeWrite(t *testing.T) {
	x := openTest(t, Config{})
	e := repository.Execution{ID: "a", Namespace: "ns", State: "RUNNING", Start: t0}
	// The delete arrives first (reordering): the write it deletes stays out.
	mustWrite(t, x, repository.Doc{Kind: repository.Executions, ID: "a", Version: 3, Delete: true})
	mustWrite(t, x, execDoc(2, e))
	if got := find(t, x, nil); len(got) != 0 {
		t.Errorf("a write older than a delete of a document never seen: %v", got)
	}
	// Tombstones are per kind.
	mustWrite(t, x, repository.Doc{Kind: repository.TaskRuns, ID: "a", Version: 1, Source: repository.TaskRun{ID: "a", Start: t0}})
	res, err := x.Search(t.Context(), repository.SearchRequest{Kind: repository.TaskRuns})
	if err != nil || res.Total != 1 {
		t.Errorf("a task run with the id of a deleted execution: %d, %v", res.Total, err)
	}
	// Tombstones outlive a restart.
	dir := x.cfg.Dir
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openTest(t, Config{Dir: dir})
	mustWrite(t, x, execDoc(1, e))
	if got := find(t, x, nil); len(got) != 0 {
		t.Errorf("after a restart, a write older than a delete: %v", got)
	}
}

func TestWriteReindexes(t *testing.T) {
	x := openTest(t, Config{})
	e := repository.Execution{ID: "a", Namespace: "ns", State: "FAILED", Start: t0, Error: "connection refused",
		Labels: []repository.Label{{Key: "team", Value: "data"}, {Key: "env", Value: "prod"}}}
	mustWrite(t, x, execDoc(1, e))
	e.Error, e.Labels = "timeout", []repository.Label{{Key: "team", Value: "ml"}, {Key: "env", Value: "prod"}}
	mustWrite(t, x, execDoc(2, e))
	checks := []struct {
		name string
		q    query.Node
		want []string
	}{
		{"old word", exact("error", "refused"), nil},
		{"new word", exact("error", "timeout"), []string{"a"}},
		{"old label", label("team", query.Exact, "data"), nil},
		{"new label", label("team", query.Exact, "ml"), []string{"a"}},
		{"kept label", label("env", query.Exact, "prod"), []string{"a"}},
	}
	for _, c := range checks {
		if got := find(t, x, c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// Without labels and error, nothing is left of them.
	e.Error, e.Labels = "", nil
	mustWrite(t, x, execDoc(3, e))
	for _, q := range []query.Node{exact("error", "timeout"), &query.Exists{Field: field("labels")}, &query.Exists{Field: field("error")}} {
		if got := find(t, x, q); len(got) != 0 {
			t.Errorf("%T after removing labels and error: %v", q, got)
		}
	}
	// A delete removes them from the side tables.
	e.Error, e.Labels = "boom", []repository.Label{{Key: "team", Value: "ml"}}
	mustWrite(t, x, execDoc(4, e))
	mustWrite(t, x, repository.Doc{Kind: repository.Executions, ID: "a", Version: 5, Delete: true})
	for _, s := range []string{"executions_labels", "executions_fts"} {
		var n int
		if err := x.r.QueryRow("SELECT COUNT(*) FROM " + s).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after a delete: %d rows, %v", s, n, err)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	x := openTest(t, Config{})
	good := func(id string) repository.Doc {
		return execDoc(1, repository.Execution{ID: id, Namespace: "ns", State: "SUCCESS", Start: t0})
	}
	raw := func(id, js string) repository.Doc {
		return repository.Doc{Kind: repository.Executions, ID: id, Version: 1, Source: json.RawMessage(js)}
	}
	bad := []struct {
		doc    repository.Doc
		reason string
	}{
		{repository.Doc{Kind: "nope", ID: "x", Version: 1, Source: map[string]any{}}, "unknown kind"},
		{repository.Doc{Kind: repository.Executions, Version: 1, Source: map[string]any{}}, "no document id"},
		{repository.Doc{Kind: repository.Executions, ID: "x", Version: 1}, "no source"},
		{repository.Doc{Kind: repository.Executions, ID: "x", Version: 1, Source: make(chan int)}, "not JSON"},
		{raw("x", `"a string"`), "not a JSON object"},
		{raw("x", `{"start": "yesterday"}`), "field start (date)"},
		{raw("x", `{"duration": "long"}`), "field duration (duration)"},
		{raw("x", `{"flow_revision": true}`), "field flow_revision (number)"},
		{raw("x", `{"namespace": {"a": 1}}`), "field namespace (keyword)"},
		{raw("x", `{"label_pairs": "team=data"}`), "label_pairs"},
	}
	docs := []repository.Doc{good("ok-1")}
	for _, b := range bad {
		docs = append(docs, b.doc)
	}
	docs = append(docs, good("ok-2"))
	rej, err := x.Write(t.Context(), docs)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(rej) != len(bad) {
		t.Fatalf("rejected %d, want %d: %+v", len(rej), len(bad), rej)
	}
	for i, r := range rej {
		if !strings.Contains(r.Reason, bad[i].reason) {
			t.Errorf("rejected %d: %q, want it to mention %q", i, r.Reason, bad[i].reason)
		}
	}
	if got := find(t, x, nil); !slices.Equal(got, []string{"ok-1", "ok-2"}) {
		t.Errorf("written around the rejected: %v", got)
	}
}

func TestWriteLenientValues(t *testing.T) {
	x := openTest(t, Config{})
	// As Elasticsearch coerces: numbers as strings, epoch milliseconds,
	// labels given as objects only.
	mustWrite(t, x, repository.Doc{Kind: repository.Executions, ID: "a", Version: 1, Source: json.RawMessage(
		`{"id":"a","flow_revision":"7","start":` + jsonInt(t0.UnixMilli()) + `,"labels":[{"key":"team","value":"data"}],"state":"SUCCESS"}`)})
	for _, q := range []query.Node{
		&query.Match{Field: field("flow_revision"), Number: 7},
		&query.Match{Field: field("start"), Time: t0},
		label("team", query.Exact, "data"),
	} {
		if got := find(t, x, q); !slices.Equal(got, []string{"a"}) {
			t.Errorf("%#v: %v", q, got)
		}
	}
	// The hit is the JSON as written.
	res, err := x.Search(t.Context(), repository.SearchRequest{Kind: repository.Executions})
	if err != nil || len(res.Hits) != 1 || !strings.Contains(string(res.Hits[0]), `"flow_revision":"7"`) {
		t.Errorf("hit: %s, %v", res.Hits, err)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestWriteConcurrent writes the versions of the same documents from
// several goroutines, in random batches, while searches run: each
// document ends at its highest version.
func TestWriteConcurrent(t *testing.T) {
	x := openTest(t, Config{})
	const docs, versions, writers = 50, 20, 4
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for v := w + 1; v <= versions; v += writers {
				var batch []repository.Doc
				for d := range docs {
					batch = append(batch, execDoc(int64(v), repository.Execution{ID: fmt.Sprintf("d%02d", d), Namespace: "ns",
						FlowRevision: int32(v), Start: t0, Labels: []repository.Label{{Key: "v", Value: fmt.Sprint(v)}}}))
				}
				if _, err := x.Write(t.Context(), batch); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				if _, err := x.Search(t.Context(), repository.SearchRequest{Kind: repository.Executions, Query: exact("namespace", "ns")}); err != nil {
					t.Errorf("Search: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	res, err := x.Aggregate(t.Context(), repository.AggregateRequest{Kind: repository.Executions,
		Terms: []repository.Terms{{Field: "labels"}}, Percentiles: &repository.Percentiles{Field: "flow_revision", Percents: []float64{1, 100}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res.Terms["labels"]); got != fmt.Sprintf("[{v=%d %d}]", versions, docs) || res.Percentiles[1] != versions {
		t.Errorf("after concurrent writes: labels %s, lowest revision %v; want every document at version %d", got, res.Percentiles[1], versions)
	}
}

// TestWriteMixedBatch writes one batch that mixes kinds, inserts more
// documents than one statement takes, and updates and deletes documents
// inserted earlier in the batch.
func TestWriteMixedBatch(t *testing.T) {
	x := openTest(t, Config{})
	var batch []repository.Doc
	var many []repository.Label
	for i := range 70 {
		many = append(many, repository.Label{Key: fmt.Sprintf("k%02d", i), Value: "v"})
	}
	for i := range 100 {
		e := repository.Execution{ID: fmt.Sprintf("e%03d", i), Namespace: "ns", State: "FAILED", Start: t0,
			Error: fmt.Sprintf("boom%d", i), Labels: []repository.Label{{Key: "i", Value: fmt.Sprint(i)}}}
		if i == 50 {
			e.Labels = many
		}
		batch = append(batch, execDoc(1, e),
			repository.Doc{Kind: repository.Logs, ID: fmt.Sprintf("0-%d", i), Version: 1, Source: repository.Log{Message: fmt.Sprintf("line%d", i), Time: t0}})
		switch i {
		case 10: // e005 again, updated
			batch = append(batch, execDoc(2, repository.Execution{ID: "e005", Namespace: "ns", State: "SUCCESS", Start: t0}))
		case 20: // e015 deleted
			batch = append(batch, repository.Doc{Kind: repository.Executions, ID: "e015", Version: 2, Delete: true})
		}
	}
	mustWrite(t, x, batch...)
	checks := []struct {
		kind repository.Kind
		q    string
		want int64
	}{
		{repository.Executions, "", 99},
		{repository.Executions, "state:FAILED", 98},
		{repository.Executions, "error:boom7", 1},
		{repository.Executions, "error:boom5 or error:boom15", 0},
		{repository.Executions, "labels.i:99", 1},
		{repository.Executions, "labels.i:5 or labels.i:15", 0},
		{repository.Executions, "labels.k69:v and labels.k00:v", 1},
		{repository.Executions, "state:SUCCESS and not error:*", 1},
		{repository.Logs, "line42", 1},
		{repository.Logs, "", 100},
	}
	for _, c := range checks {
		q, err := query.Parse(c.q, repository.Schema(c.kind), t0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := x.Search(t.Context(), repository.SearchRequest{Kind: c.kind, Query: q})
		if err != nil || res.Total != c.want {
			t.Errorf("%s %q: %d, %v; want %d", c.kind, c.q, res.Total, err, c.want)
		}
	}
}
