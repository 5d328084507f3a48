package main

import (
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// fromProto converts an execution read from the API, with the subflow
// executions it started (directly or not, in creation order), into the
// execution phase 2 reads from `kite flow test --output json`, so that both
// are checked alike. It follows what that JSON shows: states without the
// STATE_ prefix, empty outputs and a zero iteration absent (omitempty in
// core/execution), subflow executions flattened into the top one.
//
// One difference is kept on purpose: a task run whose optional value is set
// to "" has the value "" here, where the JSON of `kite flow test` (value
// omitempty) shows none.
func fromProto(p *kitev1.Execution, children []*kitev1.Execution) execution {
	x := convertExecution(p)
	for _, c := range children {
		x.SubflowExecutions = append(x.SubflowExecutions, convertExecution(c))
	}
	return x
}

func convertExecution(p *kitev1.Execution) execution {
	x := execution{
		ID:           p.GetId(),
		Namespace:    p.GetNamespace(),
		FlowID:       p.GetFlowId(),
		FlowRevision: int(p.GetFlowRevision()),
		State:        stateName(p.GetState()),
		Inputs:       structMap(p.GetInputs()),
	}
	if outputs := structMap(p.GetOutputs()); outputs != nil {
		x.Outputs = outputs
	}
	for _, l := range p.GetLabels() {
		x.Labels = append(x.Labels, label{Key: l.GetKey(), Value: l.GetValue()})
	}
	for _, tr := range p.GetTaskRuns() {
		x.TaskRuns = append(x.TaskRuns, convertTaskRun(tr))
	}
	return x
}

func convertTaskRun(p *kitev1.TaskRun) taskRun {
	tr := taskRun{
		ID:               p.GetId(),
		TaskID:           p.GetTaskId(),
		ParentTaskRunID:  p.GetParentTaskRunId(),
		Branch:           p.GetBranch(),
		State:            stateName(p.GetState()),
		Outputs:          structMap(p.GetOutputs()),
		Error:            p.GetError(),
		ChildExecutionID: p.GetChildExecutionId(),
	}
	if p.Value != nil {
		tr.Value = p.GetValue()
	}
	if i := int(p.GetIteration()); i != 0 {
		tr.Iteration = &i
	}
	for _, a := range p.GetAttempts() {
		tr.Attempts = append(tr.Attempts, attempt{State: stateName(a.GetState())})
	}
	return tr
}

// stateName is a state as Kestra names it: STATE_SUCCESS is "SUCCESS", and
// STATE_UNSPECIFIED "" (no state).
func stateName(s kitev1.State) string {
	if s == kitev1.State_STATE_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(s.String(), "STATE_")
}

// structMap returns a Struct's fields as encoding/json decodes them (float64
// numbers, map[string]any, []any); nil when there are none.
func structMap(s *structpb.Struct) map[string]any {
	if len(s.GetFields()) == 0 {
		return nil
	}
	return s.AsMap()
}
