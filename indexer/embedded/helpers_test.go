package embedded

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// t0 is the fixed now of the tests.
var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func openTest(tb testing.TB, cfg Config) *Index {
	tb.Helper()
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	x, err := Open(tb.Context(), cfg, zaptest.NewLogger(tb))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := x.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return x
}

func mustWrite(tb testing.TB, x *Index, docs ...repository.Doc) []repository.Rejected {
	tb.Helper()
	rej, err := x.Write(tb.Context(), docs)
	if err != nil {
		tb.Fatalf("Write: %v", err)
	}
	return rej
}

func execDoc(version int64, e repository.Execution) repository.Doc {
	for _, l := range e.Labels {
		e.LabelPairs = append(e.LabelPairs, l.Key+"="+l.Value)
	}
	return repository.Doc{Kind: repository.Executions, ID: e.ID, Version: version, Source: e}
}

func ptr[T any](v T) *T { return &v }

// hitIDs returns the "id" of each hit.
func hitIDs(tb testing.TB, hits []json.RawMessage) []string {
	tb.Helper()
	out := []string{}
	for _, h := range hits {
		var d struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(h, &d); err != nil {
			tb.Fatalf("hit %s: %v", h, err)
		}
		out = append(out, d.ID)
	}
	return out
}

// searchAll pages through a search and returns every hit's id.
func searchAll(tb testing.TB, x *Index, req repository.SearchRequest) []string {
	tb.Helper()
	var out []string
	for range 10000 {
		res, err := x.Search(tb.Context(), req)
		if err != nil {
			tb.Fatalf("Search: %v", err)
		}
		out = append(out, hitIDs(tb, res.Hits)...)
		if res.Cursor == "" {
			return out
		}
		req.Cursor = res.Cursor
	}
	tb.Fatal("too many pages")
	return nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

var execSchema = repository.Schema(repository.Executions)

func field(name string) *query.Field {
	f := execSchema.Field(name)
	if f == nil {
		panic("no executions field " + name)
	}
	return f
}

func exact(name, text string) *query.Match {
	return &query.Match{Field: field(name), Kind: query.Exact, Text: text}
}

func phrase(name, text string) *query.Match {
	return &query.Match{Field: field(name), Kind: query.Phrase, Text: text}
}

func wildcard(name, text string) *query.Match {
	return &query.Match{Field: field(name), Kind: query.Wildcard, Text: text}
}

func label(key string, kind query.ValueKind, text string) *query.Match {
	return &query.Match{Field: field("labels"), Label: key, Kind: kind, Text: text}
}

func and(terms ...query.Node) *query.And { return &query.And{Terms: terms} }
func or(terms ...query.Node) *query.Or   { return &query.Or{Terms: terms} }
