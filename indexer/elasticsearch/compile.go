package elasticsearch

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/kiteflow/kite/core/query"
)

// dsl is a JSON object of the Query DSL.
type dsl = map[string]any

// maxPrefixExpansions bounds the words a text prefix that the analyzer
// splits (timeout-ex*) may expand to.
const maxPrefixExpansions = 1000

// compile turns a parsed query into the Query DSL. Every clause is a
// filter (no scoring: hits are sorted by fields). A nil node matches every
// document.
func compile(n query.Node) (dsl, error) {
	switch n := n.(type) {
	case nil:
		return dsl{"match_all": dsl{}}, nil
	case *query.And:
		terms, err := compileAll(n.Terms)
		if err != nil {
			return nil, err
		}
		return dsl{"bool": dsl{"filter": terms}}, nil
	case *query.Or:
		terms, err := compileAll(n.Terms)
		if err != nil {
			return nil, err
		}
		return dsl{"bool": dsl{"should": terms, "minimum_should_match": 1}}, nil
	case *query.Not:
		x, err := compile(n.X)
		if err != nil {
			return nil, err
		}
		return dsl{"bool": dsl{"must_not": []any{x}}}, nil
	case *query.Match:
		return compileMatch(n)
	case *query.Exists:
		if n.Field == nil {
			return nil, fmt.Errorf("column %d: exists without a field", n.At.Column)
		}
		if n.Field.Type == query.Labels {
			if n.Label == "" {
				return dsl{"exists": dsl{"field": query.LabelPairsField}}, nil
			}
			return dsl{"prefix": dsl{query.LabelPairsField: dsl{"value": n.Label + "="}}}, nil
		}
		return dsl{"exists": dsl{"field": n.Field.Name}}, nil
	case *query.Range:
		return compileRange(n)
	case *query.FullText:
		return compileFullText(n)
	default:
		return nil, fmt.Errorf("unknown query node %T", n)
	}
}

func compileAll(nodes []query.Node) ([]any, error) {
	out := make([]any, 0, len(nodes))
	for _, t := range nodes {
		c, err := compile(t)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func compileMatch(m *query.Match) (dsl, error) {
	if m.Field == nil {
		return nil, fmt.Errorf("column %d: match without a field", m.At.Column)
	}
	name := m.Field.Name
	switch m.Field.Type {
	case query.Keyword, query.Enum:
		if m.Kind == query.Wildcard {
			// Enum values are stored in canonical spelling but matched
			// case-insensitively (state:fail* is FAILED).
			return wildcard(name, "", m.Text, m.Field.Type == query.Enum), nil
		}
		return dsl{"term": dsl{name: m.Text}}, nil
	case query.Text:
		return textQuery(name, m.Kind, m.Text), nil
	case query.Number, query.Duration:
		return dsl{"term": dsl{name: m.Number}}, nil
	case query.Date:
		return dsl{"term": dsl{name: formatTime(m.Time)}}, nil
	case query.Bool:
		return dsl{"term": dsl{name: m.Bool}}, nil
	case query.Labels:
		if m.Label == "" { // any label with this value
			value := escapeWildcard(m.Text)
			if m.Kind == query.Wildcard {
				value = escapeBackslashes(m.Text)
			}
			return dsl{"wildcard": dsl{query.LabelPairsField: dsl{"value": "*=" + value}}}, nil
		}
		if m.Kind == query.Wildcard {
			return wildcard(query.LabelPairsField, m.Label+"=", m.Text, false), nil
		}
		return dsl{"term": dsl{query.LabelPairsField: m.Label + "=" + m.Text}}, nil
	default:
		return nil, fmt.Errorf("column %d: %s is a %s field, which cannot be matched", m.At.Column, name, m.Field.Type)
	}
}

func compileRange(r *query.Range) (dsl, error) {
	if r.Field == nil {
		return nil, fmt.Errorf("column %d: range without a field", r.At.Column)
	}
	op := [...]string{"gt", "gte", "lt", "lte"}[r.Op]
	switch r.Field.Type {
	case query.Number, query.Duration:
		return dsl{"range": dsl{r.Field.Name: dsl{op: r.Number}}}, nil
	case query.Date:
		return dsl{"range": dsl{r.Field.Name: dsl{op: formatTime(r.Time)}}}, nil
	default:
		return nil, fmt.Errorf("column %d: %s is a %s field, which has no order", r.At.Column, r.Field.Name, r.Field.Type)
	}
}

func compileFullText(f *query.FullText) (dsl, error) {
	if len(f.Fields) == 0 {
		return nil, fmt.Errorf("column %d: nothing to search %q in", f.At.Column, f.Text)
	}
	if len(f.Fields) == 1 {
		return textQuery(f.Fields[0].Name, f.Kind, f.Text), nil
	}
	should := make([]any, 0, len(f.Fields))
	for _, fd := range f.Fields {
		should = append(should, textQuery(fd.Name, f.Kind, f.Text))
	}
	return dsl{"bool": dsl{"should": should, "minimum_should_match": 1}}, nil
}

// textQuery searches an analyzed text field: all the words (Exact), the
// words in order (Phrase), or a word prefix (Wildcard, a trailing *).
func textQuery(field string, kind query.ValueKind, text string) dsl {
	switch kind {
	case query.Phrase:
		return dsl{"match_phrase": dsl{field: dsl{"query": text}}}
	case query.Wildcard:
		prefix := strings.TrimRight(text, "*")
		if prefix == "" {
			return dsl{"exists": dsl{"field": field}}
		}
		if isOneWord(prefix) {
			// The standard analyzer keeps such a word whole and lowercases
			// it: a prefix query on the terms finds every word it starts.
			return dsl{"prefix": dsl{field: dsl{"value": strings.ToLower(prefix)}}}
		}
		return dsl{"match_phrase_prefix": dsl{field: dsl{"query": prefix, "max_expansions": maxPrefixExpansions}}}
	default:
		return dsl{"match": dsl{field: dsl{"query": text, "operator": "and"}}}
	}
}

// isOneWord tells a string that the standard tokenizer keeps as one token
// (letters, digits, underscores).
func isOneWord(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			return false
		}
	}
	return s != ""
}

// wildcard matches a keyword against the literal head followed by
// pattern, whose * and ? are wildcards and every other character literal:
// a prefix query when the only wildcard is a trailing *.
func wildcard(field, head, pattern string, caseInsensitive bool) dsl {
	body := dsl{}
	if caseInsensitive {
		body["case_insensitive"] = true
	}
	if p, ok := strings.CutSuffix(pattern, "*"); ok && !strings.ContainsAny(p, "*?") {
		body["value"] = head + p
		return dsl{"prefix": dsl{field: body}}
	}
	body["value"] = escapeWildcard(head) + escapeBackslashes(pattern)
	return dsl{"wildcard": dsl{field: body}}
}

// escapeBackslashes keeps the backslashes of a pattern literal (the
// wildcard query's escape character).
func escapeBackslashes(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }

// escapeWildcard makes a literal string part of a wildcard pattern.
func escapeWildcard(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '*' || r == '?' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// formatTime writes an instant as the date fields store it (milliseconds).
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
