package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// execution is what `kite flow test --output json` prints: one execution, with
// the executions of its Subflow tasks flattened into SubflowExecutions.
type execution struct {
	ID                string         `json:"id"`
	Namespace         string         `json:"namespace"`
	FlowID            string         `json:"flowId"`
	FlowRevision      int            `json:"flowRevision"`
	State             string         `json:"state"`
	Inputs            map[string]any `json:"inputs"`
	Labels            []label        `json:"labels"`
	Outputs           any            `json:"outputs"` // any, not a map: null and {} differ for isNull
	TaskRuns          []taskRun      `json:"taskRuns"`
	SubflowExecutions []execution    `json:"subflowExecutions"`
}

type label struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// taskRun is one entry of the execution's taskRuns, in creation order.
type taskRun struct {
	ID               string         `json:"id"`
	TaskID           string         `json:"taskId"`
	ParentTaskRunID  string         `json:"parentTaskRunId"`
	Value            any            `json:"value"` // ForEach iteration value; nil when none
	Iteration        *int           `json:"iteration"`
	Branch           string         `json:"branch"`
	State            string         `json:"state"`
	Attempts         []attempt      `json:"attempts"`
	Outputs          map[string]any `json:"outputs"`
	Error            string         `json:"error"`
	ChildExecutionID string         `json:"childExecutionId"`
}

type attempt struct {
	State string `json:"state"`
}

// value returns the task run's iteration value as a string (an object or list
// value as compact JSON, as Kestra keys it) and whether it has one.
func (tr *taskRun) value() (string, bool) {
	if tr.Value == nil {
		return "", false
	}
	return kestraString(tr.Value), true
}

// valueChain returns the ForEach iteration values that lead to tr, outermost
// first, tr's own last: the list Kestra's findTaskRunByTaskIdAndValue compares
// with (Execution.findParentsValues: the parents, reversed so that the root
// comes first, then the task run, keeping those with a value). The key
// "2-1-1_switch-number-1[b,1]" of each-switch.yaml, whose format prints
// "{{parents[0].taskrun.value}} {{parents[1].taskrun.value}}" = "2 b", shows
// the order: b is the outer ForEach's value.
//
// Kestra gives a value only to the direct children of a ForEach; kite gives
// every task run inside an iteration the innermost value. So that both read
// the same, a value is kept only where it starts a level: the task run has a
// value, and its parent has none, a different one, or is a ForEach (forEach
// holds the ids of the flow's ForEach tasks; without it two nested iterations
// with equal values would collapse into one).
func (x *execution) valueChain(tr *taskRun, forEach map[string]bool) []string {
	byID := make(map[string]*taskRun, len(x.TaskRuns))
	for i := range x.TaskRuns {
		byID[x.TaskRuns[i].ID] = &x.TaskRuns[i]
	}
	var chain []string
	for cur, hops := tr, 0; cur != nil && hops <= len(x.TaskRuns); hops++ {
		parent := byID[cur.ParentTaskRunID]
		if cur.ParentTaskRunID == "" {
			parent = nil
		}
		if v, ok := cur.value(); ok {
			pv, pok := "", false
			if parent != nil {
				pv, pok = parent.value()
			}
			if !pok || pv != v || forEach[parent.TaskID] {
				chain = append(chain, v)
			}
		}
		cur = parent
	}
	slices.Reverse(chain)
	return chain
}

// selector names task runs in an expectation key: "taskRunList[i]" (position
// in creation order), "taskId" or "taskId[v1,v2]" (ForEach values, outermost
// first).
type selector struct {
	index     int // -1 unless positional
	taskID    string
	values    []string
	hasValues bool
}

func (s selector) String() string {
	switch {
	case s.index >= 0:
		return fmt.Sprintf("taskRunList[%d]", s.index)
	case s.hasValues:
		return s.taskID + "[" + strings.Join(s.values, ",") + "]"
	default:
		return s.taskID
	}
}

// annotation is a trailing remark in parentheses that some keys carry, such as
// "taskRunList[2] (child)" or "execution.outputs.status (in order)".
var annotation = regexp.MustCompile(`\s+\([^()]*\)$`)

// stripAnnotation removes a trailing remark in parentheses from a key.
func stripAnnotation(key string) string {
	return annotation.ReplaceAllString(key, "")
}

// parseSelector reads a selector at the start of key and returns the rest of
// the key after it (without the separating dot).
func parseSelector(key string) (selector, string, error) {
	key = stripAnnotation(key)
	s := selector{index: -1}
	if rest, ok := strings.CutPrefix(key, "taskRunList["); ok {
		num, after, ok := strings.Cut(rest, "]")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 {
			return s, "", fmt.Errorf("bad position in %q", key)
		}
		s.index = i
		return s, strings.TrimPrefix(after, "."), nil
	}
	end := strings.IndexAny(key, ".[")
	if end < 0 {
		s.taskID = key
		return s, "", nil
	}
	s.taskID = key[:end]
	if s.taskID == "" {
		return s, "", fmt.Errorf("no task id in %q", key)
	}
	rest := key[end:]
	if strings.HasPrefix(rest, "[") {
		inner, after, ok := strings.Cut(rest[1:], "]")
		if !ok {
			return s, "", fmt.Errorf("unclosed [ in %q", key)
		}
		s.hasValues = true
		for v := range strings.SplitSeq(inner, ",") {
			s.values = append(s.values, strings.TrimSpace(v))
		}
		rest = after
	}
	return s, strings.TrimPrefix(rest, "."), nil
}

// find returns the task run a selector names: the one at that position, or
// the first in creation order with that task id (and that value chain), as
// Kestra's tests take findTaskRunsByTaskId(id).getFirst().
func (x *execution) find(s selector, forEach map[string]bool) (*taskRun, error) {
	if s.index >= 0 {
		if s.index >= len(x.TaskRuns) {
			return nil, fmt.Errorf("no %s: %d task runs", s, len(x.TaskRuns))
		}
		return &x.TaskRuns[s.index], nil
	}
	var chains []string
	for i := range x.TaskRuns {
		tr := &x.TaskRuns[i]
		if tr.TaskID != s.taskID {
			continue
		}
		if !s.hasValues {
			return tr, nil
		}
		chain := x.valueChain(tr, forEach)
		if slices.Equal(chain, s.values) {
			return tr, nil
		}
		chains = append(chains, "["+strings.Join(chain, ",")+"]")
	}
	if len(chains) > 0 {
		return nil, fmt.Errorf("no task run %s (%s has %s)", s, s.taskID, strings.Join(chains, " "))
	}
	return nil, fmt.Errorf("no task run %s", s.taskID)
}

// resolved is where an output key led: the value (nil when the path ends on
// nothing) and the task run it belongs to, if any.
type resolved struct {
	value any
	tr    *taskRun
}

// resolveOutput finds the value an expect.outputs key names:
//
//	execution.outputs          the flow outputs themselves
//	execution.outputs.<id>...  one flow output, and a path into it
//	taskRunList[i].<path>      outputs of the i-th task run (creation order)
//	taskId.<path>              outputs of the first task run of taskId
//	taskId[v1,v2].<path>       outputs of the task run of taskId in ForEach
//	                           iterations v1 (outermost), v2, ...
//
// A path is dot-separated map keys or list indexes. A missing key gives a nil
// value, as Java's Map.get does; a task run that does not exist is an error.
func (x *execution) resolveOutput(key string, forEach map[string]bool) (resolved, error) {
	key = stripAnnotation(key)
	if key == "execution.outputs" {
		return resolved{value: x.Outputs}, nil
	}
	if path, ok := strings.CutPrefix(key, "execution.outputs."); ok {
		return resolved{value: walk(x.Outputs, path)}, nil
	}
	sel, path, err := parseSelector(key)
	if err != nil {
		return resolved{}, err
	}
	tr, err := x.find(sel, forEach)
	if err != nil {
		return resolved{}, err
	}
	var outputs any
	if tr.Outputs != nil {
		outputs = tr.Outputs
	}
	return resolved{value: walk(outputs, path), tr: tr}, nil
}

// walk follows a dot-separated path of map keys and list indexes.
func walk(v any, path string) any {
	if path == "" {
		return v
	}
	for part := range strings.SplitSeq(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

// kestraString renders a value as Kestra's templates print it: strings as
// they are, whole numbers without a decimal point, maps and lists as compact
// JSON, null as "null".
func kestraString(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case float64:
		return strconv.FormatFloat(c, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(c)
	case nil:
		return "null"
	default:
		b, err := json.Marshal(c)
		if err != nil {
			return fmt.Sprint(c)
		}
		return string(b)
	}
}
