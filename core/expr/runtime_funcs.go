package expr

import (
	"context"
	"fmt"
)

// runtimeFuncs are Kestra functions whose value comes from the running
// execution (its logs, its files): templates using them parse everywhere, so
// flows validate, and they render once the runtime supplies them with
// WithFunc. Rendered without one, they fail with a clear error.
var runtimeFuncs = map[string]string{
	"errorLogs":         "the error logs of the execution",
	"currentEachOutput": "the output of the current ForEach iteration",
	"read":              "internal storage",
	"fileURI":           "internal storage",
	"fileExists":        "internal storage",
	"fileSize":          "internal storage",
	"isFileEmpty":       "internal storage",
}

// unsupportedFuncs are Kestra functions Kite does not provide yet: using one
// is a syntax error that says so.
var unsupportedFuncs = map[string]string{
	"kv":           "the kv() function (Kestra's key-value store)",
	"secret":       "the secret() function (a secret backend)",
	"encrypt":      "the encrypt() function",
	"decrypt":      "the decrypt() function",
	"printContext": "the printContext() function",
}

func (e *Engine) registerRuntimeFuncs() {
	for name, what := range runtimeFuncs {
		e.funcs[name] = &funcEntry{fn: unavailable(name, what)}
	}
}

func unavailable(name, what string) Func {
	return func(context.Context, []any) (any, error) {
		return nil, fmt.Errorf("function %s() needs %s, which this renderer does not have", name, what)
	}
}

// unsupportedFunc returns the syntax error for a call of a Kestra function
// Kite does not provide, or nil.
func (e *Engine) unsupportedFunc(t token) *SyntaxError {
	if what, ok := unsupportedFuncs[t.val]; ok {
		if _, provided := e.funcs[t.val]; !provided {
			return syntaxErrorf(t.pos(), "not supported yet: %s", what)
		}
	}
	return nil
}
