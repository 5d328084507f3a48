package expr

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Conversions between the Go values in variables and the value model of
// expressions: nil, bool, string, int64, float64, []any, map[string]any and
// time.Time. Other numeric types, []string, map[string]string and other
// slices and string-keyed maps are accepted wherever those are.

// toInt converts any Go integer type to int64.
func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int16:
		return int64(n), true
	case int8:
		return int64(n), true
	case uint:
		if uint64(n) > math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	case uint64:
		if n > math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint8:
		return int64(n), true
	}
	return 0, false
}

// toNumber converts any Go number: an int64 (isInt) or a float64.
func toNumber(v any) (i int64, f float64, isInt, ok bool) {
	if i, ok := toInt(v); ok {
		return i, float64(i), true, true
	}
	switch n := v.(type) {
	case float64:
		return 0, n, false, true
	case float32:
		return 0, float64(n), false, true
	case uint64:
		return 0, float64(n), false, true
	case uint:
		return 0, float64(n), false, true
	}
	return 0, 0, false, false
}

func isNumber(v any) bool {
	_, _, _, ok := toNumber(v)
	return ok
}

// asList returns v as a list, converting typed slices and arrays.
func asList(v any) ([]any, bool) {
	switch l := v.(type) {
	case []any:
		return l, true
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, true
	case []map[string]any:
		out := make([]any, len(l))
		for i, m := range l {
			out[i] = m
		}
		return out, true
	case nil, string, []byte:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

// asMap returns v as a map, converting maps with string keys.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[string]string:
		out := make(map[string]any, len(m))
		for k, s := range m {
			out[k] = s
		}
		return out, true
	case nil, string:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	out := make(map[string]any, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		out[iter.Key().String()] = iter.Value().Interface()
	}
	return out, true
}

// lookupKey reads key from obj when obj is a map; isMap is false otherwise.
func lookupKey(obj, key any) (v any, found, isMap bool) {
	var k string
	switch kk := key.(type) {
	case string:
		k = kk
	default:
		k = Stringify(key)
	}
	switch m := obj.(type) {
	case map[string]any:
		v, found = m[k]
		return v, found, true
	case map[string]string:
		s, ok := m[k]
		return s, ok, true
	case nil, string, []any, bool, int64, float64:
		return nil, false, false
	}
	rv := reflect.ValueOf(obj)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false, false
	}
	mv := rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key()))
	if !mv.IsValid() {
		return nil, false, true
	}
	return mv.Interface(), true, true
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// typeName names the kind of a value for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case time.Time:
		return "date"
	}
	if _, _, isInt, ok := toNumber(v); ok {
		if isInt {
			return "integer"
		}
		return "number"
	}
	if _, ok := asList(v); ok {
		return "list"
	}
	if _, ok := asMap(v); ok {
		return "map"
	}
	return fmt.Sprintf("%T", v)
}

// Truthy reports whether v counts as true in a condition: false, null, "",
// "false" (any case), zero and empty lists and maps are false.
func Truthy(v any) bool {
	switch x := v.(type) {
	case nil, undefinedValue:
		return false
	case bool:
		return x
	case string:
		return x != "" && !strings.EqualFold(x, "false")
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	case time.Time:
		return true
	}
	if _, f, _, ok := toNumber(v); ok {
		return f != 0
	}
	if l, ok := asList(v); ok {
		return len(l) > 0
	}
	if m, ok := asMap(v); ok {
		return len(m) > 0
	}
	return true
}

// valuesEqual is "==": numbers compare by value across types, lists and maps
// element by element; a string never equals a number.
func valuesEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if ai, af, aInt, ok := toNumber(a); ok {
		bi, bf, bInt, ok := toNumber(b)
		if !ok {
			return false
		}
		if aInt && bInt {
			return ai == bi
		}
		return af == bf
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	if la, ok := asList(a); ok {
		lb, ok := asList(b)
		if !ok || len(la) != len(lb) {
			return false
		}
		for i := range la {
			if !valuesEqual(la[i], lb[i]) {
				return false
			}
		}
		return true
	}
	if ma, ok := asMap(a); ok {
		mb, ok := asMap(b)
		if !ok || len(ma) != len(mb) {
			return false
		}
		for k, v := range ma {
			w, ok := mb[k]
			if !ok || !valuesEqual(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// compare orders numbers, strings and dates; ok is false for other pairs.
func compare(a, b any) (int, bool) {
	if ai, af, aInt, ok := toNumber(a); ok {
		bi, bf, bInt, ok := toNumber(b)
		if !ok {
			return 0, false
		}
		if aInt && bInt {
			return cmpOrdered(ai, bi), true
		}
		return cmpOrdered(af, bf), true
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y), true
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0, true
			case !x:
				return -1, true
			}
			return 1, true
		}
	}
	return 0, false
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// normalize converts a variable value to the expression value model at the
// top level: integers to int64, float32 to float64.
func normalize(v any) any {
	if i, ok := toInt(v); ok {
		return i
	}
	if f, ok := v.(float32); ok {
		return float64(f)
	}
	return v
}

// toIntArg converts an integer argument (an integral float is accepted).
func toIntArg(v any) (int64, bool) {
	if i, ok := toInt(v); ok {
		return i, true
	}
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<62 {
		return int64(f), true
	}
	if s, ok := v.(string); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return n, err == nil
	}
	return 0, false
}
