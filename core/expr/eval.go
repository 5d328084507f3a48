package expr

import (
	"context"
	"fmt"
	"math"
	"strconv"
)

// state is the evaluation state of one Render, Eval or RenderValue call.
// Nested render() calls get a child state sharing the budget.
type state struct {
	e      *Engine
	sc     *scope
	depth  int
	budget *budget
}

type budget struct {
	iterations int
	weights    map[weightKey]weighed // see weights.go
}

// scope is a frame of variables; lookups walk to the parent. The root frame
// is the caller's map, which is never written.
type scope struct {
	vars   map[string]any
	parent *scope
}

func (s *scope) lookup(name string) (any, bool) {
	for ; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

func (s *scope) set(name string, v any) {
	if s.vars == nil {
		s.vars = map[string]any{}
	}
	s.vars[name] = v
}

func (e *Engine) newState(vars map[string]any) *state {
	return &state{e: e, sc: &scope{parent: &scope{vars: vars}}, budget: &budget{}}
}

type stateKey struct{}

func withState(ctx context.Context, st *state) context.Context {
	return context.WithValue(ctx, stateKey{}, st)
}

func stateFrom(ctx context.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	return st
}

// VarsFrom returns the variables visible where a Func, Filter or Test is
// called (the caller's variables plus those set by the template), or nil
// outside a render. The map is a copy.
func VarsFrom(ctx context.Context) map[string]any {
	st := stateFrom(ctx)
	if st == nil {
		return nil
	}
	var frames []*scope
	for s := st.sc; s != nil; s = s.parent {
		frames = append(frames, s)
	}
	out := map[string]any{}
	for i := len(frames) - 1; i >= 0; i-- {
		for k, v := range frames[i].vars {
			out[k] = v
		}
	}
	return out
}

// undefinedValue is what lenient filters and tests (default, defined, null)
// receive for an undefined input.
type undefinedValue struct{}

func (st *state) eval(ctx context.Context, x expr) (any, error) {
	switch x := x.(type) {
	case *literal:
		return x.val, nil
	case *varRef:
		v, ok := st.sc.lookup(x.name)
		if !ok {
			return nil, atPos(x.p, &UndefinedError{Path: x.name})
		}
		return v, nil
	case *attrExpr:
		obj, err := st.eval(ctx, x.obj)
		if err != nil {
			return nil, err
		}
		return st.access(ctx, obj, x.name, x.obj, x.p)
	case *indexExpr:
		obj, err := st.eval(ctx, x.obj)
		if err != nil {
			return nil, err
		}
		key, err := st.eval(ctx, x.key)
		if err != nil {
			return nil, err
		}
		return st.access(ctx, obj, key, x.obj, x.p)
	case *listLit:
		out := make([]any, len(x.items))
		for i, item := range x.items {
			v, err := st.eval(ctx, item)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return st.sized(x.p, out)
	case *mapLit:
		out := make(map[string]any, len(x.keys))
		for i := range x.keys {
			k, err := st.eval(ctx, x.keys[i])
			if err != nil {
				return nil, err
			}
			if k == nil {
				return nil, errorAt(x.keys[i].position(), "map key %s is null", x.keys[i])
			}
			v, err := st.eval(ctx, x.vals[i])
			if err != nil {
				return nil, err
			}
			out[Stringify(k)] = v
		}
		return st.sized(x.p, out)
	case *callExpr:
		args, err := st.evalArgs(ctx, x.args)
		if err != nil {
			return nil, err
		}
		v, err := x.fn.fn(ctx, args)
		if err != nil {
			return nil, errorAt(x.p, "function %s: %w", x.name, err)
		}
		return st.sized(x.p, v)
	case *filterExpr:
		return st.evalFilter(ctx, x)
	case *testExpr:
		return st.evalTest(ctx, x)
	case *unaryExpr:
		v, err := st.eval(ctx, x.x)
		if err != nil {
			return nil, err
		}
		return unaryOp(x, v)
	case *binaryExpr:
		return st.evalBinary(ctx, x)
	case *ternaryExpr:
		c, err := st.eval(ctx, x.cond)
		if err != nil {
			return nil, err
		}
		if Truthy(c) {
			return st.eval(ctx, x.yes)
		}
		return st.eval(ctx, x.no)
	}
	return nil, fmt.Errorf("unknown expression %T", x)
}

func (st *state) evalArgs(ctx context.Context, xs []expr) ([]any, error) {
	if len(xs) == 0 {
		return nil, nil
	}
	args := make([]any, len(xs))
	for i, a := range xs {
		if a == nil {
			continue
		}
		v, err := st.eval(ctx, a)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	return args, nil
}

func (st *state) evalFilter(ctx context.Context, x *filterExpr) (any, error) {
	in, err := st.eval(ctx, x.in)
	if err != nil {
		if !x.f.lenient || !isUndefined(err) {
			return nil, err
		}
		in = undefinedValue{}
	}
	args, err := st.evalArgs(ctx, x.args)
	if err != nil {
		return nil, err
	}
	v, err := x.f.fn(ctx, in, args)
	if err != nil {
		return nil, errorAt(x.p, "filter %s: %w", x.name, err)
	}
	return st.sized(x.p, v)
}

func (st *state) evalTest(ctx context.Context, x *testExpr) (any, error) {
	in, err := st.eval(ctx, x.in)
	if err != nil {
		if !x.t.lenient || !isUndefined(err) {
			return nil, err
		}
		in = undefinedValue{}
	}
	args, err := st.evalArgs(ctx, x.args)
	if err != nil {
		return nil, err
	}
	ok, err := x.t.fn(ctx, in, args)
	if err != nil {
		return nil, errorAt(x.p, "test %s: %w", x.name, err)
	}
	return ok != x.negate, nil
}

func (st *state) evalBinary(ctx context.Context, x *binaryExpr) (any, error) {
	switch x.op {
	case "and", "or":
		l, err := st.eval(ctx, x.l)
		if err != nil {
			return nil, err
		}
		if Truthy(l) == (x.op == "or") {
			return x.op == "or", nil
		}
		r, err := st.eval(ctx, x.r)
		if err != nil {
			return nil, err
		}
		return Truthy(r), nil
	case "??", "???":
		l, err := st.eval(ctx, x.l)
		if err != nil {
			if !isUndefined(err) {
				return nil, err
			}
			return st.eval(ctx, x.r)
		}
		if l == nil && x.op == "??" {
			return st.eval(ctx, x.r)
		}
		return l, nil
	}
	l, err := st.eval(ctx, x.l)
	if err != nil {
		return nil, err
	}
	r, err := st.eval(ctx, x.r)
	if err != nil {
		return nil, err
	}
	v, err := binaryOp(x.op, l, r, &st.e.limits)
	if err != nil {
		return nil, atPos(x.p, err)
	}
	return st.sized(x.p, v)
}

// sized returns v unless it is a list or map over the size limit.
func (st *state) sized(p srcPos, v any) (any, error) {
	if err := st.checkSize(v); err != nil {
		return nil, atPos(p, err)
	}
	return v, nil
}

// access reads obj[key] (or obj.key); objExpr and p describe it for errors.
func (st *state) access(ctx context.Context, obj, key any, objExpr expr, p srcPos) (any, error) {
	path := func() string { return objExpr.String() }
	if obj == nil {
		return nil, atPos(p, &UndefinedError{
			Path: path(),
			Msg:  fmt.Sprintf("cannot read %s of null %q", describeKey(key), path()),
		})
	}
	if v, found, isMap := lookupKey(obj, key); isMap {
		if !found {
			return nil, atPos(p, &UndefinedError{Path: path() + keyPath(key)})
		}
		if m, ok := v.(map[string]any); ok && len(m) == 1 && st.e.resolver != nil {
			r, isRef, err := st.e.resolver(ctx, m)
			if err != nil {
				return nil, atPos(p, fmt.Errorf("%s%s: %w", path(), keyPath(key), err))
			}
			if isRef {
				return r, nil
			}
		}
		return v, nil
	}
	if l, ok := asList(obj); ok {
		i, ok := toIndex(key)
		if !ok {
			return nil, atPos(p, &UndefinedError{
				Path: path(),
				Msg:  fmt.Sprintf("cannot read %s of list %q: a list index must be an integer", describeKey(key), path()),
			})
		}
		if i < 0 || i >= int64(len(l)) {
			return nil, atPos(p, &UndefinedError{
				Path: path() + "[" + strconv.FormatInt(i, 10) + "]",
				Msg:  fmt.Sprintf("index %d out of range for %q (length %d)", i, path(), len(l)),
			})
		}
		return l[i], nil
	}
	return nil, atPos(p, &UndefinedError{
		Path: path(),
		Msg:  fmt.Sprintf("cannot read %s of %s %q", describeKey(key), typeName(obj), path()),
	})
}

func describeKey(key any) string {
	if s, ok := key.(string); ok {
		return strconv.Quote(s)
	}
	return Stringify(key)
}

func keyPath(key any) string {
	if s, ok := key.(string); ok {
		return quoteKey(s)
	}
	return "[" + Stringify(key) + "]"
}

// toIndex converts a list index: an integer, an integral float or a string
// holding an integer.
func toIndex(key any) (int64, bool) {
	if i, ok := toInt(key); ok {
		return i, true
	}
	switch k := key.(type) {
	case float64:
		if k == math.Trunc(k) && math.Abs(k) < 1<<53 {
			return int64(k), true
		}
	case string:
		if n, err := strconv.ParseInt(k, 10, 64); err == nil {
			return n, true
		}
	}
	return 0, false
}
