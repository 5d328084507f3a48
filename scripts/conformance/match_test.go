package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// parseExecution decodes a hand-made `kite flow test --output json` document.
func parseExecution(t testing.TB, doc string) *execution {
	t.Helper()
	var x execution
	if err := json.Unmarshal([]byte(doc), &x); err != nil {
		t.Fatalf("decoding execution: %v", err)
	}
	return &x
}

// parseExpect decodes an expect written as in expectations.yaml.
func parseExpect(t testing.TB, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("decoding expect: %v", err)
	}
	return asMap(normalise(m))
}

// checkTop compares x with expect as phase 2 does for a top-level run.
func checkTop(t testing.TB, x *execution, expect string, opts checkOptions) verdict {
	t.Helper()
	if opts.now.IsZero() {
		opts.now = time.Now()
	}
	return check(parseExpect(t, expect), scope{x: x, top: x}, opts, "")
}

// eachSwitchKestra is each-switch.yaml as Kestra records it: only the direct
// children of a ForEach have a value.
const eachSwitchKestra = `{"id": "ex1", "flowId": "each-switch", "state": "SUCCESS", "taskRuns": [
 {"id": "r1", "taskId": "t1", "state": "SUCCESS", "outputs": {"value": "t1"}},
 {"id": "r2", "taskId": "2_each", "state": "SUCCESS"},
 {"id": "r3", "taskId": "2-1_switch", "parentTaskRunId": "r2", "value": "a", "state": "SUCCESS"},
 {"id": "r4", "taskId": "2-1_switch-letter-a", "parentTaskRunId": "r3", "state": "SUCCESS", "outputs": {"value": "2-1_switch-letter-a"}},
 {"id": "r5", "taskId": "2-1_switch", "parentTaskRunId": "r2", "value": "b", "state": "SUCCESS"},
 {"id": "r6", "taskId": "2-1_switch-letter-b", "parentTaskRunId": "r5", "state": "SUCCESS"},
 {"id": "r7", "taskId": "2-1_each", "parentTaskRunId": "r5", "state": "SUCCESS"},
 {"id": "r8", "taskId": "2-1-1_switch", "parentTaskRunId": "r7", "value": "1", "state": "SUCCESS"},
 {"id": "r9", "taskId": "2-1-1_switch-number-1", "parentTaskRunId": "r8", "state": "SUCCESS", "outputs": {"value": "1"}},
 {"id": "r10", "taskId": "2-1-1_switch", "parentTaskRunId": "r7", "value": "2", "state": "SUCCESS"},
 {"id": "r11", "taskId": "2-1-1_switch-number-2", "parentTaskRunId": "r10", "state": "SUCCESS", "outputs": {"value": "2 b"}},
 {"id": "r12", "taskId": "2_end", "state": "SUCCESS"}]}`

// eachSwitchKite is the same execution as kite records it: every task run in
// an iteration carries the innermost value.
const eachSwitchKite = `{"id": "ex1", "flowId": "each-switch", "state": "SUCCESS", "taskRuns": [
 {"id": "r1", "taskId": "t1", "state": "SUCCESS", "outputs": {"value": "t1"}},
 {"id": "r2", "taskId": "2_each", "state": "SUCCESS"},
 {"id": "r3", "taskId": "2-1_switch", "parentTaskRunId": "r2", "value": "a", "state": "SUCCESS"},
 {"id": "r4", "taskId": "2-1_switch-letter-a", "parentTaskRunId": "r3", "value": "a", "state": "SUCCESS", "outputs": {"value": "2-1_switch-letter-a"}},
 {"id": "r5", "taskId": "2-1_switch", "parentTaskRunId": "r2", "value": "b", "state": "SUCCESS"},
 {"id": "r6", "taskId": "2-1_switch-letter-b", "parentTaskRunId": "r5", "value": "b", "state": "SUCCESS"},
 {"id": "r7", "taskId": "2-1_each", "parentTaskRunId": "r5", "value": "b", "state": "SUCCESS"},
 {"id": "r8", "taskId": "2-1-1_switch", "parentTaskRunId": "r7", "value": "1", "iteration": 0, "state": "SUCCESS"},
 {"id": "r9", "taskId": "2-1-1_switch-number-1", "parentTaskRunId": "r8", "value": "1", "state": "SUCCESS", "outputs": {"value": "1"}},
 {"id": "r10", "taskId": "2-1-1_switch", "parentTaskRunId": "r7", "value": "2", "iteration": 1, "state": "SUCCESS"},
 {"id": "r11", "taskId": "2-1-1_switch-number-2", "parentTaskRunId": "r10", "value": "2", "state": "SUCCESS", "outputs": {"value": "2 b"}},
 {"id": "r12", "taskId": "2_end", "state": "SUCCESS"}]}`

func TestNestedForEachKeys(t *testing.T) {
	expect := `
state: SUCCESS
task_runs: 12
outputs:
  2-1-1_switch-number-1[b,1].value: "1"
  2-1-1_switch-number-2[b,2].value: 2 b
  2-1_switch-letter-a[a].value: 2-1_switch-letter-a
  t1.value: t1
task_states:
  2-1-1_switch[b,2]: SUCCESS
`
	forEach := map[string]bool{"2_each": true, "2-1_each": true}
	for name, doc := range map[string]string{"kestra values": eachSwitchKestra, "kite values": eachSwitchKite} {
		for known, fe := range map[string]map[string]bool{"ForEach tasks known": forEach, "ForEach tasks unknown": nil} {
			t.Run(name+", "+known, func(t *testing.T) {
				v := checkTop(t, parseExecution(t, doc), expect, checkOptions{forEach: fe})
				if len(v.Reasons) > 0 || len(v.NotChecked) > 0 {
					t.Errorf("reasons %q, not checked %q; want none", v.Reasons, v.NotChecked)
				}
			})
		}
	}
}

func TestValueChainOrderIsOutermostFirst(t *testing.T) {
	x := parseExecution(t, eachSwitchKite)
	got := x.valueChain(&x.TaskRuns[10], map[string]bool{"2_each": true, "2-1_each": true})
	if want := []string{"b", "2"}; !slices.Equal(got, want) {
		t.Errorf("value chain of 2-1-1_switch-number-2 = %q, want %q", got, want)
	}
	v := checkTop(t, x, `outputs: {"2-1-1_switch-number-2[2,b].value": 2 b}`, checkOptions{})
	if len(v.Reasons) != 1 || !strings.Contains(v.Reasons[0], "no task run 2-1-1_switch-number-2[2,b] (2-1-1_switch-number-2 has [b,2])") {
		t.Errorf("reasons %q, want one saying that [2,b] does not exist and [b,2] does", v.Reasons)
	}
}

// Two nested iterations with the same value ("1" inside "1") stay two levels
// when the flow's ForEach tasks are known.
func TestEqualNestedValues(t *testing.T) {
	x := parseExecution(t, `{"id": "e", "state": "SUCCESS", "taskRuns": [
 {"id": "a", "taskId": "outer"},
 {"id": "b", "taskId": "inner", "parentTaskRunId": "a", "value": "1"},
 {"id": "c", "taskId": "r", "parentTaskRunId": "b", "value": "1", "outputs": {"value": "one one"}},
 {"id": "d", "taskId": "r", "parentTaskRunId": "b", "value": "2", "outputs": {"value": "one two"}}]}`)
	expect := `outputs: {"r[1,1].value": one one, "r[1, 2].value": one two}`

	v := checkTop(t, x, expect, checkOptions{forEach: map[string]bool{"outer": true, "inner": true}})
	if len(v.Reasons) > 0 {
		t.Errorf("with the ForEach tasks known: reasons %q, want none", v.Reasons)
	}
	v = checkTop(t, x, expect, checkOptions{})
	if len(v.Reasons) != 1 || !strings.Contains(v.Reasons[0], "r[1,1]") {
		t.Errorf("without them: reasons %q, want r[1,1] not found (its values collapse)", v.Reasons)
	}
}

func TestOutputKeys(t *testing.T) {
	x := parseExecution(t, `{"id": "e1", "state": "SUCCESS",
 "outputs": {"key": {"value": "flow-with-outputs"}, "list": ["a", {"b": 2}]},
 "taskRuns": [
  {"id": "a", "taskId": "each", "state": "SUCCESS"},
  {"id": "b", "taskId": "ret", "parentTaskRunId": "a", "value": "x", "state": "SUCCESS", "outputs": {"value": "first"}},
  {"id": "c", "taskId": "ret", "parentTaskRunId": "a", "value": "{\"k\":1}", "state": "SUCCESS", "outputs": {"value": "second"}},
  {"id": "d", "taskId": "launch", "state": "SUCCESS", "childExecutionId": "child-1",
   "outputs": {"executionId": "child-1", "state": "SUCCESS", "outputs": {"extracted": "default > amazing"}}}]}`)
	tests := []struct {
		key  string
		want any
	}{
		{"taskRunList[1].value", "first"},
		{"taskRunList[2].value", "second"},
		{"ret.value", "first"}, // the first task run of ret, as Kestra's tests take it
		{"ret[x].value", "first"},
		{`ret[{"k":1}].value`, "second"},
		{"launch.outputs.extracted", "default > amazing"},
		{"launch.nothing.here", nil},
		{"execution.outputs.key.value", "flow-with-outputs"},
		{"execution.outputs.list.1.b", 2.0},
		{"execution.outputs.status (in order)", nil},
		{"taskRunList[3].state", "SUCCESS"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, err := x.resolveOutput(tt.key, nil)
			if err != nil {
				t.Fatalf("resolveOutput: %v", err)
			}
			if !equalish(got.value, tt.want) || (tt.want == nil) != (got.value == nil) {
				t.Errorf("got %s, want %s", show(got.value), show(tt.want))
			}
		})
	}
	for _, key := range []string{"taskRunList[4].value", "missing.value", "ret[y].value", "taskRunList[x].value"} {
		if _, err := x.resolveOutput(key, nil); err == nil {
			t.Errorf("resolveOutput(%q): no error, want one", key)
		}
	}
}

// matcherExecution has one task run, t, and one, u, whose output others contain.
const matcherExecution = `{"id": "e1", "state": "SUCCESS", "taskRuns": [
 {"id": "a", "taskId": "t", "state": "SUCCESS", "outputs": {"value": "1-2-2_return > 1-2-1_return > a a > get 1-2-1_return > a a",
   "list": ["a", "b", 3], "n": 42, "when": "%s", "old": "2020-01-01T00:00:00Z", "url": "kestra://io/file.txt"}},
 {"id": "b", "taskId": "u", "state": "SUCCESS", "outputs": {"value": "1-2-1_return > a a"}}]}`

func TestMatchers(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	x := parseExecution(t, strings.Replace(matcherExecution, "%s", now.Add(-5*time.Second).Format(time.RFC3339Nano), 1))
	tests := []struct {
		name    string
		outputs string // the outputs map of an expect, in YAML flow style
		fail    string // part of the one reason wanted; "" when it must pass
		skipped string // the field wanted as not checked
	}{
		{"contains", `{t.value: {contains: "get 1-2-1"}}`, "", ""},
		{"contains fails", `{t.value: {contains: nope}}`, `want one containing "nope"`, ""},
		{"contains null", `{t.missing: {contains: x}}`, `t.missing = null, want one containing "x"`, ""},
		{"regex matches the whole string", `{t.url: {regex: "kestra://.*\\.txt"}}`, "", ""},
		{"regex is not a search", `{t.url: {regex: "io/file"}}`, `want one matching "io/file"`, ""},
		{"bad regex", `{t.url: {regex: "("}}`, `regex "("`, ""},
		{"startsWith", `{t.url: {startsWith: "kestra://"}}`, "", ""},
		{"startsWith fails", `{t.url: {startsWith: "file://"}}`, `want one starting with "file://"`, ""},
		{"hasItems", `{t.list: {hasItems: [a, 3]}}`, "", ""},
		{"hasItems compares like scalars", `{t.list: {hasItems: ["3"]}}`, "", ""},
		{"hasItems fails", `{t.list: {hasItems: [a, z]}}`, `want a list with "z"`, ""},
		{"hasItems on a string", `{t.value: {hasItems: [a]}}`, "want a list with", ""},
		{"isNull", `{t.missing: {isNull: true}}`, "", ""},
		{"isNull fails", `{t.n: {isNull: true}}`, "t.n = 42, want null", ""},
		{"isNull false", `{t.missing: {isNull: false}}`, "t.missing = null, want a value", ""},
		{"withinSecondsOfNow", `{t.when: {withinSecondsOfNow: 60}}`, "", ""},
		{"withinSecondsOfNow fails", `{t.old: {withinSecondsOfNow: 60}}`, "want within 60s", ""},
		{"withinSecondsOfNow not a time", `{t.n: {withinSecondsOfNow: 60}}`, "want a time", ""},
		{"containsOutput", `{t.value: {containsOutput: u.value}}`, "", ""},
		{"containsOutput fails", `{u.value: {containsOutput: t.value}}`, "want one containing t.value = ", ""},
		{"containsOutput of nothing", `{t.value: {containsOutput: v.value}}`, "containsOutput v.value: no task run v", ""},
		{"two matchers", `{t.value: {contains: "get ", containsOutput: u.value}}`, "", ""},
		{"two matchers, one fails", `{t.value: {contains: "got ", containsOutput: u.value}}`, `want one containing "got "`, ""},
		{"size", `{t.list: {size: 3}}`, "", ""},
		{"size fails", `{t.list: {size: 2}}`, "want size 2", ""},
		{"unknown matcher", `{t.value: {endsWith: a}}`, "", "outputs t.value.endsWith"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := checkTop(t, x, "outputs: "+tt.outputs, checkOptions{now: now})
			checkVerdict(t, v, tt.fail, tt.skipped)
		})
	}
}

// checkVerdict asserts one reason containing fail (none when fail is "") and
// exactly the not-checked field skipped (none when "").
func checkVerdict(t testing.TB, v verdict, fail, skipped string) {
	t.Helper()
	switch {
	case fail == "" && len(v.Reasons) > 0:
		t.Errorf("reasons %q, want none", v.Reasons)
	case fail != "" && (len(v.Reasons) != 1 || !strings.Contains(v.Reasons[0], fail)):
		t.Errorf("reasons %q, want one containing %q", v.Reasons, fail)
	}
	var wantSkipped []string
	if skipped != "" {
		wantSkipped = []string{skipped}
	}
	if !slices.Equal(v.NotChecked, wantSkipped) {
		t.Errorf("not checked %q, want %q", v.NotChecked, wantSkipped)
	}
}

func TestScalarEquality(t *testing.T) {
	tests := []struct {
		got, want any
		equal     bool
	}{
		{"1", 1.0, true}, // Return outputs are strings; the corpus writes "1" or 1
		{1.0, "1", true},
		{3.14, "3.14", true},
		{false, "false", true},
		{"a", "b", false},
		{nil, "null", false},
		{nil, nil, true},
		{map[string]any{"value": "x"}, `{"value":"x"}`, true},
		{`{"value": "x"}`, `{"value":"x"}`, true},
		{map[string]any{"value": "x"}, `{"value":"y"}`, false},
		{[]any{"a", 1.0}, []any{"a", 1.0}, true},
		{[]any{"a"}, "a", false},
		{"[not json", "[not json", true},
	}
	for _, tt := range tests {
		if got := equalish(tt.got, tt.want); got != tt.equal {
			t.Errorf("equalish(%s, %s) = %v, want %v", show(tt.got), show(tt.want), got, tt.equal)
		}
	}
}

func TestExecutionOutputs(t *testing.T) {
	tests := []struct {
		name, outputs, expect, fail string
	}{
		{"a JSON string equals the map", `{"key": {"value": "flow-with-outputs"}}`,
			`{execution.outputs: {size: 1}, execution.outputs.key: "{\"value\":\"flow-with-outputs\"}"}`, ""},
		{"a map equals the JSON string", `{"key": "{\"value\": \"flow-with-outputs\"}"}`,
			`{execution.outputs.key: "{\"value\":\"flow-with-outputs\"}"}`, ""},
		{"null", `null`, `{execution.outputs: {isNull: true}}`, ""},
		{"empty is not null", `{}`, `{execution.outputs: {isNull: true}}`, "execution.outputs = {}, want null"},
		{"different", `{"key": "b"}`, `{execution.outputs.key: a}`, `execution.outputs.key = "b", want "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := parseExecution(t, `{"id": "e", "state": "SUCCESS", "outputs": `+tt.outputs+`}`)
			checkVerdict(t, checkTop(t, x, "outputs: "+tt.expect, checkOptions{}), tt.fail, "")
		})
	}
}

const retryExecution = `{"id": "exec-1", "flowId": "parent", "state": "FAILED",
 "labels": [{"key": "system.correlationId", "value": "exec-1"}, {"key": "someLabel", "value": "tr-labels"}],
 "taskRuns": [
  {"id": "tr-seq", "taskId": "seq", "state": "FAILED", "attempts": [{"state": "FAILED"}]},
  {"id": "tr-fail", "taskId": "fail", "parentTaskRunId": "tr-seq", "state": "FAILED",
   "attempts": [{"state": "FAILED"}, {"state": "FAILED"}, {"state": "FAILED"}]},
  {"id": "tr-labels", "taskId": "labels", "state": "SUCCESS", "attempts": [{"state": "SUCCESS"}]},
  {"id": "tr-launch", "taskId": "launch", "state": "SUCCESS", "childExecutionId": "exec-2",
   "outputs": {"executionId": "exec-2", "state": "SUCCESS"}}],
 "subflowExecutions": [
  {"id": "exec-2", "flowId": "switch", "state": "SUCCESS",
   "labels": [{"key": "system.correlationId", "value": "exec-1"}, {"key": "launchTaskLabel", "value": "launchFoo"}],
   "taskRuns": [{"id": "c1", "taskId": "parent-seq", "state": "SUCCESS"}, {"id": "c2", "taskId": "t1", "state": "SUCCESS",
     "childExecutionId": "exec-3"}]},
  {"id": "exec-3", "flowId": "grand-child", "state": "FAILED", "labels": [{"key": "parentId", "value": "exec-2"}], "taskRuns": []}]}`

func TestExecutionFields(t *testing.T) {
	x := parseExecution(t, retryExecution)
	tests := []struct {
		name, expect, fail, skipped string
	}{
		{"state", `state: FAILED`, "", ""},
		{"state differs", `state: SUCCESS`, "state FAILED, want SUCCESS", ""},
		{"task_runs", `task_runs: 4`, "", ""},
		{"task_runs differs", `task_runs: 2`, "task_runs 4, want 2", ""},
		{"task_runs at least", `task_runs: {atLeast: 3}`, "", ""},
		{"task_runs not at least", `task_runs: {atLeast: 6}`, "task_runs 4, want at least 6", ""},
		{"failed_task_runs", `failed_task_runs: {atLeast: 2}`, "", ""},
		{"task_states", `task_states: {fail: FAILED, labels: SUCCESS}`, "", ""},
		{"task_states differs", `task_states: {fail: SUCCESS}`, "task_states fail FAILED, want SUCCESS", ""},
		{"task_states of nothing", `task_states: {nope: SUCCESS}`, "task_states: no task run nope", ""},
		{"attempts", `attempts: {fail: 3, "taskRunList[1] (child)": 3, "taskRunList[0]": {atLeast: 1}}`, "", ""},
		{"attempts differ", `attempts: {fail: 2}`, "attempts fail 3, want 2", ""},
		{"absent_tasks", `absent_tasks: [after]`, "", ""},
		{"absent_tasks ran", `absent_tasks: [labels]`, "absent_tasks: labels ran (SUCCESS)", ""},
		{"task_order", `task_order: {"taskRunList[1]": fail}`, "", ""},
		{"task_order differs", `task_order: {"taskRunList[1]": seq}`, "task_order taskRunList[1] is fail, want seq", ""},
		{"labels_include", `labels_include: {someLabel: "<task run id of labels>", system.correlationId: "<execution id>"}`, "", ""},
		{"labels_include differs", `labels_include: {someLabel: "<task run id of fail>"}`, `labels someLabel = "tr-labels", want "tr-fail"`, ""},
		{"labels_include missing", `labels_include: {other: x}`, `labels: no other, want "x"`, ""},
		{"labels_exactly", `labels_exactly: {someLabel: tr-labels}`, `labels: unexpected system.correlationId = "exec-1"`, ""},
		{"labels placeholder unknown", `labels_include: {someLabel: "<trigger id>"}`, "", "labels_include someLabel (placeholder)"},
		{"child execution id", `outputs: {launch.executionId: "<child execution id>", launch.state: SUCCESS}`, "", ""},
		{"children", `children: {switch: SUCCESS, grand-child: FAILED}`, "", ""},
		{"children differ", `children: {switch: FAILED}`, "children switch: state SUCCESS, want FAILED", ""},
		{"children missing", `children: {other: SUCCESS}`, "children: no execution of other", ""},
		{"child", `child: {flow: switch, state: SUCCESS, task_runs: 2, labels_exactly: {system.correlationId: "<parent execution id>", launchTaskLabel: launchFoo}}`, "", ""},
		{"child differs", `child: {flow: switch, task_runs: 3}`, "child switch task_runs 2, want 3", ""},
		{"child trigger", `child: {flow: switch, trigger: {type: io.kestra.plugin.core.flow.Subflow}}`, "", "child.trigger"},
		{"grandchild's parent", `child: {flow: grand-child, labels_include: {parentId: "<parent execution id>"}}`, "", ""},
		{"fields one execution cannot show", `triggered_by: x`, "", "triggered_by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, checkTop(t, x, tt.expect, checkOptions{}), tt.fail, tt.skipped)
		})
	}
}

func TestPlaceholders(t *testing.T) {
	x := parseExecution(t, retryExecution)
	grandChild := &x.SubflowExecutions[1]
	s := scope{x: grandChild, parent: &x.SubflowExecutions[0], top: x}
	for in, want := range map[string]string{
		"<execution id>":                       "exec-3",
		"<parent execution id>":                "exec-2",
		"<parent execution id>/<execution id>": "exec-2/exec-3",
		"<grand-child execution id>":           "exec-3",
		"<parent execution id>s":               "exec-2s",
		"from parents: <parent execution id>":  "from parents: exec-2",
		"no placeholder <here>":                "no placeholder <here>",
	} {
		got, ok := s.substitute(in, nil)
		if !ok || got != want {
			t.Errorf("substitute(%q) = %q, %v; want %q, true", in, got, ok, want)
		}
	}
	if got, ok := (scope{x: x, top: x}).substitute("<parent execution id>", nil); ok {
		t.Errorf("substitute(<parent execution id>) at the top = %q, true; want unresolved", got)
	}
	if got, ok := (scope{x: grandChild, top: x}).substitute("<parent execution id> <switch execution id>", nil); ok {
		t.Errorf("without a parent = %q, true; want unresolved", got)
	}
	if got, ok := (scope{x: grandChild, top: x}).substitute("<switch execution id>", nil); !ok || got != "exec-2" {
		t.Errorf("substitute(<switch execution id>) = %q, %v; want exec-2", got, ok)
	}
}

func TestCheckOptions(t *testing.T) {
	x := parseExecution(t, retryExecution)
	v := checkTop(t, x, `{labels_exactly: {a: b}, outputs: {global.value: x}}`, checkOptions{
		labelsNotPassed: "start_labels",
		ignoredOutputs:  map[string]string{"global.value": "globals"},
	})
	if len(v.Reasons) > 0 {
		t.Errorf("reasons %q, want none", v.Reasons)
	}
	want := []string{"outputs global.value (globals)", "labels_exactly (start_labels)"}
	if !slices.Equal(v.NotChecked, want) {
		t.Errorf("not checked %q, want %q", v.NotChecked, want)
	}
}

func TestReasonsFollowTheFieldOrder(t *testing.T) {
	x := parseExecution(t, `{"id": "e", "state": "RUNNING", "taskRuns": [
 {"id": "a", "taskId": "t1", "outputs": {"value": "a"}}, {"id": "b", "taskId": "t2"}, {"id": "c", "taskId": "t3"}]}`)
	v := checkTop(t, x, `{outputs: {t1.value: b}, task_runs: 2, state: FAILED, logs: [x], then: y}`, checkOptions{})
	want := `state RUNNING, want FAILED; task_runs 3, want 2; outputs t1.value = "a", want "b"`
	if got := strings.Join(v.Reasons, "; "); got != want {
		t.Errorf("reasons %q, want %q", got, want)
	}
	if want := []string{"logs", "then"}; !slices.Equal(v.NotChecked, want) {
		t.Errorf("not checked %q, want %q", v.NotChecked, want)
	}
}
