package expr

import (
	"regexp"
	"strings"
	"unicode"
)

// maxNesting bounds the nesting of tags and expressions so that hostile input
// cannot exhaust the stack.
const maxNesting = 200

// parser turns tokens into template and expression nodes. Expressions use
// precedence climbing (parse_expr.go) with Pebble's operator precedences.
type parser struct {
	e     *Engine
	src   string
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekAt(n int) token {
	if p.i+n >= len(p.toks) {
		return p.toks[len(p.toks)-1]
	}
	return p.toks[p.i+n]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isOp(v string) bool {
	t := p.peek()
	return t.kind == tOp && t.val == v
}

func (p *parser) isKeyword(v string) bool {
	t := p.peek()
	return t.kind == tIdent && t.val == v
}

func (p *parser) expectOp(v string) (token, error) {
	t := p.peek()
	if t.kind != tOp || t.val != v {
		return t, p.unexpected(t, "%q", v)
	}
	return p.next(), nil
}

func (p *parser) unexpected(t token, expectedFormat string, args ...any) *SyntaxError {
	switch t.kind {
	case tBadString:
		return syntaxErrorf(t.pos(), "unterminated string")
	case tBad:
		return syntaxErrorf(t.pos(), "unexpected character %q", t.val)
	}
	return syntaxErrorf(t.pos(), "unexpected %s, expected "+expectedFormat, append([]any{t.describe()}, args...)...)
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxNesting {
		return syntaxErrorf(t.pos(), "nesting deeper than %d levels", maxNesting)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// parseTemplate parses a whole template.
func (e *Engine) parseTemplate(src string) ([]node, error) {
	toks, err := tokenize(templateLexer, templateKinds, src)
	if err != nil {
		return nil, err
	}
	toks = trimWhitespace(mergeText(toks))
	p := &parser{e: e, src: src, toks: toks}
	nodes, end, err := p.parseNodes(nil)
	if err != nil {
		return nil, err
	}
	if end.kind != tEOF {
		return nil, syntaxErrorf(end.pos(), "unexpected {%% %s %%}", end.val)
	}
	return nodes, nil
}

// mergeText joins adjacent text tokens (the lexer splits text at each "{").
func mergeText(toks []token) []token {
	out := toks[:0]
	for _, t := range toks {
		if t.kind == tText && len(out) > 0 && out[len(out)-1].kind == tText {
			out[len(out)-1].val += t.val
			continue
		}
		out = append(out, t)
	}
	return out
}

// trimWhitespace applies the "{{-", "-}}", "{%-", "-%}", "{#-" and "-#}"
// whitespace control to the text tokens beside them.
func trimWhitespace(toks []token) []token {
	for i := range toks {
		if toks[i].kind != tText {
			continue
		}
		if i > 0 && trimsAfter(toks[i-1]) {
			toks[i].val = strings.TrimLeftFunc(toks[i].val, unicode.IsSpace)
		}
		if i+1 < len(toks) && trimsBefore(toks[i+1]) {
			toks[i].val = strings.TrimRightFunc(toks[i].val, unicode.IsSpace)
		}
	}
	return toks
}

func trimsBefore(t token) bool {
	switch t.kind {
	case tPrintOpen, tTagOpen:
		return strings.HasSuffix(t.val, "-")
	case tComment:
		return strings.HasPrefix(t.val, "{#-")
	case tRaw:
		return strings.HasPrefix(t.val, "{%-")
	}
	return false
}

func trimsAfter(t token) bool {
	switch t.kind {
	case tPrintClose, tTagClose:
		return strings.HasPrefix(t.val, "-")
	case tComment:
		return strings.HasSuffix(t.val, "-#}") && len(t.val) > 4
	case tRaw:
		return strings.HasSuffix(t.val, "-%}")
	}
	return false
}

var rawRe = regexp.MustCompile(`^\{%(-?)\s*(?:raw|verbatim)\s*(-?)%\}((?s:.*?))\{%(-?)\s*end(?:raw|verbatim)\s*-?%\}$`)

func rawText(tok string) string {
	m := rawRe.FindStringSubmatch(tok)
	if m == nil {
		return tok
	}
	text := m[3]
	if m[2] == "-" {
		text = strings.TrimLeftFunc(text, unicode.IsSpace)
	}
	if m[4] == "-" {
		text = strings.TrimRightFunc(text, unicode.IsSpace)
	}
	return text
}

// parseNodes parses nodes until EOF or a tag named in until; it returns the
// nodes and the name token of that tag (or the EOF token), leaving the rest
// of the tag to the caller.
func (p *parser) parseNodes(until []string) ([]node, token, error) {
	var nodes []node
	for {
		t := p.peek()
		switch t.kind {
		case tEOF:
			return nodes, t, nil
		case tText:
			p.next()
			if t.val != "" {
				nodes = append(nodes, &textNode{text: t.val})
			}
		case tComment:
			p.next()
		case tCommentOpen:
			return nil, t, syntaxErrorf(t.pos(), `unclosed comment, expected "#}"`)
		case tRaw:
			p.next()
			nodes = append(nodes, &textNode{text: rawText(t.val)})
		case tRawOpen:
			return nil, t, syntaxErrorf(t.pos(), "unclosed {%% raw %%} block, expected {%% endraw %%}")
		case tPrintOpen:
			n, err := p.parsePrint()
			if err != nil {
				return nil, t, err
			}
			nodes = append(nodes, n)
		case tTagOpen:
			name := p.peekAt(1)
			if name.kind == tIdent && contains(until, name.val) {
				p.next()
				p.next()
				return nodes, name, nil
			}
			n, err := p.parseTag()
			if err != nil {
				return nil, t, err
			}
			if n != nil {
				nodes = append(nodes, n)
			}
		default:
			// Expression tokens only occur inside blocks.
			return nil, t, p.unexpected(t, "text or a block")
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parsePrint parses "{{ expr }}".
func (p *parser) parsePrint() (node, error) {
	open := p.next()
	if t := p.peek(); t.kind == tEOF {
		return nil, syntaxErrorf(open.pos(), `unclosed "{{", expected "}}"`)
	}
	x, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	closeTok, err := p.expectClose(open, tPrintClose, "}}")
	if err != nil {
		return nil, err
	}
	return &printNode{blk: p.block(open, closeTok), x: x}, nil
}

func (p *parser) expectClose(open token, kind tokKind, want string) (token, error) {
	t := p.peek()
	if t.kind == kind {
		return p.next(), nil
	}
	if t.kind == tEOF {
		return t, syntaxErrorf(open.pos(), "unclosed %q, expected %q", strings.TrimSuffix(open.val, "-"), want)
	}
	return t, p.unexpected(t, "%q", want)
}

func (p *parser) block(open, closeTok token) *block {
	end := closeTok.offset + len(closeTok.val)
	if end > len(p.src) || end < open.offset {
		end = len(p.src)
	}
	return &block{src: p.src[open.offset:end], pos: open.pos()}
}

// parseTag parses a "{% … %}" tag that opens a construct.
func (p *parser) parseTag() (node, error) {
	open := p.next()
	if err := p.enter(open); err != nil {
		return nil, err
	}
	defer p.leave()
	name := p.peek()
	if name.kind == tEOF {
		return nil, syntaxErrorf(open.pos(), `unclosed "{%%", expected "%%}"`)
	}
	if name.kind != tIdent {
		return nil, p.unexpected(name, "a tag name")
	}
	p.next()
	switch name.val {
	case "if":
		return p.parseIf(open)
	case "for":
		return p.parseFor(open)
	case "set":
		return p.parseSet(open)
	case "elseif", "elif", "else", "endif", "endfor", "endraw", "endverbatim":
		return nil, syntaxErrorf(name.pos(), "unexpected {%% %s %%} without a matching opening tag", name.val)
	}
	msg := "unknown tag " + quoteName(name.val)
	if s := suggest(name.val, []string{"if", "for", "set", "raw"}); s != "" {
		msg += ", did you mean " + quoteName(s) + "?"
	} else {
		msg += " (tags: if, for, set, raw)"
	}
	return nil, syntaxErrorf(name.pos(), "%s", msg)
}

func (p *parser) parseIf(open token) (node, error) {
	n := &ifNode{}
	cond, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	closeTok, err := p.expectClose(open, tTagClose, "%}")
	if err != nil {
		return nil, err
	}
	blk := p.block(open, closeTok)
	for {
		body, end, err := p.parseNodes([]string{"elseif", "elif", "else", "endif"})
		if err != nil {
			return nil, err
		}
		n.branches = append(n.branches, ifBranch{blk: blk, cond: cond, body: body})
		switch end.val {
		case "elseif", "elif":
			opener := p.toks[p.i-2]
			if cond, err = p.parseExpr(); err != nil {
				return nil, err
			}
			if closeTok, err = p.expectClose(opener, tTagClose, "%}"); err != nil {
				return nil, err
			}
			blk = p.block(opener, closeTok)
			continue
		case "else":
			if _, err := p.expectClose(p.toks[p.i-2], tTagClose, "%}"); err != nil {
				return nil, err
			}
			els, end2, err := p.parseNodes([]string{"endif"})
			if err != nil {
				return nil, err
			}
			if end2.kind == tEOF {
				return nil, syntaxErrorf(open.pos(), "unclosed {%% if %%}, expected {%% endif %%}")
			}
			n.els = els
		case "endif":
		default: // EOF
			return nil, syntaxErrorf(open.pos(), "unclosed {%% if %%}, expected {%% endif %%}")
		}
		_, err = p.expectClose(p.toks[p.i-2], tTagClose, "%}")
		return n, err
	}
}

func (p *parser) parseFor(open token) (node, error) {
	name := p.peek()
	if name.kind != tIdent {
		return nil, p.unexpected(name, "a loop variable name")
	}
	p.next()
	if !p.isKeyword("in") {
		return nil, p.unexpected(p.peek(), `"in"`)
	}
	p.next()
	iter, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	closeTok, err := p.expectClose(open, tTagClose, "%}")
	if err != nil {
		return nil, err
	}
	n := &forNode{blk: p.block(open, closeTok), name: name.val, iter: iter}
	body, end, err := p.parseNodes([]string{"else", "endfor"})
	if err != nil {
		return nil, err
	}
	n.body = body
	if end.val == "else" {
		if _, err := p.expectClose(p.toks[p.i-2], tTagClose, "%}"); err != nil {
			return nil, err
		}
		if n.empty, end, err = p.parseNodes([]string{"endfor"}); err != nil {
			return nil, err
		}
	}
	if end.kind == tEOF {
		return nil, syntaxErrorf(open.pos(), "unclosed {%% for %%}, expected {%% endfor %%}")
	}
	_, err = p.expectClose(p.toks[p.i-2], tTagClose, "%}")
	return n, err
}

func (p *parser) parseSet(open token) (node, error) {
	name := p.peek()
	if name.kind != tIdent {
		return nil, p.unexpected(name, "a variable name")
	}
	p.next()
	if _, err := p.expectOp("="); err != nil {
		return nil, err
	}
	value, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	closeTok, err := p.expectClose(open, tTagClose, "%}")
	if err != nil {
		return nil, err
	}
	return &setNode{blk: p.block(open, closeTok), name: name.val, value: value}, nil
}
