package query

import (
	"fmt"
	"strings"

	"github.com/agnivade/levenshtein"
)

// The check step: every leaf is typed for its field as it is parsed, so
// that a value error points at the value.

// resolveField finds the field of a field name as written, and the label
// key for labels.KEY.
func (p *parser) resolveField(t token) (*Field, string, error) {
	name, _, _ := unescapeWord(t.val)
	if f := p.s.Field(name); f != nil {
		if f.Type == Labels {
			return nil, "", errorf(t.pos, "use %s.KEY:value: %s holds key/value pairs", name, name)
		}
		return f, "", nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if f := p.s.Field(name[:i]); f != nil && f.Type == Labels {
			key := name[i+1:]
			if key == "" {
				return nil, "", errorf(t.pos, "expected a label key after %q", name)
			}
			if !validLabelKey(key) {
				return nil, "", errorf(t.pos, "label key %q may hold only letters, digits, _, - and .", key)
			}
			return f, key, nil
		}
	}
	return nil, "", p.unknownField(t.pos, name)
}

// validLabelKey reports whether a label key holds only ASCII letters,
// digits, _, - and .
func validLabelKey(key string) bool {
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

func (p *parser) unknownField(at Pos, name string) error {
	var candidates []string
	_, rest, dotted := strings.Cut(name, ".")
	for _, f := range p.s.Fields {
		if f.Type == Labels {
			if dotted {
				candidates = append(candidates, f.Name+"."+rest)
			}
			continue
		}
		candidates = append(candidates, f.Name)
	}
	msg := fmt.Sprintf("unknown field %q", name)
	if p.s.Kind != "" {
		msg += " for " + p.s.Kind
	}
	if s := closest(name, candidates); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	if names := p.s.Names(); len(names) > 0 {
		msg += "; fields: " + strings.Join(names, ", ")
	}
	return &Error{Pos: at, Msg: msg}
}

// closest returns the candidate nearest to s (ignoring case) when it is
// near enough to be a likely typo, or one that s is a prefix of or starts
// with, else "".
func closest(s string, candidates []string) string {
	if len(s) > 64 {
		return ""
	}
	limit := 2
	if len(s) < 4 {
		limit = 1
	}
	best, bestD := "", limit+1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if d := levenshtein.ComputeDistance(ls, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" || len(s) < 3 {
		return best
	}
	// A longer or shorter spelling: warning for WARN, fail for FAILED.
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if len(c) >= 3 && (strings.HasPrefix(ls, lc) || strings.HasPrefix(lc, ls)) {
			return c
		}
	}
	return ""
}

// article names a field type after "is".
func article(t FieldType) string {
	switch t {
	case Enum:
		return "an enum"
	case Text:
		return "full text"
	}
	return "a " + t.String()
}

// matchValue types field:value (At is where the term starts).
func (p *parser) matchValue(at Pos, f *Field, label string, v value) (Node, error) {
	if !v.quoted && v.raw == "*" {
		return &Exists{At: at, Field: f, Label: label}, nil
	}
	if v.quoted && v.text == "" {
		return nil, errorf(v.at, "empty quoted value: to find documents without %s, write not %s:*", fieldName(f, label), fieldName(f, label))
	}
	m := &Match{At: at, Field: f, Label: label, Text: v.text}
	switch {
	case v.quoted:
		m.Kind = Phrase
	case v.wild:
		m.Kind = Wildcard
	}
	if label != "" {
		return m, nil
	}
	switch f.Type {
	case Keyword:
		return m, nil
	case Text:
		if v.wild && !isPrefix(v.text) {
			return nil, errorf(v.at, "field %s is full text: a wildcard is only allowed as a single trailing * (a word prefix, like time*)", f.Name)
		}
		return m, nil
	case Enum:
		return p.enumValue(m, v)
	}
	if v.wild {
		return nil, errorf(v.at, "field %s is %s: wildcards apply to keyword, enum, label and text fields", f.Name, article(f.Type))
	}
	m.Kind = Exact
	switch f.Type {
	case Number:
		n, ok := parseNumber(v.text)
		if !ok {
			return nil, errorf(v.at, "%q is not a number", v.text)
		}
		m.Number = n
	case Duration:
		n, err := parseDuration(v.text)
		if err != nil {
			return nil, errorf(v.at, "%q %v", v.text, err)
		}
		m.Number = n
	case Bool:
		b, ok := parseBool(v.text)
		if !ok {
			return nil, errorf(v.at, "%q is not true or false", v.text)
		}
		m.Bool = b
	case Date:
		t, prec, relative, err := parseDate(v.text, p.now)
		if err != nil {
			return nil, errorf(v.at, "%q %v", v.text, err)
		}
		switch {
		case relative:
			return nil, errorf(v.at, "use a range: %s >= %s", f.Name, v.text)
		case prec == precDay:
			return nil, errorf(v.at, "use a range: %s >= %s and %s < %s", f.Name, v.text, f.Name, t.AddDate(0, 0, 1).Format("2006-01-02"))
		case prec == precMinute:
			return nil, errorf(v.at, "use a range: %s >= %s and %s < %s", f.Name, v.text, f.Name, t.Add(60e9).Format("2006-01-02T15:04Z07:00"))
		}
		m.Time = t
	default: // Labels without a key is caught by resolveField
		return nil, errorf(at, "field %s cannot be matched", f.Name)
	}
	return m, nil
}

// enumValue gives an Enum match its canonical value; a wildcard becomes the
// values it matches.
func (p *parser) enumValue(m *Match, v value) (Node, error) {
	f := m.Field
	if !v.wild {
		for _, c := range f.Values {
			if strings.EqualFold(c, v.text) {
				m.Text = c
				return m, nil
			}
		}
		msg := fmt.Sprintf("unknown value %q for %s", v.text, f.Name)
		if s := closest(v.text, f.Values); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return nil, errorf(v.at, "%s; values: %s", msg, strings.Join(f.Values, ", "))
	}
	pattern := strings.ToUpper(v.text)
	var terms []Node
	for _, c := range f.Values {
		if wildcardMatch(pattern, strings.ToUpper(c)) {
			terms = append(terms, &Match{At: m.At, Field: f, Kind: Exact, Text: c})
		}
	}
	if len(terms) == 0 {
		return nil, errorf(v.at, "no value of %s matches %q; values: %s", f.Name, v.text, strings.Join(f.Values, ", "))
	}
	return newOr(terms), nil
}

// rangeValue types field OP value.
func (p *parser) rangeValue(at Pos, f *Field, label string, op RangeOp, v value) (Node, error) {
	switch {
	case label != "":
		return nil, errorf(at, "labels are keywords: ranges apply to number, date and duration fields")
	case f.Type != Number && f.Type != Date && f.Type != Duration:
		return nil, errorf(at, "field %s is %s: ranges apply to number, date and duration fields", f.Name, article(f.Type))
	}
	r := &Range{At: at, Field: f, Op: op}
	switch f.Type {
	case Number:
		n, ok := parseNumber(v.text)
		if !ok {
			return nil, errorf(v.at, "%q is not a number", v.text)
		}
		r.Number = n
	case Duration:
		n, err := parseDuration(v.text)
		if err != nil {
			return nil, errorf(v.at, "%q %v", v.text, err)
		}
		r.Number = n
	case Date:
		t, _, _, err := parseDate(v.text, p.now)
		if err != nil {
			return nil, errorf(v.at, "%q %v", v.text, err)
		}
		r.Time = t
	}
	return r, nil
}

// fullText types a bare word or phrase.
func (p *parser) fullText(v value) (Node, error) {
	fields := p.fullTextFields()
	if len(fields) == 0 {
		kind := p.s.Kind
		if kind == "" {
			kind = "this"
		}
		return nil, errorf(v.at, "bare words are not supported when searching %s: use field:value; fields: %s", kind, strings.Join(p.s.Names(), ", "))
	}
	n := &FullText{At: v.at, Text: v.text, Fields: fields}
	switch {
	case v.quoted:
		if v.text == "" {
			return nil, errorf(v.at, "empty quoted phrase")
		}
		n.Kind = Phrase
	case v.wild:
		if v.raw == "*" {
			return nil, errorf(v.at, "* alone matches everything: leave it out (an empty query matches everything), or use field:* for a field that is set")
		}
		if !isPrefix(v.text) {
			return nil, errorf(v.at, "a bare word may only end with * (a word prefix, like time*); escape a literal * or ? as \\* or \\?")
		}
		n.Kind = Wildcard
	}
	return n, nil
}

func (p *parser) fullTextFields() []*Field {
	if p.ftDone {
		return p.ft
	}
	p.ftDone = true
	for _, name := range p.s.FullText {
		if f := p.s.Field(name); f != nil {
			p.ft = append(p.ft, f)
		}
	}
	return p.ft
}

// fieldName is how a field is written in a query.
func fieldName(f *Field, label string) string {
	if label != "" {
		return f.Name + "." + label
	}
	return f.Name
}

// isPrefix reports whether a wildcard value is a word prefix: one * at
// the end of at least one character.
func isPrefix(s string) bool {
	return len(s) >= 2 && strings.IndexAny(s, "*?") == len(s)-1 && s[len(s)-1] == '*'
}

// newAnd returns the conjunction of terms, flattening nested Ands; one term
// is returned as is.
func newAnd(terms []Node) Node {
	if len(terms) == 1 {
		return terms[0]
	}
	out := make([]Node, 0, len(terms))
	for _, t := range terms {
		if a, ok := t.(*And); ok {
			out = append(out, a.Terms...)
			continue
		}
		out = append(out, t)
	}
	return &And{At: out[0].Position(), Terms: out}
}

// newOr returns the disjunction of terms, flattening nested Ors; one term
// is returned as is.
func newOr(terms []Node) Node {
	if len(terms) == 1 {
		return terms[0]
	}
	out := make([]Node, 0, len(terms))
	for _, t := range terms {
		if o, ok := t.(*Or); ok {
			out = append(out, o.Terms...)
			continue
		}
		out = append(out, t)
	}
	return &Or{At: out[0].Position(), Terms: out}
}

func errorf(at Pos, format string, args ...any) error {
	return &Error{Pos: at, Msg: fmt.Sprintf(format, args...)}
}
