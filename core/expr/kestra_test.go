package expr

import (
	"strings"
	"testing"
)

// Real expressions from Kestra flows; each must parse and render.
func TestKestraExpressions(t *testing.T) {
	e := testEngine(t)
	vars := kestraVars()
	runRenderCases(t, e, vars, []renderCase{
		{`{{ (outputs.state.data.value ?? 0) == 0 ? 'create' : ( outputs.state.data.value == 1 ? 'update' : 'delete') }}`, "create"},
		{`{{ flow.namespace ~ '.' ~ flow.id }}`, "company.team.hello"},
		{`{{ inputs.crash is defined }}`, "false"},
		{`{{ inputs.failed == 'true' ? ko: taskrun.id }}`, "tr-1"},
		{`{{ outputs.default.value ?? outputs['error-t1'].value }}`, "from-error"},
		{`{{ outputs['1-2-1_return']['s1'][taskrun.value].value }}`, "value-a"},
		{`{{ outputs['1-2-1_return'].s1['a a'].value }}`, "value-a-a"},
		{`{{ parents[0].taskrun.value }}`, "parent-value"},
		{`{{ trigger | json }}`, `{"count":2,"date":"2024-01-02T03:04:05Z"}`},
		{`{{ taskrun.value is json }}`, "false"},
		{`{{ json(response.body).id is not null }}`, "true"},
		{`{{ labels.system.correlationId }}`, "corr-42"},
		{`{{ render(vars.third) }}`, "1st"},
		{`{{ outputs.output_values.values.count != '4'}}`, "false"},
		{`{{taskrun.attemptsCount == 1 ? 'ok' : ko}}`, "ok"},
		{`{{ outputs.pause.onResume.asked ?? 'MISSING' }}`, "MISSING"},
		{`{{ now() | date("yyyy-MM-dd") }}`, "2024-03-05"},
		{`{{ "2024-01-02T03:04:05Z" | dateAdd(1, 'DAYS') | date("yyyy-MM-dd'T'HH:mm") }}`, "2024-01-03T03:04"},
	})
}

// The same expressions with other variables take their other branches.
func TestKestraExpressionsOtherBranches(t *testing.T) {
	e := testEngine(t)
	state := func(v any) map[string]any {
		vars := kestraVars()
		vars["outputs"].(map[string]any)["state"] = map[string]any{"data": map[string]any{"value": v}}
		return vars
	}
	const upsert = `{{ (outputs.state.data.value ?? 0) == 0 ? 'create' : ( outputs.state.data.value == 1 ? 'update' : 'delete') }}`
	for _, tc := range []struct {
		vars map[string]any
		src  string
		want string
	}{
		{state(nil), upsert, "create"},
		{state(0), upsert, "create"},
		{state(1), upsert, "update"},
		{state(int64(2)), upsert, "delete"},
		{map[string]any{"inputs": map[string]any{"crash": nil}}, `{{ inputs.crash is defined }}`, "true"},
		{map[string]any{"outputs": map[string]any{"default": map[string]any{"value": "d"}}}, `{{ outputs.default.value ?? outputs['error-t1'].value }}`, "d"},
		{map[string]any{"taskrun": map[string]any{"value": `{"a": 1}`}}, `{{ taskrun.value is json }}`, "true"},
		{map[string]any{"response": map[string]any{"body": `{"id": null}`}}, `{{ json(response.body).id is not null }}`, "false"},
		{map[string]any{"outputs": map[string]any{"output_values": map[string]any{"values": map[string]any{"count": 3}}}}, `{{ outputs.output_values.values.count != '4'}}`, "true"},
		{map[string]any{"outputs": map[string]any{"pause": map[string]any{"onResume": map[string]any{"asked": "yes"}}}}, `{{ outputs.pause.onResume.asked ?? 'MISSING' }}`, "yes"},
	} {
		t.Run(tc.want+" "+tc.src, func(t *testing.T) {
			if got := mustRender(t, e, tc.src, tc.vars); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestKestraExpressionStrictBranches(t *testing.T) {
	e := testEngine(t)
	vars := kestraVars()
	vars["inputs"].(map[string]any)["failed"] = "true"
	err := renderError(t, e, `{{ inputs.failed == 'true' ? ko: taskrun.id }}`, vars)
	if !strings.Contains(err.Error(), `missing variable "ko"`) {
		t.Errorf("error = %v, want it to name ko", err)
	}
	vars["taskrun"].(map[string]any)["attemptsCount"] = 2
	err = renderError(t, e, `{{taskrun.attemptsCount == 1 ? 'ok' : ko}}`, vars)
	if !strings.Contains(err.Error(), `missing variable "ko"`) {
		t.Errorf("error = %v, want it to name ko", err)
	}
}
