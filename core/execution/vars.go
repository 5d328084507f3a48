package execution

import (
	"strings"
	"time"

	"github.com/kiteflow/kite/core/flow"
)

func (s *step) vars(tr *TaskRun) map[string]any {
	v := Vars(s.f, s.e, tr)
	if s.m.Env != nil {
		v["envs"] = s.m.Env
	}
	return v
}

// EnvVars reads the envs variable from environment entries (KEY=value):
// variables named KITE_X or KESTRA_X become envs.x.
func EnvVars(environ []string) map[string]any {
	out := map[string]any{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		for _, prefix := range []string{"KITE_", "KESTRA_"} {
			if name, found := strings.CutPrefix(k, prefix); found && name != "" {
				out[strings.ToLower(name)] = v
			}
		}
	}
	return out
}

// Vars returns the variables expressions see while running task run tr of
// execution e (tr nil: at the execution's level, for flow outputs):
// flow, execution, inputs, vars, labels, outputs, trigger and, for a task
// run, task, taskrun, parent and parents. Iteration outputs are nested by
// iteration value, outermost first: outputs.task[outer][inner].
func Vars(f *flow.Flow, e *Execution, tr *TaskRun) map[string]any {
	start := time.Time{}
	if len(e.History) > 0 {
		start = e.History[0].Date
	}
	v := map[string]any{
		"flow": map[string]any{"id": f.ID, "namespace": f.Namespace, "revision": f.Revision},
		"execution": map[string]any{
			"id": e.ID, "startDate": formatTime(start), "originalId": e.ID, "state": string(e.State),
		},
		"inputs":  nest(e.Inputs),
		"vars":    orEmpty(f.Variables),
		"labels":  nestLabels(e.Labels),
		"outputs": outputsOf(e),
	}
	if e.Trigger != nil {
		v["trigger"] = e.Trigger
	}
	if tr == nil {
		return v
	}
	t, _ := f.FindTask(tr.TaskID)
	typ := ""
	if t != nil {
		typ = t.TypeName
	}
	v["task"] = map[string]any{"id": tr.TaskID, "type": typ}
	// attemptsCount counts the attempts before the live one, as in Kestra.
	attempts := len(tr.Attempts)
	if attempts > 0 && !tr.Attempts[attempts-1].State.Terminal() {
		attempts--
	}
	taskrun := map[string]any{
		"id": tr.ID, "taskId": tr.TaskID, "parentId": tr.ParentID,
		"attemptsCount": attempts, "startDate": formatTime(firstDate(tr)),
	}
	if tr.HasValue {
		taskrun["value"] = tr.Value
		taskrun["iteration"] = tr.Iteration
	}
	v["taskrun"] = taskrun
	// parent is the enclosing flowable's task run, parents every ancestor,
	// nearest first.
	var parents []any
	for p := tr.ParentID; p != ""; {
		ptr, ok := e.TaskRun(p)
		if !ok {
			break
		}
		ptaskrun := map[string]any{"id": ptr.ID, "taskId": ptr.TaskID}
		if ptr.HasValue {
			ptaskrun["value"] = ptr.Value
		}
		parents = append(parents, map[string]any{"taskrun": ptaskrun})
		p = ptr.ParentID
	}
	if len(parents) > 0 {
		v["parents"] = parents
		v["parent"] = parents[0]
	}
	return v
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func firstDate(tr *TaskRun) time.Time {
	if len(tr.History) > 0 {
		return tr.History[0].Date
	}
	return time.Time{}
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// nest turns dotted keys ("nested.string") into nested maps, as Kestra
// exposes inputs; a plain key that clashes with a nested one is kept as is.
func nest(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, val := range m {
		parts := strings.Split(k, ".")
		cur := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				if _, taken := cur[p]; taken {
					cur = nil
					break
				}
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		if cur == nil {
			out[k] = val
			continue
		}
		cur[parts[len(parts)-1]] = val
	}
	return out
}

func nestLabels(ls []flow.Label) map[string]any {
	m := make(map[string]any, len(ls))
	for _, l := range ls {
		m[l.Key] = l.Value
	}
	return nest(m)
}

// valueChain returns the iteration values of a task run, outermost first.
func valueChain(e *Execution, tr *TaskRun) []string {
	var chain []string
	cur := tr
	for cur != nil && cur.HasValue {
		chain = append(chain, cur.Value)
		cur = iterationOwner(e, cur)
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain
}

// iterationOwner is the ForEach task run whose iteration tr belongs to.
func iterationOwner(e *Execution, tr *TaskRun) *TaskRun {
	for p := tr.ParentID; p != ""; {
		ptr, ok := e.TaskRun(p)
		if !ok {
			return nil
		}
		if ptr.Decision == DecisionValues {
			return ptr
		}
		p = ptr.ParentID
	}
	return nil
}

// outputsOf builds the outputs variable: task id → outputs, or for tasks
// inside iterations task id → value → … → outputs.
func outputsOf(e *Execution) map[string]any {
	out := map[string]any{}
	for _, tr := range e.TaskRuns {
		if tr.Outputs == nil {
			continue
		}
		if !tr.HasValue {
			out[tr.TaskID] = tr.Outputs
			continue
		}
		chain := valueChain(e, tr)
		m, ok := out[tr.TaskID].(map[string]any)
		if !ok {
			m = map[string]any{}
			out[tr.TaskID] = m
		}
		for _, val := range chain[:len(chain)-1] {
			next, ok := m[val].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[val] = next
			}
			m = next
		}
		m[chain[len(chain)-1]] = tr.Outputs
	}
	return out
}
