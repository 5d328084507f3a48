package expr

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

var errDivByZero = errors.New("division by zero")

func unaryOp(x *unaryExpr, v any) (any, error) {
	switch x.op {
	case "not":
		return !Truthy(v), nil
	case "-", "+":
		i, f, isInt, ok := toNumber(v)
		if !ok {
			return nil, errorAt(x.p, "unary %s needs a number, got %s", x.op, typeName(v))
		}
		if x.op == "+" {
			if isInt {
				return i, nil
			}
			return f, nil
		}
		if isInt {
			return -i, nil
		}
		return -f, nil
	}
	return nil, errorAt(x.p, "unknown operator %s", x.op)
}

// binaryOp applies an operator whose operands are both evaluated.
func binaryOp(op string, l, r any, lim *Limits) (any, error) {
	switch op {
	case "==":
		return valuesEqual(l, r), nil
	case "!=":
		return !valuesEqual(l, r), nil
	case "<", ">", "<=", ">=":
		c, ok := compare(l, r)
		if !ok {
			return nil, fmt.Errorf("cannot compare %s and %s with %s", typeName(l), typeName(r), op)
		}
		switch op {
		case "<":
			return c < 0, nil
		case ">":
			return c > 0, nil
		case "<=":
			return c <= 0, nil
		}
		return c >= 0, nil
	case "~":
		return concat(Stringify(l), Stringify(r), lim)
	case "+":
		return add(l, r, lim)
	case "-", "*", "/", "%":
		if op == "-" {
			if list, ok := asList(l); ok {
				return removeFromList(list, r), nil
			}
		}
		return arithmetic(op, l, r)
	case "..":
		return rangeOp(l, r, lim)
	case "contains":
		return containsOp(l, r), nil
	case "in":
		return inOp(l, r), nil
	case "not in":
		return !inOp(l, r), nil
	}
	return nil, fmt.Errorf("unknown operator %s", op)
}

func concat(a, b string, lim *Limits) (string, error) {
	if len(a)+len(b) > lim.MaxOutput {
		return "", fmt.Errorf("%w: string longer than %d bytes", ErrLimit, lim.MaxOutput)
	}
	return a + b, nil
}

// add is "+": numbers add, a string on either side concatenates and a list
// gets the other operand (or its items) appended, as in Pebble.
func add(l, r any, lim *Limits) (any, error) {
	_, lStr := l.(string)
	_, rStr := r.(string)
	if lStr || rStr {
		return concat(Stringify(l), Stringify(r), lim)
	}
	if list, ok := asList(l); ok {
		var extra []any
		if rl, ok := asList(r); ok {
			extra = rl
		} else {
			extra = []any{r}
		}
		if len(list)+len(extra) > lim.MaxItems {
			return nil, fmt.Errorf("%w: list longer than %d items", ErrLimit, lim.MaxItems)
		}
		out := make([]any, 0, len(list)+len(extra))
		return append(append(out, list...), extra...), nil
	}
	return arithmetic("+", l, r)
}

func removeFromList(list []any, r any) []any {
	remove := []any{r}
	if rl, ok := asList(r); ok {
		remove = rl
	}
	out := make([]any, 0, len(list))
outer:
	for _, item := range list {
		for _, x := range remove {
			if valuesEqual(item, x) {
				continue outer
			}
		}
		out = append(out, item)
	}
	return out
}

// arithmetic applies + - * / % to numbers. Two integers give an integer
// (division truncates, as in Pebble); otherwise the result is a float.
func arithmetic(op string, l, r any) (any, error) {
	li, lf, lInt, lok := toNumber(l)
	ri, rf, rInt, rok := toNumber(r)
	if !lok || !rok {
		return nil, fmt.Errorf("cannot apply %s to %s and %s", op, typeName(l), typeName(r))
	}
	if lInt && rInt {
		switch op {
		case "+":
			return li + ri, nil
		case "-":
			return li - ri, nil
		case "*":
			return li * ri, nil
		case "/":
			if ri == 0 {
				return nil, errDivByZero
			}
			return li / ri, nil
		case "%":
			if ri == 0 {
				return nil, errDivByZero
			}
			return li % ri, nil
		}
	}
	switch op {
	case "+":
		return lf + rf, nil
	case "-":
		return lf - rf, nil
	case "*":
		return lf * rf, nil
	case "/":
		return lf / rf, nil
	case "%":
		return math.Mod(lf, rf), nil
	}
	return nil, fmt.Errorf("unknown operator %s", op)
}

// rangeOp is "a..b": the integers from a to b inclusive, or the characters
// from one single-character string to another.
func rangeOp(l, r any, lim *Limits) (any, error) {
	if ls, ok := l.(string); ok {
		rs, ok := r.(string)
		if !ok || utf8.RuneCountInString(ls) != 1 || utf8.RuneCountInString(rs) != 1 {
			return nil, fmt.Errorf("a range needs two integers or two single characters, got %s and %s", typeName(l), typeName(r))
		}
		a, _ := utf8.DecodeRuneInString(ls)
		b, _ := utf8.DecodeRuneInString(rs)
		if int(b)-int(a) >= lim.MaxItems {
			return nil, fmt.Errorf("%w: range of more than %d items", ErrLimit, lim.MaxItems)
		}
		var out []any
		for c := a; c <= b; c++ {
			out = append(out, string(c))
		}
		return orEmpty(out), nil
	}
	a, aok := toIntArg(l)
	b, bok := toIntArg(r)
	if !aok || !bok || !isNumber(l) || !isNumber(r) {
		return nil, fmt.Errorf("a range needs two integers, got %s and %s", typeName(l), typeName(r))
	}
	return intRange(a, b, 1, lim)
}

func intRange(start, end, step int64, lim *Limits) ([]any, error) {
	if step == 0 {
		return nil, errors.New("range step must not be 0")
	}
	var n float64
	if step > 0 && end >= start {
		n = math.Floor((float64(end)-float64(start))/float64(step)) + 1
	} else if step < 0 && end <= start {
		n = math.Floor((float64(start)-float64(end))/float64(-step)) + 1
	}
	if n > float64(lim.MaxItems) {
		return nil, fmt.Errorf("%w: range of more than %d items", ErrLimit, lim.MaxItems)
	}
	out := make([]any, 0, int(n))
	v := start
	for i := 0; i < int(n); i++ {
		out = append(out, v)
		v += step
	}
	return out, nil
}

func orEmpty(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// containsOp is Pebble's "a contains b": a list or map key set holding b (or
// every item of b when b is a list), or a string holding b as a substring.
func containsOp(l, r any) bool {
	switch x := l.(type) {
	case nil:
		return false
	case string:
		return strings.Contains(x, Stringify(r))
	}
	if m, ok := asMap(l); ok {
		_, found := m[Stringify(r)]
		return found
	}
	list, ok := asList(l)
	if !ok {
		return false
	}
	want := []any{r}
	if rl, ok := asList(r); ok {
		want = rl
	}
	for _, w := range want {
		found := false
		for _, item := range list {
			if valuesEqual(item, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// inOp is Kestra's "a in b", comparing string forms: an item of a list, a key
// or value of a map, or a substring of a string.
func inOp(l, r any) bool {
	if l == nil || r == nil {
		return false
	}
	s := Stringify(l)
	if str, ok := r.(string); ok {
		return strings.Contains(str, s)
	}
	if m, ok := asMap(r); ok {
		for k, v := range m {
			if k == s || Stringify(v) == s {
				return true
			}
		}
		return false
	}
	if list, ok := asList(r); ok {
		for _, item := range list {
			if Stringify(item) == s {
				return true
			}
		}
	}
	return false
}
