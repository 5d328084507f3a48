package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// checkOptions are what the comparison needs besides the execution.
type checkOptions struct {
	// forEach holds the ids of the flow's ForEach tasks (see valueChain).
	forEach map[string]bool
	// now is the time withinSecondsOfNow measures from.
	now time.Time
	// labelsNotPassed is non-empty when the test set execution labels that
	// `kite flow test` cannot set (start_labels); labels are then not checked.
	labelsNotPassed string
	// ignoredOutputs are output keys the harness cannot reproduce, with why.
	ignoredOutputs map[string]string
}

// verdict is the comparison of one execution with one expect: what differs,
// and which expect fields one execution cannot show.
type verdict struct {
	Reasons    []string
	NotChecked []string
}

func (v *verdict) fail(format string, args ...any) {
	v.Reasons = append(v.Reasons, fmt.Sprintf(format, args...))
}

func (v *verdict) skip(field string) {
	v.NotChecked = append(v.NotChecked, field)
}

// checkedFields are the expect fields compared, in the order reasons are given.
var checkedFields = []string{
	"state", "task_runs", "outputs", "task_states", "attempts", "absent_tasks",
	"task_order", "failed_task_runs", "labels_include", "labels_exactly", "children", "child",
}

// scope is the execution an expect speaks of, with the executions its
// placeholders may name.
type scope struct {
	x      *execution
	parent *execution // the execution whose Subflow task started x; nil at the top
	top    *execution
}

// check compares an execution with an expect (normalised to JSON kinds by
// normalise). prefix starts every reason and field name ("" or "child switch ").
func check(exp map[string]any, s scope, opts checkOptions, prefix string) verdict {
	var v verdict
	c := checker{scope: s, opts: opts, v: &v, prefix: prefix}
	for _, field := range checkedFields {
		if want, ok := exp[field]; ok {
			c.field(field, want)
		}
	}
	for _, field := range slices.Sorted(maps.Keys(exp)) {
		if !slices.Contains(checkedFields, field) {
			v.skip(prefix + field)
		}
	}
	return v
}

type checker struct {
	scope
	opts   checkOptions
	v      *verdict
	prefix string
}

func (c *checker) fail(format string, args ...any) {
	c.v.fail(c.prefix+format, args...)
}

func (c *checker) skip(field string) {
	c.v.skip(c.prefix + field)
}

func (c *checker) field(field string, want any) {
	x := c.x
	switch field {
	case "state":
		if w, ok := want.(string); !ok {
			c.skip(field)
		} else if x.State != w {
			c.fail("state %s, want %s", orNone(x.State), w)
		}
	case "task_runs":
		c.count(field, "task_runs", len(x.TaskRuns), want)
	case "failed_task_runs":
		n := 0
		for _, tr := range x.TaskRuns {
			if tr.State == "FAILED" {
				n++
			}
		}
		c.count(field, "failed_task_runs", n, want)
	case "outputs":
		c.outputs(want)
	case "task_states", "attempts", "task_order":
		c.perTaskRun(field, want)
	case "absent_tasks":
		list, ok := want.([]any)
		if !ok {
			c.skip(field)
			return
		}
		for _, id := range list {
			for _, tr := range x.TaskRuns {
				if tr.TaskID == kestraString(id) {
					c.fail("absent_tasks: %s ran (%s)", tr.TaskID, orNone(tr.State))
					break
				}
			}
		}
	case "labels_include", "labels_exactly":
		c.labels(field, want)
	case "children":
		c.children(want)
	case "child":
		c.child(want)
	}
}

// count compares a number with an int or {atLeast: n} / {atMost: n}.
func (c *checker) count(field, what string, got int, want any) {
	switch w := want.(type) {
	case float64:
		if float64(got) != w {
			c.fail("%s %d, want %s", what, got, kestraString(w))
		}
	case map[string]any:
		for _, op := range slices.Sorted(maps.Keys(w)) {
			n, ok := w[op].(float64)
			switch {
			case !ok || (op != "atLeast" && op != "atMost"):
				c.skip(field + "." + op)
			case op == "atLeast" && float64(got) < n:
				c.fail("%s %d, want at least %s", what, got, kestraString(n))
			case op == "atMost" && float64(got) > n:
				c.fail("%s %d, want at most %s", what, got, kestraString(n))
			}
		}
	default:
		c.skip(field)
	}
}

// perTaskRun checks task_states (selector: state), attempts (selector: count)
// and task_order (selector: task id).
func (c *checker) perTaskRun(field string, want any) {
	m, ok := want.(map[string]any)
	if !ok {
		c.skip(field)
		return
	}
	for _, key := range slices.Sorted(maps.Keys(m)) {
		sel, rest, err := parseSelector(key)
		if err == nil && rest != "" {
			err = fmt.Errorf("unexpected %q after the task run", rest)
		}
		if err != nil {
			c.fail("%s %s: %v", field, key, err)
			continue
		}
		tr, err := c.x.find(sel, c.opts.forEach)
		if err != nil {
			c.fail("%s: %v", field, err)
			continue
		}
		switch field {
		case "task_states":
			if w := kestraString(m[key]); tr.State != w {
				c.fail("task_states %s %s, want %s", sel, orNone(tr.State), w)
			}
		case "attempts":
			c.count(field, "attempts "+sel.String(), len(tr.Attempts), m[key])
		case "task_order":
			if w := kestraString(m[key]); tr.TaskID != w {
				c.fail("task_order %s is %s, want %s", sel, tr.TaskID, w)
			}
		}
	}
}

func (c *checker) outputs(want any) {
	m, ok := want.(map[string]any)
	if !ok {
		c.skip("outputs")
		return
	}
	for _, key := range slices.Sorted(maps.Keys(m)) {
		if why, ok := c.opts.ignoredOutputs[key]; ok {
			c.skip(fmt.Sprintf("outputs %s (%s)", key, why))
			continue
		}
		got, err := c.x.resolveOutput(key, c.opts.forEach)
		if err != nil {
			c.fail("outputs %s: %v", key, err)
			continue
		}
		matchers, isMatcher := m[key].(map[string]any)
		if !isMatcher {
			w, ok := c.substitute(m[key], got.tr)
			if !ok {
				c.skip("outputs " + key + " (placeholder)")
				continue
			}
			if !equalish(got.value, w) {
				c.fail("outputs %s = %s, want %s", key, show(got.value), show(w))
			}
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(matchers)) {
			c.matcher(key, got, name, matchers[name])
		}
	}
}

// matcher applies one matcher of an expect.outputs entry.
func (c *checker) matcher(key string, got resolved, name string, arg any) {
	text := kestraString(got.value)
	describe := func(what string, arg any) {
		c.fail("outputs %s = %s, want %s %s", key, show(got.value), what, show(arg))
	}
	switch name {
	case "contains", "startsWith":
		want, ok := c.substitute(arg, got.tr)
		if !ok {
			c.skip("outputs " + key + " (placeholder)")
			return
		}
		s, isString := want.(string)
		if !isString {
			c.skip("outputs " + key + "." + name)
			return
		}
		if name == "contains" && (got.value == nil || !strings.Contains(text, s)) {
			describe("one containing", s)
		}
		if name == "startsWith" && (got.value == nil || !strings.HasPrefix(text, s)) {
			describe("one starting with", s)
		}
	case "regex":
		s, isString := arg.(string)
		if !isString {
			c.skip("outputs " + key + ".regex")
			return
		}
		re, err := regexp.Compile(`^(?:` + s + `)$`) // Java's matches(): the whole string
		if err != nil {
			c.fail("outputs %s: regex %q: %v", key, s, err)
			return
		}
		if got.value == nil || !re.MatchString(text) {
			describe("one matching", s)
		}
	case "hasItems":
		items, ok := arg.([]any)
		if !ok {
			items = []any{arg}
		}
		list, ok := asJSON(got.value).([]any)
		if !ok {
			describe("a list with", items)
			return
		}
		for _, item := range items {
			if !slices.ContainsFunc(list, func(e any) bool { return equalish(e, item) }) {
				describe("a list with", item)
			}
		}
	case "isNull":
		isNull, ok := arg.(bool)
		if !ok {
			c.skip("outputs " + key + ".isNull")
			return
		}
		if isNull != (got.value == nil) {
			if isNull {
				c.fail("outputs %s = %s, want null", key, show(got.value))
			} else {
				c.fail("outputs %s = null, want a value", key)
			}
		}
	case "withinSecondsOfNow":
		secs, ok := arg.(float64)
		if !ok {
			c.skip("outputs " + key + ".withinSecondsOfNow")
			return
		}
		at, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			c.fail("outputs %s = %s, want a time (RFC 3339)", key, show(got.value))
			return
		}
		if d := c.opts.now.Sub(at).Abs(); d > time.Duration(secs*float64(time.Second)) {
			c.fail("outputs %s = %s, %s from now, want within %ss", key, text, d.Round(time.Second), kestraString(secs))
		}
	case "containsOutput":
		other, isString := arg.(string)
		if !isString {
			c.skip("outputs " + key + ".containsOutput")
			return
		}
		ref, err := c.x.resolveOutput(other, c.opts.forEach)
		if err != nil {
			c.fail("outputs %s: containsOutput %s: %v", key, other, err)
			return
		}
		if ref.value == nil {
			c.fail("outputs %s: containsOutput %s: that output is null", key, other)
			return
		}
		if got.value == nil || !strings.Contains(text, kestraString(ref.value)) {
			c.fail("outputs %s = %s, want one containing %s = %s", key, show(got.value), other, show(ref.value))
		}
	case "size":
		n, ok := arg.(float64)
		if !ok {
			c.skip("outputs " + key + ".size")
			return
		}
		size := -1
		switch g := got.value.(type) {
		case map[string]any:
			size = len(g)
		case []any:
			size = len(g)
		case string:
			size = len([]rune(g))
		}
		if float64(size) != n {
			c.fail("outputs %s = %s, want size %s", key, show(got.value), kestraString(n))
		}
	default:
		c.skip("outputs " + key + "." + name)
	}
}

func (c *checker) labels(field string, want any) {
	m, ok := want.(map[string]any)
	if !ok {
		c.skip(field)
		return
	}
	if c.opts.labelsNotPassed != "" {
		c.skip(field + " (" + c.opts.labelsNotPassed + ")")
		return
	}
	got := map[string]string{}
	for _, l := range c.x.Labels {
		got[l.Key] = l.Value
	}
	for _, key := range slices.Sorted(maps.Keys(m)) {
		w, ok := c.substitute(m[key], nil)
		if !ok {
			c.skip(field + " " + key + " (placeholder)")
			continue
		}
		g, present := got[key]
		switch {
		case !present:
			c.fail("labels: no %s, want %s", key, show(w))
		case g != kestraString(w):
			c.fail("labels %s = %s, want %s", key, show(g), show(w))
		}
	}
	if field == "labels_exactly" {
		for _, key := range slices.Sorted(maps.Keys(got)) {
			if _, ok := m[key]; !ok {
				c.fail("labels: unexpected %s = %s", key, show(got[key]))
			}
		}
	}
}

// children checks {flowId: state} against the subflow executions.
func (c *checker) children(want any) {
	m, ok := want.(map[string]any)
	if !ok {
		c.skip("children")
		return
	}
	for _, flow := range slices.Sorted(maps.Keys(m)) {
		sub := c.subflow(flow)
		switch {
		case sub == nil:
			c.fail("children: no execution of %s", flow)
		case sub.State != kestraString(m[flow]):
			c.fail("children %s: state %s, want %s", flow, orNone(sub.State), kestraString(m[flow]))
		}
	}
}

// child checks {flow, state, task_runs, labels_…} against the first subflow
// execution of that flow, as an expect of its own.
func (c *checker) child(want any) {
	m, ok := want.(map[string]any)
	flow, named := m["flow"].(string)
	if !ok || !named {
		c.skip("child")
		return
	}
	sub := c.subflow(flow)
	if sub == nil {
		c.fail("child: no execution of %s", flow)
		return
	}
	rest := maps.Clone(m)
	delete(rest, "flow")
	v := check(rest, scope{x: sub, parent: c.parentOf(sub), top: c.top}, checkOptions{now: c.opts.now, labelsNotPassed: c.opts.labelsNotPassed}, c.prefix+"child "+flow+" ")
	c.v.Reasons = append(c.v.Reasons, v.Reasons...)
	for _, f := range v.NotChecked {
		// "child switch trigger" is counted as "child.trigger".
		c.v.NotChecked = append(c.v.NotChecked, c.prefix+"child."+strings.TrimPrefix(f, c.prefix+"child "+flow+" "))
	}
}

// subflow returns the first execution of flow among those x started,
// directly or not.
func (c *checker) subflow(flow string) *execution {
	for i := range c.x.SubflowExecutions {
		if c.x.SubflowExecutions[i].FlowID == flow {
			return &c.x.SubflowExecutions[i]
		}
	}
	return nil
}

// parentOf returns the execution whose task run started sub: c.x, or one of
// its subflow executions; c.x when no task run names sub.
func (c *checker) parentOf(sub *execution) *execution {
	candidates := []*execution{c.x}
	for i := range c.x.SubflowExecutions {
		candidates = append(candidates, &c.x.SubflowExecutions[i])
	}
	for _, p := range candidates {
		for _, tr := range p.TaskRuns {
			if tr.ChildExecutionID != "" && tr.ChildExecutionID == sub.ID {
				return p
			}
		}
	}
	return c.x
}

// placeholder matches the stand-ins for ids that the expectations use, such
// as "<execution id>" or "<task run id of update-labels>".
var placeholder = regexp.MustCompile(`<([^<>]* id(?: of [^<>]+)?)>`)

// substitute replaces the placeholders of a string expectation with the ids
// they stand for; false when one cannot be resolved from this execution. tr
// is the task run an output belongs to, for "<child execution id>".
func (s scope) substitute(want any, tr *taskRun) (any, bool) {
	text, ok := want.(string)
	if !ok {
		return want, true
	}
	resolvedAll := true
	out := placeholder.ReplaceAllStringFunc(text, func(m string) string {
		id, ok := s.resolvePlaceholder(placeholder.FindStringSubmatch(m)[1], tr)
		if !ok {
			resolvedAll = false
			return m
		}
		return id
	})
	return out, resolvedAll
}

func (s scope) resolvePlaceholder(name string, tr *taskRun) (string, bool) {
	switch name {
	case "execution id":
		return s.x.ID, true
	case "parent execution id", "parent id":
		if s.parent == nil {
			return "", false
		}
		return s.parent.ID, true
	case "child execution id":
		if tr != nil && tr.ChildExecutionID != "" {
			return tr.ChildExecutionID, true
		}
		if len(s.x.SubflowExecutions) == 1 {
			return s.x.SubflowExecutions[0].ID, true
		}
		return "", false
	}
	if task, ok := strings.CutPrefix(name, "task run id of "); ok {
		for _, r := range s.x.TaskRuns {
			if r.TaskID == task {
				return r.ID, true
			}
		}
		return "", false
	}
	// "<subflow-parent execution id>": the execution of that flow.
	if flow, ok := strings.CutSuffix(name, " execution id"); ok {
		known := []*execution{s.x, s.parent, s.top}
		if s.top != nil {
			for i := range s.top.SubflowExecutions {
				known = append(known, &s.top.SubflowExecutions[i])
			}
		}
		for _, e := range known {
			if e != nil && e.FlowID == flow {
				return e.ID, true
			}
		}
	}
	return "", false
}

// equalish says whether an output equals an expected scalar: equal as JSON
// values (numbers compared as numbers); else, where one side is a string
// holding a JSON object or list, equal once parsed; else equal as Kestra
// prints them, so that 1 and "1", or false and "false", match. Kestra's Return
// outputs are strings, and the corpus writes numbers both ways.
func equalish(got, want any) bool {
	if reflect.DeepEqual(got, want) {
		return true
	}
	if got == nil || want == nil {
		return false
	}
	if g, w := asJSON(got), asJSON(want); isComposite(g) || isComposite(w) {
		return reflect.DeepEqual(g, w)
	}
	return kestraString(got) == kestraString(want)
}

// asJSON parses a string that holds a JSON object or list; anything else is
// returned as it is.
func asJSON(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	if t := strings.TrimSpace(s); !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "[") {
		return v
	}
	var parsed any
	if err := json.Unmarshal([]byte(s), &parsed); err != nil {
		return v
	}
	return parsed
}

func isComposite(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// normalise turns a YAML value into the kinds encoding/json decodes to
// (float64 numbers, map[string]any), so that expectations and executions
// compare directly.
func normalise(v any) any {
	switch c := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(c))
		for k, e := range c {
			out[k] = normalise(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(c))
		for k, e := range c {
			out[fmt.Sprint(k)] = normalise(e)
		}
		return out
	case []any:
		out := make([]any, len(c))
		for i, e := range c {
			out[i] = normalise(e)
		}
		return out
	case int:
		return float64(c)
	case int64:
		return float64(c)
	case uint64:
		return float64(c)
	case float32:
		return float64(c)
	default:
		return v
	}
}

// show renders a value for a report line: JSON, shortened.
func show(v any) string {
	b, err := json.Marshal(v)
	s := string(b)
	if err != nil {
		s = fmt.Sprint(v)
	}
	if r := []rune(s); len(r) > 120 {
		s = string(r[:117]) + "…"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
