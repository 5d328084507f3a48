package execution

import (
	"fmt"
	"strconv"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

// decide takes, when a flowable task run is created, the decisions that fix
// its shape: the branch of an If or a Switch, the values of a ForEach. A
// failure to decide (an expression that does not render) is returned as a
// message; the task run then fails.
func (s *step) decide(t *flow.Task, tr *TaskRun) string {
	vars := s.vars(tr)
	switch t.Type {
	case "if":
		v, err := s.renderValue(t.Props["condition"], vars)
		if err != nil {
			return "condition: " + err.Error()
		}
		tr.Decision = "else"
		if expr.Truthy(v) {
			tr.Decision = "then"
		}
	case "switch":
		v, err := s.renderString(t.Props["value"], vars)
		if err != nil {
			return "value: " + err.Error()
		}
		tr.Decision = "defaults"
		if _, ok := t.Cases("cases")[v]; ok {
			tr.Decision = "cases." + v
		}
		tr.Outputs = map[string]any{"value": v, "defaults": tr.Decision == "defaults"}
		if tr.Decision == "defaults" && len(t.Tasks("defaults")) == 0 {
			return fmt.Sprintf("no case matches %q and there are no defaults", v)
		}
	case "for-each", "each-sequential", "each-parallel":
		name := "values"
		if _, ok := t.Props[name]; !ok {
			name = "value"
		}
		v, err := s.renderValue(t.Props[name], vars)
		if err != nil {
			return name + ": " + err.Error()
		}
		items, err := iterationValues(v)
		if err != nil {
			return name + ": " + err.Error()
		}
		tr.Items, tr.Decision = items, DecisionValues
	}
	return ""
}

// iterationValues reads ForEach values: a list, or a string holding a JSON
// list. Each value becomes a string, as Kestra's taskrun.value is (maps and
// lists as JSON).
func iterationValues(v any) ([]string, error) {
	if str, ok := v.(string); ok {
		parsed, err := expr.ParseJSON(str)
		if _, isList := parsed.([]any); err != nil || !isList {
			return nil, fmt.Errorf("expected a list or a JSON array, got %q", str)
		}
		v = parsed
	}
	if v == nil {
		return nil, fmt.Errorf("expected a list, got null")
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("expected a list, got %s", expr.Stringify(v))
	}
	out := make([]string, len(list))
	for i, item := range list {
		if item == nil {
			return nil, fmt.Errorf("value %d is null", i)
		}
		out[i] = expr.Stringify(item)
	}
	return out, nil
}

// startFlowable starts a flowable task run that was just created.
func (s *step) startFlowable(t *flow.Task, tr *TaskRun) {
	switch t.Type {
	case "pause":
		s.startPause(t, tr)
		return
	case "subflow":
		s.setTaskRunState(tr, Running, "")
		s.startSubflow(t, tr)
		return
	}
	s.setTaskRunState(tr, Running, "")
	s.resolveFlowable(t, tr)
}

// resolveFlowable advances a running flowable task run's children and ends
// it once they are done.
func (s *step) resolveFlowable(t *flow.Task, tr *TaskRun) {
	if tr.State.Terminal() || s.err != nil {
		return
	}
	sc := &scope{parent: tr, iter: -1, tasks: t.Tasks("tasks"), errors: t.Tasks("errors"), finally: t.Tasks("finally")}
	switch t.Type {
	case "sequential":
	case "allow-failure":
		if st, done := s.resolveScope(sc); done {
			if st == Failed {
				st = Warning
			}
			s.setTaskRunState(tr, st, "")
		}
		return
	case "parallel":
		sc.parallel, sc.concurrent = true, intProp(t, "concurrent")
	case "if":
		sc.main, sc.tasks = tr.Decision, t.Tasks(tr.Decision)
	case "switch":
		sc.main = tr.Decision
		if tr.Decision == "defaults" {
			sc.tasks = t.Tasks("defaults")
		} else {
			sc.tasks = t.Cases("cases")[tr.Decision[len("cases."):]]
		}
	case "for-each", "each-sequential", "each-parallel":
		s.resolveIterations(t, tr, sc)
		return
	case "pause":
		if tr.State == Paused {
			return
		}
	case "subflow":
		return // ends with ChildEnded
	default:
		s.err = fmt.Errorf("execution %s: no executor logic for flowable type %q", s.e.ID, t.Type)
		return
	}
	if st, done := s.resolveScope(sc); done {
		s.setTaskRunState(tr, st, "")
	}
}

// resolveIterations runs a ForEach: each value's tasks in order, up to
// concurrencyLimit values at once (0: all). EachSequential runs one value
// at a time; EachParallel runs every task of every value at once.
func (s *step) resolveIterations(t *flow.Task, tr *TaskRun, body *scope) {
	limit, parallelTasks := 1, false
	switch t.Type {
	case "for-each":
		limit = intPropDefault(t, "concurrencyLimit", 1)
	case "each-parallel":
		limit, parallelTasks = intProp(t, "concurrent"), true
	}
	// The leading iterations that all ended are not looked at again.
	first, st := tr.IterationsDone, Success
	if first > 0 {
		st = tr.IterationsState
	}
	failed := st == Failed || st == Killed
	running, active := false, 0
	prefix, prefixState, prefixOpen := first, st, true
	for i := first; i < len(tr.Items); i++ {
		v := tr.Items[i]
		if s.err != nil {
			return
		}
		sc := &scope{parent: tr, iter: i, value: v, tasks: body.tasks, parallel: parallelTasks}
		started := len(s.runsOf(sc, "tasks")) > 0
		// Without a limit every value starts at once, as in Kestra, even
		// after one failed; with a limit none starts after a failure.
		if !started && ((failed && limit > 0) || s.e.State == Killing || (limit > 0 && active >= limit)) {
			if !failed {
				running = true
			}
			break
		}
		ist, done := s.resolveScope(sc)
		if !done {
			running = true
			active++
			prefixOpen = false
			continue
		}
		if ist == Failed || ist == Killed {
			failed = true
		}
		st = worst(st, ist)
		if prefixOpen {
			prefix, prefixState = i+1, st
		}
	}
	if prefix > tr.IterationsDone {
		s.emit(&Event{Type: EvIterations, TaskRunID: tr.ID, Done: prefix, State: prefixState})
	}
	if running {
		return
	}
	// The task-level errors and finally lists run once, after every value.
	tail := &scope{parent: tr, iter: -1, errors: t.Tasks("errors"), finally: t.Tasks("finally")}
	if st == Failed && len(tail.errors) > 0 {
		if _, done := s.resolveList(tail, "errors", tail.errors, false, 0); !done {
			return
		}
	}
	if len(tail.finally) > 0 {
		fst, done := s.resolveList(tail, "finally", tail.finally, false, 0)
		if !done {
			return
		}
		st = worst(st, fst)
	}
	s.setTaskRunState(tr, st, "")
}

func intProp(t *flow.Task, name string) int { return intPropDefault(t, name, 0) }

func intPropDefault(t *flow.Task, name string, def int) int {
	switch v := t.Props[name].(type) {
	case int:
		return v
	case float64:
		return int(v)
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func boolProp(t *flow.Task, name string, def bool) bool {
	switch v := t.Props[name].(type) {
	case bool:
		return v
	case string:
		return expr.Truthy(v)
	}
	return def
}
