package tasks

import (
	"slices"
	"testing"
)

var testVars = map[string]any{
	"inputs": map[string]any{"name": "Ada", "level": "warn", "bad": "LOUD", "n": 3},
}

func TestLogAndDebug(t *testing.T) {
	tests := []struct {
		name    string
		task    string
		want    []logEntry
		wantErr string
	}{
		{
			name: "one message rendered at INFO",
			task: `
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.name }}"`,
			want: []logEntry{{LevelInfo, "hello Ada"}},
		},
		{
			name: "a list logged line by line at the level",
			task: `
  - id: t
    type: log
    level: ERROR
    message:
      - "first {{ inputs.n + 1 }}"
      - second`,
			want: []logEntry{{LevelError, "first 4"}, {LevelError, "second"}},
		},
		{
			name: "level rendered, any case",
			task: `
  - id: t
    type: log
    level: "{{ inputs.level }}"
    message: careful`,
			want: []logEntry{{LevelWarn, "careful"}},
		},
		{
			name: "a message reading like a JSON list stays one line",
			task: `
  - id: t
    type: log
    message: "{{ [1, 2] }}"`,
			want: []logEntry{{LevelInfo, "[1,2]"}},
		},
		{
			name: "undefined variable",
			task: `
  - id: t
    type: log
    message: "{{ inputs.missing }}"`,
			wantErr: "message",
		},
		{
			name: "unknown level",
			task: `
  - id: t
    type: log
    level: "{{ inputs.bad }}"
    message: x`,
			wantErr: `unknown log level "LOUD"`,
		},
		{
			name: "echo at the default level",
			task: `
  - id: t
    type: io.kestra.plugin.core.debug.Echo
    format: "{{ inputs.name }} says hi"`,
			want: []logEntry{{LevelInfo, "Ada says hi"}},
		},
		{
			name: "debug at its level",
			task: `
  - id: t
    type: debug
    level: TRACE
    format: "{{ inputs.name | upper }}"`,
			want: []logEntry{{LevelTrace, "ADA"}},
		},
		{
			name: "debug with a bad expression",
			task: `
  - id: t
    type: debug
    format: "{{ inputs.name | nosuchfilter }}"`,
			wantErr: "format",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, logs := newRunContext(t, parseTask(t, tt.task), testVars)
			res, err := runTask(t.Context(), t, rc)
			wantErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			if len(res.Outputs) != 0 {
				t.Errorf("outputs = %v, want none", res.Outputs)
			}
			if got := logs.all(); !slices.Equal(got, tt.want) {
				t.Errorf("logs = %q, want %q", got, tt.want)
			}
		})
	}
}
