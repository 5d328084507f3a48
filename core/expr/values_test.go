package expr

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

type stringer struct{}

func (stringer) String() string { return "stringer" }

func TestStringify(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{nil, ""},
		{"s", "s"},
		{true, "true"},
		{false, "false"},
		{42, "42"},
		{int64(-42), "-42"},
		{uint8(7), "7"},
		{uint64(math.MaxUint64), "18446744073709551615"},
		{1.0, "1.0"},
		{1.5, "1.5"},
		{-0.25, "-0.25"},
		{float32(0.5), "0.5"},
		{1e7, "1.0E7"},
		{1.234e-5, "1.234E-5"},
		{0.001, "0.001"},
		{123456.789, "123456.789"},
		{math.NaN(), "NaN"},
		{math.Inf(-1), "-Infinity"},
		{[]any{1, "a", nil, 2.0}, `[1,"a",null,2.0]`},
		{[]string{"a", "b"}, `["a","b"]`},
		{[]int{1, 2}, `[1,2]`},
		{map[string]any{"b": 1, "a": []any{true}}, `{"a":[true],"b":1}`},
		{map[string]string{"k": "v\n\"q\""}, `{"k":"v\n\"q\""}`},
		{map[string]int{"x": 1}, `{"x":1}`},
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "2024-01-02T03:04:05Z"},
		{time.Date(2024, 1, 2, 3, 4, 5, 500_000_000, paris), "2024-01-02T03:04:05.5+01:00"},
		{stringer{}, "stringer"},
		{errors.New("boom"), "boom"},
	} {
		if got := Stringify(tc.v); got != tc.want {
			t.Errorf("Stringify(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestStringifyCycle(t *testing.T) {
	m := map[string]any{}
	m["self"] = m
	if got := Stringify(m); !strings.Contains(got, "nested deeper") {
		t.Errorf("Stringify(cycle) = %.80q, want a nesting error", got)
	}
}

func TestTruthy(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want bool
	}{
		{nil, false}, {false, false}, {true, true},
		{"", false}, {"false", false}, {"FALSE", false}, {"False", false}, {"0", true}, {"x", true},
		{0, false}, {int64(0), false}, {0.0, false}, {uint(3), true}, {-1, true}, {0.1, true},
		{[]any{}, false}, {[]any{nil}, true}, {[]string{}, false}, {[]string{"a"}, true},
		{map[string]any{}, false}, {map[string]any{"a": 1}, true}, {map[string]string{}, false},
		{time.Time{}, true}, {stringer{}, true},
	} {
		if got := Truthy(tc.v); got != tc.want {
			t.Errorf("Truthy(%#v) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestRenderValue(t *testing.T) {
	e := testEngine(t)
	vars := kestraVars()
	for _, tc := range []struct {
		src  string
		want any
	}{
		{`{{ list }}`, []any{3, 1, 2}},
		{`  {{ m }}  `, map[string]any{"b": 2, "a": 1}},
		{`{{ [1, 'a'] }}`, []any{int64(1), "a"}},
		{`{{ {'a': 1.5} }}`, map[string]any{"a": 1.5}},
		{`{{ 1 + 1 }}`, int64(2)},
		{`{{ inputs.count }}`, 3},
		{`{{ 1 == 1 }}`, true},
		{`{{ null }}`, nil},
		{`{{ t }}`, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{`{{ json('{"a": [1, 2]}') }}`, map[string]any{"a": []any{int64(1), int64(2)}}},
		{`{{ missing ?? 'd' }}`, "d"},
		// anything else renders to a string
		{`{{ 1 }}{{ 2 }}`, "12"},
		{`x {{ 1 }}`, "x 1"},
		{`{% if true %}{{ 1 }}{% endif %}`, "1"},
		{`plain`, "plain"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			got, err := e.RenderValue(t.Context(), tc.src, vars)
			if err != nil {
				t.Fatalf("RenderValue: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("RenderValue(%q) = %#v, want %#v", tc.src, got, tc.want)
			}
		})
	}
	if _, err := e.RenderValue(t.Context(), `{{ nope }}`, vars); err == nil || !strings.Contains(err.Error(), `missing variable "nope"`) {
		t.Errorf("RenderValue of a missing variable: err = %v", err)
	}
}

func TestEval(t *testing.T) {
	e := testEngine(t)
	vars := kestraVars()
	for _, tc := range []struct {
		src  string
		want any
	}{
		{`1 + 2 * 3`, int64(7)},
		{`inputs.name ~ '!'`, "World!"},
		{`list | sort`, []any{1, 2, 3}},
		{`inputs.nope is defined`, false},
		{`{'a': 1}`, map[string]any{"a": int64(1)}},
		{`outputs.t1.value == 'v1' ? 'yes' : 'no'`, "yes"},
	} {
		got, err := e.Eval(t.Context(), tc.src, vars)
		if err != nil {
			t.Fatalf("Eval(%q): %v", tc.src, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Eval(%q) = %#v, want %#v", tc.src, got, tc.want)
		}
	}
	for _, tc := range []struct{ src, want string }{
		{``, `parsing expression: line 1, column 1: empty expression`},
		{`1 +`, `parsing expression: line 1, column 4: unexpected end of input, expected an expression`},
		{`1 2`, `parsing expression: line 1, column 3: unexpected "2", expected an operator or the end of the expression`},
		{`a }}`, `parsing expression: line 1, column 3: unexpected "}", expected an operator or the end of the expression`},
		{`inputs.nope + 1`, `rendering "inputs.nope + 1": missing variable "inputs.nope" (line 1, column 1)`},
	} {
		_, err := e.Eval(t.Context(), tc.src, vars)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Eval(%q) error = %v, want %s", tc.src, err, tc.want)
		}
	}
}

func TestRenderAll(t *testing.T) {
	e := testEngine(t)
	vars := kestraVars()
	in := map[string]any{
		"plain":         "text",
		"expr":          "Hello {{ inputs.name }}",
		"{{ flow.id }}": "key rendered",
		"number":        42,
		"bool":          true,
		"nil":           nil,
		"list":          []any{"{{ 1 + 1 }}", 3, []any{"{{ flow.namespace }}"}},
		"strings":       []string{"{{ taskrun.id }}", "x"},
		"labels":        map[string]string{"team": "{{ flow.namespace }}"},
		"nested":        map[string]any{"deeper": map[string]any{"v": "{{ inputs.count * 2 }}"}},
	}
	got, err := e.RenderAll(t.Context(), in, vars)
	if err != nil {
		t.Fatalf("RenderAll: %v", err)
	}
	want := map[string]any{
		"plain":   "text",
		"expr":    "Hello World",
		"hello":   "key rendered",
		"number":  42,
		"bool":    true,
		"nil":     nil,
		"list":    []any{"2", 3, []any{"company.team"}},
		"strings": []string{"tr-1", "x"},
		"labels":  map[string]string{"team": "company.team"},
		"nested":  map[string]any{"deeper": map[string]any{"v": "6"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RenderAll =\n%#v\nwant\n%#v", got, want)
	}
	if in["expr"] != "Hello {{ inputs.name }}" {
		t.Error("RenderAll modified its input")
	}

	_, err = e.RenderAll(t.Context(), map[string]any{"a": []any{"ok", map[string]any{"b": "{{ nope }}"}}}, vars)
	if err == nil || !strings.HasPrefix(err.Error(), `at a[1].b: rendering "{{ nope }}": missing variable "nope"`) {
		t.Errorf("RenderAll error = %v, want it located at a[1].b", err)
	}
	scalar, err := e.RenderAll(t.Context(), 3.5, vars)
	if err != nil || scalar != 3.5 {
		t.Errorf("RenderAll(3.5) = %v, %v", scalar, err)
	}
}

// Variables of other Go types are read like their plain equivalents.
func TestGoTypes(t *testing.T) {
	type cfg map[string]string
	vars := map[string]any{
		"i8": int8(-3), "u16": uint16(7), "f32": float32(1.5), "i": 4,
		"strs": []string{"b", "a"}, "ints": []int{3, 1, 2}, "arr": [2]string{"x", "y"},
		"ms":    map[string]string{"k": "v"},
		"mi":    map[string]int{"one": 1},
		"named": cfg{"n": "named"},
		"lm":    []map[string]any{{"a": 1}},
	}
	runRenderCases(t, testEngine(t), vars, []renderCase{
		{`{{ i8 + u16 }} {{ f32 * 2 }} {{ i / 3 }}`, "4 3.0 1"},
		{`{{ strs | sort | join(',') }} {{ ints | sort }} {{ arr[1] }}`, "a,b [1,2,3] y"},
		{`{{ ms.k }} {{ mi.one + 1 }} {{ named.n }} {{ lm[0].a }}`, "v 2 named 1"},
		{`{% for x in strs %}{{ x }}{% endfor %}{% for e in ms %}{{ e.key }}{% endfor %}`, "bak"},
		{`{{ 'a' in strs }} {{ strs contains 'b' }} {{ ms is map }} {{ ints is iterable }}`, "true true true true"},
		{`{{ ints == [3, 1, 2] }} {{ u16 == 7 }}`, "true true"},
		{`{{ ms.missing ?? 'd' }}`, "d"},
	})
}
