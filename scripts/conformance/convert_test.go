package main

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

func mustStruct(t testing.TB, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func intPtr(i int) *int { return &i }

func TestFromProto(t *testing.T) {
	tests := []struct {
		name     string
		exec     *kitev1.Execution
		children []*kitev1.Execution
		want     execution
	}{
		{
			name: "header, states without the prefix",
			exec: &kitev1.Execution{
				Id: "e1", Namespace: "io.kestra.tests", FlowId: "f", FlowRevision: 3, State: kitev1.State_STATE_SUCCESS,
				Inputs: mustStruct(t, map[string]any{"n": 42, "s": "x"}),
				Labels: []*kitev1.Label{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}},
				// Not in the runner's execution: dropped.
				History: []*kitev1.StateTime{{State: kitev1.State_STATE_CREATED, Time: timestamppb.Now()}},
				Seq:     9,
			},
			want: execution{
				ID: "e1", Namespace: "io.kestra.tests", FlowID: "f", FlowRevision: 3, State: "SUCCESS",
				Inputs: map[string]any{"n": 42.0, "s": "x"},
				Labels: []label{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}},
			},
		},
		{
			name: "no state",
			exec: &kitev1.Execution{Id: "e1"},
			want: execution{ID: "e1"},
		},
		{
			name: "outputs: empty ones are absent, as kite flow test prints them",
			exec: &kitev1.Execution{Id: "e1", State: kitev1.State_STATE_FAILED, Outputs: &structpb.Struct{}},
			want: execution{ID: "e1", State: "FAILED"},
		},
		{
			name: "outputs in JSON kinds",
			exec: &kitev1.Execution{Id: "e1", Outputs: mustStruct(t, map[string]any{
				"n": 1, "list": []any{"a", 2}, "m": map[string]any{"k": true}, "null": nil,
			})},
			want: execution{ID: "e1", Outputs: map[string]any{
				"n": 1.0, "list": []any{"a", 2.0}, "m": map[string]any{"k": true}, "null": nil,
			}},
		},
		{
			name: "task runs",
			exec: &kitev1.Execution{Id: "e1", TaskRuns: []*kitev1.TaskRun{
				{Id: "r1", TaskId: "each", State: kitev1.State_STATE_RUNNING, Items: []string{"a", "b"}, Decision: "values"},
				{
					Id: "r2", TaskId: "t", ParentTaskRunId: "r1", Value: proto.String("b"), Iteration: 1,
					Branch: "tasks", State: kitev1.State_STATE_FAILED, Error: "boom",
					Attempts: []*kitev1.Attempt{{State: kitev1.State_STATE_FAILED}, {State: kitev1.State_STATE_RETRIED}},
					Outputs:  mustStruct(t, map[string]any{"value": "x"}),
				},
				{Id: "r3", TaskId: "first", ParentTaskRunId: "r1", Value: proto.String("a"), State: kitev1.State_STATE_SUCCESS, Outputs: &structpb.Struct{}},
				{Id: "r4", TaskId: "empty", Value: proto.String(""), State: kitev1.State_STATE_SKIPPED},
				{Id: "r5", TaskId: "sub", State: kitev1.State_STATE_SUCCESS, ChildExecutionId: "c1"},
			}},
			want: execution{ID: "e1", TaskRuns: []taskRun{
				{ID: "r1", TaskID: "each", State: "RUNNING"},
				{
					ID: "r2", TaskID: "t", ParentTaskRunID: "r1", Value: "b", Iteration: intPtr(1),
					Branch: "tasks", State: "FAILED", Error: "boom",
					Attempts: []attempt{{State: "FAILED"}, {State: "RETRIED"}},
					Outputs:  map[string]any{"value": "x"},
				},
				// The first iteration is 0, which the JSON of kite flow test omits.
				{ID: "r3", TaskID: "first", ParentTaskRunID: "r1", Value: "a", State: "SUCCESS"},
				// A value set to "" is a value.
				{ID: "r4", TaskID: "empty", Value: "", State: "SKIPPED"},
				{ID: "r5", TaskID: "sub", State: "SUCCESS", ChildExecutionID: "c1"},
			}},
		},
		{
			name: "subflow executions flattened, in the order given",
			exec: &kitev1.Execution{Id: "e1", State: kitev1.State_STATE_SUCCESS, TaskRuns: []*kitev1.TaskRun{
				{Id: "r1", TaskId: "sub", State: kitev1.State_STATE_SUCCESS, ChildExecutionId: "c1"},
			}},
			children: []*kitev1.Execution{
				{Id: "c1", FlowId: "child", State: kitev1.State_STATE_SUCCESS, TaskRuns: []*kitev1.TaskRun{
					{Id: "r2", TaskId: "sub", State: kitev1.State_STATE_SUCCESS, ChildExecutionId: "c2"},
				}},
				{Id: "c2", FlowId: "grandchild", State: kitev1.State_STATE_WARNING},
			},
			want: execution{
				ID: "e1", State: "SUCCESS",
				TaskRuns: []taskRun{{ID: "r1", TaskID: "sub", State: "SUCCESS", ChildExecutionID: "c1"}},
				SubflowExecutions: []execution{
					{ID: "c1", FlowID: "child", State: "SUCCESS", TaskRuns: []taskRun{{ID: "r2", TaskID: "sub", State: "SUCCESS", ChildExecutionID: "c2"}}},
					{ID: "c2", FlowID: "grandchild", State: "WARNING"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromProto(tt.exec, tt.children)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fromProto:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// TestFromProtoChecksLikeFlowTest checks the point of the conversion: an
// execution read from the API gets the verdict the same execution gets from
// the JSON of `kite flow test`.
func TestFromProtoChecksLikeFlowTest(t *testing.T) {
	fromJSON := parseExecution(t, `{"id": "e1", "flowId": "parent", "state": "FAILED",
	 "labels": [{"key": "k", "value": "v"}],
	 "taskRuns": [
	  {"id": "r1", "taskId": "each", "state": "FAILED"},
	  {"id": "r2", "taskId": "t", "parentTaskRunId": "r1", "value": "a", "state": "SUCCESS", "attempts": [{"state": "SUCCESS"}], "outputs": {"value": "1"}},
	  {"id": "r3", "taskId": "t", "parentTaskRunId": "r1", "value": "b", "iteration": 1, "state": "FAILED", "attempts": [{"state": "FAILED"}, {"state": "FAILED"}]},
	  {"id": "r4", "taskId": "sub", "state": "SUCCESS", "childExecutionId": "c1", "outputs": {"executionId": "c1"}}],
	 "subflowExecutions": [{"id": "c1", "flowId": "child", "state": "SUCCESS", "taskRuns": [{"id": "r5", "taskId": "c", "state": "SUCCESS"}]}]}`)
	fromAPI := fromProto(&kitev1.Execution{
		Id: "e1", FlowId: "parent", State: kitev1.State_STATE_FAILED, Labels: []*kitev1.Label{{Key: "k", Value: "v"}},
		TaskRuns: []*kitev1.TaskRun{
			{Id: "r1", TaskId: "each", State: kitev1.State_STATE_FAILED},
			{Id: "r2", TaskId: "t", ParentTaskRunId: "r1", Value: proto.String("a"), State: kitev1.State_STATE_SUCCESS,
				Attempts: []*kitev1.Attempt{{State: kitev1.State_STATE_SUCCESS}}, Outputs: mustStruct(t, map[string]any{"value": "1"})},
			{Id: "r3", TaskId: "t", ParentTaskRunId: "r1", Value: proto.String("b"), Iteration: 1, State: kitev1.State_STATE_FAILED,
				Attempts: []*kitev1.Attempt{{State: kitev1.State_STATE_FAILED}, {State: kitev1.State_STATE_FAILED}}},
			{Id: "r4", TaskId: "sub", State: kitev1.State_STATE_SUCCESS, ChildExecutionId: "c1", Outputs: mustStruct(t, map[string]any{"executionId": "c1"})},
		},
	}, []*kitev1.Execution{{Id: "c1", FlowId: "child", State: kitev1.State_STATE_SUCCESS,
		TaskRuns: []*kitev1.TaskRun{{Id: "r5", TaskId: "c", State: kitev1.State_STATE_SUCCESS}}}})

	if !reflect.DeepEqual(&fromAPI, fromJSON) {
		t.Errorf("the API's execution converts to\n%#v\nthe JSON of kite flow test decodes to\n%#v", fromAPI, *fromJSON)
	}
	expect := `
state: FAILED
task_runs: 4
failed_task_runs: 2
outputs:
  t[a].value: "1"
  sub.executionId: <child execution id>
task_states: {"t[b]": FAILED}
attempts: {"t[b]": 2}
labels_exactly: {k: v}
children: {child: SUCCESS}
child: {flow: child, task_runs: 1}
`
	want := checkTop(t, fromJSON, expect, checkOptions{})
	got := checkTop(t, &fromAPI, expect, checkOptions{})
	if !reflect.DeepEqual(got, want) || len(got.Reasons) != 0 {
		t.Errorf("verdict from the API %+v, from kite flow test %+v; want both without reasons", got, want)
	}
}
