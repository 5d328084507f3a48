package expr

import (
	"sort"
	"strconv"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Operator precedences, as in Pebble's core extension and Kestra's: a higher
// number binds tighter. Unary operators bind tighter than any binary one, so
// "not a and b" is "(not a) and b" and "not a == b" is "(not a) == b", as in
// Pebble. The ternary "c ? a : b" is lowest and only at the top of an
// expression or inside parentheses, brackets and arguments.
const (
	precOr      = 10
	precAnd     = 15
	precTest    = 20 // is, is not, contains, in, not in
	precCompare = 30 // == != < > <= >= equals
	precAdd     = 40 // + -
	precMul     = 60 // * / %
	precFilter  = 100
	precConcat  = 110 // ~
	precRange   = 120 // .. ?? ???
	precUnary   = 500 // not - +
)

// parseExpr parses a full expression, including a top-level ternary.
func (p *parser) parseExpr() (expr, error) { return p.parseExpression(0) }

// binaryOp reports the binary operator at the cursor, its precedence and how
// many tokens it spans ("is not" and "not in" span two).
func (p *parser) binaryOp() (op string, prec, width int) {
	t := p.peek()
	switch t.kind {
	case tOp:
		switch t.val {
		case "==", "!=", "<", ">", "<=", ">=":
			return t.val, precCompare, 1
		case "+", "-":
			return t.val, precAdd, 1
		case "*", "/", "%":
			return t.val, precMul, 1
		case "|":
			return t.val, precFilter, 1
		case "~":
			return t.val, precConcat, 1
		case "..", "??", "???":
			return t.val, precRange, 1
		}
	case tIdent:
		switch t.val {
		case "or":
			return "or", precOr, 1
		case "and":
			return "and", precAnd, 1
		case "is":
			if n := p.peekAt(1); n.kind == tIdent && n.val == "not" {
				return "is not", precTest, 2
			}
			return "is", precTest, 1
		case "contains", "in":
			return t.val, precTest, 1
		case "not":
			if n := p.peekAt(1); n.kind == tIdent && n.val == "in" {
				return "not in", precTest, 2
			}
		case "equals":
			return "==", precCompare, 1
		}
	}
	return "", 0, 0
}

func (p *parser) parseExpression(minPrec int) (expr, error) {
	start := p.peek()
	if err := p.enter(start); err != nil {
		return nil, err
	}
	defer p.leave()

	var left expr
	switch {
	case start.kind == tIdent && start.val == "not", start.kind == tOp && (start.val == "-" || start.val == "+"):
		p.next()
		x, err := p.parseExpression(precUnary)
		if err != nil {
			return nil, err
		}
		left = &unaryExpr{p: start.pos(), op: start.val, x: x}
	default:
		x, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		if left, err = p.parsePostfix(x); err != nil {
			return nil, err
		}
	}

	for {
		op, prec, width := p.binaryOp()
		if op == "" || prec < minPrec {
			break
		}
		opTok := p.peek()
		for range width {
			p.next()
		}
		var err error
		switch op {
		case "|":
			left, err = p.parseFilter(left, opTok)
		case "is", "is not":
			left, err = p.parseTest(left, opTok, op == "is not")
		default:
			var right expr
			right, err = p.parseExpression(prec + 1)
			if err == nil {
				left = &binaryExpr{p: opTok.pos(), op: op, l: left, r: right}
			}
		}
		if err != nil {
			return nil, err
		}
	}

	if minPrec == 0 && p.isOp("?") {
		q := p.next()
		yes, err := p.parseExpression(0)
		if err != nil {
			return nil, err
		}
		if _, err := p.expectOp(":"); err != nil {
			return nil, err
		}
		no, err := p.parseExpression(0)
		if err != nil {
			return nil, err
		}
		left = &ternaryExpr{p: q.pos(), cond: left, yes: yes, no: no}
	}
	return left, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.peek()
	switch t.kind {
	case tString:
		p.next()
		return &literal{p: t.pos(), val: unquote(t.val), src: t.val}, nil
	case tInt:
		p.next()
		n, err := strconv.ParseInt(t.val, 10, 64)
		if err != nil {
			return nil, syntaxErrorf(t.pos(), "integer %s is too large", t.val)
		}
		return &literal{p: t.pos(), val: n, src: t.val}, nil
	case tFloat:
		p.next()
		f, err := strconv.ParseFloat(t.val, 64)
		if err != nil {
			return nil, syntaxErrorf(t.pos(), "number %s is out of range", t.val)
		}
		return &literal{p: t.pos(), val: f, src: t.val}, nil
	case tIdent:
		p.next()
		switch t.val {
		case "true":
			return &literal{p: t.pos(), val: true, src: t.val}, nil
		case "false":
			return &literal{p: t.pos(), val: false, src: t.val}, nil
		case "null", "none":
			return &literal{p: t.pos(), val: nil, src: t.val}, nil
		}
		if p.isOp("(") {
			return p.parseCall(t)
		}
		return &varRef{p: t.pos(), name: t.val}, nil
	case tLBrace:
		return p.parseMap()
	case tOp:
		switch t.val {
		case "(":
			p.next()
			x, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return x, nil
		case "[":
			return p.parseList()
		}
	}
	return nil, p.unexpected(t, "an expression")
}

// unquote removes the quotes of a string literal and, like Pebble, unescapes
// only the quote character and backslashes: '\d+' stays a regular expression.
func unquote(s string) string {
	q := s[0]
	s = s[1 : len(s)-1]
	if !strings.ContainsRune(s, '\\') {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == q || s[i+1] == '\\') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (p *parser) parseList() (expr, error) {
	open := p.next()
	l := &listLit{p: open.pos()}
	for !p.isOp("]") {
		x, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		l.items = append(l.items, x)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if _, err := p.expectOp("]"); err != nil {
		return nil, err
	}
	return l, nil
}

func (p *parser) parseMap() (expr, error) {
	open := p.next()
	m := &mapLit{p: open.pos()}
	for p.peek().kind != tRBrace {
		k, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expectOp(":"); err != nil {
			return nil, err
		}
		v, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		m.keys = append(m.keys, k)
		m.vals = append(m.vals, v)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if t := p.peek(); t.kind != tRBrace {
		return nil, p.unexpected(t, `"}"`)
	}
	p.next()
	return m, nil
}

// parsePostfix parses attribute and index access after a primary expression.
func (p *parser) parsePostfix(x expr) (expr, error) {
	for {
		switch {
		case p.isOp("."):
			p.next()
			t := p.peek()
			switch t.kind {
			case tIdent, tInt:
				p.next()
				if p.isOp("(") {
					return nil, syntaxErrorf(t.pos(), "method calls are not supported: %s(…)", t.val)
				}
				x = &attrExpr{p: x.position(), obj: x, name: t.val}
			case tFloat:
				// a.0.1 lexes "0.1" as a number: two list indexes.
				parts := strings.SplitN(t.val, ".", 2)
				if len(parts) != 2 || strings.ContainsAny(parts[1], "eE") {
					return nil, p.unexpected(t, "an attribute name")
				}
				p.next()
				x = &attrExpr{p: x.position(), obj: &attrExpr{p: x.position(), obj: x, name: parts[0]}, name: parts[1]}
			default:
				return nil, p.unexpected(t, "an attribute name")
			}
		case p.isOp("["):
			p.next()
			key, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp("]"); err != nil {
				return nil, err
			}
			x = &indexExpr{p: x.position(), obj: x, key: key}
		default:
			return x, nil
		}
	}
}

// parseArgs parses "(a, name=b)" into positional arguments using params for
// the named ones. what names the callee in errors.
func (p *parser) parseArgs(what string, params []string) ([]expr, error) {
	open, err := p.expectOp("(")
	if err != nil {
		return nil, err
	}
	var args []expr
	named := false
	for !p.isOp(")") {
		t := p.peek()
		if t.kind == tIdent && p.peekAt(1).kind == tOp && p.peekAt(1).val == "=" {
			p.next()
			p.next()
			idx := indexOf(params, t.val)
			if idx < 0 {
				if len(params) == 0 {
					return nil, syntaxErrorf(t.pos(), "%s takes no named arguments", what)
				}
				return nil, syntaxErrorf(t.pos(), "%s has no argument %q (arguments: %s)", what, t.val, strings.Join(params, ", "))
			}
			x, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			for len(args) <= idx {
				args = append(args, nil)
			}
			if args[idx] != nil {
				return nil, syntaxErrorf(t.pos(), "%s: argument %q given twice", what, t.val)
			}
			args[idx] = x
			named = true
		} else {
			if named {
				return nil, syntaxErrorf(t.pos(), "%s: positional argument after a named one", what)
			}
			x, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			args = append(args, x)
		}
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if t := p.peek(); t.kind == tEOF {
		return nil, syntaxErrorf(open.pos(), `unclosed "(", expected ")"`)
	}
	if _, err := p.expectOp(")"); err != nil {
		return nil, err
	}
	return args, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func (p *parser) parseCall(name token) (expr, error) {
	fn, ok := p.e.funcs[name.val]
	if !ok {
		if err := p.e.unsupportedFunc(name); err != nil {
			return nil, err
		}
		return nil, unknownName(name, "function", p.e.funcs)
	}
	args, err := p.parseArgs("function "+quoteName(name.val), fn.params)
	if err != nil {
		return nil, err
	}
	return &callExpr{p: name.pos(), name: name.val, fn: fn, args: args}, nil
}

func (p *parser) parseFilter(in expr, bar token) (expr, error) {
	name := p.peek()
	if name.kind != tIdent {
		return nil, p.unexpected(name, "a filter name")
	}
	p.next()
	f, ok := p.e.filters[name.val]
	if !ok {
		return nil, unknownName(name, "filter", p.e.filters)
	}
	fe := &filterExpr{p: name.pos(), in: in, name: name.val, f: f}
	if p.isOp("(") {
		args, err := p.parseArgs("filter "+quoteName(name.val), f.params)
		if err != nil {
			return nil, err
		}
		fe.args = args
	}
	return fe, nil
}

func (p *parser) parseTest(in expr, is token, negate bool) (expr, error) {
	name := p.peek()
	if name.kind != tIdent {
		return nil, p.unexpected(name, "a test name")
	}
	p.next()
	t, ok := p.e.tests[name.val]
	if !ok {
		return nil, unknownName(name, "test", p.e.tests)
	}
	te := &testExpr{p: is.pos(), in: in, name: name.val, t: t, negate: negate}
	if p.isOp("(") {
		args, err := p.parseArgs("test "+quoteName(name.val), nil)
		if err != nil {
			return nil, err
		}
		te.args = args
	}
	return te, nil
}

func quoteName(s string) string { return strconv.Quote(s) }

func unknownName[V any](t token, kind string, known map[string]V) *SyntaxError {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	msg := "unknown " + kind + " " + quoteName(t.val)
	if s := suggest(t.val, names); s != "" {
		msg += ", did you mean " + quoteName(s) + "?"
	}
	return syntaxErrorf(t.pos(), "%s", msg)
}

// suggest returns the known name closest to s, if it is close enough to be
// a likely typo.
func suggest(s string, names []string) string {
	sort.Strings(names)
	best, bestDist := "", 0
	ls := strings.ToLower(s)
	for _, n := range names {
		d := levenshtein.ComputeDistance(ls, strings.ToLower(n))
		if best == "" || d < bestDist {
			best, bestDist = n, d
		}
	}
	// Two edits allow a swap of neighbours ("nwo" for "now").
	limit := 2
	switch {
	case len(s) <= 2:
		limit = 1
	case len(s) > 6:
		limit = 3
	}
	if best == "" || bestDist > limit {
		return ""
	}
	return best
}
