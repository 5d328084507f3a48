package tasks

import (
	"reflect"
	"testing"

	"github.com/kiteflow/kite/core/flow"
)

func TestReturnAndOutputValues(t *testing.T) {
	tests := []struct {
		name    string
		task    string
		want    map[string]any
		wantErr string
	}{
		{
			name: "return renders format to value",
			task: `
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }} is {{ inputs.n * 2 }}"`,
			want: map[string]any{"value": "Ada is 6"},
		},
		{
			name: "return of a number is its string",
			task: `
  - id: t
    type: return
    format: "{{ inputs.n }}"`,
			want: map[string]any{"value": "3"},
		},
		{
			name: "return without format",
			task: `
  - id: t
    type: return`,
			want: map[string]any{"value": ""},
		},
		{
			name: "return with an undefined variable",
			task: `
  - id: t
    type: return
    format: "{{ nope }}"`,
			wantErr: "format",
		},
		{
			name: "output values rendered recursively",
			task: `
  - id: t
    type: io.kestra.plugin.core.output.OutputValues
    values:
      greeting: "hi {{ inputs.name }}"
      count: 2
      nested:
        list: ["{{ inputs.n }}", plain]
      "key_{{ inputs.n }}": yes`,
			want: map[string]any{"values": map[string]any{
				"greeting": "hi Ada",
				"count":    2,
				"nested":   map[string]any{"list": []any{"3", "plain"}},
				"key_3":    "yes",
			}},
		},
		{
			name: "output values without values",
			task: `
  - id: t
    type: output-values`,
			want: map[string]any{"values": map[string]any{}},
		},
		{
			name: "output values with a failing expression names the key",
			task: `
  - id: t
    type: output-values
    values:
      bad: "{{ inputs.missing.deeper }}"`,
			wantErr: "bad",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, _ := newRunContext(t, parseTask(t, tt.task), testVars)
			res, err := runTask(t.Context(), t, rc)
			wantErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			if !reflect.DeepEqual(res.Outputs, tt.want) {
				t.Errorf("outputs = %#v, want %#v", res.Outputs, tt.want)
			}
		})
	}
}

func TestOutputValuesRejectsANonMap(t *testing.T) {
	task := &flow.Task{ID: "t", Type: "output-values", Props: map[string]any{"values": "{{ inputs.name }}"}}
	rc, _ := newRunContext(t, task, testVars)
	_, err := runTask(t.Context(), t, rc)
	wantErr(t, err, "values: expected a map")
}
