package tasks

import (
	"slices"
	"testing"

	"github.com/kiteflow/kite/core/flow"
)

func TestLabels(t *testing.T) {
	tests := []struct {
		name    string
		task    string
		want    []flow.Label
		wantErr string
	}{
		{
			name: "map rendered, values stringified, in key order",
			task: `
  - id: t
    type: io.kestra.plugin.core.execution.Labels
    labels:
      owner: "{{ inputs.name }}"
      count: 3
      active: true`,
			want: []flow.Label{label("active", "true"), label("count", "3"), label("owner", "Ada")},
		},
		{
			name: "list of key and value, in its order",
			task: `
  - id: t
    type: labels
    labels:
      - key: "team_{{ inputs.n }}"
        value: data
      - key: env
        value: "{{ inputs.level }}"`,
			want: []flow.Label{label("team_3", "data"), label("env", "warn")},
		},
		{
			name: "empty key",
			task: `
  - id: t
    type: labels
    labels:
      - key: "{{ '' }}"
        value: x`,
			wantErr: "labels[0]: the label key is empty",
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
			if !slices.Equal(res.Labels, tt.want) {
				t.Errorf("labels = %v, want %v", res.Labels, tt.want)
			}
		})
	}
}

func TestLabelsFromAnExpression(t *testing.T) {
	tests := []struct {
		name    string
		labels  any
		vars    map[string]any
		want    []flow.Label
		wantErr string
	}{
		{"a map variable", "{{ inputs.labels }}", map[string]any{"inputs": map[string]any{"labels": map[string]any{"a": "1"}}}, []flow.Label{label("a", "1")}, ""},
		{"JSON text", `{"b": "2"}`, nil, []flow.Label{label("b", "2")}, ""},
		{"empty map key", map[string]any{"{{ '' }}": "x"}, nil, nil, "the label key is empty"},
		{"nested value", map[string]any{"a": map[string]any{"b": "c"}}, nil, nil, `the value of label "a" is a map`},
		{"not labels", "plain", nil, nil, "expected a map of key to value or a list of {key, value}"},
		{"nothing", map[string]any{}, nil, nil, "no label to set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, _ := newRunContext(t, &flow.Task{ID: "t", Type: "labels", Props: map[string]any{"labels": tt.labels}}, tt.vars)
			res, err := runTask(t.Context(), t, rc)
			wantErr(t, err, tt.wantErr)
			if err == nil && !slices.Equal(res.Labels, tt.want) {
				t.Errorf("labels = %v, want %v", res.Labels, tt.want)
			}
		})
	}
}

func label(key, value string) flow.Label { return flow.Label{Key: key, Value: value} }
