// Package expr renders Kestra-compatible Pebble templates: text with
// "{{ expression }}" blocks, "{% tag %}" blocks and "{# comments #}".
//
// Rendering is strict, like Kestra: an undefined variable, a missing map key
// or an attribute of null is an error naming the expression, except under
// "??", "???", the default filter and the "defined" and "null" tests.
//
// Numbers produced by expressions are int64 or float64; values read from the
// variables are returned as given. Integer division truncates, as in Pebble
// (5 / 2 is 2); use a float operand (5 / 2.0) for a fractional result. Maps
// iterate, print and serialise in key order.
//
// Operators follow Pebble's precedence (Kestra adds "??" and "???"): or, and,
// is/contains/in, comparisons, + -, * / %, |, ~, .. ?? ???, then the unary
// not - + which bind tightest ("not a == b" is "(not a) == b", as in Pebble).
// "a ?? b" falls back when a is undefined or null, "a ??? b" only when it is
// undefined. In a for loop, loop.index counts from 0, as in Pebble.
//
// Not supported: macros, includes, template inheritance, the filter tag,
// string interpolation ("#{…}"), Java method calls, 123L literals.
//
// An Engine is safe for concurrent use; parsed templates are cached.
package expr

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Func is a template function: now(), range(1, 3), read(uri). args holds the
// arguments in order; named arguments are placed at the position of their
// parameter name, and left-out ones are nil.
type Func func(ctx context.Context, args []any) (any, error)

// Filter is a template filter: value | name(args). in is the filtered value.
type Filter func(ctx context.Context, in any, args []any) (any, error)

// Test is an "is" test: value is name(args).
type Test func(ctx context.Context, in any, args []any) (bool, error)

type funcEntry struct {
	fn     Func
	params []string
}

type filterEntry struct {
	fn     Filter
	params []string
	// lenient filters receive nil for an undefined input instead of failing.
	lenient bool
}

type testEntry struct {
	fn      Test
	lenient bool
}

// Limits bound the work of one Render call, including nested render() calls.
type Limits struct {
	// MaxOutput is the largest rendered string or intermediate string, in bytes.
	MaxOutput int
	// MaxItems bounds the lists and maps expressions build (literals,
	// ranges, operator, filter and function results), nested items counted.
	MaxItems int
	// MaxDepth is the deepest nesting of render() calls.
	MaxDepth int
	// MaxIterations is the total number of for-loop iterations.
	MaxIterations int
}

// DefaultLimits are the limits of an Engine built without WithLimits.
var DefaultLimits = Limits{
	MaxOutput:     16 << 20,
	MaxItems:      1_000_000,
	MaxDepth:      16,
	MaxIterations: 1_000_000,
}

// Option configures an Engine.
type Option func(*Engine)

// WithFunc adds or replaces a function. params names its arguments, in order,
// for calls with named arguments (name=value); without params only
// positional arguments are accepted.
func WithFunc(name string, f Func, params ...string) Option {
	return func(e *Engine) { e.funcs[name] = &funcEntry{fn: f, params: params} }
}

// WithFilter adds or replaces a filter; params as for WithFunc.
func WithFilter(name string, f Filter, params ...string) Option {
	return func(e *Engine) { e.filters[name] = &filterEntry{fn: f, params: params} }
}

// WithTest adds or replaces an "is" test.
func WithTest(name string, t Test) Option {
	return func(e *Engine) { e.tests[name] = &testEntry{fn: t} }
}

// WithLimits replaces DefaultLimits; zero fields keep their default.
func WithLimits(l Limits) Option {
	return func(e *Engine) {
		if l.MaxOutput > 0 {
			e.limits.MaxOutput = l.MaxOutput
		}
		if l.MaxItems > 0 {
			e.limits.MaxItems = l.MaxItems
		}
		if l.MaxDepth > 0 {
			e.limits.MaxDepth = l.MaxDepth
		}
		if l.MaxIterations > 0 {
			e.limits.MaxIterations = l.MaxIterations
		}
	}
}

// WithLocation sets the time zone of date filters and now() when no timeZone
// argument is given (Kestra uses the server's zone). The default is UTC.
func WithLocation(loc *time.Location) Option {
	return func(e *Engine) {
		if loc != nil {
			e.loc = loc
		}
	}
}

// WithClock replaces time.Now for now(), for tests.
func WithClock(now func() time.Time) Option {
	return func(e *Engine) {
		if now != nil {
			e.now = now
		}
	}
}

// WithCacheSize bounds the number of parsed templates kept; 0 disables the
// cache. The default is 4096.
func WithCacheSize(n int) Option {
	return func(e *Engine) { e.cacheSize = n }
}

// Resolver puts back a value kept out of the variables (a claim-check
// reference to internal storage) when an expression reads it: given a
// one-key map, it returns the value it stands for and true, or false when
// the map is an ordinary value.
type Resolver func(ctx context.Context, m map[string]any) (v any, ok bool, err error)

// WithResolver makes attribute and index reads that land on a one-key map
// go through r, so that expressions see values kept in internal storage as
// if they were inline.
func WithResolver(r Resolver) Option {
	return func(e *Engine) { e.resolver = r }
}

// Engine parses and renders templates with a fixed set of functions, filters
// and tests.
type Engine struct {
	resolver  Resolver
	funcs     map[string]*funcEntry
	filters   map[string]*filterEntry
	tests     map[string]*testEntry
	limits    Limits
	loc       *time.Location
	now       func() time.Time
	cacheSize int
	cache     *lru
}

// Default is an Engine with the built-in functions, filters and tests.
var Default = New()

// New returns an Engine with the built-in functions, filters and tests, then
// the options applied in order.
func New(opts ...Option) *Engine {
	e := &Engine{
		funcs:     map[string]*funcEntry{},
		filters:   map[string]*filterEntry{},
		tests:     map[string]*testEntry{},
		limits:    DefaultLimits,
		loc:       time.UTC,
		now:       time.Now,
		cacheSize: 4096,
	}
	e.registerBuiltins()
	e.registerRuntimeFuncs()
	for _, o := range opts {
		o(e)
	}
	e.cache = newLRU(e.cacheSize)
	return e
}

// Template is a parsed template, bound to the Engine that parsed it.
type Template struct {
	e     *Engine
	src   string
	nodes []node
	// single is the expression of a template that is one "{{ expr }}" block,
	// with only whitespace around it.
	single *printNode
}

// Source returns the template source.
func (t *Template) Source() string { return t.src }

// Parse compiles a template. Syntax errors are *SyntaxError.
func (e *Engine) Parse(src string) (*Template, error) {
	if t, ok := e.cache.get(src); ok {
		return t, nil
	}
	nodes, err := e.parseTemplate(src)
	if err != nil {
		return nil, err
	}
	t := &Template{e: e, src: src, nodes: nodes}
	t.single = singlePrint(nodes)
	e.cache.put(src, t)
	return t, nil
}

func singlePrint(nodes []node) *printNode {
	var found *printNode
	for _, n := range nodes {
		switch n := n.(type) {
		case *textNode:
			if strings.TrimSpace(n.text) != "" {
				return nil
			}
		case *printNode:
			if found != nil {
				return nil
			}
			found = n
		default:
			return nil
		}
	}
	return found
}

// Check reports whether src parses, for flow validation. It returns a
// *SyntaxError or nil.
func (e *Engine) Check(src string) error {
	if !mayHaveBlocks(src) {
		return nil
	}
	_, err := e.Parse(src)
	return err
}

// HasExpression reports whether s contains a "{{" or "{%" block opener: a
// cheap test for whether s needs rendering at all.
func HasExpression(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%")
}

func mayHaveBlocks(s string) bool {
	return HasExpression(s) || strings.Contains(s, "{#")
}

// Render renders src with vars to a string.
func (e *Engine) Render(ctx context.Context, src string, vars map[string]any) (string, error) {
	if !mayHaveBlocks(src) {
		return src, nil
	}
	t, err := e.Parse(src)
	if err != nil {
		return "", fmt.Errorf("parsing template: %w", err)
	}
	return t.Render(ctx, vars)
}

// RenderValue renders src and returns a typed value when src is exactly one
// "{{ expr }}" block (whitespace around it is allowed): a list, map, bool,
// number, time or nil. Any other template renders to a string.
func (e *Engine) RenderValue(ctx context.Context, src string, vars map[string]any) (any, error) {
	if !mayHaveBlocks(src) {
		return src, nil
	}
	t, err := e.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parsing template: %w", err)
	}
	return t.RenderValue(ctx, vars)
}

// Eval evaluates a bare expression, without braces: "inputs.x + 1".
func (e *Engine) Eval(ctx context.Context, expression string, vars map[string]any) (any, error) {
	x, err := e.ParseExpr(expression)
	if err != nil {
		return nil, fmt.Errorf("parsing expression: %w", err)
	}
	return x.Eval(ctx, vars)
}

// Expr is a parsed bare expression.
type Expr struct {
	e   *Engine
	blk *block
	x   expr
}

// ParseExpr compiles a bare expression. Syntax errors are *SyntaxError.
func (e *Engine) ParseExpr(src string) (*Expr, error) {
	toks, err := tokenize(exprLexer, exprKinds, src)
	if err != nil {
		return nil, err
	}
	p := &parser{e: e, src: src, toks: toks}
	if p.peek().kind == tEOF {
		return nil, syntaxErrorf(p.peek().pos(), "empty expression")
	}
	x, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t, "an operator or the end of the expression")
	}
	return &Expr{e: e, blk: &block{src: src, pos: srcPos{Line: 1, Column: 1}}, x: x}, nil
}

// Eval evaluates the expression with vars.
func (x *Expr) Eval(ctx context.Context, vars map[string]any) (any, error) {
	st := x.e.newState(vars)
	ctx = withState(ctx, st)
	v, err := st.eval(ctx, x.x)
	if err != nil {
		return nil, blockError(x.blk, err)
	}
	return v, nil
}

// Render renders the template with vars to a string.
func (t *Template) Render(ctx context.Context, vars map[string]any) (string, error) {
	st := t.e.newState(vars)
	return st.renderTemplate(withState(ctx, st), t)
}

// RenderValue is Engine.RenderValue for a parsed template.
func (t *Template) RenderValue(ctx context.Context, vars map[string]any) (any, error) {
	if t.single == nil {
		return t.Render(ctx, vars)
	}
	st := t.e.newState(vars)
	v, err := st.eval(withState(ctx, st), t.single.x)
	if err != nil {
		return nil, blockError(t.single.blk, err)
	}
	return v, nil
}

// RenderAll renders every string in v, recursively: map keys and values,
// list items. Other values are kept as they are. The result is a new value;
// v is not modified. Maps and lists of other Go types come back as
// map[string]any and []any; []string and map[string]string keep their type.
func (e *Engine) RenderAll(ctx context.Context, v any, vars map[string]any) (any, error) {
	return e.renderAll(ctx, v, vars, "")
}

func (e *Engine) renderAll(ctx context.Context, v any, vars map[string]any, path string) (any, error) {
	switch v := v.(type) {
	case string:
		s, err := e.Render(ctx, v, vars)
		if err != nil {
			return nil, atPath(path, err)
		}
		return s, nil
	case []string:
		out := make([]string, len(v))
		for i, s := range v {
			r, err := e.Render(ctx, s, vars)
			if err != nil {
				return nil, atPath(fmt.Sprintf("%s[%d]", path, i), err)
			}
			out[i] = r
		}
		return out, nil
	case map[string]string:
		out := make(map[string]string, len(v))
		for k, s := range v {
			rk, err := e.Render(ctx, k, vars)
			if err != nil {
				return nil, atPath(path+quoteKey(k)+" (key)", err)
			}
			r, err := e.Render(ctx, s, vars)
			if err != nil {
				return nil, atPath(path+quoteKey(k), err)
			}
			out[rk] = r
		}
		return out, nil
	}
	if l, ok := asList(v); ok {
		out := make([]any, len(l))
		for i, item := range l {
			r, err := e.renderAll(ctx, item, vars, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	if m, ok := asMap(v); ok {
		out := make(map[string]any, len(m))
		for k, item := range m {
			rk, err := e.Render(ctx, k, vars)
			if err != nil {
				return nil, atPath(path+quoteKey(k)+" (key)", err)
			}
			r, err := e.renderAll(ctx, item, vars, path+quoteKey(k))
			if err != nil {
				return nil, err
			}
			out[rk] = r
		}
		return out, nil
	}
	return v, nil
}

// atPath prefixes a RenderAll error with where in the structure it happened.
func atPath(path string, err error) error {
	path = strings.TrimPrefix(path, ".")
	if path == "" {
		return err
	}
	return fmt.Errorf("at %s: %w", path, err)
}

// Package-level shortcuts on Default.

// Render renders src with Default.
func Render(ctx context.Context, src string, vars map[string]any) (string, error) {
	return Default.Render(ctx, src, vars)
}

// Eval evaluates a bare expression with Default.
func Eval(ctx context.Context, expression string, vars map[string]any) (any, error) {
	return Default.Eval(ctx, expression, vars)
}
