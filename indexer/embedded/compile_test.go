package embedded

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// fixture writes five executions that the query tests search.
func fixture(tb testing.TB) *Index {
	tb.Helper()
	x := openTest(tb, Config{})
	h := time.Hour
	mustWrite(tb, x,
		execDoc(1, repository.Execution{ID: "e1", Namespace: "prod.billing", FlowID: "pay", State: "FAILED", Start: t0,
			Duration: ptr[int64](1000), Labels: []repository.Label{{Key: "team", Value: "data"}, {Key: "env", Value: "prod"}},
			Error: "Connection refused by host db-1", FlowRevision: 3}),
		execDoc(1, repository.Execution{ID: "e2", Namespace: "prod.web", FlowID: "deploy", State: "SUCCESS", Start: t0.Add(h),
			End: ptr(t0.Add(h + 2*time.Second)), Duration: ptr[int64](2000), Labels: []repository.Label{{Key: "team", Value: "ml"}},
			FlowRevision: 5}),
		execDoc(1, repository.Execution{ID: "e3", Namespace: "dev", FlowID: "pay", State: "FAILED", Start: t0.Add(2 * h),
			Error: "timeout while connecting to hello_world", ParentID: "e1", FlowRevision: 1}),
		execDoc(1, repository.Execution{ID: "e4", Namespace: "prod[x]*", FlowID: "test", State: "RUNNING", Start: t0.Add(3 * h),
			FlowRevision: 0}),
		execDoc(1, repository.Execution{ID: "e5", Namespace: "Prod.upper", FlowID: "pay", State: "KILLED", Start: t0.Add(4 * h),
			Duration: ptr[int64](500), Labels: []repository.Label{{Key: "team", Value: "data-eng"}, {Key: "a=b", Value: "c"}},
			Error: "killed: refused", FlowRevision: 2}),
	)
	return x
}

// TestQueries runs each construct of the query language, parsed, against
// the fixture.
func TestQueries(t *testing.T) {
	x := fixture(t)
	all := []string{"e1", "e2", "e3", "e4", "e5"}
	tests := []struct {
		q    string
		want []string
	}{
		{"", all},
		{"namespace:prod.web", []string{"e2"}},
		{"namespace:PROD.WEB", nil}, // keywords are case-sensitive
		{`namespace:"prod[x]*"`, []string{"e4"}},
		{`namespace:prod\[x\]\*`, []string{"e4"}},
		{"namespace:prod*", []string{"e1", "e2", "e4"}},
		{"namespace:Prod*", []string{"e5"}},
		{"namespace:prod.we?", []string{"e2"}},
		{"namespace:*.b*", []string{"e1"}},
		{`namespace:prod\[x]*`, []string{"e4"}}, // brackets are literal in a wildcard
		{"parent_id:*", []string{"e3"}},
		{"id:e2", []string{"e2"}},
		{"id:e*", all},
		{"id:*2", []string{"e2"}},
		{"state:FAILED", []string{"e1", "e3"}},
		{"state:failed", []string{"e1", "e3"}},
		{"state:fail*", []string{"e1", "e3"}},
		{"state:(FAILED or KILLED)", []string{"e1", "e3", "e5"}},
		{"flow_revision:3", []string{"e1"}},
		{"duration:2000", []string{"e2"}},
		{"duration:2s", []string{"e2"}},
		{"start:2026-03-10T13:00:00Z", []string{"e2"}},
		{"labels.team:data", []string{"e1"}},
		{`labels.team:"data-eng"`, []string{"e5"}},
		{"labels.team:data*", []string{"e1", "e5"}},
		{"labels.env:*", []string{"e1"}},
		{"error:refused", []string{"e1", "e5"}},
		{"error:(HOST and connection)", []string{"e1"}},
		{`error:"HOST connection"`, nil},
		{`error:"refused by host"`, []string{"e1"}},
		{`error:"host by refused"`, nil},
		{"error:conn*", []string{"e1", "e3"}},
		{"error:hello_world", []string{"e3"}},
		{"error:hello", nil}, // hello_world is one word
		{`error:"\"refused\""`, []string{"e1", "e5"}},
		{"error:---", nil},
		{"error:*", []string{"e1", "e3", "e5"}},
		{"refused", []string{"e1", "e5"}},
		{`"killed: refused"`, []string{"e5"}},
		{"tim*", []string{"e3"}},
		{`"db-1"`, []string{"e1"}},
		{"end:*", []string{"e2"}},
		{"duration:*", []string{"e1", "e2", "e5"}},
		{"flow_revision > 2", []string{"e1", "e2"}},
		{"flow_revision >= 2", []string{"e1", "e2", "e5"}},
		{"flow_revision < 1", []string{"e4"}},
		{"flow_revision <= 1.5", []string{"e3", "e4"}},
		{"duration >= 1s", []string{"e1", "e2"}},
		{"start >= now+3h", []string{"e4", "e5"}},
		{"start < 2026-03-10T13:00:00Z", []string{"e1"}},
		{"flow_id:pay and state:FAILED", []string{"e1", "e3"}},
		{"namespace:dev or state:KILLED", []string{"e3", "e5"}},
		{"not flow_id:pay", []string{"e2", "e4"}},
		{"not parent_id:e1", []string{"e1", "e2", "e4", "e5"}}, // a document without the field
		{"not duration > 600", []string{"e3", "e4", "e5"}},
		{"not (parent_id:e1 or labels.team:ml)", []string{"e1", "e4", "e5"}},
		{"not labels.team:data*", []string{"e2", "e3", "e4"}},
		{"not error:refused", []string{"e2", "e3", "e4"}},
		{"not end:*", []string{"e1", "e3", "e4", "e5"}},
		{"not not state:FAILED", []string{"e1", "e3"}},
		{"(namespace:prod* or namespace:dev) and not state:SUCCESS and (error:refused or parent_id:*)", []string{"e1", "e3"}},
		{`namespace:"x' OR '1'='1"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			q, err := query.Parse(tt.q, execSchema, t0)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := searchAll(t, x, repository.SearchRequest{Kind: repository.Executions, Query: q})
			if !slices.Equal(sorted(got), tt.want) {
				t.Errorf("got %v, want %v", sorted(got), tt.want)
			}
		})
	}
}

// TestQueryNodes runs nodes that the parser does not make (it resolves
// enum wildcards and rejects labels:*), as another caller could.
func TestQueryNodes(t *testing.T) {
	x := fixture(t)
	tests := []struct {
		name string
		q    query.Node
		want []string
	}{
		{"enum wildcard", wildcard("state", "fail*"), []string{"e1", "e3"}},
		{"enum wildcard ?", wildcard("state", "K?LLED"), []string{"e5"}},
		{"enum wildcard none", wildcard("state", "nope*"), nil},
		{"label key with =", label("a=b", query.Exact, "c"), []string{"e5"}},
		{"any label", &query.Exists{Field: field("labels")}, []string{"e1", "e2", "e5"}},
		{"empty and", and(), []string{"e1", "e2", "e3", "e4", "e5"}},
		{"empty or", or(), nil},
		{"text exact, all words", exact("error", "HOST connection"), []string{"e1"}},
		{"full text, every field", &query.FullText{Kind: query.Exact, Text: "refused", Fields: []*query.Field{field("error")}}, []string{"e1", "e5"}},
		{"text phrase prefix", wildcard("error", "while conn*"), []string{"e3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := searchAll(t, x, repository.SearchRequest{Kind: repository.Executions, Query: tt.q})
			if !slices.Equal(sorted(got), tt.want) {
				t.Errorf("got %v, want %v", sorted(got), tt.want)
			}
		})
	}
}

func TestQueriesTimeRange(t *testing.T) {
	x := fixture(t)
	got := searchAll(t, x, repository.SearchRequest{Kind: repository.Executions, Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour)})
	if want := []string{"e3", "e2"}; !slices.Equal(got, want) {
		t.Errorf("Since <= start < Until: got %v, want %v", got, want)
	}
}

// TestCompileBindsValues checks that user values reach SQLite as bound
// parameters, never as SQL text.
func TestCompileBindsValues(t *testing.T) {
	tb := mustTable(t, repository.Executions)
	evil := `x'; DROP TABLE executions; --"`
	nodes := []query.Node{
		exact("namespace", evil), wildcard("namespace", evil+"*"), phrase("namespace", evil), exact("error", evil),
		phrase("error", evil), wildcard("error", "x"+evil+"*"), label(evil, query.Exact, evil), label(evil, query.Wildcard, evil+"*"),
		&query.Exists{Field: field("labels"), Label: evil}, &query.FullText{Kind: query.Exact, Text: evil, Fields: []*query.Field{field("error")}},
	}
	for _, n := range nodes {
		sql, args, err := tb.where(n, time.Time{}, time.Time{})
		if err != nil {
			t.Fatalf("%#v: %v", n, err)
		}
		if strings.Contains(sql, "DROP") || strings.Contains(sql, "'") {
			t.Errorf("%#v: a value is in the SQL: %s", n, sql)
		}
		if len(args) == 0 {
			t.Errorf("%#v: no arguments: %s", n, sql)
		}
	}
}

func mustTable(tb testing.TB, k repository.Kind) *table {
	tb.Helper()
	t, err := newTable(k)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestCompileErrors(t *testing.T) {
	tb := mustTable(t, repository.Executions)
	flows := repository.Schema(repository.Flows)
	tests := []struct {
		name string
		q    query.Node
	}{
		{"field of another kind", &query.Match{Field: flows.Field("source"), Kind: query.Exact, Text: "x"}},
		{"field of another type", &query.Match{Field: &query.Field{Name: "state", Type: query.Keyword}, Kind: query.Exact, Text: "x"}},
		{"no field", &query.Match{Kind: query.Exact, Text: "x"}},
		{"wildcard on a number", &query.Match{Field: field("flow_revision"), Kind: query.Wildcard, Text: "1*"}},
		{"range on a keyword", &query.Range{Field: field("namespace"), Op: query.GT}},
		{"inner wildcard on text", wildcard("error", "a*b*")},
		{"label without key", label("", query.Exact, "x")},
		{"full text without fields", &query.FullText{Kind: query.Exact, Text: "x"}},
		{"not without term", &query.Not{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tb.where(tt.q, time.Time{}, time.Time{})
			if !errors.Is(err, repository.ErrInvalidRequest) {
				t.Errorf("got %v, want an error wrapping ErrInvalidRequest", err)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	for pattern, want := range map[string]string{
		"prod*":    "prod*",
		"a?b":      "a?b",
		"[x]*":     "[[]x[]]*",
		"a[*]":     "a[[]*[]]",
		"plain":    "plain",
		"ünï*cödé": "ünï*cödé",
	} {
		if got := globPattern(pattern); got != want {
			t.Errorf("globPattern(%q) = %q, want %q", pattern, got, want)
		}
	}
	if got, ok := prefixEnd("ab"); !ok || got != "ac" {
		t.Errorf("prefixEnd(ab) = %q, %t", got, ok)
	}
	if got, ok := prefixEnd("a\xff"); !ok || got != "b" {
		t.Errorf("prefixEnd(a\\xff) = %q, %t", got, ok)
	}
}
