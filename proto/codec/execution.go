package codec

import (
	"fmt"
	"strings"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/flow"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// State converts a state; the zero state gives STATE_UNSPECIFIED.
func State(s execution.State) kitev1.State {
	return kitev1.State(kitev1.State_value["STATE_"+string(s)])
}

// FromState converts a state back; STATE_UNSPECIFIED gives the zero state.
func FromState(s kitev1.State) execution.State {
	if s == kitev1.State_STATE_UNSPECIFIED {
		return execution.Terminated
	}
	return execution.State(strings.TrimPrefix(s.String(), "STATE_"))
}

// Labels converts labels.
func Labels(ls []flow.Label) []*kitev1.Label {
	if len(ls) == 0 {
		return nil
	}
	out := make([]*kitev1.Label, len(ls))
	for i, l := range ls {
		out[i] = &kitev1.Label{Key: l.Key, Value: l.Value}
	}
	return out
}

// FromLabels converts labels back.
func FromLabels(ls []*kitev1.Label) []flow.Label {
	if len(ls) == 0 {
		return nil
	}
	out := make([]flow.Label, len(ls))
	for i, l := range ls {
		out[i] = flow.Label{Key: l.GetKey(), Value: l.GetValue()}
	}
	return out
}

func history(h []execution.StateTime) []*kitev1.StateTime {
	out := make([]*kitev1.StateTime, len(h))
	for i, st := range h {
		out[i] = &kitev1.StateTime{State: State(st.State), Time: Time(st.Date)}
	}
	return out
}

func fromHistory(h []*kitev1.StateTime) []execution.StateTime {
	if len(h) == 0 {
		return nil
	}
	out := make([]execution.StateTime, len(h))
	for i, st := range h {
		out[i] = execution.StateTime{State: FromState(st.GetState()), Date: FromTime(st.GetTime())}
	}
	return out
}

// Execution converts an execution with its task runs.
func Execution(e *execution.Execution) (*kitev1.Execution, error) {
	out, err := ExecutionHeader(e)
	if err != nil {
		return nil, err
	}
	out.TaskRuns = make([]*kitev1.TaskRun, len(e.TaskRuns))
	for i, tr := range e.TaskRuns {
		if out.TaskRuns[i], err = TaskRun(tr); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ExecutionHeader converts an execution without its task runs.
func ExecutionHeader(e *execution.Execution) (*kitev1.Execution, error) {
	out := &kitev1.Execution{
		Id: e.ID, Namespace: e.Namespace, FlowId: e.FlowID, FlowRevision: int32(e.FlowRevision),
		Labels: Labels(e.Labels), State: State(e.State), History: history(e.History),
		Error: e.Error, Seq: e.Seq, RetryOf: RetryLink(e.RetryOf),
	}
	var err error
	if out.Inputs, err = ToStruct(e.Inputs); err != nil {
		return nil, fmt.Errorf("execution %s: inputs: %w", e.ID, err)
	}
	if out.Outputs, err = ToStruct(e.Outputs); err != nil {
		return nil, fmt.Errorf("execution %s: outputs: %w", e.ID, err)
	}
	if out.Trigger, err = ToStruct(e.Trigger); err != nil {
		return nil, fmt.Errorf("execution %s: trigger: %w", e.ID, err)
	}
	if out.Parent, err = ParentLink(e.Parent); err != nil {
		return nil, fmt.Errorf("execution %s: parent: %w", e.ID, err)
	}
	for _, t := range e.SortedTimers() {
		out.Timers = append(out.Timers, timer(t))
	}
	return out, nil
}

// FromExecution converts an execution back, with its task runs.
func FromExecution(p *kitev1.Execution) *execution.Execution {
	e := &execution.Execution{
		ID: p.GetId(), Namespace: p.GetNamespace(), FlowID: p.GetFlowId(), FlowRevision: int(p.GetFlowRevision()),
		Inputs: FromStruct(p.GetInputs()), Labels: FromLabels(p.GetLabels()), Outputs: FromStruct(p.GetOutputs()),
		Trigger: FromStruct(p.GetTrigger()), Parent: FromParentLink(p.GetParent()), RetryOf: FromRetryLink(p.GetRetryOf()),
		State: FromState(p.GetState()), History: fromHistory(p.GetHistory()), Error: p.GetError(), Seq: p.GetSeq(),
	}
	for _, t := range p.GetTimers() {
		if e.Timers == nil {
			e.Timers = map[string]execution.Timer{}
		}
		e.Timers[t.GetId()] = fromTimer(t)
	}
	for _, tr := range p.GetTaskRuns() {
		e.TaskRuns = append(e.TaskRuns, FromTaskRun(tr))
	}
	return e
}

// ParentLink converts a parent link; nil gives nil.
func ParentLink(l *execution.ParentLink) (*kitev1.ParentLink, error) {
	if l == nil {
		return nil, nil
	}
	outputs, err := ToStruct(l.Outputs)
	if err != nil {
		return nil, err
	}
	return &kitev1.ParentLink{ExecutionId: l.ExecutionID, TaskRunId: l.TaskRunID, Namespace: l.Namespace, FlowId: l.FlowID, Outputs: outputs}, nil
}

// FromParentLink converts a parent link back; nil gives nil.
func FromParentLink(l *kitev1.ParentLink) *execution.ParentLink {
	if l == nil {
		return nil
	}
	return &execution.ParentLink{ExecutionID: l.GetExecutionId(), TaskRunID: l.GetTaskRunId(), Namespace: l.GetNamespace(), FlowID: l.GetFlowId(), Outputs: FromStruct(l.GetOutputs())}
}

// RetryLink converts a retry link; nil gives nil.
func RetryLink(l *execution.RetryLink) *kitev1.RetryLink {
	if l == nil {
		return nil
	}
	return &kitev1.RetryLink{OriginalId: l.OriginalID, Number: int32(l.Number), FirstStart: Time(l.FirstStart)}
}

// FromRetryLink converts a retry link back; nil gives nil.
func FromRetryLink(l *kitev1.RetryLink) *execution.RetryLink {
	if l == nil {
		return nil
	}
	return &execution.RetryLink{OriginalID: l.GetOriginalId(), Number: int(l.GetNumber()), FirstStart: FromTime(l.GetFirstStart())}
}

func timer(t execution.Timer) *kitev1.Timer {
	return &kitev1.Timer{Id: t.ID, Due: Time(t.Due), Kind: t.Kind, TaskRunId: t.TaskRunID}
}

func fromTimer(t *kitev1.Timer) execution.Timer {
	return execution.Timer{ID: t.GetId(), Due: FromTime(t.GetDue()), Kind: t.GetKind(), TaskRunID: t.GetTaskRunId()}
}

// TaskRun converts a task run.
func TaskRun(tr *execution.TaskRun) (*kitev1.TaskRun, error) {
	out := &kitev1.TaskRun{
		Id: tr.ID, TaskId: tr.TaskID, ParentTaskRunId: tr.ParentID, Iteration: int32(tr.Iteration),
		Decision: tr.Decision, Items: tr.Items, IterationsDone: int32(tr.IterationsDone),
		IterationsState: State(tr.IterationsState), Branch: tr.Branch, State: State(tr.State),
		History: history(tr.History), Error: tr.Error, ChildExecutionId: tr.ChildExecutionID,
	}
	if tr.HasValue {
		v := tr.Value
		out.Value = &v
	}
	for _, a := range tr.Attempts {
		out.Attempts = append(out.Attempts, &kitev1.Attempt{State: State(a.State), History: history(a.History)})
	}
	var err error
	if out.Outputs, err = ToStruct(tr.Outputs); err != nil {
		return nil, fmt.Errorf("task run %s (%s): outputs: %w", tr.ID, tr.TaskID, err)
	}
	return out, nil
}

// FromTaskRun converts a task run back.
func FromTaskRun(p *kitev1.TaskRun) *execution.TaskRun {
	tr := &execution.TaskRun{
		ID: p.GetId(), TaskID: p.GetTaskId(), ParentID: p.GetParentTaskRunId(), Value: p.GetValue(), HasValue: p.Value != nil,
		Iteration: int(p.GetIteration()), Decision: p.GetDecision(), Items: p.GetItems(),
		IterationsDone: int(p.GetIterationsDone()), IterationsState: FromState(p.GetIterationsState()),
		Branch: p.GetBranch(), State: FromState(p.GetState()), History: fromHistory(p.GetHistory()),
		Outputs: FromStruct(p.GetOutputs()), Error: p.GetError(), ChildExecutionID: p.GetChildExecutionId(),
	}
	for _, a := range p.GetAttempts() {
		tr.Attempts = append(tr.Attempts, execution.Attempt{State: FromState(a.GetState()), History: fromHistory(a.GetHistory())})
	}
	return tr
}

// Event converts an execution event.
func Event(ev *execution.Event) (*kitev1.ExecutionEvent, error) {
	out := &kitev1.ExecutionEvent{
		Seq: ev.Seq, Type: kitev1.EventType(kitev1.EventType_value["EVENT_TYPE_"+string(ev.Type)]),
		Time: Time(ev.Time), ExecutionId: ev.ExecutionID, TaskRunId: ev.TaskRunID, State: State(ev.State),
		Attempt: int32(ev.Attempt), Error: ev.Error, Labels: Labels(ev.Labels), ChildId: ev.ChildID, Done: int32(ev.Done),
	}
	if out.Type == kitev1.EventType_EVENT_TYPE_UNSPECIFIED {
		return nil, fmt.Errorf("event %d of execution %s: type %q has no protobuf value", ev.Seq, ev.ExecutionID, ev.Type)
	}
	var err error
	if out.Outputs, err = ToStruct(ev.Outputs); err != nil {
		return nil, fmt.Errorf("event %d of execution %s: outputs: %w", ev.Seq, ev.ExecutionID, err)
	}
	if ev.Timer != nil {
		out.Timer = timer(*ev.Timer)
	}
	if ev.TaskRun != nil {
		if out.TaskRun, err = TaskRun(ev.TaskRun); err != nil {
			return nil, err
		}
	}
	if ev.Execution != nil {
		if out.Execution, err = Execution(ev.Execution); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// FromEvent converts an execution event back.
func FromEvent(p *kitev1.ExecutionEvent) *execution.Event {
	ev := &execution.Event{
		Seq: p.GetSeq(), Type: execution.EventType(strings.TrimPrefix(p.GetType().String(), "EVENT_TYPE_")),
		Time: FromTime(p.GetTime()), ExecutionID: p.GetExecutionId(), TaskRunID: p.GetTaskRunId(),
		State: FromState(p.GetState()), Attempt: int(p.GetAttempt()), Error: p.GetError(),
		Outputs: FromStruct(p.GetOutputs()), Labels: FromLabels(p.GetLabels()), ChildID: p.GetChildId(), Done: int(p.GetDone()),
	}
	if p.Timer != nil {
		t := fromTimer(p.GetTimer())
		ev.Timer = &t
	}
	if p.TaskRun != nil {
		ev.TaskRun = FromTaskRun(p.GetTaskRun())
	}
	if p.Execution != nil {
		ev.Execution = FromExecution(p.GetExecution())
	}
	return ev
}
