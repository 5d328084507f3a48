package tasks

import "context"

// runReturn is Kestra's Return task: format is rendered to a string, output
// as value ("" when format is unset).
func runReturn(ctx context.Context, rc *RunContext) (*Result, error) {
	s, err := rc.String(ctx, "format")
	if err != nil {
		return nil, err
	}
	return &Result{Outputs: map[string]any{"value": s}}, nil
}
