package query_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kiteflow/kite/core/query"
)

// FuzzParse parses arbitrary queries: nothing may panic, errors must be
// located within the query, every node's position must be consistent, and
// a query that parses must be written back by String into one that parses
// into the same tree.
func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.in)
	}
	for _, tt := range errorTests {
		if len(tt.in) < 200 {
			f.Add(tt.in)
		}
	}
	for _, s := range []string{
		`state:(RETR* or not *ED) and labels.a.b-c_d:(x or "y z" or *)`,
		`not (a or b) c "d" e* \f\*\?\:\(\) id:a:b:c`,
		`start >= now-1w/w and start < now+1d-2h/h and duration > P1DT2H3M4.5S`,
		`task_runs > 1e300 or task_runs < -1e-300 or duration < 1e400`,
		`"unterminated \" and (`, "a\tb\nc\rd\fe", `((((a)))) or ((b))`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := query.Parse(in, testSchema, now)
		if err != nil {
			var qe *query.Error
			if !errors.As(err, &qe) {
				t.Fatalf("Parse(%q) error %T is not a *query.Error: %v", in, err, err)
			}
			if qe.Msg == "" || qe.Pos.Column < 1 || qe.Pos.Column > utf8.RuneCountInString(in)+1 || qe.Pos.Offset < 0 || qe.Pos.Offset > len(in) {
				t.Fatalf("Parse(%q) error is not located within the query: %+v", in, qe)
			}
			if n != nil {
				t.Fatalf("Parse(%q) returned a node with its error", in)
			}
			return
		}
		checkPositions(t, in, n)
		s := query.String(n)
		m, err := query.Parse(s, testSchema, now)
		if err != nil {
			// Writing values canonically can lengthen a query (state:*
			// expands, dates grow) and add parentheses.
			if len(s) > 4096 || strings.Contains(err.Error(), "nests too deeply") {
				return
			}
			t.Fatalf("Parse(%q) = %s\nString = %q, which does not parse: %v", in, query.Format(n), s, err)
		}
		if got, want := query.Format(m), query.Format(n); got != want {
			t.Fatalf("Parse(%q) = %s\nString = %q, which parses into %s", in, want, s, got)
		}
	})
}

// checkPositions checks that every node's position is in the query and
// that its column counts the characters before its offset.
func checkPositions(t *testing.T, in string, n query.Node) {
	t.Helper()
	var walk func(query.Node)
	walk = func(n query.Node) {
		p := n.Position()
		if p.Offset < 0 || p.Offset >= len(in) || p.Column != utf8.RuneCountInString(in[:p.Offset])+1 {
			t.Fatalf("Parse(%q): node %s at %+v", in, query.Format(n), p)
		}
		switch n := n.(type) {
		case *query.And:
			for _, x := range n.Terms {
				walk(x)
			}
		case *query.Or:
			for _, x := range n.Terms {
				walk(x)
			}
		case *query.Not:
			walk(n.X)
		}
	}
	if n != nil {
		walk(n)
	}
}

func BenchmarkParse(b *testing.B) {
	const q = `state:(failed or warning) and namespace:prod* and labels.team:data and duration >= 1m30s and start > now-1d/d and not flow_id:test and "connection refused"`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := query.Parse(q, testSchema, now); err != nil {
			b.Fatal(err)
		}
	}
}
