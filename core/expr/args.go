package expr

import (
	"context"
	"fmt"
	"time"
)

// Argument helpers for built-in functions, filters and tests.

func arg(args []any, i int) any {
	if i < len(args) {
		return args[i]
	}
	return nil
}

func strArg(args []any, i int, name, def string) (string, error) {
	v := arg(args, i)
	if v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("argument %s must be a string, got %s", name, typeName(v))
	}
	return s, nil
}

func intArgAt(args []any, i int, name string, def int64) (int64, error) {
	v := arg(args, i)
	if v == nil {
		return def, nil
	}
	n, ok := toIntArg(v)
	if !ok {
		return 0, fmt.Errorf("argument %s must be an integer, got %s %q", name, typeName(v), Stringify(v))
	}
	return n, nil
}

func requireArg(args []any, i int, name string) (any, error) {
	v := arg(args, i)
	if v == nil {
		return nil, fmt.Errorf("argument %s is required", name)
	}
	return v, nil
}

// bareEngine stands in for the Engine when a built-in is called outside a
// render; it has the default limits and location and no functions.
var bareEngine = &Engine{limits: DefaultLimits, loc: time.UTC, now: time.Now}

// engineFrom returns the Engine rendering in ctx.
func engineFrom(ctx context.Context) *Engine {
	if st := stateFrom(ctx); st != nil {
		return st.e
	}
	return bareEngine
}

func limitsFrom(ctx context.Context) *Limits {
	return &engineFrom(ctx).limits
}
