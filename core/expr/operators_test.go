package expr

import (
	"errors"
	"strings"
	"testing"
)

func TestLiterals(t *testing.T) {
	runRenderCases(t, testEngine(t), nil, []renderCase{
		{`{{ 'single' }}`, "single"},
		{`{{ "double" }}`, "double"},
		{`{{ 'it\'s' }}`, "it's"},
		{`{{ "say \"hi\"" }}`, `say "hi"`},
		{`{{ 'back\\slash' }}`, `back\slash`},
		{`{{ '\d+' }}`, `\d+`}, // like Pebble, other escapes stay as written
		{`{{ 42 }}`, "42"},
		{`{{ 1.5 }}`, "1.5"},
		{`{{ 1.0 }}`, "1.0"},
		{`{{ 2e3 }}`, "2000.0"},
		{`{{ true }} {{ false }}`, "true false"},
		{`{{ null }}|{{ none }}`, "|"},
		{`{{ [1, 'a', [true]] }}`, `[1,"a",[true]]`},
		{`{{ [] }}`, `[]`},
		{`{{ {'a': 1, "b": {'c': [2]}} }}`, `{"a":1,"b":{"c":[2]}}`},
		{`{{ {} }}`, `{}`},
		{`{{ {'a': {'b': 1}} }}`, `{"a":{"b":1}}`},
	})
}

func TestOperators(t *testing.T) {
	vars := kestraVars()
	runRenderCases(t, testEngine(t), vars, []renderCase{
		// arithmetic: integers stay integers, division truncates as in Pebble
		{`{{ 1 + 2 }}`, "3"},
		{`{{ 1 + 2.5 }}`, "3.5"},
		{`{{ 5 - 7 }}`, "-2"},
		{`{{ 3 * 4 }}`, "12"},
		{`{{ 7 / 2 }}`, "3"},
		{`{{ 6 / 2 }}`, "3"},
		{`{{ 7 / 2.0 }}`, "3.5"},
		{`{{ 7 % 3 }}`, "1"},
		{`{{ 7.5 % 2 }}`, "1.5"},
		{`{{ -n }}`, "7"},
		{`{{ -f }}`, "-2.5"},
		{`{{ +3 }}`, "3"},
		{`{{ inputs.count * 2 }}`, "6"},
		{`{{ 0.1 + 0.2 }}`, "0.30000000000000004"},
		// + concatenates when a side is a string, appends to lists
		{`{{ 'a' + 1 }}`, "a1"},
		{`{{ [1] + 2 }}`, "[1,2]"},
		{`{{ [1] + [2, 3] }}`, "[1,2,3]"},
		{`{{ [1, 2, 1] - 1 }}`, "[2]"},
		// ~ stringifies both sides
		{`{{ 'a' ~ 1 ~ true ~ null ~ 1.0 }}`, "a1true1.0"},
		{`{{ 'l' ~ [1, 2] }}`, "l[1,2]"},
		// comparisons
		{`{{ 1 == 1.0 }}`, "true"},
		{`{{ '1' == 1 }}`, "false"},
		{`{{ 'a' equals 'a' }}`, "true"},
		{`{{ 1 != 2 }}`, "true"},
		{`{{ 1 < 2 }} {{ 2 <= 2 }} {{ 3 > 2 }} {{ 2 >= 3 }}`, "true true true false"},
		{`{{ 'a' < 'b' }}`, "true"},
		{`{{ [1, {'a': 2}] == [1, {'a': 2}] }}`, "true"},
		{`{{ null == null }} {{ null == 0 }}`, "true false"},
		// logic
		{`{{ true and false }} {{ true or false }} {{ not true }}`, "false true false"},
		{`{{ 'false' or 0 }}`, "false"},
		{`{{ false and undefined_var }}`, "false"}, // short-circuit
		{`{{ true or undefined_var }}`, "true"},
		// containment
		{`{{ list contains 2 }} {{ list contains 5 }}`, "true false"},
		{`{{ list contains [1, 2] }}`, "true"},
		{`{{ m contains 'a' }} {{ s contains 'World' }}`, "true true"},
		{`{{ 2 in list }} {{ '2' in list }} {{ 5 in list }}`, "true true false"},
		{`{{ 'a' in m }} {{ 'lo W' in s }}`, "true true"},
		{`{{ 5 not in list }} {{ 2 not in list }}`, "true false"},
		// range
		{`{{ 1..4 }}`, "[1,2,3,4]"},
		{`{{ 3..1 }}`, "[]"},
		{`{{ 'a'..'c' }}`, `["a","b","c"]`},
		// coalescing
		{`{{ missing ?? 'd' }}`, "d"},
		{`{{ null ?? 'd' }}`, "d"},
		{`{{ inputs.nothing ?? 'd' }}`, "d"},
		{`{{ inputs.nothing ??? 'd' }}`, ""},
		{`{{ missing ??? 'd' }}`, "d"},
		{`{{ missing.deeper[0].x ?? 'd' }}`, "d"},
		{`{{ inputs.name ?? 'd' }}`, "World"},
		{`{{ a ?? b ?? 'c' }}`, "c"},
		// ternary
		{`{{ true ? 'y' : 'n' }}`, "y"},
		{`{{ '' ? 'y' : 'n' }}`, "n"},
		{`{{ false ? 1 : true ? 2 : 3 }}`, "2"},
		// access
		{`{{ outputs.list[0] }} {{ outputs.list[2] }} {{ outputs.list.1 }}`, "1 3.5 2"},
		{`{{ outputs.typed[1] }}`, "y"},
		{`{{ m['a'] }} {{ m.b }}`, "1 2"},
		{`{{ parents[0]['taskrun'].value }}`, "parent-value"},
		{`{{ (m).a }}`, "1"},
		{`{{ [[1, 2], [3]][0][1] }}`, "2"},
	})
}

func TestPrecedence(t *testing.T) {
	vars := map[string]any{"a": true, "b": false, "x": 1, "s": "s", "nil": nil}
	runRenderCases(t, testEngine(t), vars, []renderCase{
		{`{{ not a and b }}`, "false"},   // (not a) and b
		{`{{ not b and a }}`, "true"},    // (not b) and a
		{`{{ not (a and b) }}`, "true"},  //
		{`{{ b and b or a }}`, "true"},   // (b and b) or a
		{`{{ a or b and b }}`, "true"},   // a or (b and b)
		{`{{ 'a' ~ 'b' ~ 'c' }}`, "abc"}, // left to right
		{`{{ missing ?? 'b' ~ 'c' }}`, "bc"},
		{`{{ nil ?? 'b' ~ 'c' }}`, "bc"},  // ?? binds tighter than ~
		{`{{ 'a' ~ nil ?? 'b' }}`, "ab"},  // 'a' ~ (nil ?? 'b')
		{`{{ x == 1 ? 'a' : 'b' }}`, "a"}, // comparison inside the condition
		{`{{ x == 2 ? 'a' : 'b' }}`, "b"},
		{`{{ 1 + 2 * 3 }}`, "7"},
		{`{{ (1 + 2) * 3 }}`, "9"},
		{`{{ 10 - 2 - 3 }}`, "5"},
		{`{{ 2 * 3 % 4 }}`, "2"},
		{`{{ 1 + 1 == 2 }}`, "true"},
		{`{{ 1 < 2 and 2 < 3 }}`, "true"},
		{`{{ 'a' ~ 'b' | upper }}`, "AB"}, // ~ binds tighter than |, as in Pebble
		{`{{ 1 + -1 | abs }}`, "2"},       // | binds tighter than +
		{`{{ -2 | abs }}`, "2"},
		{`{{ 1..3 | length }}`, "3"},
		{`{{ 'x' ~ 1 + 1 }}`, "x11"}, // 'x' ~ 1 first, then + 1 concatenates
		{`{{ s is defined and x is not null }}`, "true"},
		{`{{ x is odd ? 'odd' : 'even' }}`, "odd"},
		{`{{ [1, 2] contains 1 and true }}`, "true"},
		{`{{ (x == 1) ? 'p' : 'q' }}`, "p"},
	})
}

func TestOperatorErrors(t *testing.T) {
	e := testEngine(t)
	for _, tc := range []struct{ src, want string }{
		{`{{ 1 / 0 }}`, "division by zero"},
		{`{{ 1 % 0 }}`, "division by zero"},
		{`{{ 'a' < 1 }}`, "cannot compare string and integer with <"},
		{`{{ true * 2 }}`, "cannot apply * to boolean and integer"},
		{`{{ -'a' }}`, "unary - needs a number, got string"},
		{`{{ 1.5..3 }}`, "a range needs two integers"},
		{`{{ {null: 1} }}`, "map key null is null"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			err := renderError(t, e, tc.src, nil)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	e := testEngine(t, WithLimits(Limits{MaxOutput: 100, MaxItems: 50, MaxIterations: 20, MaxDepth: 3}))
	for _, src := range []string{
		`{{ range(1, 100) }}`,
		`{{ 1..1000000000000 }}`,
		`{% for i in 1..30 %}{% endfor %}`,
		`{% for i in 1..10 %}{% for j in 1..10 %}{% endfor %}{% endfor %}`,
		`{% for i in 1..15 %}0123456789{% endfor %}`,
		`{% set s = '0123456789' %}{% set s = s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s %}`,
		`{% set l = 1..40 %}{% set l = l + l %}`,
		`{% set t = '{{ render(t) }}' %}{{ render(t) }}`,
		`{{ 'aaa' | replace({'a': '0123456789012345678901234567890123456789'}) }}`,
		`{{ 'a' | indent(1000) }}`,
		// shared items: each step doubles the size of a
		`{% set a = [1] %}` + strings.Repeat(`{% set a = [a, a] | reverse %}`, 40) + `{{ a == a }}`,
		`{% set a = {'k': 1} %}` + strings.Repeat(`{% set a = {'x': a, 'y': a} %}`, 40) + `{{ a }}`,
		`{% set a = '[1]' | jq('.') %}` + strings.Repeat(`{% set a = a | jq('[., .]') | first %}`, 40),
	} {
		t.Run(src, func(t *testing.T) {
			err := renderError(t, e, src, nil)
			if !errors.Is(err, ErrLimit) {
				t.Errorf("error = %v, want ErrLimit", err)
			}
		})
	}
}
