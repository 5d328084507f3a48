package execution_test

import (
	"testing"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

func TestFlowTriggerMatches(t *testing.T) {
	upstream := &execution.Execution{ID: "up", Namespace: "company.team", FlowID: "extract", State: execution.Success,
		Labels: []flow.Label{{Key: "env", Value: "prod"}}, Outputs: map[string]any{"rows": int64(42)}}
	cases := []struct {
		name, triggers string
		want           bool
		wantErr        bool
	}{
		{"no condition: any terminal state", `{id: t, type: flow}`, true, false},
		{"flow and state", `{id: t, type: flow, conditions: [{type: execution-flow, namespace: company.team, flowId: extract}, {type: execution-status, in: [SUCCESS]}]}`, true, false},
		{"another flow", `{id: t, type: flow, conditions: [{type: execution-flow, namespace: company.team, flowId: load}]}`, false, false},
		{"state not in", `{id: t, type: flow, conditions: [{type: execution-status, in: [FAILED, WARNING]}]}`, false, false},
		{"states property", `{id: t, type: flow, states: [FAILED]}`, false, false},
		{"namespace prefix", `{id: t, type: flow, conditions: [{type: execution-namespace, namespace: company, comparison: PREFIX}]}`, true, false},
		{"namespace equals", `{id: t, type: flow, conditions: [{type: execution-namespace, namespace: company}]}`, false, false},
		{"labels", `{id: t, type: flow, conditions: [{type: execution-labels, labels: {env: prod}}]}`, true, false},
		{"outputs", `{id: t, type: flow, conditions: [{type: execution-outputs, expression: "{{ trigger.outputs.rows > 40 }}"}]}`, true, false},
		{"not", `{id: t, type: flow, conditions: [{type: not, conditions: [{type: execution-status, in: [SUCCESS]}]}]}`, false, false},
		{"or", `{id: t, type: flow, conditions: [{type: or, conditions: [{type: execution-status, in: [FAILED]}, {type: execution-flow, namespace: company.team, flowId: extract}]}]}`, true, false},
		{"one-flow precondition", `{id: t, type: flow, preconditions: {id: p, flows: [{namespace: company.team, flowId: extract, states: [SUCCESS]}]}}`, true, false},
		{"disabled", `{id: t, type: flow, disabled: true}`, false, false},
		{"two-flow precondition", `{id: t, type: flow, preconditions: {id: p, flows: [{namespace: a}, {namespace: b}]}}`, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := parseFlow(t, "id: downstream\nnamespace: company.team\ntasks:\n  - {id: a, type: log, message: a}\ntriggers:\n  - "+tc.triggers+"\n")
			got, err := execution.FlowTriggerMatches(t.Context(), expr.Default, f, f.Triggers[0], upstream)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("matches = %v, want %v", got, tc.want)
			}
		})
	}
	self := parseFlow(t, "id: extract\nnamespace: company.team\ntasks:\n  - {id: a, type: log, message: a}\ntriggers:\n  - {id: t, type: flow}\n")
	if ok, _ := execution.FlowTriggerMatches(t.Context(), expr.Default, self, self.Triggers[0], upstream); ok {
		t.Error("a flow triggered itself")
	}
}
