package expr

import (
	"errors"
	"testing"
	"time"
)

// fuzzVars is a small fixed context for rendering fuzzed templates.
func fuzzVars() map[string]any {
	return map[string]any{
		"a":       1,
		"b":       "two",
		"l":       []any{1, "x", 2.5, nil},
		"m":       map[string]any{"k": "v", "n": map[string]any{"x": true}},
		"s":       "{{ a }}",
		"t":       time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		"inputs":  map[string]any{"x": "1"},
		"outputs": map[string]any{"t-1": map[string]any{"value": []any{"a"}}},
	}
}

// FuzzParse parses arbitrary templates, renders those that parse, and
// evaluates them as bare expressions: nothing may panic, syntax errors must
// be located, and rendering must respect the limits.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "plain", "{{ a }}", "{{ a + 1 }}", "{% if a %}x{% else %}y{% endif %}",
		"{% for x in l %}{{ loop.index }}{{ x }}{% else %}none{% endfor %}",
		"{% set y = m.k ~ b %}{{ y | upper }}", "{# c #}{% raw %}{{ x }}{% endraw %}",
		"{{ outputs['t-1'].value[0] ?? 'd' }}", "{{ t | date('yyyy-MM-dd') | dateAdd(1, 'DAYS') }}",
		"{{ render(s) }}", "{{ {'a': {'b': [1, 2]}} | json }}", "{{ 1..5 | join(',') }}",
		"{{- a -}} {%- if true -%} x {%- endif -%}", "{{ a is defined and b is not null ? 'y' : 'n' }}",
		"{{ '{\"x\": 1}' | jq('.x') }}", "{{ range(1, 3) | reverse }}", "{{ x | default('d') }}",
	} {
		f.Add(s)
	}
	e := New(
		WithLimits(Limits{MaxOutput: 1 << 16, MaxItems: 1000, MaxDepth: 4, MaxIterations: 2000}),
		WithCacheSize(64),
		WithClock(func() time.Time { return fixedNow }),
	)
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := e.Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T is not a *SyntaxError: %v", src, err, err)
			}
			if se.Line < 1 || se.Column < 1 || se.Msg == "" {
				t.Fatalf("Parse(%q) error has no location: %+v", src, se)
			}
			return
		}
		out, err := tmpl.Render(t.Context(), fuzzVars())
		if err == nil && len(out) > 1<<16+len(src) {
			t.Fatalf("Render(%q) output of %d bytes is over the limit", src, len(out))
		}
		_, _ = tmpl.RenderValue(t.Context(), fuzzVars())
		_, _ = e.Eval(t.Context(), src, fuzzVars())
	})
}
