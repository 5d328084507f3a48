package expr

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// Strict mode: anything undefined is an error naming the expression, the
// missing part and where it is.
func TestStrictErrors(t *testing.T) {
	e := testEngine(t)
	vars := kestraVars()
	for _, tc := range []struct{ src, want string }{
		{`{{ outputs.t2.value }}`, `rendering "{{ outputs.t2.value }}": missing variable "outputs.t2" (line 1, column 4)`},
		{`{{ nope }}`, `rendering "{{ nope }}": missing variable "nope" (line 1, column 4)`},
		{"line one\n  {{ inputs.name }} {{ inputs['x-y'] }}", `rendering "{{ inputs['x-y'] }}": missing variable "inputs['x-y']" (line 2, column 24)`},
		{`{{ outputs.t[taskrun.id].value }}`, `rendering "{{ outputs.t[taskrun.id].value }}": missing variable "outputs.t" (line 1, column 4)`},
		{`{{ outputs['1-2-1_return'].s1[taskrun.id] }}`, `rendering "{{ outputs['1-2-1_return'].s1[taskrun.id] }}": missing variable "outputs['1-2-1_return'].s1['tr-1']" (line 1, column 4)`},
		{`{{ outputs.pause.onResume.asked }}`, `rendering "{{ outputs.pause.onResume.asked }}": cannot read "asked" of null "outputs.pause.onResume" (line 1, column 4)`},
		{`{{ parents[3].taskrun }}`, `rendering "{{ parents[3].taskrun }}": index 3 out of range for "parents" (length 1) (line 1, column 4)`},
		{`{{ parents.x }}`, `rendering "{{ parents.x }}": cannot read "x" of list "parents": a list index must be an integer (line 1, column 4)`},
		{`{{ flow.id.x }}`, `rendering "{{ flow.id.x }}": cannot read "x" of string "flow.id" (line 1, column 4)`},
		{`{% if inputs.missing %}x{% endif %}`, `rendering "{% if inputs.missing %}": missing variable "inputs.missing" (line 1, column 7)`},
		{`{% for x in nope %}{% endfor %}`, `rendering "{% for x in nope %}": missing variable "nope" (line 1, column 13)`},
		{`{% for x in 3 %}{% endfor %}`, `rendering "{% for x in 3 %}": cannot iterate over integer "3" (line 1, column 13)`},
		{`{% set y = nope %}`, `rendering "{% set y = nope %}": missing variable "nope" (line 1, column 12)`},
		{`{{ 'a' | date('yyyy') }}`, `rendering "{{ 'a' | date('yyyy') }}": filter date: cannot parse "a" as an ISO-8601 date (line 1, column 10)`},
		{`{{ json('{') }}`, `rendering "{{ json('{') }}": function json: parsing JSON: unexpected EOF (line 1, column 4)`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			err := renderError(t, e, tc.src, vars)
			if err.Error() != tc.want {
				t.Errorf("error =\n  %s\nwant\n  %s", err, tc.want)
			}
			var re *RenderError
			if !errors.As(err, &re) {
				t.Errorf("error %T is not a *RenderError", err)
			}
		})
	}
}

// The example of the specification, with an empty outputs map.
func TestMissingOutput(t *testing.T) {
	err := renderError(t, testEngine(t), `{{ outputs.t1.value }}`, map[string]any{"outputs": map[string]any{}})
	want := `rendering "{{ outputs.t1.value }}": missing variable "outputs.t1" (line 1, column 4)`
	if err.Error() != want {
		t.Errorf("error = %s, want %s", err, want)
	}
}

// Long blocks are shortened in messages.
func TestLongBlockSnippet(t *testing.T) {
	src := "{{ " + strings.Repeat("'é' ~ ", 40) + "nope }}"
	err := renderError(t, testEngine(t), src, nil)
	var re *RenderError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a *RenderError", err)
	}
	if !strings.HasSuffix(re.Block, "…") || len(re.Block) > maxSnippet+len("…") || !utf8.ValidString(re.Block) {
		t.Errorf("Block = %q, want a valid shortened snippet", re.Block)
	}
	if re.Line != 1 || re.Column != 244 {
		t.Errorf("position = %d:%d, want 1:244", re.Line, re.Column)
	}
}

func TestUndefinedErrorType(t *testing.T) {
	err := renderError(t, testEngine(t), `{{ outputs.t9.value }}`, kestraVars())
	var u *UndefinedError
	if !errors.As(err, &u) {
		t.Fatalf("error %v does not wrap *UndefinedError", err)
	}
	if u.Path != "outputs.t9" {
		t.Errorf("Path = %q, want outputs.t9", u.Path)
	}
}

func TestSyntaxErrors(t *testing.T) {
	e := testEngine(t)
	for _, tc := range []struct {
		src       string
		line, col int
		msg       string
	}{
		{`{{ a + b + }}`, 1, 12, `unexpected "}}", expected an expression`},
		{`{{ }}`, 1, 4, `unexpected "}}", expected an expression`},
		{`Hello {{ name`, 1, 7, `unclosed "{{", expected "}}"`},
		{`Hello {{`, 1, 7, `unclosed "{{", expected "}}"`},
		{"a\nb {{ x y }}", 2, 8, `unexpected "y", expected "}}"`},
		{`{{ x | uper }}`, 1, 8, `unknown filter "uper", did you mean "upper"?`},
		{`{{ x | zzzzzz }}`, 1, 8, `unknown filter "zzzzzz"`},
		{`{{ nwo() }}`, 1, 4, `unknown function "nwo", did you mean "now"?`},
		{`{{ x is defind }}`, 1, 9, `unknown test "defind", did you mean "defined"?`},
		{`{{ x | date(fromat='yyyy') }}`, 1, 13, `filter "date" has no argument "fromat" (arguments: format, timeZone, existingFormat, locale)`},
		{`{{ x | upper(a=1) }}`, 1, 14, `filter "upper" takes no named arguments`},
		{`{{ range(start=1, 2) }}`, 1, 19, `function "range": positional argument after a named one`},
		{`{{ 'abc }}`, 1, 4, `unterminated string`},
		{`{{ a @ b }}`, 1, 6, `unexpected character "@"`},
		{`{{ 99999999999999999999 }}`, 1, 4, `integer 99999999999999999999 is too large`},
		{`{{ a.b() }}`, 1, 6, `method calls are not supported: b(…)`},
		{`{{ [1, 2 }}`, 1, 10, `unexpected "}}", expected "]"`},
		{`{{ (1 }}`, 1, 7, `unexpected "}}", expected ")"`},
		{`{{ {'a' 1} }}`, 1, 9, `unexpected "1", expected ":"`},
		{`{{ x ? 1 }}`, 1, 10, `unexpected "}}", expected ":"`},
		{`{% if x %}yes`, 1, 1, `unclosed {% if %}, expected {% endif %}`},
		{`{% if x %}a{% else %}b`, 1, 1, `unclosed {% if %}, expected {% endif %}`},
		{"x\n{% for i in l %}", 2, 1, `unclosed {% for %}, expected {% endfor %}`},
		{`{% endif %}`, 1, 4, `unexpected {% endif %} without a matching opening tag`},
		{`{% if x %}{% endfor %}{% endif %}`, 1, 14, `unexpected {% endfor %} without a matching opening tag`},
		{`{% fro x in l %}{% endfor %}`, 1, 4, `unknown tag "fro", did you mean "for"?`},
		{`{% for in l %}{% endfor %}`, 1, 11, `unexpected "l", expected "in"`},
		{`{% for x l %}{% endfor %}`, 1, 10, `unexpected "l", expected "in"`},
		{`{% set = 1 %}`, 1, 8, `unexpected "=", expected a variable name`},
		{`{% set x 1 %}`, 1, 10, `unexpected "1", expected "="`},
		{`{% if x }}`, 1, 9, `unexpected "}", expected "%}"`},
		{`{%`, 1, 1, `unclosed "{%", expected "%}"`},
		{`a {# comment`, 1, 3, `unclosed comment, expected "#}"`},
		{`{% raw %}abc`, 1, 1, `unclosed {% raw %} block, expected {% endraw %}`},
		{`{{ x | date("yyyy") `, 1, 1, `unclosed "{{", expected "}}"`},
		{`{{ range( }}`, 1, 11, `unexpected "}}", expected an expression`},
		{`{{ range(1, 2 }}`, 1, 15, `unexpected "}}", expected ")"`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			se := syntaxError(t, e, tc.src)
			if se.Line != tc.line || se.Column != tc.col || se.Msg != tc.msg {
				t.Errorf("got line %d, column %d: %s\nwant line %d, column %d: %s", se.Line, se.Column, se.Msg, tc.line, tc.col, tc.msg)
			}
			if err := e.Check(tc.src); err == nil {
				t.Errorf("Check(%q) = nil, want the syntax error", tc.src)
			}
		})
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	se := syntaxError(t, testEngine(t), `{{ a + b + }}`)
	if got, want := se.Error(), `line 1, column 12: unexpected "}}", expected an expression`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestCheck(t *testing.T) {
	e := testEngine(t)
	for _, src := range []string{"", "plain", "{{ a.b }}", "{% if a %}{{ b | upper }}{% endif %}", "a {# c #}"} {
		if err := e.Check(src); err != nil {
			t.Errorf("Check(%q) = %v, want nil", src, err)
		}
	}
}

func TestHasExpression(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"plain", false}, {"{ x }", false}, {"{{ x }}", true}, {"{% if %}", true}, {"{# c #}", false},
	} {
		if got := HasExpression(tc.s); got != tc.want {
			t.Errorf("HasExpression(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestKestraRuntimeFunctions(t *testing.T) {
	ctx := context.Background()
	// A function the runtime supplies parses, and fails clearly without it.
	if err := Default.Check(`{% for log in errorLogs() %}{{ log.message }}{% endfor %}`); err != nil {
		t.Fatalf("errorLogs() should parse: %v", err)
	}
	_, err := Default.Render(ctx, `{{ read('kite:///a') }}`, nil)
	if err == nil || !strings.Contains(err.Error(), "read() needs internal storage") {
		t.Errorf("read() without storage: %v", err)
	}
	// Supplied with WithFunc, it works.
	e := New(WithFunc("read", func(_ context.Context, args []any) (any, error) { return "content of " + args[0].(string), nil }))
	got, err := e.Render(ctx, `{{ read('kite:///a') }}`, nil)
	if err != nil || got != "content of kite:///a" {
		t.Errorf("read() supplied: %q, %v", got, err)
	}
	// A Kestra function Kite does not provide is a syntax error saying so.
	err = Default.Check(`{{ kv('key') }}`)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Detail() != "not supported yet: the kv() function (Kestra's key-value store)" {
		t.Errorf("kv(): %v", err)
	}
	if l, c := se.Position(); l != 1 || c != 4 {
		t.Errorf("kv() position %d:%d, want 1:4", l, c)
	}
}
