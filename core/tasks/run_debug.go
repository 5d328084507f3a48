package tasks

import "context"

// runDebug is Kestra's deprecated Echo task: format is rendered and logged
// at level (INFO by default).
func runDebug(ctx context.Context, rc *RunContext) (*Result, error) {
	level, err := levelProp(ctx, rc, "level")
	if err != nil {
		return nil, err
	}
	msg, err := rc.String(ctx, "format")
	if err != nil {
		return nil, err
	}
	rc.Logf(level, "%s", msg)
	return &Result{}, nil
}
