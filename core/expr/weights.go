package expr

import (
	"fmt"
	"reflect"
)

// Lists and maps built by expressions may share items: after
// {% set a = [a, a] %} repeated 40 times, a holds 2^40 items although it
// took 40 small steps to build. Serialising or comparing it would never end.
// Every list or map an expression produces is therefore weighed (items
// counted, nested ones included, shared ones once per use) and refused over
// Limits.MaxItems. Weights are memoised per render by identity, so weighing
// a value built from weighed parts costs only its own length.

type weightKey struct {
	ptr uintptr
	n   int
}

// weighed is a memoised weight; it keeps its value alive so that its
// address is not reused by another value during the render.
type weighed struct {
	v any
	w int
}

// checkSize fails when v is a list or map heavier than MaxItems.
func (st *state) checkSize(v any) error {
	switch v.(type) {
	case nil, string, bool, int64, float64, int:
		return nil
	}
	limit := st.e.limits.MaxItems
	if st.weight(v, 0, limit) > limit {
		return fmt.Errorf("%w: value of more than %d items (nested items counted)", ErrLimit, limit)
	}
	return nil
}

// weight returns 1 plus the weight of the items of v, saturating above limit.
func (st *state) weight(v any, depth, limit int) int {
	if depth > maxJSONDepth {
		return limit + 1
	}
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return 1
		}
		return st.memoWeight(weightKey{reflect.ValueOf(x).Pointer(), len(x)}, x, limit, func() int {
			w := 1
			for _, item := range x {
				if w += st.weight(item, depth+1, limit); w > limit {
					return limit + 1
				}
			}
			return w
		})
	case map[string]any:
		if len(x) == 0 {
			return 1
		}
		return st.memoWeight(weightKey{reflect.ValueOf(x).Pointer(), -1}, x, limit, func() int {
			w := 1
			for _, item := range x {
				if w += st.weight(item, depth+1, limit); w > limit {
					return limit + 1
				}
			}
			return w
		})
	case []string:
		return 1 + len(x)
	case map[string]string:
		return 1 + len(x)
	case nil, string, bool, int64, float64, int:
		return 1
	}
	if l, ok := asList(v); ok {
		return st.weight(l, depth, limit)
	}
	if m, ok := asMap(v); ok {
		return st.weight(m, depth, limit)
	}
	return 1
}

func (st *state) memoWeight(k weightKey, v any, limit int, compute func() int) int {
	b := st.budget
	if m, ok := b.weights[k]; ok {
		return m.w
	}
	if b.weights == nil {
		b.weights = map[weightKey]weighed{}
	}
	b.weights[k] = weighed{v: v, w: limit + 1} // met again while being weighed: a cycle
	w := compute()
	b.weights[k] = weighed{v: v, w: w}
	return w
}
