package execution

import (
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

// scope is a list of tasks run together under one parent: the flow's root,
// a flowable's children, or one iteration of a ForEach.
type scope struct {
	parent *TaskRun // nil at the root
	// iter is the iteration index of a ForEach scope, -1 otherwise; value is
	// that iteration's value.
	iter  int
	value string
	// main is the branch name of the main list ("tasks", "then", "cases.X").
	main                   string
	tasks, errors, finally []*flow.Task
	parallel               bool
	// concurrent bounds the task runs of a parallel list running at once
	// (0: no bound).
	concurrent int
}

func (sc *scope) mainBranch() string {
	if sc.main == "" {
		return "tasks"
	}
	return sc.main
}

// runsOf returns the task runs of the scope's branch, in creation order.
func (s *step) runsOf(sc *scope, branch string) []*TaskRun {
	parentID := ""
	if sc.parent != nil {
		parentID = sc.parent.ID
	}
	return s.e.Branch(parentID, branch, sc.iter)
}

// runOf finds the task run of a task among a branch's task runs (the last
// one, should there be several).
func runOf(runs []*TaskRun, taskID string) *TaskRun {
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].TaskID == taskID {
			return runs[i]
		}
	}
	return nil
}

// resolveScope advances the scope's main list, then its errors (after a
// failure) and finally lists. It returns the scope's state once all are done.
func (s *step) resolveScope(sc *scope) (State, bool) {
	st, done := s.resolveList(sc, sc.mainBranch(), sc.tasks, sc.parallel, sc.concurrent)
	if !done || s.err != nil {
		return Running, false
	}
	if st == Killed {
		return Killed, true
	}
	if st == Failed && len(sc.errors) > 0 {
		if _, done := s.resolveList(sc, "errors", sc.errors, false, 0); !done {
			return Running, false
		}
		// Error handlers never turn a failure into a success.
	}
	if len(sc.finally) > 0 {
		fst, done := s.resolveList(sc, "finally", sc.finally, false, 0)
		if !done {
			return Running, false
		}
		st = worst(st, fst)
	}
	return st, true
}

// resolveList creates the next task runs of a list, sequentially (one
// after the other, stopping at a failure) or in parallel (all at once, up to
// concurrent; none started after a failure), and returns the list's state
// once every task run it will have has ended.
func (s *step) resolveList(sc *scope, branch string, tasks []*flow.Task, parallel bool, concurrent int) (State, bool) {
	runs := s.runsOf(sc, branch)
	st := Success
	running, failed, active := false, false, 0
	for _, t := range tasks {
		if s.err != nil {
			return Running, false
		}
		if t.Disabled {
			continue
		}
		tr := runOf(runs, t.ID)
		if tr == nil {
			// A parallel list without a bound starts every task at once, as
			// Kestra does, even after one failed.
			gate := failed && (!parallel || concurrent > 0)
			if s.e.State == Killing || gate || (!parallel && running) || (parallel && concurrent > 0 && active >= concurrent) {
				if !gate {
					running = true
				}
				break
			}
			tr = s.createTaskRun(sc, branch, t)
			if tr == nil {
				return Running, false
			}
		} else if !tr.State.Terminal() && t.Flowable() {
			s.resolveFlowable(t, tr)
		}
		if !tr.State.Terminal() {
			running = true
			active++
			continue
		}
		eff := effective(t, tr.State)
		if eff == Failed || eff == Killed {
			failed = true
		}
		st = worst(st, eff)
	}
	if running {
		return Running, false
	}
	return st, true
}

// effective is how a task run's state counts for its list: an allowed
// failure counts as a warning, and an allowed warning as a success.
func effective(t *flow.Task, st State) State {
	if st == Failed && t.AllowFailure {
		st = Warning
	}
	if st == Warning && t.AllowWarning || st == Skipped {
		st = Success
	}
	return st
}

// worst combines two end states: KILLED over FAILED over WARNING over SUCCESS.
func worst(a, b State) State {
	rank := func(s State) int {
		switch s {
		case Killed:
			return 4
		case Failed:
			return 3
		case Cancelled:
			return 2
		case Warning:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// createTaskRun creates the task run of t in the scope and starts it: a
// runnable task is dispatched, a flowable one resolved at once. It returns
// nil when the step failed.
func (s *step) createTaskRun(sc *scope, branch string, t *flow.Task) *TaskRun {
	tr := &TaskRun{ID: s.newID(0), TaskID: t.ID, Branch: branch, State: Created}
	switch {
	case sc.iter >= 0:
		tr.Value, tr.HasValue, tr.Iteration = sc.value, true, sc.iter
	case sc.parent != nil && sc.parent.HasValue:
		tr.Value, tr.HasValue, tr.Iteration = sc.parent.Value, true, sc.parent.Iteration
	}
	if sc.parent != nil {
		tr.ParentID = sc.parent.ID
	}
	// Decisions that fix the task run's shape are taken once, here.
	var failure string
	if t.Flowable() {
		failure = s.decide(t, tr)
	}
	s.emit(&Event{Type: EvTaskRunCreated, TaskRun: tr})
	tr, ok := s.e.TaskRun(tr.ID)
	if !ok || s.err != nil {
		return nil
	}
	if t.RunIf != "" {
		ok, err := s.condition(t.RunIf, tr)
		if err != nil {
			s.logf(tr, "ERROR", "runIf of task %s: %v", t.ID, err)
			s.setTaskRunState(tr, Failed, "runIf: "+err.Error())
			return tr
		}
		if !ok {
			s.setTaskRunState(tr, Skipped, "")
			return tr
		}
	}
	if failure != "" {
		s.logf(tr, "ERROR", "task %s: %s", t.ID, failure)
		s.setTaskRunState(tr, Failed, failure)
		return tr
	}
	if t.Flowable() {
		s.startFlowable(t, tr)
		return tr
	}
	s.dispatch(tr, 1)
	return tr
}

// condition renders an expression and reads it as a boolean.
func (s *step) condition(src string, tr *TaskRun) (bool, error) {
	v, err := s.renderValue(src, s.vars(tr))
	if err != nil {
		return false, err
	}
	return expr.Truthy(v), nil
}

// task returns the flow's task of a task run.
func (s *step) task(tr *TaskRun) (*flow.Task, bool) {
	return s.f.FindTask(tr.TaskID)
}
