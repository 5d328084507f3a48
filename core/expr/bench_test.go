package expr

import (
	"fmt"
	"testing"
)

// BenchmarkRender renders a typical task property; the parse is cached.
func BenchmarkRender(b *testing.B) {
	e := New()
	vars := kestraVars()
	const src = `{{ flow.namespace ~ '.' ~ flow.id }}/{{ outputs['1-2-1_return'].s1[taskrun.value].value | upper }}-{{ outputs.missing.value ?? 'none' }}`
	mustRender(b, e, src, vars)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Render(b.Context(), src, vars); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderAll renders a nested task definition.
func BenchmarkRenderAll(b *testing.B) {
	e := New()
	vars := kestraVars()
	task := map[string]any{
		"id":   "{{ flow.id }}-task",
		"type": "io.kestra.plugin.core.http.Request",
		"uri":  "https://example.test/{{ flow.namespace }}/{{ taskrun.value }}",
		"headers": map[string]any{
			"X-Correlation": "{{ labels.system.correlationId }}",
			"Accept":        "application/json",
		},
		"body":    "{{ trigger | json }}",
		"retries": 3,
		"steps": []any{
			map[string]any{"name": "{{ inputs.name | lower }}", "enabled": "{{ inputs.failed == 'true' }}"},
			map[string]any{"name": "static", "when": "{{ now() | date('yyyy-MM-dd') }}"},
		},
	}
	if _, err := e.RenderAll(b.Context(), task, vars); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.RenderAll(b.Context(), task, vars); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse measures parsing without the cache.
func BenchmarkParse(b *testing.B) {
	e := New(WithCacheSize(0))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		src := fmt.Sprintf(`{%% for x in outputs.list %%}{{ x ~ '%d' | upper }}{%% endfor %%}`, i%10)
		if _, err := e.Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}
