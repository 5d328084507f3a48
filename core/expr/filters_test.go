package expr

import (
	"context"
	"strings"
	"testing"
)

func TestStringFilters(t *testing.T) {
	runRenderCases(t, testEngine(t), kestraVars(), []renderCase{
		{`{{ s | upper }}`, "HELLO WORLD"},
		{`{{ s | lower }}`, "hello world"},
		{`{{ 'hello world' | capitalize }}`, "Hello world"},
		{`{{ 'hello big world' | title }}`, "Hello Big World"},
		{`{{ '  x  ' | trim }}`, "x"},
		{`{{ null | upper }}`, ""},
		{`{{ 12 | upper }}`, "12"},
		{`{{ 'Hello World' | abbreviate(8) }}`, "Hello..."},
		{`{{ 'Hello' | abbreviate(5) }}`, "Hello"},
		{`{{ 'Hello' | abbreviate(length=2) }}`, ".."},
		{`{{ 'a-b-a' | replace({'a': 'x', '-': '+'}) }}`, "x+b+x"},
		{`{{ 'a1b22' | replace({'\d+': '#'}, regexp=true) }}`, "a#b#"},
		{`{{ 'a-b' | replace('-', '_') }}`, "a_b"},
		{`{{ 'a,b,,c,,' | split(',') }}`, `["a","b","","c"]`},
		{`{{ 'a.b.c' | split('.', 2) }}`, `["a","b.c"]`},
		{`{{ 'a.b.c' | split(delimiter='.') | last }}`, "c"},
		{`{{ s | startsWith('Hello') }} {{ s | startsWith('World') }}`, "true false"},
		{`{{ s | endsWith('World') }}`, "true"},
		{`{{ 'a.b.c' | substringBefore('.') }}`, "a"},
		{`{{ 'a.b.c' | substringBeforeLast('.') }}`, "a.b"},
		{`{{ 'a.b.c' | substringAfter('.') }}`, "b.c"},
		{`{{ 'a.b.c' | substringAfterLast('.') }}`, "c"},
		{`{{ 'abc' | substringBefore('x') }}|{{ 'abc' | substringAfter('x') }}`, "abc|"},
		{`{{ 'Héllo, Wörld! 2024 ça_va' | slugify }}`, "hello-world-2024-ca_va"},
		{`{{ "it's" | escapeChar('single') }}`, `it\'s`},
		{`{{ 'say "x"' | escapeChar('double') }}`, `say \"x\"`},
		{`{{ "it's" | escapeChar('shell') }}`, `it'\''s`},
		{"{{ 'a\nb' | indent(2) }}", "a\n  b"},
		{"{{ 'a\nb' | nindent(2) }}", "\n  a\n  b"},
		{"{{ 'a\nb' | indent(1, prefix='\t') }}", "a\n\tb"},
		{`{{ s | base64encode }}`, "SGVsbG8gV29ybGQ="},
		{`{{ 'SGVsbG8gV29ybGQ=' | base64decode }}`, "Hello World"},
		{`{{ 'a b&c=d/é' | urlencode }}`, "a+b%26c%3Dd%2F%C3%A9"},
		{`{{ 'a+b%26c' | urldecode }}`, "a b&c"},
		{`{{ 'abc' | md5 }}`, "900150983cd24fb0d6963f7d28e17f72"},
		{`{{ 'abc' | sha1 }}`, "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{`{{ 'abc' | sha256 }}`, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{`{{ 'abc' | sha512 | length }}`, "128"},
		{`{{ 12 | string ~ 'x' }}`, "12x"},
	})
}

func TestCollectionFilters(t *testing.T) {
	runRenderCases(t, testEngine(t), kestraVars(), []renderCase{
		{`{{ list | length }} {{ s | length }} {{ m | length }} {{ null | length }}`, "3 11 2 0"},
		{`{{ 'é' | length }}`, "1"},
		{`{{ list | join(', ') }}`, "3, 1, 2"},
		{`{{ list | join }}`, "312"},
		{`{{ list | first }} {{ list | last }}`, "3 2"},
		{`{{ s | first }}{{ s | last }}`, "Hd"},
		{`{{ empty | first }}`, ""},
		{`{{ m | keys }}`, `["a","b"]`},
		{`{{ m | values }}`, `[1,2]`},
		{`{{ list | sort }} {{ words | sort }}`, `[1,2,3] ["a","b","c"]`},
		{`{{ list | rsort }}`, `[3,2,1]`},
		{`{{ list | reverse }} {{ 'abc' | reverse }}`, `[2,1,3] cba`},
		{`{{ list | slice(1, 3) }} {{ 'hello' | slice(1, 3) }}`, `[1,2] el`},
		{`{{ list | slice(1) }}`, `[1,2]`},
		{`{{ [1] | merge([2]) }} {{ {'a': 1} | merge({'b': 2}) }}`, `[1,2] {"a":1,"b":2}`},
		{`{{ [1, 2, 1, '1'] | distinct }}`, `[1,2,"1"]`},
		{`{{ [1, 2, 3, 4, 5] | chunk(2) }}`, `[[1,2],[3,4],[5]]`},
		{`{{ [[1, 2], 3, [4]] | flatten }}`, `[1,2,3,4]`},
		{`{{ n | abs }} {{ -1.5 | abs }}`, "7 1.5"},
		{`{{ '42' | number }} {{ '4.2' | number }} {{ '42' | number('DOUBLE') }} {{ '0x10' | number('INT') }}`, "42 4.2 42.0 16"},
		{`{{ ('40' | number) + 2 }}`, "42"},
		{`{{ 5 | number }} {{ 2.5 | number }}`, "5 2.5"},
		{`{{ [5, 6] | keys }}`, "[0,1]"},
		{`{{ missing | default('d') }}`, "d"},
		{`{{ missing.deep.er | default('d') }}`, "d"},
		{`{{ null | default('d') }} {{ '' | default('d') }} {{ [] | default('d') }}`, "d d d"},
		{`{{ 'x' | default('d') }} {{ 0 | default('d') }}`, "x 0"},
		{`{{ s | lower | replace({'world': 'kite'}) | upper }}`, "HELLO KITE"},
	})
}

func TestDataFilters(t *testing.T) {
	vars := kestraVars()
	vars["data"] = map[string]any{"items": []any{map[string]any{"id": 1}, map[string]any{"id": 2}}, "f": 1.0, "html": "<a&b>"}
	runRenderCases(t, testEngine(t), vars, []renderCase{
		{`{{ data | json }}`, `{"f":1.0,"html":"<a&b>","items":[{"id":1},{"id":2}]}`},
		{`{{ data | toJson }}`, `{"f":1.0,"html":"<a&b>","items":[{"id":1},{"id":2}]}`},
		{`{{ 'a"b' | jsonEncode }}`, `"a\"b"`},
		{`{{ t | json }}`, `"2024-01-02T03:04:05Z"`},
		{`{{ null | json }}`, `null`},
		{`{{ ('{"a": [1, 2.5]}' | fromJson).a[1] }}`, "2.5"},
		{`{{ ('{"a": 1}' | jsonDecode).a + 1 }}`, "2"},
		{`{{ data | jq('.items[].id') }}`, "[1,2]"},
		{`{{ data | jq('.items | length') | first }}`, "2"},
		{`{{ '{"a": {"b": "c"}}' | jq('.a.b') | first }}`, "c"},
		{`{{ data | jq(expression='.f') | first }}`, "1.0"},
	})
}

func TestFilterErrors(t *testing.T) {
	e := testEngine(t)
	for _, tc := range []struct{ src, want string }{
		{`{{ 'x' | fromJson }}`, `filter fromJson: parsing JSON`},
		{`{{ 'x' | number }}`, `filter number: "x" is not a number`},
		{`{{ 'x' | abbreviate }}`, `argument length is required`},
		{`{{ 'x' | jq('.[') }}`, `parsing jq expression`},
		{`{{ 'x' | base64decode }}`, `decoding base64`},
		{`{{ 'x' | escapeChar('nope') }}`, `argument type must be`},
		{`{{ [1, 'a'] | sort }}`, `cannot sort`},
		{`{{ 1 | keys }}`, `keys needs a map, got integer`},
		{`{{ 'x' | replace(1) }}`, `must be a map or a string`},
		{`{{ 'x' | date('yyyy') }}`, `cannot parse "x" as an ISO-8601 date`},
		{`{{ x | upper }}`, `missing variable "x"`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			err := renderError(t, e, tc.src, nil)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Callers extend the engine with their own functions, filters and tests.
func TestCustomFuncsAndFilters(t *testing.T) {
	secrets := map[string]string{"TOKEN": "s3cr3t"}
	e := testEngine(t,
		WithFunc("secret", func(_ context.Context, args []any) (any, error) {
			return secrets[Stringify(arg(args, 0))], nil
		}, "key"),
		WithFilter("shout", func(_ context.Context, in any, args []any) (any, error) {
			return strings.ToUpper(Stringify(in)) + strings.Repeat("!", int(arg(args, 0).(int64))), nil
		}, "times"),
		WithTest("positive", func(_ context.Context, in any, _ []any) (bool, error) {
			_, f, _, ok := toNumber(in)
			return ok && f > 0, nil
		}),
		WithTest("divisibleBy", func(_ context.Context, in any, args []any) (bool, error) {
			a, _ := toInt(in)
			b, _ := toInt(arg(args, 0))
			return b != 0 && a%b == 0, nil
		}),
		WithFunc("who", func(ctx context.Context, _ []any) (any, error) {
			return VarsFrom(ctx)["name"], nil
		}),
	)
	runRenderCases(t, e, map[string]any{"name": "kite"}, []renderCase{
		{`{{ secret('TOKEN') }}`, "s3cr3t"},
		{`{{ secret(key='TOKEN') }}`, "s3cr3t"},
		{`{{ 'hi' | shout(2) }}`, "HI!!"},
		{`{{ 'hi' | shout(times=1) }}`, "HI!"},
		{`{{ 3 is positive }} {{ -3 is positive }} {{ 3 is not positive }}`, "true false false"},
		{`{{ 9 is divisibleBy(3) }} {{ 9 is not divisibleBy(2) }}`, "true true"},
		{`{{ who() }}`, "kite"},
		{`{% set name = 'local' %}{{ who() }}`, "local"},
	})
	if _, err := Default.Parse(`{{ secret('x') }}`); err == nil {
		t.Error("Default knows secret(), want it to be local to the engine that registered it")
	}
}
