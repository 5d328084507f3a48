package elasticsearch

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// sameJSON compares a compiled query with the expected JSON as values
// (key order and spacing do not matter).
func sameJSON(t *testing.T, got any, want string) {
	t.Helper()
	gotJS, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(gotJS, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expected JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		wantJS, _ := json.Marshal(w)
		t.Errorf("got\n%s\nwant\n%s", gotJS, wantJS)
	}
}

// TestCompile is the golden DSL of every node type.
func TestCompile(t *testing.T) {
	ex := func(name string) *query.Field { return field(repository.Executions, name) }
	fl := func(name string) *query.Field { return field(repository.Flows, name) }
	at := time.Date(2026, 1, 2, 3, 4, 5, 678_900_000, time.FixedZone("X", 3600))
	state := &query.Match{Field: ex("state"), Text: "FAILED"}
	cases := []struct {
		name string
		node query.Node
		want string
	}{
		{"nil matches all", nil, `{"match_all":{}}`},
		{"keyword", &query.Match{Field: ex("namespace"), Text: "prod"}, `{"term":{"namespace":"prod"}}`},
		{"keyword phrase keeps * literal", &query.Match{Field: ex("namespace"), Kind: query.Phrase, Text: "a*b"}, `{"term":{"namespace":"a*b"}}`},
		{"enum", state, `{"term":{"state":"FAILED"}}`},
		{"keyword trailing * is a prefix", &query.Match{Field: ex("namespace"), Kind: query.Wildcard, Text: "prod.*"},
			`{"prefix":{"namespace":{"value":"prod."}}}`},
		{"keyword wildcard", &query.Match{Field: ex("namespace"), Kind: query.Wildcard, Text: `*o?s\x*`},
			`{"wildcard":{"namespace":{"value":"*o?s\\\\x*"}}}`},
		{"enum wildcard is case-insensitive", &query.Match{Field: ex("state"), Kind: query.Wildcard, Text: "fail*"},
			`{"prefix":{"state":{"value":"fail","case_insensitive":true}}}`},
		{"text words", &query.Match{Field: ex("error"), Text: "connection refused"},
			`{"match":{"error":{"query":"connection refused","operator":"and"}}}`},
		{"text phrase", &query.Match{Field: ex("error"), Kind: query.Phrase, Text: "connection refused"},
			`{"match_phrase":{"error":{"query":"connection refused"}}}`},
		{"text word prefix", &query.Match{Field: ex("error"), Kind: query.Wildcard, Text: "Conn*"},
			`{"prefix":{"error":{"value":"conn"}}}`},
		{"text prefix the analyzer splits", &query.Match{Field: ex("error"), Kind: query.Wildcard, Text: "db-1*"},
			`{"match_phrase_prefix":{"error":{"query":"db-1","max_expansions":1000}}}`},
		{"number", &query.Match{Field: ex("flow_revision"), Text: "2", Number: 2}, `{"term":{"flow_revision":2}}`},
		{"duration", &query.Match{Field: ex("duration"), Text: "1.5s", Number: 1500}, `{"term":{"duration":1500}}`},
		{"date", &query.Match{Field: ex("start"), Time: at}, `{"term":{"start":"2026-01-02T02:04:05.678Z"}}`},
		{"bool", &query.Match{Field: fl("disabled"), Bool: true}, `{"term":{"disabled":true}}`},
		{"label", &query.Match{Field: ex("labels"), Label: "team", Text: "data"}, `{"term":{"label_pairs":"team=data"}}`},
		{"label prefix", &query.Match{Field: ex("labels"), Label: "team", Kind: query.Wildcard, Text: "d*"},
			`{"prefix":{"label_pairs":{"value":"team=d"}}}`},
		{"label wildcard escapes the key", &query.Match{Field: ex("labels"), Label: "k*y", Kind: query.Wildcard, Text: "?a*"},
			`{"wildcard":{"label_pairs":{"value":"k\\*y=?a*"}}}`},
		{"label of any key", &query.Match{Field: ex("labels"), Text: "x*"}, `{"wildcard":{"label_pairs":{"value":"*=x\\*"}}}`},
		{"exists", &query.Exists{Field: ex("end")}, `{"exists":{"field":"end"}}`},
		{"label exists", &query.Exists{Field: ex("labels"), Label: "env"}, `{"prefix":{"label_pairs":{"value":"env="}}}`},
		{"any label exists", &query.Exists{Field: ex("labels")}, `{"exists":{"field":"label_pairs"}}`},
		{"number range", &query.Range{Field: ex("flow_revision"), Op: query.LT, Number: 2}, `{"range":{"flow_revision":{"lt":2}}}`},
		{"duration range", &query.Range{Field: ex("duration"), Op: query.GTE, Number: 10000}, `{"range":{"duration":{"gte":10000}}}`},
		{"date range", &query.Range{Field: ex("start"), Op: query.GT, Time: at}, `{"range":{"start":{"gt":"2026-01-02T02:04:05.678Z"}}}`},
		{"date range lte", &query.Range{Field: ex("start"), Op: query.LTE, Time: at}, `{"range":{"start":{"lte":"2026-01-02T02:04:05.678Z"}}}`},
		{"full text, one field", &query.FullText{Text: "refused", Fields: []*query.Field{ex("error")}},
			`{"match":{"error":{"query":"refused","operator":"and"}}}`},
		{"full text, several fields", &query.FullText{Kind: query.Phrase, Text: "a b", Fields: []*query.Field{fl("description"), fl("source")}},
			`{"bool":{"minimum_should_match":1,"should":[{"match_phrase":{"description":{"query":"a b"}}},{"match_phrase":{"source":{"query":"a b"}}}]}}`},
		{"full text prefix", &query.FullText{Kind: query.Wildcard, Text: "retry*", Fields: []*query.Field{ex("error")}},
			`{"prefix":{"error":{"value":"retry"}}}`},
		{"and", &query.And{Terms: []query.Node{state, &query.Exists{Field: ex("end")}}},
			`{"bool":{"filter":[{"term":{"state":"FAILED"}},{"exists":{"field":"end"}}]}}`},
		{"or", &query.Or{Terms: []query.Node{state, &query.Exists{Field: ex("end")}}},
			`{"bool":{"minimum_should_match":1,"should":[{"term":{"state":"FAILED"}},{"exists":{"field":"end"}}]}}`},
		{"not", &query.Not{X: state}, `{"bool":{"must_not":[{"term":{"state":"FAILED"}}]}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := compile(c.node)
			if err != nil {
				t.Fatal(err)
			}
			sameJSON(t, got, c.want)
		})
	}
}

func TestCompileRejectsWhatCannotBeCompiled(t *testing.T) {
	ex := func(name string) *query.Field { return field(repository.Executions, name) }
	for name, n := range map[string]query.Node{
		"range on keyword":  &query.Range{Field: ex("namespace"), Op: query.GT},
		"match on no field": &query.Match{Text: "x"},
		"nowhere to search": &query.FullText{Text: "x"},
		"nested":            &query.Not{X: &query.And{Terms: []query.Node{&query.Match{Text: "x"}}}},
	} {
		if _, err := compile(n); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Through Search and Aggregate, such a query is the request's fault.
	_, err := filter(repository.Executions, &query.Range{Field: ex("namespace")}, time.Time{}, time.Time{})
	if !errors.Is(err, repository.ErrInvalidRequest) {
		t.Errorf("filter: %v, want ErrInvalidRequest", err)
	}
}

func TestFilterAddsTheTimeRange(t *testing.T) {
	since := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	q, err := filter(repository.Logs, &query.Match{Field: field(repository.Logs, "level"), Text: "ERROR"}, since, since.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, q, `{"bool":{"filter":[{"term":{"level":"ERROR"}},{"range":{"time":{"gte":"2026-03-01T00:00:00.000Z","lt":"2026-03-01T01:00:00.000Z"}}}]}}`)
	q, _ = filter(repository.Executions, nil, time.Time{}, since)
	sameJSON(t, q, `{"bool":{"filter":[{"range":{"start":{"lt":"2026-03-01T00:00:00.000Z"}}}]}}`)
}

func TestSortClause(t *testing.T) {
	s := repository.Schema(repository.Executions)
	got, err := sortClause(repository.Executions, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, got, `[{"start":{"order":"desc"}},{"doc_id":{"order":"asc"}}]`)
	got, _ = sortClause(repository.Executions, s, []repository.Sort{{Field: "state"}, {Field: "duration", Desc: true}})
	sameJSON(t, got, `[{"state":{"order":"asc"}},{"duration":{"order":"desc"}},{"doc_id":{"order":"asc"}}]`)
	for _, f := range []string{"error", "labels", "nope"} {
		if _, err := sortClause(repository.Executions, s, []repository.Sort{{Field: f}}); !errors.Is(err, repository.ErrInvalidRequest) {
			t.Errorf("sort by %s: %v, want ErrInvalidRequest", f, err)
		}
	}
}

func TestRequestHashIgnoresRangeDatesOnly(t *testing.T) {
	ex := func(name string) *query.Field { return field(repository.Executions, name) }
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	req := func(q query.Node, sorts ...repository.Sort) repository.SearchRequest {
		return repository.SearchRequest{Kind: repository.Executions, Query: q, Sort: sorts, Size: 10}
	}
	recent := func(now time.Time) query.Node {
		return &query.And{Terms: []query.Node{
			&query.Match{Field: ex("state"), Text: "FAILED"},
			&query.Range{Field: ex("start"), Op: query.GT, Time: now.Add(-24 * time.Hour)},
		}}
	}
	base := requestHash(req(recent(now)))
	if h := requestHash(req(recent(now.Add(time.Minute)))); h != base {
		t.Error("now-1d parsed a minute later changed the hash: the next page would fail")
	}
	other := req(recent(now))
	other.Size = 50
	if requestHash(other) != base {
		t.Error("the page size changed the hash")
	}
	for name, r := range map[string]repository.SearchRequest{
		"another value": req(&query.And{Terms: []query.Node{&query.Match{Field: ex("state"), Text: "SUCCESS"}, &query.Range{Field: ex("start"), Op: query.GT, Time: now}}}),
		"another op":    req(&query.And{Terms: []query.Node{&query.Match{Field: ex("state"), Text: "FAILED"}, &query.Range{Field: ex("start"), Op: query.LT, Time: now}}}),
		"another sort":  req(recent(now), repository.Sort{Field: "id"}),
		"another kind":  {Kind: repository.TaskRuns, Query: recent(now)},
		"since":         {Kind: repository.Executions, Query: recent(now), Since: now},
	} {
		if requestHash(r) == base {
			t.Errorf("%s: same hash", name)
		}
	}
}

func TestMapping(t *testing.T) {
	m := mapping(repository.Executions)
	sameJSON(t, m["_source"], `{"excludes":["doc_id"]}`)
	props := m["properties"].(map[string]any)
	for name, want := range map[string]string{
		"id":            `{"type":"keyword","ignore_above":8191}`,
		"flow_revision": `{"type":"long"}`,
		"start":         `{"type":"date","format":"strict_date_optional_time||epoch_millis"}`,
		"duration":      `{"type":"long"}`,
		"error":         `{"type":"text"}`,
		"labels":        `{"properties":{"key":{"type":"keyword","ignore_above":8191},"value":{"type":"keyword","ignore_above":8191}}}`,
		"label_pairs":   `{"type":"keyword","ignore_above":8191}`,
		"inputs":        `{"type":"object","enabled":false}`,
		"outputs":       `{"type":"object","enabled":false}`,
		"trigger":       `{"type":"object","enabled":false}`,
		"doc_id":        `{"type":"keyword","ignore_above":8191}`,
	} {
		sameJSON(t, props[name], want)
	}
	sameJSON(t, mapping(repository.Events)["properties"].(map[string]any)["detail"], `{"type":"object","enabled":false}`)
	sameJSON(t, mapping(repository.Flows)["properties"].(map[string]any)["disabled"], `{"type":"boolean"}`)
}
