package tasks

import (
	"context"
	"fmt"
)

// runLog is Kestra's Log task: message is one string or a list of strings,
// each rendered and logged as one entry at level (INFO by default).
func runLog(ctx context.Context, rc *RunContext) (*Result, error) {
	if !rc.Has("message") {
		return nil, fmt.Errorf("message: required property is not set")
	}
	level, err := levelProp(ctx, rc, "level")
	if err != nil {
		return nil, err
	}
	// Render, not Value: a message that is a single expression still logs
	// its string form, as Kestra does.
	v, err := rc.Render(ctx, "message")
	if err != nil {
		return nil, err
	}
	var messages []string
	switch x := v.(type) {
	case string:
		// One message, even when it reads like a JSON list.
		messages = []string{x}
	default:
		if messages, err = toStringList("message", x); err != nil {
			return nil, err
		}
	}
	for _, m := range messages {
		rc.Logf(level, "%s", m)
	}
	return &Result{}, nil
}
