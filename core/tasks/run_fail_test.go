package tasks

import (
	"testing"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/flow"
)

func TestFail(t *testing.T) {
	tests := []struct {
		name    string
		props   map[string]any
		wantErr string // "" means SUCCESS
	}{
		{"no condition fails with the default message", map[string]any{}, "Task failure"},
		{"no condition, rendered message", map[string]any{"errorMessage": "bad input {{ inputs.name }}"}, "bad input Ada"},
		{"true condition", map[string]any{"condition": "{{ inputs.n > 2 }}", "errorMessage": "too many"}, "too many"},
		{"false condition succeeds", map[string]any{"condition": "{{ inputs.n > 5 }}"}, ""},
		{"string false succeeds", map[string]any{"condition": "false"}, ""},
		{"string 0 succeeds, as Kestra's TruthUtils", map[string]any{"condition": "{{ '0' }}"}, ""},
		{"number 0 succeeds", map[string]any{"condition": "{{ inputs.n - 3 }}"}, ""},
		{"empty rendering succeeds", map[string]any{"condition": "{{ '' }}"}, ""},
		{"any other text fails", map[string]any{"condition": "yes"}, "Task failure"},
		{"condition error", map[string]any{"condition": "{{ nope }}"}, "condition"},
		{"message error", map[string]any{"errorMessage": "{{ nope }}"}, "errorMessage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, _ := newRunContext(t, &flow.Task{ID: "t", Type: "fail", Props: tt.props}, testVars)
			res, err := runTask(t.Context(), t, rc)
			wantErr(t, err, tt.wantErr)
			if err == nil && (res.State != "" && res.State != execution.Success || len(res.Outputs) != 0) {
				t.Errorf("result = %+v, want SUCCESS without outputs", res)
			}
		})
	}
}

// A parsed Fail task gets Kestra's default message from its declaration.
func TestFailParsedDefaultMessage(t *testing.T) {
	rc, _ := newRunContext(t, parseTask(t, "  - id: t\n    type: io.kestra.plugin.core.execution.Fail\n"), nil)
	_, err := runTask(t.Context(), t, rc)
	if err == nil || err.Error() != "Task failure" {
		t.Fatalf("error = %v, want Task failure", err)
	}
}
