package execution

import (
	"fmt"
	"time"

	"github.com/kiteflow/kite/core/flow"
)

// kill stops everything: running attempts are cancelled, subflows killed,
// timers dropped, every task run that has not ended ends KILLED, and so
// does the execution. A worker's late result for a killed task run is
// recorded and ignored.
func (s *step) kill() {
	if s.e.Terminal() {
		s.logf(nil, "WARN", "kill ignored: the execution already ended %s", s.e.State)
		return
	}
	s.setState(Killing, "")
	s.finishKill()
}

func (s *step) finishKill() {
	for _, tr := range s.e.TaskRuns {
		if tr.State.Terminal() {
			continue
		}
		if n := len(tr.Attempts); n > 0 && !tr.Attempts[n-1].State.Terminal() {
			s.effect(CancelTask{TaskRunID: tr.ID, Attempt: n})
			s.emit(&Event{Type: EvAttempt, TaskRunID: tr.ID, Attempt: n, State: Killed})
		}
		if tr.ChildExecutionID != "" {
			s.effect(KillChild{ChildID: tr.ChildExecutionID})
		}
		s.setTaskRunState(tr, Killed, "")
	}
	for _, tm := range s.e.SortedTimers() {
		s.emit(&Event{Type: EvTimerCancelled, Timer: &Timer{ID: tm.ID}})
	}
	s.setState(Killed, "")
	s.effect(Ended{State: Killed})
}

// resume ends the paused task runs, with the given onResume inputs.
func (s *step) resume(in Resume) {
	if s.e.State != Paused {
		s.logf(nil, "WARN", "resume ignored: the execution is %s, not PAUSED", s.e.State)
		return
	}
	resumed := false
	for _, tr := range s.e.TaskRuns {
		if tr.State != Paused {
			continue
		}
		inputs, err := s.onResumeInputs(tr, in.Inputs)
		if err != nil {
			s.logf(tr, "ERROR", "resume refused: %v", err)
			return
		}
		s.endPause(tr, true, inputs)
		resumed = true
	}
	if resumed {
		s.setState(Running, "")
	}
}

// onResumeInputs validates resume inputs against the Pause task's onResume
// declarations (the same rules as flow inputs).
func (s *step) onResumeInputs(tr *TaskRun, given map[string]any) (map[string]any, error) {
	t, ok := s.task(tr)
	if !ok {
		return given, nil
	}
	decls, _ := t.Props["onResume"].([]any)
	if len(decls) == 0 {
		return given, nil
	}
	inputs, err := pauseInputs(decls)
	if err != nil {
		return nil, err
	}
	return resolveInputs(inputs, given, s.engine, nil, false)
}

// restart re-runs the failed task runs of a FAILED or KILLED execution:
// each gets a new attempt (flowables are resolved again), and the error and
// finally handlers that ran because of the failure are dropped so they can
// run again.
func (s *step) restart() {
	if s.e.State != Failed && s.e.State != Killed {
		s.logf(nil, "WARN", "restart ignored: only a FAILED or KILLED execution restarts, this one is %s", s.e.State)
		return
	}
	s.setState(Restarted, "")
	s.dropHandlers(func(*TaskRun) bool { return true })
	for _, tr := range append([]*TaskRun(nil), s.e.TaskRuns...) {
		if _, still := s.e.TaskRun(tr.ID); still && (tr.State == Failed || tr.State == Killed) {
			s.rerun(tr)
		}
	}
}

// reopen makes the ended ancestors of a task run that runs again resolve
// again, outermost first.
func (s *step) reopen(tr *TaskRun) {
	var chain []*TaskRun
	for p := tr.ParentID; p != ""; {
		ptr, ok := s.e.TaskRun(p)
		if !ok {
			break
		}
		chain = append(chain, ptr)
		p = ptr.ParentID
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if chain[i].State.Terminal() {
			s.setTaskRunState(chain[i], Restarted, "")
			s.setTaskRunState(chain[i], Running, "")
		}
		s.resetIterations(chain[i])
	}
}

// resetIterations makes a ForEach that runs again look at every iteration.
func (s *step) resetIterations(tr *TaskRun) {
	if tr.IterationsDone > 0 {
		s.emit(&Event{Type: EvIterations, TaskRunID: tr.ID})
	}
}

// dropHandlers removes the task runs of errors and finally branches (and
// their descendants) for which keep... returns true, children first.
func (s *step) dropHandlers(match func(*TaskRun) bool) {
	var drop []*TaskRun
	for _, tr := range s.e.TaskRuns {
		if (tr.Branch == "errors" || tr.Branch == "finally") && match(tr) {
			drop = append(drop, tr)
		}
	}
	for _, tr := range drop {
		s.remove(tr)
	}
}

// remove drops a task run and its descendants.
func (s *step) remove(tr *TaskRun) {
	if _, ok := s.e.TaskRun(tr.ID); !ok {
		return
	}
	for _, c := range append([]*TaskRun(nil), s.e.Children(tr.ID)...) {
		s.remove(c)
	}
	s.cancelTimer(TimerRetry, tr)
	s.cancelTimer(TimerTimeout, tr)
	s.cancelTimer(TimerPause, tr)
	s.emit(&Event{Type: EvTaskRunRemoved, TaskRunID: tr.ID})
}

// rerun starts an ended task run again, and reopens its ancestors.
func (s *step) rerun(tr *TaskRun) {
	t, ok := s.task(tr)
	if !ok {
		s.err = fmt.Errorf("execution %s: task run %s of unknown task %q", s.e.ID, tr.ID, tr.TaskID)
		return
	}
	s.reopen(tr)
	if t.Flowable() && undecided(t, tr) {
		// It failed before deciding its branch or values: it is created
		// anew, deciding again, when its list is resolved.
		s.remove(tr)
		return
	}
	s.setTaskRunState(tr, Restarted, "")
	switch {
	case t.Type == "subflow":
		s.setTaskRunState(tr, Running, "")
		s.startSubflow(t, tr)
	case t.Type == "pause":
		s.startPause(t, tr)
	case t.Flowable():
		s.setTaskRunState(tr, Running, "")
		s.resetIterations(tr)
	default:
		s.dispatch(tr, len(tr.Attempts)+1)
	}
}

// undecided reports whether a flowable task run lacks the decision it takes
// when created.
func undecided(t *flow.Task, tr *TaskRun) bool {
	switch t.Type {
	case "if", "switch", "for-each", "each-sequential", "each-parallel":
		return tr.Decision == ""
	}
	return false
}

// replay re-runs the execution from a task run: the task runs created after
// it (except its ancestors) are dropped, it runs again, and its ancestors
// are resolved again.
func (s *step) replay(in Replay) {
	if !s.e.Terminal() {
		s.logf(nil, "WARN", "replay ignored: the execution is still %s", s.e.State)
		return
	}
	target, ok := s.e.TaskRun(in.TaskRunID)
	if !ok {
		s.logf(nil, "WARN", "replay ignored: no task run %s", in.TaskRunID)
		return
	}
	ancestors := map[string]bool{}
	for p := target.ParentID; p != ""; {
		ancestors[p] = true
		ptr, ok := s.e.TaskRun(p)
		if !ok {
			break
		}
		p = ptr.ParentID
	}
	s.setState(Restarted, "")
	after := false
	var drop []*TaskRun
	for _, tr := range s.e.TaskRuns {
		if tr.ID == target.ID {
			after = true
			continue
		}
		if after && !ancestors[tr.ID] {
			drop = append(drop, tr)
		}
	}
	for i := len(drop) - 1; i >= 0; i-- {
		s.remove(drop[i])
	}
	s.rerun(target)
}

// ReplayCopy returns the events that start execution newID as a copy of the
// ended execution orig, task runs included (their histories start at now):
// a Replay input then runs the copy again from a task run, as Kestra's
// replay does, leaving orig as it was. The copy keeps orig's labels, inputs,
// trigger and state.
func ReplayCopy(orig *Execution, newID string, now time.Time) []*Event {
	hdr := *orig
	hdr.ID, hdr.Seq, hdr.TaskRuns, hdr.Timers, hdr.History = newID, 0, nil, nil, nil
	hdr.byID, hdr.children, hdr.branches = nil, nil, nil
	hdr.Labels = append([]flow.Label(nil), orig.Labels...)
	evs := []*Event{{Seq: 1, Type: EvCreated, Time: now, ExecutionID: newID, Execution: &hdr}}
	for _, tr := range orig.TaskRuns {
		c := *tr
		c.Attempts = append([]Attempt(nil), tr.Attempts...)
		evs = append(evs, &Event{Seq: int64(len(evs) + 1), Type: EvTaskRunCreated, Time: now, ExecutionID: newID, TaskRun: &c})
	}
	return evs
}
