package expr

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
)

func (e *Engine) registerBuiltins() {
	for name, f := range builtinFuncs() {
		e.funcs[name] = f
	}
	for _, set := range []map[string]*filterEntry{builtinFilters(), dataFilters(), dateFilters()} {
		for name, f := range set {
			e.filters[name] = f
		}
	}
	for name, t := range builtinTests() {
		e.tests[name] = t
	}
}

func builtinFuncs() map[string]*funcEntry {
	return map[string]*funcEntry{
		"now":        {fn: nowFunc, params: dateParams},
		"range":      {fn: rangeFunc, params: []string{"start", "end", "step"}},
		"max":        {fn: extremeFunc(1)},
		"min":        {fn: extremeFunc(-1)},
		"json":       {fn: parseJSONFunc, params: []string{"json"}},
		"fromJson":   {fn: parseJSONFunc, params: []string{"json"}},
		"jsonDecode": {fn: parseJSONFunc, params: []string{"json"}},
		"toJson":     {fn: toJSONFunc, params: []string{"object"}},
		"jsonEncode": {fn: toJSONFunc, params: []string{"object"}},
		"render":     {fn: renderFunc(true), params: []string{"toRender", "recursive"}},
		"renderOnce": {fn: renderFunc(false), params: []string{"toRender"}},
		"uuid":       {fn: uuidFunc},
	}
}

// rangeFunc is Pebble's range(start, end[, step]): end is included.
func rangeFunc(ctx context.Context, args []any) (any, error) {
	if len(args) < 2 || args[0] == nil || args[1] == nil {
		return nil, errors.New("range needs a start and an end")
	}
	if _, ok := args[0].(string); ok {
		return rangeOp(args[0], args[1], limitsFrom(ctx))
	}
	start, err := intArgAt(args, 0, "start", 0)
	if err != nil {
		return nil, err
	}
	end, err := intArgAt(args, 1, "end", 0)
	if err != nil {
		return nil, err
	}
	step, err := intArgAt(args, 2, "step", 1)
	if err != nil {
		return nil, err
	}
	return intRange(start, end, step, limitsFrom(ctx))
}

// extremeFunc is max (sign 1) or min (sign -1) of its arguments, or of the
// items of a single list argument.
func extremeFunc(sign int) Func {
	return func(_ context.Context, args []any) (any, error) {
		items := args
		if len(args) == 1 {
			if l, ok := asList(args[0]); ok {
				items = l
			}
		}
		var best any
		for i, v := range items {
			if i == 0 {
				best = v
				continue
			}
			c, ok := compare(v, best)
			if !ok {
				return nil, fmt.Errorf("cannot compare %s and %s", typeName(v), typeName(best))
			}
			if c*sign > 0 {
				best = v
			}
		}
		return best, nil
	}
}

func parseJSONFunc(_ context.Context, args []any) (any, error) {
	return parseJSONValue(arg(args, 0))
}

func toJSONFunc(ctx context.Context, args []any) (any, error) {
	return marshalJSON(arg(args, 0), limitsFrom(ctx).MaxOutput)
}

// renderFunc is Kestra's render(str, recursive=true): it renders a string
// again as a template with the current variables; recursive renders the
// result again until it has no blocks left. renderOnce renders once.
func renderFunc(recursiveDefault bool) Func {
	return func(ctx context.Context, args []any) (any, error) {
		st := stateFrom(ctx)
		if st == nil {
			return nil, errors.New("render is only available while rendering a template")
		}
		src, ok := arg(args, 0).(string)
		if !ok {
			return arg(args, 0), nil
		}
		recursive := recursiveDefault
		if v := arg(args, 1); v != nil {
			recursive = Truthy(v)
		}
		depth := st.depth
		for {
			if !mayHaveBlocks(src) {
				return src, nil
			}
			depth++
			if depth > st.e.limits.MaxDepth {
				return nil, fmt.Errorf("%w: render nested deeper than %d levels", ErrLimit, st.e.limits.MaxDepth)
			}
			t, err := st.e.Parse(src)
			if err != nil {
				return nil, fmt.Errorf("parsing template: %w", err)
			}
			child := &state{e: st.e, sc: &scope{parent: st.sc}, depth: depth, budget: st.budget}
			out, err := child.renderTemplate(withState(ctx, child), t)
			if err != nil {
				return nil, err
			}
			if !recursive || out == src {
				return out, nil
			}
			src = out
		}
	}
}

// uuidFunc returns a random (version 4) UUID.
func uuidFunc(_ context.Context, _ []any) (any, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("generating uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}
