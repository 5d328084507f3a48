package expr

import (
	"errors"
	"testing"
	"time"
)

// fixedNow is the clock of testEngine.
var fixedNow = time.Date(2024, 3, 5, 14, 7, 9, 123456789, time.UTC)

// testEngine returns an Engine with a fixed clock.
func testEngine(tb testing.TB, opts ...Option) *Engine {
	tb.Helper()
	return New(append([]Option{WithClock(func() time.Time { return fixedNow })}, opts...)...)
}

// kestraVars is a Kestra-like execution context.
func kestraVars() map[string]any {
	return map[string]any{
		"flow":    map[string]any{"id": "hello", "namespace": "company.team"},
		"inputs":  map[string]any{"name": "World", "failed": "false", "count": 3, "nothing": nil},
		"taskrun": map[string]any{"id": "tr-1", "value": "a", "attemptsCount": 1},
		"parents": []any{map[string]any{"taskrun": map[string]any{"value": "parent-value"}}},
		"labels":  map[string]any{"system": map[string]any{"correlationId": "corr-42"}},
		"trigger": map[string]any{"date": "2024-01-02T03:04:05Z", "count": 2},
		"response": map[string]any{
			"body": `{"id": 12, "name": "x"}`,
		},
		"vars": map[string]any{
			"first":  "1st",
			"second": "{{ vars.first }}",
			"third":  "{{ vars.second }}",
		},
		"outputs": map[string]any{
			"t1":            map[string]any{"value": "v1"},
			"error-t1":      map[string]any{"value": "from-error"},
			"output_values": map[string]any{"values": map[string]any{"count": "4"}},
			"1-2-1_return": map[string]any{
				"s1": map[string]any{
					"a":   map[string]any{"value": "value-a"},
					"a a": map[string]any{"value": "value-a-a"},
				},
			},
			"pause": map[string]any{"onResume": nil},
			"list":  []any{int64(1), 2, 3.5},
			"typed": []string{"x", "y"},
		},
		"list":  []any{3, 1, 2},
		"words": []any{"b", "a", "c"},
		"empty": []any{},
		"m":     map[string]any{"b": 2, "a": 1},
		"s":     "Hello World",
		"n":     -7,
		"f":     2.5,
		"t":     time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		"null":  nil,
	}
}

// mustRender renders src and fails the test on error.
func mustRender(tb testing.TB, e *Engine, src string, vars map[string]any) string {
	tb.Helper()
	out, err := e.Render(tb.Context(), src, vars)
	if err != nil {
		tb.Fatalf("Render(%q): %v", src, err)
	}
	return out
}

// renderError renders src and fails the test unless it fails.
func renderError(tb testing.TB, e *Engine, src string, vars map[string]any) error {
	tb.Helper()
	out, err := e.Render(tb.Context(), src, vars)
	if err == nil {
		tb.Fatalf("Render(%q) = %q, want an error", src, out)
	}
	return err
}

// syntaxError parses src and returns its *SyntaxError, failing otherwise.
func syntaxError(tb testing.TB, e *Engine, src string) *SyntaxError {
	tb.Helper()
	_, err := e.Parse(src)
	var se *SyntaxError
	if !errors.As(err, &se) {
		tb.Fatalf("Parse(%q) error = %v, want a *SyntaxError", src, err)
	}
	return se
}

type renderCase struct {
	src  string
	want string
}

// runRenderCases renders each case with vars and compares the output.
func runRenderCases(t *testing.T, e *Engine, vars map[string]any, cases []renderCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.src, func(t *testing.T) {
			if got := mustRender(t, e, tc.src, vars); got != tc.want {
				t.Errorf("Render(%q) = %q, want %q", tc.src, got, tc.want)
			}
		})
	}
}
