package execution

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

// FlowTriggerVars are the trigger variables of an execution started by a
// Flow trigger: what Kestra gives as {{ trigger.* }}.
func FlowTriggerVars(upstream *Execution) map[string]any {
	return map[string]any{
		"executionId": upstream.ID, "executionLabels": upstream.LabelMap(),
		"state": string(upstream.State), "namespace": upstream.Namespace, "flowId": upstream.FlowID,
		"flowRevision": upstream.FlowRevision, "outputs": orEmpty(upstream.Outputs),
	}
}

// FlowTriggerMatches reports whether a Flow trigger of flow f fires for an
// upstream execution that changed state: the state is one of the trigger's
// states (the terminal ones by default) and every condition matches. A
// flow never triggers itself. Conditions that need history across
// executions (multiple, preconditions over several flows) are errors: the
// caller logs them and the trigger does not fire.
func FlowTriggerMatches(ctx context.Context, engine *expr.Engine, f *flow.Flow, t *flow.Trigger, upstream *Execution) (bool, error) {
	if t.Type != "flow" || t.Disabled || f.Disabled {
		return false, nil
	}
	if f.Namespace == upstream.Namespace && f.ID == upstream.FlowID {
		return false, nil
	}
	states := stringList(t.Props["states"])
	if len(states) == 0 {
		if !upstream.State.Terminal() {
			return false, nil
		}
	} else if !slices.Contains(states, string(upstream.State)) {
		return false, nil
	}
	vars := map[string]any{"trigger": FlowTriggerVars(upstream), "flow": map[string]any{"namespace": f.Namespace, "id": f.ID}}
	if pre, ok := t.Props["preconditions"].(map[string]any); ok {
		match, err := preconditions(pre, upstream)
		if err != nil || !match {
			return false, err
		}
	}
	return allConditions(ctx, engine, t.Conditions, upstream, vars)
}

func allConditions(ctx context.Context, engine *expr.Engine, conds []*flow.Condition, up *Execution, vars map[string]any) (bool, error) {
	for _, c := range conds {
		ok, err := condition(ctx, engine, c, up, vars)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func condition(ctx context.Context, engine *expr.Engine, c *flow.Condition, up *Execution, vars map[string]any) (bool, error) {
	str := func(name string) string { s, _ := c.Props[name].(string); return s }
	switch c.Type {
	case "execution-flow", "flow":
		return up.Namespace == str("namespace") && up.FlowID == str("flowId"), nil
	case "execution-status":
		in, notIn := stringList(c.Props["in"]), stringList(c.Props["notIn"])
		st := string(up.State)
		return (len(in) == 0 || slices.Contains(in, st)) && !slices.Contains(notIn, st), nil
	case "execution-namespace", "flow-namespace":
		ns := str("namespace")
		cmp := str("comparison")
		if cmp == "" {
			cmp = "EQUALS"
			if prefix, _ := c.Props["prefix"].(bool); prefix {
				cmp = "PREFIX"
			}
		}
		switch cmp {
		case "PREFIX":
			return strings.HasPrefix(up.Namespace, ns), nil
		case "SUFFIX":
			return strings.HasSuffix(up.Namespace, ns), nil
		}
		return up.Namespace == ns, nil
	case "execution-labels":
		have := up.LabelMap()
		for k, v := range labelsOf(c.Props["labels"]) {
			if have[k] != v {
				return false, nil
			}
		}
		return true, nil
	case "execution-outputs", "expression":
		v, err := engine.RenderValue(ctx, str("expression"), vars)
		if err != nil {
			return false, fmt.Errorf("condition %s: %w", c.Type, err)
		}
		return expr.Truthy(v), nil
	case "not":
		subs, _ := c.Props["conditions"].([]*flow.Condition)
		for _, s := range subs {
			ok, err := condition(ctx, engine, s, up, vars)
			if err != nil || ok {
				return false, err
			}
		}
		return true, nil
	case "or":
		subs, _ := c.Props["conditions"].([]*flow.Condition)
		for _, s := range subs {
			ok, err := condition(ctx, engine, s, up, vars)
			if err != nil {
				return false, err
			}
			if ok {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("condition %s is not evaluated by Flow triggers yet", c.TypeName)
}

// preconditions evaluates the single-execution part of a Flow trigger's
// preconditions: one upstream flow filter. Several flows to be met within a
// time window need state across executions, which Kite does not keep yet.
func preconditions(pre map[string]any, up *Execution) (bool, error) {
	flows, _ := pre["flows"].([]any)
	if len(flows) > 1 {
		return false, fmt.Errorf("preconditions over %d flows (within a time window) are not supported yet", len(flows))
	}
	if _, ok := pre["where"]; ok {
		return false, fmt.Errorf("preconditions with where filters are not supported yet")
	}
	for _, x := range flows {
		m, _ := x.(map[string]any)
		if ns, _ := m["namespace"].(string); ns != up.Namespace {
			return false, nil
		}
		if id, _ := m["flowId"].(string); id != "" && id != up.FlowID {
			return false, nil
		}
		if states := stringList(m["states"]); len(states) > 0 && !slices.Contains(states, string(up.State)) {
			return false, nil
		}
		have := up.LabelMap()
		for k, v := range labelsOf(m["labels"]) {
			if have[k] != v {
				return false, nil
			}
		}
	}
	return true, nil
}

func stringList(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
	case []string:
		out = x
	}
	return out
}

// labelsOf reads labels written as a map or as a list of {key, value}.
func labelsOf(v any) map[string]string {
	out := map[string]string{}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			out[k] = fmt.Sprint(e)
		}
	case []any:
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				out[fmt.Sprint(m["key"])] = fmt.Sprint(m["value"])
			}
		}
	}
	return out
}
