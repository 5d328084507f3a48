package tasks

import (
	"context"
	"fmt"
)

// runOutputValues is Kestra's OutputValues task: every string of values,
// keys included, is rendered (to a string, as Kestra does) and the map is
// output as values. An unset values gives an empty map.
func runOutputValues(ctx context.Context, rc *RunContext) (*Result, error) {
	v, err := rc.Render(ctx, "values")
	if err != nil {
		return nil, err
	}
	values := map[string]any{}
	switch x := v.(type) {
	case nil:
	case map[string]any:
		values = x
	default:
		return nil, fmt.Errorf("values: expected a map of output names to values, got %s", typeName(v))
	}
	return &Result{Outputs: map[string]any{"values": values}}, nil
}
