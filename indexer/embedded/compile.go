package embedded

import (
	"fmt"
	"math"
	"path"
	"strings"
	"time"
	"unicode"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// How queries compile (user values are always bound parameters, never SQL
// text):
//
//   - Keyword, Enum, Number, Date, Duration, Bool: field:value is equality
//     on the column (dates to the millisecond). Keyword matching is case
//     sensitive, as Elasticsearch's keyword fields: a Wildcard is SQLite's
//     GLOB (case sensitive) with the value's [ ] * ? escaped as [[] []] [*]
//     [?] and the query's * ? kept, plus a range on its literal prefix so
//     that the column's index serves it. A Wildcard on an Enum field is
//     matched (case-insensitively) against the enum's values in Go and
//     becomes IN (...).
//   - Text: an FTS5 query on the field's column: Exact is all the words,
//     Phrase the words in order, Wildcard a prefix of the last word; each
//     word quoted for FTS5's syntax. FullText is the OR of that query over
//     its fields.
//   - Labels: labels.KEY:value is the pair "KEY=value" in KIND_labels,
//     labels.KEY:* a pair starting with "KEY=".
//   - field:* is IS NOT NULL (empty strings are stored as NULL).
//   - A Keyword field that holds the document id (docIDFields) is matched
//     on the id column, whose unique index serves it.
//   - A comparison with a document without the field is false, and NOT of
//     it true, as in Elasticsearch: NOT x compiles as NOT IFNULL((x), 0).

// compiler builds a WHERE clause and its arguments.
type compiler struct {
	t    *table
	b    strings.Builder
	args []any
}

// where compiles a query and a time range into a WHERE clause ("1" for
// none). Errors wrap repository.ErrInvalidRequest.
func (t *table) where(q query.Node, since, until time.Time) (string, []any, error) {
	c := &compiler{t: t}
	var parts []string
	if q != nil {
		if err := c.node(q); err != nil {
			return "", nil, fmt.Errorf("%w: %w", repository.ErrInvalidRequest, err)
		}
		parts = append(parts, c.b.String())
	}
	col := t.col(t.time)
	if !since.IsZero() {
		parts = append(parts, col+" >= ?")
		c.args = append(c.args, since.UnixMilli())
	}
	if !until.IsZero() {
		parts = append(parts, col+" < ?")
		c.args = append(c.args, until.UnixMilli())
	}
	if len(parts) == 0 {
		return "1", nil, nil
	}
	return "(" + strings.Join(parts, ") AND (") + ")", c.args, nil
}

// col is a column qualified with its table, so that clauses stay
// unambiguous in joins and subqueries.
func (t *table) col(c *column) string { return t.name + "." + c.name }

// at says where a node is in the query string, for errors.
func at(p query.Pos) string {
	if p.Column == 0 {
		return ""
	}
	return fmt.Sprintf("column %d: ", p.Column)
}

func (c *compiler) w(s ...string) {
	for _, x := range s {
		c.b.WriteString(x)
	}
}

func (c *compiler) arg(v any) { c.args = append(c.args, v) }

func (c *compiler) node(n query.Node) error {
	switch n := n.(type) {
	case *query.And:
		return c.list(n.Terms, " AND ", "1")
	case *query.Or:
		return c.list(n.Terms, " OR ", "0")
	case *query.Not:
		if n.X == nil {
			return fmt.Errorf("%snot without a term", at(n.At))
		}
		c.w("NOT IFNULL((")
		if err := c.node(n.X); err != nil {
			return err
		}
		c.w("), 0)")
		return nil
	case *query.Match:
		return c.match(n)
	case *query.Exists:
		return c.exists(n)
	case *query.Range:
		return c.rangeNode(n)
	case *query.FullText:
		return c.fullText(n)
	case nil:
		c.w("1")
		return nil
	}
	return fmt.Errorf("unsupported query node %T", n)
}

func (c *compiler) list(terms []query.Node, op, empty string) error {
	if len(terms) == 0 {
		c.w(empty)
		return nil
	}
	c.w("(")
	for i, t := range terms {
		if i > 0 {
			c.w(op)
		}
		if err := c.node(t); err != nil {
			return err
		}
	}
	c.w(")")
	return nil
}

// column returns a node's field's column, checking that the field is the
// schema's.
func (c *compiler) column(f *query.Field, pos query.Pos) (*column, error) {
	if f == nil {
		return nil, fmt.Errorf("%sno field", at(pos))
	}
	if f.Type == query.Labels {
		if c.t.labelsF == nil || c.t.labelsF.Name != f.Name {
			return nil, fmt.Errorf("%s%s has no labels field %q", at(pos), c.t.kind, f.Name)
		}
		return nil, nil
	}
	col, ok := c.t.byField[f.Name]
	if !ok || col.field.Type != f.Type {
		return nil, fmt.Errorf("%s%s has no %s field %q", at(pos), c.t.kind, f.Type, f.Name)
	}
	return col, nil
}

func (c *compiler) match(m *query.Match) error {
	col, err := c.column(m.Field, m.At)
	if err != nil {
		return err
	}
	f := m.Field
	if m.Kind == query.Wildcard && f.Type != query.Keyword && f.Type != query.Enum && f.Type != query.Labels && f.Type != query.Text {
		return fmt.Errorf("%s%s is a %s field: no wildcards", at(m.At), f.Name, f.Type)
	}
	switch f.Type {
	case query.Keyword:
		expr := c.t.col(col)
		if col.docID {
			// The unique index on id serves it; the field holds the same.
			expr = c.t.name + ".id"
			c.w("(", c.t.col(col), " = ", expr, " AND ")
			defer c.w(")")
		}
		if m.Kind == query.Wildcard {
			c.glob(expr, m.Text, "")
			return nil
		}
		c.w(expr, " = ?")
		c.arg(m.Text)
	case query.Enum:
		if m.Kind != query.Wildcard {
			c.w(c.t.col(col), " = ?")
			c.arg(m.Text)
			return nil
		}
		var in []string
		for _, v := range f.Values {
			if ok, _ := path.Match(globToPathPattern(strings.ToUpper(m.Text)), strings.ToUpper(v)); ok {
				in = append(in, v)
			}
		}
		if len(in) == 0 {
			c.w("0")
			return nil
		}
		c.w(c.t.col(col), " IN (?", strings.Repeat(", ?", len(in)-1), ")")
		for _, v := range in {
			c.arg(v)
		}
	case query.Number, query.Duration:
		c.w(c.t.col(col), " = ?")
		c.arg(numberArg(m.Number))
	case query.Date:
		c.w(c.t.col(col), " = ?")
		c.arg(m.Time.UnixMilli())
	case query.Bool:
		c.w(c.t.col(col), " = ?")
		c.arg(boolInt(m.Bool))
	case query.Labels:
		if m.Label == "" {
			return fmt.Errorf("%s%s needs a label key: %s.KEY:value", at(m.At), f.Name, f.Name)
		}
		c.w(c.t.name, ".rid IN (SELECT rid FROM ", c.t.labels, " WHERE ")
		if m.Kind == query.Wildcard {
			c.glob("pair", m.Text, m.Label+"=")
		} else {
			c.w("pair = ?")
			c.arg(m.Label + "=" + m.Text)
		}
		c.w(")")
	case query.Text:
		expr, ok, err := ftsExpr(m.Kind, m.Text)
		if err != nil {
			return fmt.Errorf("%s%s: %w", at(m.At), f.Name, err)
		}
		c.fts([]string{f.Name}, expr, ok)
	default:
		return fmt.Errorf("%sunsupported field type %s", at(m.At), f.Type)
	}
	return nil
}

// glob matches expr against a query wildcard pattern (* and ?) preceded
// by the literal prefix.
func (c *compiler) glob(expr, pattern, prefix string) {
	lit := prefix
	if i := strings.IndexAny(pattern, "*?"); i >= 0 {
		lit += pattern[:i]
	} else {
		lit += pattern
	}
	if lit != "" {
		// The literal prefix as a range, which an index on expr serves.
		c.w(expr, " >= ? AND ")
		c.arg(lit)
		if hi, ok := prefixEnd(lit); ok {
			c.w(expr, " < ? AND ")
			c.arg(hi)
		}
	}
	c.w(expr, " GLOB ?")
	c.arg(globEscape(prefix) + globPattern(pattern))
}

// globEscape makes s literal in a GLOB pattern.
func globEscape(s string) string {
	if !strings.ContainsAny(s, "*?[]") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']':
			b.WriteByte('[')
			b.WriteRune(r)
			b.WriteByte(']')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// globPattern makes a query wildcard pattern a GLOB pattern: * and ? stay,
// everything else is literal.
func globPattern(p string) string {
	var b strings.Builder
	for _, part := range strings.SplitAfter(p, "") {
		if part == "*" || part == "?" {
			b.WriteString(part)
		} else {
			b.WriteString(globEscape(part))
		}
	}
	return b.String()
}

// globToPathPattern makes a query wildcard pattern a path.Match pattern.
func globToPathPattern(p string) string {
	var b strings.Builder
	for _, r := range p {
		switch r {
		case '*', '?':
			b.WriteRune(r)
		case '[', ']', '\\', '/':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// prefixEnd is the least string above every string starting with p, in
// SQLite's byte order; false when there is none (p is all 0xff).
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

func numberArg(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f)
	}
	return f
}

func (c *compiler) exists(e *query.Exists) error {
	col, err := c.column(e.Field, e.At)
	if err != nil {
		return err
	}
	if e.Field.Type == query.Labels {
		c.w(c.t.name, ".rid IN (SELECT rid FROM ", c.t.labels)
		if e.Label != "" {
			c.w(" WHERE ")
			c.glob("pair", "*", e.Label+"=")
		}
		c.w(")")
		return nil
	}
	c.w(c.t.col(col), " IS NOT NULL")
	return nil
}

func (c *compiler) rangeNode(r *query.Range) error {
	col, err := c.column(r.Field, r.At)
	if err != nil {
		return err
	}
	var v any
	switch r.Field.Type {
	case query.Number, query.Duration:
		v = numberArg(r.Number)
	case query.Date:
		v = r.Time.UnixMilli()
	default:
		return fmt.Errorf("%s%s is a %s field: no ranges", at(r.At), r.Field.Name, r.Field.Type)
	}
	var op string
	switch r.Op {
	case query.GT:
		op = " > ?"
	case query.GTE:
		op = " >= ?"
	case query.LT:
		op = " < ?"
	case query.LTE:
		op = " <= ?"
	default:
		return fmt.Errorf("%sunknown comparison %d", at(r.At), r.Op)
	}
	c.w(c.t.col(col), op)
	c.arg(v)
	return nil
}

func (c *compiler) fullText(n *query.FullText) error {
	if len(n.Fields) == 0 {
		return fmt.Errorf("%s%s has no full-text fields to search %q in", at(n.At), c.t.kind, n.Text)
	}
	names := make([]string, len(n.Fields))
	for i, f := range n.Fields {
		if _, err := c.column(f, n.At); err != nil {
			return err
		}
		if f.Type != query.Text {
			return fmt.Errorf("%s%s is not a text field", at(n.At), f.Name)
		}
		names[i] = f.Name
	}
	expr, ok, err := ftsExpr(n.Kind, n.Text)
	if err != nil {
		return fmt.Errorf("%s%w", at(n.At), err)
	}
	c.fts(names, expr, ok)
	return nil
}

// fts matches an FTS5 expression in any of the fields; ok false matches
// nothing (a value without words).
func (c *compiler) fts(fields []string, expr string, ok bool) {
	if !ok {
		c.w("0")
		return
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = "{" + f + "} : (" + expr + ")"
	}
	c.w(c.t.name, ".rid IN (SELECT rowid FROM ", c.t.fts, " WHERE ", c.t.fts, " MATCH ?)")
	c.arg(strings.Join(parts, " OR "))
}

// ftsExpr is the FTS5 expression of a Text value: Exact, all its words;
// Phrase, its words in order; Wildcard (a trailing *), its words in order,
// the last one a prefix. ok is false when the value has no words.
func ftsExpr(kind query.ValueKind, text string) (expr string, ok bool, err error) {
	switch kind {
	case query.Exact:
		words := ftsWords(text)
		if len(words) == 0 {
			return "", false, nil
		}
		for i, w := range words {
			words[i] = ftsQuote(w)
		}
		return strings.Join(words, " AND "), true, nil
	case query.Phrase:
		words := ftsWords(text)
		if len(words) == 0 {
			return "", false, nil
		}
		return ftsQuote(strings.Join(words, " ")), true, nil
	case query.Wildcard:
		p := strings.TrimSuffix(text, "*")
		if strings.ContainsAny(p, "*?") {
			return "", false, fmt.Errorf("%q: text fields take only a trailing * (a word prefix)", text)
		}
		words := ftsWords(p)
		if len(words) == 0 {
			return "", false, nil
		}
		return ftsQuote(strings.Join(words, " ")) + " *", true, nil
	}
	return "", false, fmt.Errorf("unknown match kind %d", kind)
}

// ftsWords splits a value into the words the tokenizer (ftsTokenizer)
// makes of it.
func ftsWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.Is(unicode.Mn, r) && !unicode.Is(unicode.Co, r) && r != '_'
	})
}

// ftsQuote makes s one FTS5 string.
func ftsQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
