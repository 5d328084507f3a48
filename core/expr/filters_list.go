package expr

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// List and map filters; they are registered in builtinFilters.

func lengthFilter(_ context.Context, in any, _ []any) (any, error) {
	switch x := in.(type) {
	case nil:
		return int64(0), nil
	case string:
		return int64(utf8.RuneCountInString(x)), nil
	}
	if l, ok := asList(in); ok {
		return int64(len(l)), nil
	}
	if m, ok := asMap(in); ok {
		return int64(len(m)), nil
	}
	return int64(0), nil
}

func joinFilter(ctx context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	sep, err := strArg(args, 0, "separator", "")
	if err != nil {
		return nil, err
	}
	l, ok := asList(in)
	if !ok {
		return Stringify(in), nil
	}
	var b strings.Builder
	for i, item := range l {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(Stringify(item))
		if b.Len() > limitsFrom(ctx).MaxOutput {
			return nil, fmt.Errorf("%w: string longer than %d bytes", ErrLimit, limitsFrom(ctx).MaxOutput)
		}
	}
	return b.String(), nil
}

func firstLastFilter(first bool) Filter {
	return func(_ context.Context, in any, _ []any) (any, error) {
		if s, ok := in.(string); ok {
			if s == "" {
				return nil, nil
			}
			if first {
				r, _ := utf8.DecodeRuneInString(s)
				return string(r), nil
			}
			r, _ := utf8.DecodeLastRuneInString(s)
			return string(r), nil
		}
		l, ok := asList(in)
		if !ok || len(l) == 0 {
			return nil, nil
		}
		if first {
			return l[0], nil
		}
		return l[len(l)-1], nil
	}
}

func keysFilter(_ context.Context, in any, _ []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	if l, ok := asList(in); ok {
		out := make([]any, len(l))
		for i := range l {
			out[i] = int64(i)
		}
		return out, nil
	}
	m, ok := asMap(in)
	if !ok {
		return nil, fmt.Errorf("keys needs a map, got %s", typeName(in))
	}
	out := make([]any, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, k)
	}
	return out, nil
}

func valuesFilter(_ context.Context, in any, _ []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	m, ok := asMap(in)
	if !ok {
		return nil, fmt.Errorf("values needs a map, got %s", typeName(in))
	}
	out := make([]any, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out, nil
}

func sortFilter(desc bool) Filter {
	return func(_ context.Context, in any, _ []any) (any, error) {
		if in == nil {
			return nil, nil
		}
		l, ok := asList(in)
		if !ok {
			return nil, fmt.Errorf("sort needs a list, got %s", typeName(in))
		}
		out := append([]any(nil), l...)
		var cmpErr error
		sort.SliceStable(out, func(i, j int) bool {
			c, ok := compare(out[i], out[j])
			if !ok && cmpErr == nil {
				cmpErr = fmt.Errorf("cannot sort %s and %s together", typeName(out[i]), typeName(out[j]))
			}
			if desc {
				return c > 0
			}
			return c < 0
		})
		if cmpErr != nil {
			return nil, cmpErr
		}
		return out, nil
	}
}

func reverseFilter(_ context.Context, in any, _ []any) (any, error) {
	if s, ok := in.(string); ok {
		r := []rune(s)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return string(r), nil
	}
	if in == nil {
		return nil, nil
	}
	l, ok := asList(in)
	if !ok {
		return nil, fmt.Errorf("reverse needs a list or string, got %s", typeName(in))
	}
	out := make([]any, len(l))
	for i, v := range l {
		out[len(l)-1-i] = v
	}
	return out, nil
}

func sliceFilter(_ context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	var n int
	runes, isStr := []rune(nil), false
	l, isList := asList(in)
	if s, ok := in.(string); ok {
		runes, isStr = []rune(s), true
		n = len(runes)
	} else if isList {
		n = len(l)
	} else {
		return nil, fmt.Errorf("slice needs a list or string, got %s", typeName(in))
	}
	from, err := intArgAt(args, 0, "fromIndex", 0)
	if err != nil {
		return nil, err
	}
	to, err := intArgAt(args, 1, "toIndex", int64(n))
	if err != nil {
		return nil, err
	}
	if from < 0 || to > int64(n) || from > to {
		return nil, fmt.Errorf("slice bounds [%d:%d] out of range for length %d", from, to, n)
	}
	if isStr {
		return string(runes[from:to]), nil
	}
	return append([]any(nil), l[from:to]...), nil
}

func mergeFilter(ctx context.Context, in any, args []any) (any, error) {
	other, err := requireArg(args, 0, "items")
	if err != nil {
		return nil, err
	}
	if m, ok := asMap(in); ok {
		o, ok := asMap(other)
		if !ok {
			return nil, fmt.Errorf("merge of a map needs a map, got %s", typeName(other))
		}
		out := make(map[string]any, len(m)+len(o))
		for k, v := range m {
			out[k] = v
		}
		for k, v := range o {
			out[k] = v
		}
		return out, nil
	}
	if _, ok := asList(in); ok {
		return add(in, other, limitsFrom(ctx))
	}
	return nil, fmt.Errorf("merge needs a list or map, got %s", typeName(in))
}

func distinctFilter(_ context.Context, in any, _ []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	l, ok := asList(in)
	if !ok {
		return nil, fmt.Errorf("distinct needs a list, got %s", typeName(in))
	}
	out := make([]any, 0, len(l))
	seen := map[string]bool{}
	for _, v := range l {
		key := typeName(v) + ":" + Stringify(v)
		if !seen[key] {
			seen[key] = true
			out = append(out, v)
		}
	}
	return out, nil
}

func chunkFilter(_ context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	l, ok := asList(in)
	if !ok {
		return nil, fmt.Errorf("chunk needs a list, got %s", typeName(in))
	}
	size, err := intArgAt(args, 0, "size", 0)
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, errors.New("argument size is required and must be positive")
	}
	out := []any{}
	for i := int64(0); i < int64(len(l)); i += size {
		end := min(i+size, int64(len(l)))
		out = append(out, append([]any(nil), l[i:end]...))
	}
	return out, nil
}

func flattenFilter(_ context.Context, in any, _ []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	l, ok := asList(in)
	if !ok {
		return nil, fmt.Errorf("flatten needs a list, got %s", typeName(in))
	}
	out := []any{}
	for _, v := range l {
		if inner, ok := asList(v); ok {
			out = append(out, inner...)
		} else {
			out = append(out, v)
		}
	}
	return out, nil
}
