package expr

import (
	"strings"
	"testing"
)

func TestTests(t *testing.T) {
	runRenderCases(t, testEngine(t), kestraVars(), []renderCase{
		{`{{ inputs.name is defined }} {{ inputs.nope is defined }} {{ nope.deeper is defined }}`, "true false false"},
		{`{{ inputs.nothing is defined }}`, "true"},
		{`{{ inputs.nope is not defined }}`, "true"},
		{`{{ null is null }} {{ inputs.nothing is null }} {{ inputs.nope is null }} {{ 0 is null }}`, "true true true false"},
		{`{{ inputs.name is not null }}`, "true"},
		{`{{ '' is empty }} {{ ' ' is empty }} {{ [] is empty }} {{ {} is empty }} {{ null is empty }} {{ 'x' is empty }}`, "true true true true true false"},
		{`{{ 2 is even }} {{ 3 is even }} {{ -3 is odd }} {{ 4 is odd }}`, "true false true false"},
		{`{{ '{"a":1}' is json }} {{ '[1]' is json }} {{ 'x' is json }} {{ m is json }}`, "true true false true"},
		{`{{ list is iterable }} {{ m is iterable }} {{ 'x' is iterable }}`, "true false false"},
		{`{{ m is map }} {{ list is map }}`, "true false"},
	})
	err := renderError(t, testEngine(t), `{{ 'x' is even }}`, nil)
	if !strings.Contains(err.Error(), "test even: needs an integer, got string") {
		t.Errorf("error = %v", err)
	}
	err = renderError(t, testEngine(t), `{{ nope is empty }}`, nil)
	if !strings.Contains(err.Error(), `missing variable "nope"`) {
		t.Errorf("error = %v, want strict mode for the empty test", err)
	}
}
