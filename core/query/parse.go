package query

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The grammar (keywords in any case; adjacent terms are joined with and):
//
//	query   = or
//	or      = and { "or" and }
//	and     = unary { ["and"] unary }
//	unary   = "not" unary | "(" or ")" | term
//	term    = field ":" values | field op value | word | phrase
//	values  = "*" | value | "(" vor ")"
//	vor     = vand { "or" vand }                  -- the same shape as or,
//	vand    = vunary { ["and"] vunary }           -- with values for terms
//	vunary  = "not" vunary | "(" vor ")" | value
//	value   = word { ":" | word } (touching) | phrase
//	op      = ">" | ">=" | "<" | "<="

// Limits on what Parse accepts, so that no query costs much to parse or
// check, and no recursion runs deep.
const (
	maxLength = 4096 // the longest query, in bytes
	maxDepth  = 64   // the deepest nesting of parentheses and not
)

// Error is a parse or check error: where (Pos.Column, from 1) and what.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("column %d: %s", e.Pos.Column, e.Msg) }

// Parse parses a query string against a schema; now resolves relative
// dates (now-1d). An empty or all-blank query returns (nil, nil): match
// everything (so does a query of only *). Errors are *Error.
func Parse(input string, s *Schema, now time.Time) (Node, error) {
	if len(input) > maxLength {
		off := maxLength
		for off > 0 && !utf8.RuneStart(input[off]) {
			off--
		}
		return nil, &Error{
			Pos: Pos{Offset: off, Column: utf8.RuneCountInString(input[:off]) + 1},
			Msg: fmt.Sprintf("the query is too long: %d bytes, at most %d", len(input), maxLength),
		}
	}
	if !utf8.ValidString(input) {
		off := 0
		for off < len(input) {
			r, size := utf8.DecodeRuneInString(input[off:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			off += size
		}
		return nil, &Error{Pos: Pos{Offset: off, Column: utf8.RuneCountInString(input[:off]) + 1}, Msg: "the query is not valid UTF-8"}
	}
	if s == nil {
		return nil, &Error{Pos: Pos{Column: 1}, Msg: "nothing to search: no schema"}
	}
	toks, err := tokenize(input)
	if err != nil {
		return nil, err
	}
	switch {
	case toks[0].kind == tEOF:
		return nil, nil
	case len(toks) == 2 && toks[0].kind == tWord && toks[0].val == "*":
		return nil, nil
	}
	p := &parser{in: input, s: s, now: now, toks: toks}
	n, err := p.or(p.term)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t)
	}
	return n, nil
}

// parser is a recursive-descent parser over the tokens of a query, which
// types each leaf as it goes (check.go).
type parser struct {
	in     string
	s      *Schema
	now    time.Time
	toks   []token // ends with tEOF
	i      int
	depth  int  // nesting of parentheses and not
	parens int  // open parentheses
	values bool // inside field:(...), where the leaves are values

	ft     []*Field // the schema's full-text fields, resolved once
	ftDone bool
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// keyword reports whether the token at i is the keyword kw: that word in
// any case, not immediately followed by ":" (not:x is the field "not").
func (p *parser) keyword(i int, kw string) bool {
	t := p.toks[i]
	if t.kind != tWord || !strings.EqualFold(t.val, kw) {
		return false
	}
	n := p.toks[i+1] // a Word is never the last token
	return n.kind != tColon || n.pos.Offset != t.end()
}

// startsTerm reports whether the next token starts a term (or a not, or a
// parenthesized group): then two terms side by side are joined with and.
func (p *parser) startsTerm() bool {
	switch p.peek().kind {
	case tString, tLParen:
		return true
	case tWord:
		return !p.keyword(p.i, "and") && !p.keyword(p.i, "or")
	}
	return false
}

// startsValue reports whether the next token starts a value.
func (p *parser) startsValue() bool {
	switch p.peek().kind {
	case tString:
		return true
	case tWord:
		return !p.keyword(p.i, "and") && !p.keyword(p.i, "or") && !p.keyword(p.i, "not")
	}
	return false
}

// enter counts one more level of nesting at t.
func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxDepth {
		return errorf(t.pos, "the query nests too deeply: at most %d levels of parentheses and not", maxDepth)
	}
	return nil
}

// The boolean structure is the same for terms and for the values of
// field:(...): leaf parses one term or one value.

func (p *parser) or(leaf func() (Node, error)) (Node, error) {
	n, err := p.and(leaf)
	if err != nil {
		return nil, err
	}
	terms := []Node{n}
	for p.keyword(p.i, "or") {
		p.next()
		n, err := p.and(leaf)
		if err != nil {
			return nil, err
		}
		terms = append(terms, n)
	}
	return newOr(terms), nil
}

func (p *parser) and(leaf func() (Node, error)) (Node, error) {
	n, err := p.unary(leaf)
	if err != nil {
		return nil, err
	}
	terms := []Node{n}
	for {
		if p.keyword(p.i, "and") {
			p.next()
		} else if !p.startsTerm() {
			break
		}
		n, err := p.unary(leaf)
		if err != nil {
			return nil, err
		}
		terms = append(terms, n)
	}
	return newAnd(terms), nil
}

func (p *parser) unary(leaf func() (Node, error)) (Node, error) {
	if !p.keyword(p.i, "not") {
		return p.primary(leaf)
	}
	t := p.next()
	if err := p.enter(t); err != nil {
		return nil, err
	}
	var x Node
	var err error
	if p.peek().kind == tLParen {
		x, err = p.group(leaf, false) // not (...) is one level
	} else {
		x, err = p.unary(leaf)
	}
	if err != nil {
		return nil, err
	}
	p.depth--
	return &Not{At: t.pos, X: x}, nil
}

func (p *parser) primary(leaf func() (Node, error)) (Node, error) {
	t := p.peek()
	switch t.kind {
	case tLParen:
		return p.group(leaf, true)
	case tString:
		return leaf()
	case tWord:
		if !p.keyword(p.i, "and") && !p.keyword(p.i, "or") {
			return leaf()
		}
	}
	return nil, p.expected(t)
}

// group parses "(" or ")"; count says whether it is a level of nesting.
func (p *parser) group(leaf func() (Node, error), count bool) (Node, error) {
	lp := p.next()
	if count {
		if err := p.enter(lp); err != nil {
			return nil, err
		}
	}
	p.parens++
	n, err := p.or(leaf)
	if err != nil {
		return nil, err
	}
	p.parens--
	if count {
		p.depth--
	}
	switch t := p.peek(); t.kind {
	case tRParen:
		p.next()
		return n, nil
	case tEOF:
		return nil, errorf(lp.pos, "unbalanced parenthesis")
	default:
		return nil, p.unexpected(t)
	}
}

// term parses a term: field:values, field OP value, a bare word or a
// phrase.
func (p *parser) term() (Node, error) {
	t := p.next()
	if t.kind == tString {
		return p.fullText(value{at: t.pos, raw: t.val, text: unquote(t.val), quoted: true})
	}
	switch n := p.peek(); n.kind {
	case tColon:
		p.next()
		return p.fieldTerm(t)
	case tOp:
		p.next()
		return p.rangeTerm(t, n)
	}
	v, err := p.wordValue(t.pos, t.val)
	if err != nil {
		return nil, err
	}
	return p.fullText(v)
}

// fieldTerm parses the values of field: — *, a value or (values).
func (p *parser) fieldTerm(ft token) (Node, error) {
	f, label, err := p.resolveField(ft)
	if err != nil {
		return nil, err
	}
	if p.peek().kind == tLParen {
		p.values = true
		defer func() { p.values = false }()
		return p.group(func() (Node, error) {
			if !p.startsValue() {
				return nil, p.expected(p.peek())
			}
			v, err := p.readValue()
			if err != nil {
				return nil, err
			}
			return p.matchValue(v.at, f, label, v)
		}, true)
	}
	if !p.startsValue() {
		return nil, p.expectedValue(ft.val+":", fieldName(f, label), p.peek())
	}
	v, err := p.readValue()
	if err != nil {
		return nil, err
	}
	return p.matchValue(ft.pos, f, label, v)
}

// rangeTerm parses the value of field OP.
func (p *parser) rangeTerm(ft, op token) (Node, error) {
	if op.val == "=" {
		return nil, errorf(op.pos, "unexpected \"=\": write %s:value", ft.val)
	}
	f, label, err := p.resolveField(ft)
	if err != nil {
		return nil, err
	}
	if !p.startsValue() {
		return nil, p.expectedValue(ft.val+" "+op.val, fieldName(f, label), p.peek())
	}
	v, err := p.readValue()
	if err != nil {
		return nil, err
	}
	var o RangeOp
	switch op.val {
	case ">":
		o = GT
	case ">=":
		o = GTE
	case "<":
		o = LT
	default:
		o = LTE
	}
	return p.rangeValue(ft.pos, f, label, o, v)
}

// readValue reads a phrase, or a word with the ":" and words that touch it.
func (p *parser) readValue() (value, error) {
	t := p.next()
	if t.kind == tString {
		return value{at: t.pos, raw: t.val, text: unquote(t.val), quoted: true}, nil
	}
	end := t.end()
	for n := p.peek(); (n.kind == tWord || n.kind == tColon) && n.pos.Offset == end; n = p.peek() {
		p.next()
		end = n.end()
	}
	return p.wordValue(t.pos, p.in[t.pos.Offset:end])
}

// wordValue is an unquoted value.
func (p *parser) wordValue(at Pos, raw string) (value, error) {
	text, wild, escaped := unescapeWord(raw)
	if wild && escaped {
		return value{}, errorf(at, "%q mixes wildcards (* or ?) with escaped ones (\\* or \\?), which is not supported", raw)
	}
	return value{at: at, raw: raw, text: text, wild: wild}, nil
}

// expected is the error for a token where a term or a value should start.
func (p *parser) expected(t token) error {
	what := "a term"
	if p.values {
		what = "a value"
	}
	switch t.kind {
	case tQuote, tBad:
		return p.unexpected(t)
	case tEOF:
		return errorf(t.pos, "expected %s after %q", what, p.toks[p.i-1].val)
	case tRParen:
		if p.parens == 0 {
			return errorf(t.pos, "unbalanced parenthesis")
		}
		return errorf(t.pos, "expected %s before \")\"", what)
	case tColon, tOp:
		if !p.values {
			return errorf(t.pos, "expected a field name before %q", t.val)
		}
	}
	return errorf(t.pos, "expected %s before %q", what, t.val)
}

// expectedValue is the error for a missing value after field: or field OP.
func (p *parser) expectedValue(after, field string, t token) error {
	switch {
	case t.kind == tQuote || t.kind == tBad:
		return p.unexpected(t)
	case t.kind == tOp && strings.HasSuffix(after, ":"):
		return errorf(t.pos, "expected a value after %q; a range has no \":\" (%s %s value)", after, field, t.val)
	case t.kind == tWord:
		return errorf(t.pos, "expected a value after %q; quote %q to search for the word", after, t.val)
	}
	return errorf(t.pos, "expected a value after %q", after)
}

// unexpected is the error for a token that cannot come next.
func (p *parser) unexpected(t token) error {
	switch t.kind {
	case tQuote:
		return errorf(t.pos, "unterminated quoted string")
	case tBad:
		return errorf(t.pos, "a backslash at the end escapes nothing (write \\\\ for a backslash)")
	case tRParen:
		if p.parens == 0 {
			return errorf(t.pos, "unbalanced parenthesis")
		}
	case tColon:
		return errorf(t.pos, "unexpected \":\": a field name comes before it (field:value)")
	case tOp:
		if t.val == "=" {
			return errorf(t.pos, "unexpected \"=\": write field:value")
		}
		return errorf(t.pos, "unexpected %q: a field name comes before it (field %s value)", t.val, t.val)
	}
	return errorf(t.pos, "unexpected %q", t.val)
}
