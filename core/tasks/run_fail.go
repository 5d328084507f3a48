package tasks

import (
	"context"
	"errors"
	"strings"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
)

// runFail is Kestra's Fail task. Without a condition it always fails with
// errorMessage ("Task failure" by default). With one, it fails only when
// the condition renders truthy and otherwise succeeds with no output.
func runFail(ctx context.Context, rc *RunContext) (*Result, error) {
	if rc.Has("condition") {
		v, err := rc.Value(ctx, "condition")
		if err != nil {
			return nil, err
		}
		if !conditionTruthy(v) {
			return &Result{}, nil
		}
	}
	msg, err := rc.String(ctx, "errorMessage")
	if err != nil {
		return nil, err
	}
	if msg == "" {
		msg = "Task failure"
	}
	return &Result{State: execution.Failed}, errors.New(msg)
}

// conditionTruthy is Kestra's TruthUtils for a rendered condition: the
// strings "false", "0", "-0" and "" (trimmed, "false" in any case) are
// false, as is a typed value expr.Truthy finds false (false, 0, null, an
// empty list or map); anything else is true.
func conditionTruthy(v any) bool {
	if s, ok := v.(string); ok {
		switch t := strings.TrimSpace(s); {
		case t == "", t == "0", t == "-0", strings.EqualFold(t, "false"):
			return false
		}
		return true
	}
	return expr.Truthy(v)
}
