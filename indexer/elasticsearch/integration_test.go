package elasticsearch

// Integration tests against a real OpenSearch 2.19 (integration/searchtest:
// `integration/opensearch/with-opensearch.sh go test ./indexer/elasticsearch/`);
// they skip without one.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
	"github.com/kiteflow/kite/integration/searchtest"
)

func field(k repository.Kind, name string) *query.Field {
	f := repository.Schema(k).Field(name)
	if f == nil {
		panic("no field " + name + " in " + string(k))
	}
	return f
}

func TestTemplatesAndIndices(t *testing.T) {
	s := newTestStore(t, Config{})
	ctx := t.Context()
	p := s.cfg.IndexPrefix

	status, body, err := s.call(ctx, http.MethodGet, "/_index_template/"+p+"executions", nil, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET template: %d %s %v", status, body, err)
	}
	var tpl struct {
		IndexTemplates []struct {
			IndexTemplate struct {
				IndexPatterns []string `json:"index_patterns"`
				Template      struct {
					Mappings struct {
						Dynamic    any                       `json:"dynamic"`
						Properties map[string]map[string]any `json:"properties"`
					} `json:"mappings"`
				} `json:"template"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	if err := json.Unmarshal(body, &tpl); err != nil || len(tpl.IndexTemplates) != 1 {
		t.Fatalf("decoding %s: %v", body, err)
	}
	m := tpl.IndexTemplates[0].IndexTemplate.Template.Mappings
	if fmt.Sprint(m.Dynamic) != "false" {
		t.Errorf("dynamic = %v, want false", m.Dynamic)
	}
	for name, typ := range map[string]string{"start": "date", "state": "keyword", "duration": "long", "error": "text", "label_pairs": "keyword", "flow_revision": "long"} {
		if got := m.Properties[name]["type"]; got != typ {
			t.Errorf("template property %s type = %v, want %s", name, got, typ)
		}
	}
	if got := m.Properties["inputs"]["enabled"]; got != false {
		t.Errorf("inputs enabled = %v, want false (stored, not indexed)", got)
	}

	names, err := s.indices(ctx, p+"*")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	want := []string{p + "executions", p + "flows", p + "meta", p + "task-runs", p + "triggers"}
	if !slices.Equal(names, want) {
		t.Errorf("indices = %v, want %v", names, want)
	}

	// Idempotent: a second instance with the same prefix starts over it.
	s2, err := New(ctx, s.cfg, nil)
	if err != nil {
		t.Fatalf("second New: %v", err)
	}
	defer func() { _ = s2.Close() }()
	g1, _ := s.Generation(ctx)
	g2, err := s2.Generation(ctx)
	if err != nil || g1 == "" || g1 != g2 {
		t.Errorf("generations %q and %q (%v), want one", g1, g2, err)
	}
}

func TestGenerationChangesWhenIndicesAreDeleted(t *testing.T) {
	s := newTestStore(t, Config{})
	ctx := t.Context()
	g1, err := s.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Generation(ctx); g != g1 {
		t.Fatalf("generation changed from %q to %q without a reason", g1, g)
	}
	if status, body, err := s.call(ctx, http.MethodDelete, "/"+s.metaIndex(), nil, nil); err != nil || status != http.StatusOK {
		t.Fatalf("deleting the meta index: %d %s %v", status, body, err)
	}
	g2, err := s.Generation(ctx)
	if err != nil || g2 == "" || g2 == g1 {
		t.Errorf("generation after deleting the indices = %q (%v), want a new one (was %q)", g2, err, g1)
	}
}

func TestWriteSearchRoundTrip(t *testing.T) {
	s := newTestStore(t, Config{})
	end := day0.Add(time.Hour + 5*time.Second)
	e := repository.Execution{
		ID: "e1", Namespace: "prod.billing", FlowID: "nightly", FlowRevision: 2, State: "FAILED",
		Start: day0.Add(time.Hour), End: &end, Duration: ptr[int64](5000),
		Labels: []repository.Label{{Key: "team", Value: "data"}}, LabelPairs: []string{"team=data"},
		Inputs: map[string]any{"n": 1.0, "nested": map[string]any{"deep": []any{"x"}}}, Error: "boom",
		Updated: end,
	}
	logs := []repository.Doc{
		{Kind: repository.Logs, ID: "0-1", Version: 1, Source: repository.Log{ExecutionID: "e1", Namespace: "prod", FlowID: "f", Level: "INFO", Message: "day one", Time: day0}},
		{Kind: repository.Logs, ID: "0-2", Version: 2, Source: &repository.Log{ExecutionID: "e1", Namespace: "prod", FlowID: "f", Level: "ERROR", Message: "day two", Time: day0.Add(24 * time.Hour)}},
		{Kind: repository.Logs, ID: "0-3", Version: 3, Source: map[string]any{"execution_id": "e1", "namespace": "prod", "flow_id": "f", "level": "WARN", "message": "day two again", "time": day0.Add(25 * time.Hour).Format(time.RFC3339Nano)}},
	}
	write(t, s, append([]repository.Doc{execDoc(e, 1)}, logs...)...)

	res := search(t, s, repository.SearchRequest{Kind: repository.Executions})
	if res.Total != 1 || len(res.Hits) != 1 || res.Cursor != "" {
		t.Fatalf("search = %+v, want the one execution", res)
	}
	var got repository.Execution
	if err := json.Unmarshal(res.Hits[0], &got); err != nil {
		t.Fatal(err)
	}
	wantJS, _ := json.Marshal(e)
	gotJS, _ := json.Marshal(got)
	if string(gotJS) != string(wantJS) {
		t.Errorf("hit =\n%s\nwant\n%s", gotJS, wantJS)
	}
	if strings.Contains(string(res.Hits[0]), docIDField) {
		t.Errorf("hit %s shows %s", res.Hits[0], docIDField)
	}

	// Logs land in the daily index of their time, and searches see all days.
	names, _ := s.indices(t.Context(), s.searchIndex(repository.Logs))
	slices.Sort(names)
	if want := []string{s.index(repository.Logs) + "-2026.03.10", s.index(repository.Logs) + "-2026.03.11"}; !slices.Equal(names, want) {
		t.Errorf("log indices = %v, want %v", names, want)
	}
	res = search(t, s, repository.SearchRequest{Kind: repository.Logs})
	if got, want := ids(t, res.Hits), []string{"day two again", "day two", "day one"}; !slices.Equal(got, want) {
		t.Errorf("logs newest first = %v, want %v", got, want)
	}
	res = search(t, s, repository.SearchRequest{Kind: repository.Logs, Since: day0.Add(12 * time.Hour), Until: day0.Add(25 * time.Hour)})
	if got, want := ids(t, res.Hits), []string{"day two"}; !slices.Equal(got, want) {
		t.Errorf("logs in [since, until) = %v, want %v", got, want)
	}
	// A kind with no document yet (events: no daily index) finds nothing.
	if res := search(t, s, repository.SearchRequest{Kind: repository.Events}); res.Total != 0 || len(res.Hits) != 0 {
		t.Errorf("events = %+v, want none", res)
	}
}

func TestExternalVersions(t *testing.T) {
	s := newTestStore(t, Config{})
	e := func(state string) repository.Execution {
		return repository.Execution{ID: "e1", Namespace: "n", FlowID: "f", State: state, Start: day0}
	}
	write(t, s, execDoc(e("RUNNING"), 5))
	write(t, s, execDoc(e("CREATED"), 3), execDoc(e("QUEUED"), 5)) // older, then as old: ignored
	res := search(t, s, repository.SearchRequest{Kind: repository.Executions})
	if len(res.Hits) != 1 || !strings.Contains(string(res.Hits[0]), `"RUNNING"`) {
		t.Fatalf("after outdated writes: %s, want RUNNING", res.Hits)
	}
	// In one call, versions decide, not the order.
	write(t, s, execDoc(e("SUCCESS"), 7), execDoc(e("FAILED"), 6))
	res = search(t, s, repository.SearchRequest{Kind: repository.Executions})
	if len(res.Hits) != 1 || !strings.Contains(string(res.Hits[0]), `"SUCCESS"`) {
		t.Fatalf("after a batch: %s, want SUCCESS", res.Hits)
	}
	// A delete at version 8 is not undone by version 7 arriving late.
	write(t, s, repository.Doc{Kind: repository.Executions, ID: "e1", Version: 8, Delete: true})
	write(t, s, execDoc(e("KILLED"), 7))
	if res := search(t, s, repository.SearchRequest{Kind: repository.Executions}); res.Total != 0 {
		t.Errorf("after delete and an older write: %s, want nothing", res.Hits)
	}
	// Deleting what does not exist is fine.
	write(t, s, repository.Doc{Kind: repository.Executions, ID: "nope", Version: 1, Delete: true})
}

func TestRejectedDocumentsLeaveTheRestOfTheBatch(t *testing.T) {
	s := newTestStore(t, Config{})
	docs := []repository.Doc{
		execDoc(repository.Execution{ID: "ok1", Namespace: "n", FlowID: "f", State: "SUCCESS", Start: day0}, 1),
		{Kind: repository.Executions, ID: "bad", Version: 1, Source: map[string]any{"id": "bad", "start": "not a date"}},
		execDoc(repository.Execution{ID: "ok2", Namespace: "n", FlowID: "f", State: "SUCCESS", Start: day0}, 1),
		{Kind: repository.Logs, ID: "notime", Version: 1, Source: map[string]any{"message": "no time"}},
		{Kind: "nope", ID: "x", Version: 1, Source: map[string]any{}},
	}
	rej, err := s.Write(t.Context(), docs)
	if err != nil {
		t.Fatal(err)
	}
	var rejectedIDs []string
	for _, r := range rej {
		rejectedIDs = append(rejectedIDs, r.Doc.ID)
		if r.Reason == "" {
			t.Errorf("rejected %s without a reason", r.Doc.ID)
		}
	}
	if want := []string{"bad", "notime", "x"}; !slices.Equal(rejectedIDs, want) {
		t.Fatalf("rejected %v, want %v", rejectedIDs, want)
	}
	if !strings.Contains(rej[0].Reason, "start") {
		t.Errorf("reason %q does not name the field", rej[0].Reason)
	}
	refresh(t, s)
	res := search(t, s, repository.SearchRequest{Kind: repository.Executions, Sort: []repository.Sort{{Field: "id"}}})
	if got := ids(t, res.Hits); !slices.Equal(got, []string{"ok1", "ok2"}) {
		t.Errorf("stored %v, want ok1 ok2", got)
	}
}

func TestPaginationWalksEveryHitOnce(t *testing.T) {
	s := newTestStore(t, Config{})
	const n = 237
	var docs []repository.Doc
	for i := range n {
		docs = append(docs, execDoc(repository.Execution{
			ID: fmt.Sprintf("e%03d", i), Namespace: "n", FlowID: "f", State: repository.States[i%3],
			Start: day0.Add(time.Duration(i%10) * time.Minute), // many ties on start
		}, 1))
	}
	write(t, s, docs...)

	req := repository.SearchRequest{Kind: repository.Executions, Size: 20, Sort: []repository.Sort{{Field: "state"}, {Field: "start", Desc: true}}}
	seen := map[string]bool{}
	var order []string
	for page := 0; ; page++ {
		res := search(t, s, req)
		if res.Total != n {
			t.Fatalf("page %d: total %d, want %d", page, res.Total, n)
		}
		for _, id := range ids(t, res.Hits) {
			if seen[id] {
				t.Fatalf("page %d: %s seen twice", page, id)
			}
			seen[id] = true
			order = append(order, id)
		}
		if page == 0 {
			// Writes after the first page do not show up in the walk.
			write(t, s, execDoc(repository.Execution{ID: "late", Namespace: "n", FlowID: "f", State: "CREATED", Start: day0}, 1))
		}
		if res.Cursor == "" {
			break
		}
		req.Cursor = res.Cursor
	}
	if len(seen) != n {
		t.Fatalf("walked %d documents, want %d", len(seen), n)
	}
	// The order: state, then start newest first, then id.
	byID := map[string]repository.Execution{}
	for _, d := range docs {
		byID[d.ID] = d.Source.(repository.Execution)
	}
	if !slices.IsSortedFunc(order, func(a, b string) int {
		x, y := byID[a], byID[b]
		if c := strings.Compare(x.State, y.State); c != 0 {
			return c
		}
		if c := y.Start.Compare(x.Start); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	}) {
		t.Errorf("walk order is not state, start desc, id: %v", order)
	}
}

func TestBadCursors(t *testing.T) {
	s := newTestStore(t, Config{})
	var docs []repository.Doc
	for i := range 5 {
		docs = append(docs, execDoc(repository.Execution{ID: fmt.Sprint(i), Namespace: "n", FlowID: "f", State: "SUCCESS", Start: day0}, 1))
	}
	write(t, s, docs...)
	req := repository.SearchRequest{Kind: repository.Executions, Size: 2}
	first := search(t, s, req)
	if first.Cursor == "" {
		t.Fatal("no cursor after the first page")
	}

	other := req
	other.Query = &query.Match{Field: field(repository.Executions, "state"), Text: "FAILED"}
	other.Cursor = first.Cursor
	for name, r := range map[string]repository.SearchRequest{
		"another query": other,
		"another sort":  {Kind: repository.Executions, Size: 2, Cursor: first.Cursor, Sort: []repository.Sort{{Field: "id"}}},
		"another kind":  {Kind: repository.Flows, Size: 2, Cursor: first.Cursor},
		"garbage":       {Kind: repository.Executions, Size: 2, Cursor: "not-a-cursor"},
	} {
		if _, err := s.Search(t.Context(), r); !errors.Is(err, repository.ErrBadCursor) {
			t.Errorf("%s: err = %v, want ErrBadCursor", name, err)
		}
	}

	// An expired point in time (closed here rather than waited for).
	cur, err := decodeCursor(first.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	s.closePIT(t.Context(), cur.PIT)
	req.Cursor = first.Cursor
	if _, err := s.Search(t.Context(), req); !errors.Is(err, repository.ErrBadCursor) {
		t.Errorf("expired: err = %v, want ErrBadCursor", err)
	}
}

func TestRetentionDeletesExpiredDailyIndices(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	clock.Store(&day0)
	s := newTestStore(t, Config{Retention: 48 * time.Hour, now: func() time.Time { return *clock.Load() }})
	var docs []repository.Doc
	for d := range 5 {
		at := day0.Add(time.Duration(d)*24*time.Hour + time.Hour)
		docs = append(docs,
			repository.Doc{Kind: repository.Logs, ID: fmt.Sprint("l", d), Version: 1, Source: repository.Log{Message: "m", Level: "INFO", Time: at}},
			repository.Doc{Kind: repository.Events, ID: fmt.Sprint("e", d), Version: 1, Source: repository.Event{ExecutionID: "x", Seq: int64(d + 1), Type: "STATE", Time: at}})
	}
	write(t, s, docs...)
	// now = day 4 at 12:00: days 0 and 1 ended more than 48h before.
	now := day0.Add(4*24*time.Hour + 12*time.Hour)
	clock.Store(&now)
	deleted, err := s.deleteExpired(t.Context(), now)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(deleted)
	logs, events := s.index(repository.Logs), s.index(repository.Events)
	want := []string{events + "-2026.03.10", events + "-2026.03.11", logs + "-2026.03.10", logs + "-2026.03.11"}
	if !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	// Replayed old logs do not bring an expired index back.
	write(t, s, docs[0], docs[2])
	left, _ := s.indices(t.Context(), s.cfg.IndexPrefix+"*-20*")
	slices.Sort(left)
	wantLeft := []string{events + "-2026.03.12", events + "-2026.03.13", events + "-2026.03.14", logs + "-2026.03.12", logs + "-2026.03.13", logs + "-2026.03.14"}
	if !slices.Equal(left, wantLeft) {
		t.Errorf("left %v, want %v", left, wantLeft)
	}
	if res := search(t, s, repository.SearchRequest{Kind: repository.Logs}); res.Total != 3 {
		t.Errorf("%d logs left, want 3", res.Total)
	}
}

// TestQueryEdgeCases checks, on the real server, what the acceptance suite
// does not reach: literal wildcard characters and backslashes, label keys
// with wildcard characters, numbers with decimals on long fields, text
// prefixes that the analyzer splits, and the compiler's case-insensitive
// enum patterns.
func TestQueryEdgeCases(t *testing.T) {
	s := newTestStore(t, Config{})
	ex := func(name string) *query.Field { return field(repository.Executions, name) }
	mk := func(id, ns, state, errText string, labels ...repository.Label) repository.Doc {
		e := repository.Execution{ID: id, Namespace: ns, FlowID: "f", FlowRevision: 2, State: state, Start: day0, Labels: labels, Error: errText}
		for _, l := range labels {
			e.LabelPairs = append(e.LabelPairs, l.Key+"="+l.Value)
		}
		return execDoc(e, 1)
	}
	write(t, s,
		mk("star", `a*b`, "FAILED", "timeout-exceeded while waiting", repository.Label{Key: "k*y", Value: `v\al`}),
		mk("axb", "axb", "SUCCESS", "Connection refused by db-1"),
		mk("slash", `a\b`, "RETRYING", ""),
	)
	cases := []struct {
		name string
		q    query.Node
		want []string
	}{
		{"* is literal in a phrase", &query.Match{Field: ex("namespace"), Kind: query.Phrase, Text: "a*b"}, []string{"star"}},
		{"? matches one character", &query.Match{Field: ex("namespace"), Kind: query.Wildcard, Text: "a?b"}, []string{"axb", "slash", "star"}},
		{"a backslash is literal", &query.Match{Field: ex("namespace"), Kind: query.Wildcard, Text: `*\b`}, []string{"slash"}},
		{"label key with *", &query.Match{Field: ex("labels"), Label: "k*y", Text: `v\al`}, []string{"star"}},
		{"label key with * and a pattern", &query.Match{Field: ex("labels"), Label: "k*y", Kind: query.Wildcard, Text: `v\*`}, []string{"star"}},
		{"label key with * exists", &query.Exists{Field: ex("labels"), Label: "k*y"}, []string{"star"}},
		{"label of any key", &query.Match{Field: ex("labels"), Text: `v\al`}, []string{"star"}},
		{"decimal on a long field", &query.Match{Field: ex("flow_revision"), Number: 2.5}, nil},
		{"decimal range on a long field", &query.Range{Field: ex("flow_revision"), Op: query.GT, Number: 1.5}, []string{"axb", "slash", "star"}},
		{"text prefix the analyzer splits", &query.Match{Field: ex("error"), Kind: query.Wildcard, Text: "timeout-ex*"}, []string{"star"}},
		{"text prefix with capitals", &query.Match{Field: ex("error"), Kind: query.Wildcard, Text: "CONN*"}, []string{"axb"}},
		{"enum pattern, any case", &query.Match{Field: ex("state"), Kind: query.Wildcard, Text: "retr*"}, []string{"slash"}},
	}
	for _, c := range cases {
		res := search(t, s, repository.SearchRequest{Kind: repository.Executions, Query: c.q, Sort: []repository.Sort{{Field: "id"}}})
		if got := ids(t, res.Hits); !slices.Equal(got, c.want) && (len(got) > 0 || len(c.want) > 0) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWrongFlavorSaysSo(t *testing.T) {
	url := searchtest.URL(t)
	_, err := New(t.Context(), Config{URLs: []string{url}, IndexPrefix: testPrefix(t)}, nil)
	if err == nil || !strings.Contains(err.Error(), "flavor: opensearch") {
		t.Errorf("New with flavor elasticsearch on OpenSearch: %v, want a hint to set flavor: opensearch", err)
	}
}
