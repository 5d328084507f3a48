package execution

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

// startSubflow asks for the child execution of a Subflow task run.
func (s *step) startSubflow(t *flow.Task, tr *TaskRun) {
	vars := s.vars(tr)
	fail := func(what string, err error) {
		msg := fmt.Sprintf("%s: %v", what, err)
		s.logf(tr, "ERROR", "subflow %s: %s", t.ID, msg)
		s.setTaskRunState(tr, Failed, msg)
	}
	ns, err := s.renderString(t.Props["namespace"], vars)
	if err != nil {
		fail("namespace", err)
		return
	}
	id, err := s.renderString(t.Props["flowId"], vars)
	if err != nil {
		fail("flowId", err)
		return
	}
	var inputs map[string]any
	if raw, ok := t.Props["inputs"]; ok && raw != nil {
		v, err := s.engine.RenderAll(context.Background(), raw, vars)
		if err != nil {
			fail("inputs", err)
			return
		}
		inputs, _ = v.(map[string]any)
	}
	var labels []flow.Label
	if boolProp(t, "inheritLabels", false) {
		labels = append(labels, s.e.Labels...)
	} else {
		for _, l := range s.e.Labels {
			if l.Key == CorrelationLabel {
				labels = append(labels, l)
			}
		}
	}
	if raw, ok := t.Props["labels"]; ok && raw != nil {
		v, err := s.engine.RenderAll(context.Background(), raw, vars)
		if err != nil {
			fail("labels", err)
			return
		}
		for _, l := range labelList(v) {
			labels = setLabel(labels, l)
		}
	}
	child := s.newExecutionID(1)
	wait := boolProp(t, "wait", true)
	// Each child execution is an attempt of the task run, so retries work
	// as for runnable tasks.
	s.emit(&Event{Type: EvAttempt, TaskRunID: tr.ID, Attempt: len(tr.Attempts) + 1, State: Running})
	s.emit(&Event{Type: EvChild, TaskRunID: tr.ID, ChildID: child})
	outputs, _ := t.Props["outputs"].(map[string]any)
	s.effect(StartChild{TaskRunID: tr.ID, ChildID: child, Namespace: ns, FlowID: id,
		Revision: intProp(t, "revision"), Inputs: inputs, Labels: labels, Wait: wait, Outputs: outputs})
	if !wait {
		s.emit(&Event{Type: EvOutputs, TaskRunID: tr.ID, Outputs: map[string]any{"executionId": child}})
		s.emit(&Event{Type: EvAttempt, TaskRunID: tr.ID, Attempt: len(tr.Attempts), State: Success})
		s.setTaskRunState(tr, Success, "")
	}
}

// labelList reads labels given as a map or a list of {key, value}.
func labelList(v any) []flow.Label {
	var out []flow.Label
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out = append(out, flow.Label{Key: k, Value: expr.Stringify(x[k])})
		}
	case []any:
		for _, item := range x {
			if m, ok := item.(map[string]any); ok {
				out = append(out, flow.Label{Key: expr.Stringify(m["key"]), Value: expr.Stringify(m["value"])})
			}
		}
	}
	return out
}

func (s *step) childEnded(in ChildEnded) {
	tr, ok := s.e.TaskRun(in.TaskRunID)
	if !ok || tr.State.Terminal() || tr.ChildExecutionID != in.ChildID {
		s.logf(nil, "WARN", "end of subflow execution %s ignored: its task run is gone or ended", in.ChildID)
		return
	}
	t, _ := s.task(tr)
	s.emit(&Event{Type: EvOutputs, TaskRunID: tr.ID, Outputs: map[string]any{
		"executionId": in.ChildID, "state": string(in.State), "outputs": in.Outputs,
	}})
	st := in.State
	switch {
	case st == Success || st == Warning:
	case t != nil && !boolProp(t, "transmitFailed", true):
		st = Success
	case st == Killed || st == Cancelled:
		st = Killed
	default:
		st = Failed
	}
	msg := ""
	if st == Failed {
		msg = fmt.Sprintf("subflow execution %s ended %s", in.ChildID, in.State)
	}
	if in.Error != "" && st != Failed && st != Killed {
		st, msg = Failed, in.Error
	}
	if n := len(tr.Attempts); n > 0 {
		s.emit(&Event{Type: EvAttempt, TaskRunID: tr.ID, Attempt: n, State: st})
	}
	s.attemptEnded(tr, st, msg)
}

// startPause pauses a task run (and so the execution) until it is resumed,
// or until its delay has passed.
func (s *step) startPause(t *flow.Task, tr *TaskRun) {
	s.setTaskRunState(tr, Paused, "")
	vars := s.vars(tr)
	if raw, ok := t.Props["delay"]; ok && raw != nil {
		str, err := s.renderString(raw, vars)
		var delay time.Duration
		if err == nil {
			delay, err = flow.ParseDuration(str)
		}
		if err != nil {
			s.setTaskRunState(tr, Failed, "delay: "+err.Error())
			return
		}
		s.setTimer(TimerPause, tr, s.now.Add(delay))
	}
	if t.Timeout > 0 {
		s.setTimer(TimerTimeout, tr, s.now.Add(t.Timeout))
	}
}

// endPause ends a paused task run: resumed (with the onResume inputs) or
// after its delay, as the pause's behavior says.
func (s *step) endPause(tr *TaskRun, resumed bool, inputs map[string]any) {
	t, _ := s.task(tr)
	s.cancelTimer(TimerPause, tr)
	s.cancelTimer(TimerTimeout, tr)
	s.setTaskRunState(tr, Running, "")
	if resumed {
		s.emit(&Event{Type: EvOutputs, TaskRunID: tr.ID, Outputs: map[string]any{"onResume": inputs}})
	}
	st := Success
	if !resumed && t != nil {
		switch behavior, _ := t.Props["behavior"].(string); behavior {
		case "WARN":
			st = Warning
		case "FAIL":
			st = Failed
		case "CANCEL":
			st = Killed
		}
	}
	if t != nil && len(t.Tasks("tasks")) > 0 && st == Success {
		return // the deprecated pause children run now; resolveFlowable ends it
	}
	s.setTaskRunState(tr, st, "")
}
