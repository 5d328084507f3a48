package expr

import "strings"

// Template nodes.

type node interface{ isNode() }

type textNode struct{ text string }

type printNode struct {
	blk *block
	x   expr
}

type ifBranch struct {
	blk  *block
	cond expr
	body []node
}

type ifNode struct {
	branches []ifBranch
	els      []node
}

type forNode struct {
	blk   *block
	name  string
	iter  expr
	body  []node
	empty []node // {% else %} body, rendered when nothing was iterated
}

type setNode struct {
	blk   *block
	name  string
	value expr
}

func (*textNode) isNode()  {}
func (*printNode) isNode() {}
func (*ifNode) isNode()    {}
func (*forNode) isNode()   {}
func (*setNode) isNode()   {}

// Expression nodes.

type expr interface {
	position() srcPos
	// String prints the expression back, for error messages.
	String() string
}

type literal struct {
	p   srcPos
	val any
	src string
}

type listLit struct {
	p     srcPos
	items []expr
}

type mapLit struct {
	p          srcPos
	keys, vals []expr
}

type varRef struct {
	p    srcPos
	name string
}

// attrExpr is obj.name (or obj.0).
type attrExpr struct {
	p    srcPos
	obj  expr
	name string
}

// indexExpr is obj[key].
type indexExpr struct {
	p   srcPos
	obj expr
	key expr
}

type callExpr struct {
	p    srcPos
	name string
	fn   *funcEntry
	args []expr // positional; nil entries are named arguments left out
}

type filterExpr struct {
	p    srcPos
	in   expr
	name string
	f    *filterEntry
	args []expr
}

type testExpr struct {
	p      srcPos
	in     expr
	name   string
	t      *testEntry
	args   []expr
	negate bool
}

type unaryExpr struct {
	p  srcPos
	op string
	x  expr
}

type binaryExpr struct {
	p    srcPos
	op   string
	l, r expr
}

type ternaryExpr struct {
	p             srcPos
	cond, yes, no expr
}

func (e *literal) position() srcPos     { return e.p }
func (e *listLit) position() srcPos     { return e.p }
func (e *mapLit) position() srcPos      { return e.p }
func (e *varRef) position() srcPos      { return e.p }
func (e *attrExpr) position() srcPos    { return e.p }
func (e *indexExpr) position() srcPos   { return e.p }
func (e *callExpr) position() srcPos    { return e.p }
func (e *filterExpr) position() srcPos  { return e.p }
func (e *testExpr) position() srcPos    { return e.p }
func (e *unaryExpr) position() srcPos   { return e.p }
func (e *binaryExpr) position() srcPos  { return e.p }
func (e *ternaryExpr) position() srcPos { return e.p }

func (e *literal) String() string { return e.src }
func (e *listLit) String() string { return "[" + joinExprs(e.items) + "]" }
func (e *mapLit) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range e.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.keys[i].String() + ": " + e.vals[i].String())
	}
	b.WriteByte('}')
	return b.String()
}
func (e *varRef) String() string   { return e.name }
func (e *attrExpr) String() string { return e.obj.String() + "." + e.name }
func (e *indexExpr) String() string {
	return e.obj.String() + "[" + e.key.String() + "]"
}
func (e *callExpr) String() string { return e.name + "(" + joinExprs(e.args) + ")" }
func (e *filterExpr) String() string {
	s := e.in.String() + " | " + e.name
	if len(e.args) > 0 {
		s += "(" + joinExprs(e.args) + ")"
	}
	return s
}
func (e *testExpr) String() string {
	op := " is "
	if e.negate {
		op = " is not "
	}
	return e.in.String() + op + e.name
}
func (e *unaryExpr) String() string {
	if e.op == "not" {
		return "not " + e.x.String()
	}
	return e.op + e.x.String()
}
func (e *binaryExpr) String() string { return e.l.String() + " " + e.op + " " + e.r.String() }
func (e *ternaryExpr) String() string {
	return e.cond.String() + " ? " + e.yes.String() + " : " + e.no.String()
}

func joinExprs(xs []expr) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		if x == nil {
			parts[i] = "null"
			continue
		}
		parts[i] = x.String()
	}
	return strings.Join(parts, ", ")
}
