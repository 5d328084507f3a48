package tasks

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

// runLabels is Kestra's Labels task: labels, a map of key to value or a
// list of {key, value}, is rendered and returned as labels to set on the
// execution. Values are stringified; a map is applied in key order, a list
// in its own order (a repeated key: the last value wins when applied).
func runLabels(ctx context.Context, rc *RunContext) (*Result, error) {
	v, err := rc.Value(ctx, "labels")
	if err != nil {
		return nil, err
	}
	labels, err := toLabels(v)
	if err != nil {
		return nil, err
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("labels: no label to set; write a map of key to value or a list of {key, value}")
	}
	return &Result{Labels: labels}, nil
}

func toLabels(v any) ([]flow.Label, error) {
	var out []flow.Label
	add := func(where string, k, val any) error {
		key := strings.TrimSpace(expr.Stringify(k))
		if key == "" {
			return fmt.Errorf("labels%s: the label key is empty", where)
		}
		switch val.(type) {
		case []any, map[string]any:
			return fmt.Errorf("labels%s: the value of label %q is %s; expected a string", where, key, typeName(val))
		}
		out = append(out, flow.Label{Key: key, Value: expr.Stringify(val)})
		return nil
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		// A single expression rendering to JSON text.
		m, err := toStringMap("labels", x)
		if err != nil {
			return nil, fmt.Errorf("labels: expected a map of key to value or a list of {key, value}: %w", err)
		}
		anyMap := make(map[string]any, len(m))
		for k, val := range m {
			anyMap[k] = val
		}
		return toLabels(anyMap)
	case map[string]string:
		anyMap := make(map[string]any, len(x))
		for k, val := range x {
			anyMap[k] = val
		}
		return toLabels(anyMap)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := add(fmt.Sprintf("[%q]", k), k, x[k]); err != nil {
				return nil, err
			}
		}
	case []any:
		for i, item := range x {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("labels[%d]: expected {key, value}, got %s", i, typeName(item))
			}
			if err := add(fmt.Sprintf("[%d]", i), m["key"], m["value"]); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("labels: expected a map of key to value or a list of {key, value}, got %s", typeName(v))
	}
	return out, nil
}
