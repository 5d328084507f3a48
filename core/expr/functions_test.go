package expr

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestFunctions(t *testing.T) {
	runRenderCases(t, testEngine(t), kestraVars(), []renderCase{
		{`{{ now() }}`, "2024-03-05T14:07:09.123456Z"},
		{`{{ now(timeZone='Europe/Paris') }}`, "2024-03-05T15:07:09.123456+01:00"},
		{`{{ now(format='yyyy') }}`, "2024"},
		{`{{ range(1, 3) }}`, "[1,2,3]"},
		{`{{ range(0, 10, 5) }}`, "[0,5,10]"},
		{`{{ range(3, 1, -1) }}`, "[3,2,1]"},
		{`{{ range(3, 1) }}`, "[]"},
		{`{{ max(1, 5, 3) }} {{ min(4, 2.5, 3) }}`, "5 2.5"},
		{`{{ max(list) }} {{ min(words) }}`, "3 a"},
		{`{{ json('{"a": [1, {"b": true}]}').a[1].b }}`, "true"},
		{`{{ fromJson('[1, 2]') | length }}`, "2"},
		{`{{ jsonDecode('"x"') }}`, "x"},
		{`{{ toJson({'a': [1, 'b']}) }}`, `{"a":[1,"b"]}`},
		{`{{ render('{{ flow.id }}') }}`, "hello"},
		{`{{ render(vars.third, recursive=false) }}`, "{{ vars.first }}"},
		{`{{ renderOnce(vars.third) }}`, "{{ vars.first }}"},
		{`{{ render(42) }}`, "42"},
		{`{{ render('{% set x = 1 %}{{ x }}') }}{{ x ?? 'unset' }}`, "1unset"},
	})
}

func TestUUIDFunction(t *testing.T) {
	out := mustRender(t, testEngine(t), `{{ uuid() }}`, nil)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(out) {
		t.Errorf("uuid() = %q, want a version 4 UUID", out)
	}
}

// Without WithClock, now() is the current time.
func TestNowIsCurrent(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Microsecond)
	out := mustRender(t, New(), `{{ now() }}`, nil)
	got, err := time.Parse(time.RFC3339Nano, out)
	if err != nil {
		t.Fatalf("now() = %q: %v", out, err)
	}
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("now() = %v, want between %v and now", got, before)
	}
}

func TestRenderErrors(t *testing.T) {
	e := testEngine(t)
	err := renderError(t, e, `{{ render('{{ nope }}') }}`, nil)
	if !strings.Contains(err.Error(), `missing variable "nope"`) {
		t.Errorf("error = %v, want the nested missing variable", err)
	}
	err = renderError(t, e, `{{ render('{{ oops') }}`, nil)
	if !strings.Contains(err.Error(), `unclosed "{{"`) {
		t.Errorf("error = %v, want the nested syntax error", err)
	}
}
