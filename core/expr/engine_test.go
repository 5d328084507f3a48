package expr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestParseCache(t *testing.T) {
	e := testEngine(t, WithCacheSize(2))
	t1, err := e.Parse("{{ a }}")
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := e.Parse("{{ a }}")
	if t1 != t2 {
		t.Error("second Parse of the same source did not come from the cache")
	}
	for i := range 5 {
		if _, err := e.Parse(fmt.Sprintf("{{ %d }}", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.cache.len(); n != 2 {
		t.Errorf("cache holds %d templates, want the bound 2", n)
	}
	if t3, _ := e.Parse("{{ a }}"); t3 == t1 {
		t.Error("evicted template still returned")
	}
	if New(WithCacheSize(0)).cache.len() != 0 {
		t.Error("a disabled cache holds templates")
	}
}

// One Engine renders from many goroutines (run with -race).
func TestConcurrentRender(t *testing.T) {
	e := testEngine(t, WithCacheSize(8))
	vars := kestraVars()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				src := fmt.Sprintf("{{ flow.id }}-{{ %d + %d }}", g, i%10)
				want := fmt.Sprintf("hello-%d", g+i%10)
				got, err := e.Render(t.Context(), src, vars)
				if err != nil || got != want {
					t.Errorf("Render(%q) = %q, %v; want %q", src, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRenderCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := testEngine(t).Render(ctx, "{% for i in 1..10 %}{{ i }}{% endfor %}", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestPackageShortcuts(t *testing.T) {
	out, err := Render(t.Context(), "{{ 1 + 1 }}", nil)
	if err != nil || out != "2" {
		t.Errorf("Render = %q, %v", out, err)
	}
	v, err := Eval(t.Context(), "[1] + 2", nil)
	if err != nil || Stringify(v) != "[1,2]" {
		t.Errorf("Eval = %v, %v", v, err)
	}
	if out, err := Default.Render(t.Context(), "no blocks {", nil); err != nil || out != "no blocks {" {
		t.Errorf("Render(plain) = %q, %v", out, err)
	}
	tmpl, err := Default.Parse("{{ x }}")
	if err != nil || tmpl.Source() != "{{ x }}" {
		t.Errorf("Parse = %v, %v", tmpl, err)
	}
}
