package expr

import (
	"context"
	"encoding/json"
	"fmt"
)

// builtinTests lists the "is" tests. defined and null are lenient: an
// undefined value is not an error for them.
func builtinTests() map[string]*testEntry {
	return map[string]*testEntry{
		"defined":  {fn: definedTest, lenient: true},
		"null":     {fn: nullTest, lenient: true},
		"empty":    {fn: func(_ context.Context, in any, _ []any) (bool, error) { return isEmpty(in), nil }},
		"even":     {fn: parityTest(0)},
		"odd":      {fn: parityTest(1)},
		"json":     {fn: jsonTest},
		"iterable": {fn: iterableTest},
		"map":      {fn: mapTest},
	}
}

func definedTest(_ context.Context, in any, _ []any) (bool, error) {
	_, undefined := in.(undefinedValue)
	return !undefined, nil
}

func nullTest(_ context.Context, in any, _ []any) (bool, error) {
	_, undefined := in.(undefinedValue)
	return in == nil || undefined, nil
}

func parityTest(want int64) Test {
	return func(_ context.Context, in any, _ []any) (bool, error) {
		i, ok := toIntArg(in)
		if !ok || !isNumber(in) {
			return false, fmt.Errorf("needs an integer, got %s", typeName(in))
		}
		return (i%2+2)%2 == want, nil
	}
}

// jsonTest is Kestra's "is json": the value's text parses as JSON.
func jsonTest(_ context.Context, in any, _ []any) (bool, error) {
	if in == nil {
		return false, nil
	}
	return json.Valid([]byte(Stringify(in))), nil
}

func iterableTest(_ context.Context, in any, _ []any) (bool, error) {
	_, ok := asList(in)
	return ok, nil
}

func mapTest(_ context.Context, in any, _ []any) (bool, error) {
	_, ok := asMap(in)
	return ok, nil
}
