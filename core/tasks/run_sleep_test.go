package tasks

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/flow"
)

func TestSleep(t *testing.T) {
	tests := []struct {
		name     string
		duration any
		wantErr  string
	}{
		{"ISO-8601", "PT0.01S", ""},
		{"Go style", "10ms", ""},
		{"rendered", "{{ inputs.d }}", ""},
		{"zero", "PT0S", ""},
		{"invalid", "soon", `invalid duration "soon"`},
		{"negative", "-1s", "negative"},
		{"missing", nil, "duration: required"},
	}
	vars := map[string]any{"inputs": map[string]any{"d": "PT0.02S"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, _ := newRunContext(t, &flow.Task{ID: "t", Type: "sleep", Props: map[string]any{"duration": tt.duration}}, vars)
			_, err := runTask(t.Context(), t, rc)
			wantErr(t, err, tt.wantErr)
		})
	}
}

func TestSleepReturnsWhenCancelled(t *testing.T) {
	rc, _ := newRunContext(t, parseTask(t, "  - id: t\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT1H\n"), nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := runTask(ctx, t, rc)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want one wrapping context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sleep did not return within 10s of cancellation")
	}
}
