package flow

import (
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Identifier rules, as Kestra has them.
var (
	flowIDPattern    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)
	namespacePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	taskIDPattern    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`)
	inputIDPattern   = regexp.MustCompile(`^[a-zA-Z0-9][.a-zA-Z0-9_-]*$`)
)

const (
	maxFlowIDLen    = 100
	maxNamespaceLen = 150
	maxTaskIDLen    = 100
)

// flowKeys are the properties of a flow, in the order docs list them.
var flowKeys = []string{
	"id", "namespace", "revision", "description", "labels", "inputs", "variables",
	"tasks", "errors", "finally", "afterExecution", "triggers", "concurrency", "outputs",
	"retry", "pluginDefaults", "taskDefaults", "disabled", "deleted", "tenantId",
	"sla", "listeners", "workerGroup", "checks",
}

func (d *decoder) flow(root *yaml.Node, f *Flow) {
	fs := d.fields(root, "")
	byKey := map[string]field{}
	for _, fl := range fs {
		byKey[fl.key] = fl
	}
	// Plugin defaults apply to every task, so they are read first.
	for _, k := range []string{"pluginDefaults", "taskDefaults"} {
		if fl, ok := byKey[k]; ok {
			d.defaults = append(d.defaults, d.pluginDefaults(fl.value, k)...)
		}
	}
	f.PluginDefaults = d.defaults

	for _, fl := range fs {
		v, path := fl.value, fl.key
		switch fl.key {
		case "id":
			f.ID = d.str(v, path)
		case "namespace":
			f.Namespace = d.str(v, path)
		case "revision":
			f.Revision = d.integer(v, path)
		case "description":
			f.Description = d.str(v, path)
		case "labels":
			f.Labels = d.labels(v, path)
		case "inputs":
			f.Inputs = d.inputs(v, path)
		case "variables":
			if d.mapping(v, path) {
				f.Variables, _ = d.anyValue(v, path).(map[string]any)
			}
		case "tasks":
			f.Tasks = d.tasks(v, path)
		case "errors":
			f.Errors = d.tasks(v, path)
		case "finally":
			f.Finally = d.tasks(v, path)
		case "afterExecution":
			f.AfterExecution = d.tasks(v, path)
		case "triggers":
			f.Triggers = d.triggers(v, path)
		case "concurrency":
			f.Concurrency = d.concurrency(v, path)
		case "outputs":
			f.Outputs = d.outputs(v, path)
		case "retry":
			f.Retry = d.retry(v, path)
		case "pluginDefaults", "taskDefaults":
			// read above
		case "disabled":
			f.Disabled = d.boolean(v, path)
		case "deleted":
			if d.boolean(v, path) {
				d.errorf(v, path, "a flow source cannot be deleted: true; delete the flow instead")
			}
		case "tenantId":
			d.str(v, path) // accepted for Kestra compatibility; Kite's tenant comes from the API
		case "workerGroup":
			d.anyValue(v, path)
		case "sla":
			d.unsupported(fl.kNode, path, "flow SLAs (sla)")
		case "listeners":
			d.unsupported(fl.kNode, path, "listeners (deprecated in Kestra); use errors, finally or a Flow trigger")
		case "checks":
			d.unsupported(fl.kNode, path, "flow checks")
		default:
			d.unknownKey(fl, "", flowKeys)
		}
	}

	for _, req := range []string{"id", "namespace", "tasks"} {
		if _, ok := byKey[req]; !ok {
			d.errorf(root, "", "missing required property %q", req)
		}
	}
	if fl, ok := byKey["tasks"]; ok && len(f.Tasks) == 0 && fl.value.Kind == yaml.SequenceNode {
		d.errorf(fl.value, "tasks", "a flow needs at least one task")
	}
	if fl, ok := byKey["id"]; ok && f.ID != "" {
		d.checkID(fl.value, "id", f.ID, flowIDPattern, maxFlowIDLen, "flow id", "letters, digits, '.', '_' and '-', starting with a letter or digit")
	}
	if fl, ok := byKey["namespace"]; ok && f.Namespace != "" {
		d.checkID(fl.value, "namespace", f.Namespace, namespacePattern, maxNamespaceLen, "namespace", "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit")
	}
	d.checkUniqueIDs(f)
}

// checkID reports an id that does not match its pattern or is too long;
// what names it ("flow id").
func (d *decoder) checkID(n *yaml.Node, path, id string, re *regexp.Regexp, limit int, what, allowed string) {
	if !re.MatchString(id) {
		d.errorf(n, path, "invalid %s %q: use %s", what, id, allowed)
	} else if len(id) > limit {
		d.errorf(n, path, "%s %q is too long: %d characters, at most %d", what, id, len(id), limit)
	}
}

// labels reads labels written as a mapping (key: value) or as a list of
// {key, value} pairs.
func (d *decoder) labels(n *yaml.Node, path string) []Label {
	var out []Label
	switch n.Kind {
	case yaml.MappingNode:
		for _, f := range d.fields(n, path) {
			out = append(out, Label{Key: f.key, Value: d.labelValue(f.value, join(path, f.key))})
		}
	case yaml.SequenceNode:
		for i, item := range d.seq(n, path) {
			p := index(path, i)
			if !d.mapping(item, p) {
				continue
			}
			var l Label
			var hasKey bool
			for _, f := range d.fields(item, p) {
				switch f.key {
				case "key":
					l.Key, hasKey = d.str(f.value, join(p, "key")), true
				case "value":
					l.Value = d.labelValue(f.value, join(p, "value"))
				default:
					d.unknownKey(f, p, []string{"key", "value"})
				}
			}
			if !hasKey {
				d.errorf(item, p, "a label needs a key")
			}
			out = append(out, l)
		}
	default:
		if n.Tag != "!!null" {
			d.errorf(n, path, "labels are a mapping (key: value) or a list of {key, value}, got %s", kindName(n))
		}
	}
	return out
}

func (d *decoder) labelValue(n *yaml.Node, path string) string {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "a label value is a string, number or boolean, got %s", kindName(n))
		return ""
	}
	if n.Tag == "!!null" {
		return ""
	}
	d.checkExpr(n, path, n.Value)
	return n.Value
}

func (d *decoder) concurrency(n *yaml.Node, path string) *Concurrency {
	if !d.mapping(n, path) {
		return nil
	}
	c := &Concurrency{Behavior: ConcurrencyQueue, Pos: pos(n)}
	hasLimit := false
	for _, f := range d.fields(n, path) {
		p := join(path, f.key)
		switch f.key {
		case "limit":
			c.Limit, hasLimit = d.integer(f.value, p), true
			if c.Limit < 1 {
				d.errorf(f.value, p, "the concurrency limit must be at least 1, got %d", c.Limit)
			}
		case "behavior":
			c.Behavior = d.oneOf(f.value, p, "concurrency behavior", ConcurrencyQueue, ConcurrencyCancel, ConcurrencyFail)
		default:
			d.unknownKey(f, path, []string{"limit", "behavior"})
		}
	}
	if !hasLimit {
		d.errorf(n, path, "missing required property \"limit\"")
	}
	return c
}

func (d *decoder) outputs(n *yaml.Node, path string) []*Output {
	var out []*Output
	for i, item := range d.seq(n, path) {
		p := index(path, i)
		if !d.mapping(item, p) {
			continue
		}
		o := &Output{Type: InputString, Required: true, Pos: pos(item)}
		var hasValue bool
		for _, f := range d.fields(item, p) {
			fp := join(p, f.key)
			switch f.key {
			case "id":
				o.ID = d.str(f.value, fp)
				d.checkID(f.value, fp, o.ID, inputIDPattern, maxTaskIDLen, "output id", "letters, digits, '.', '_' and '-'")
			case "type":
				o.Type = d.inputType(f.value, fp)
			case "description", "displayName":
				if f.key == "description" {
					o.Description = d.str(f.value, fp)
				} else {
					d.str(f.value, fp)
				}
			case "value":
				o.Value, hasValue = d.anyValue(f.value, fp), true
			case "required":
				o.Required = d.boolean(f.value, fp)
			default:
				d.unknownKey(f, p, []string{"id", "type", "value", "description", "displayName", "required"})
			}
		}
		if o.ID == "" {
			d.errorf(item, p, "missing required property \"id\"")
		}
		if !hasValue {
			d.errorf(item, p, "missing required property \"value\"")
		}
		out = append(out, o)
	}
	return out
}

func (d *decoder) pluginDefaults(n *yaml.Node, path string) []*PluginDefault {
	var out []*PluginDefault
	for i, item := range d.seq(n, path) {
		p := index(path, i)
		if !d.mapping(item, p) {
			continue
		}
		pd := &PluginDefault{Pos: pos(item)}
		for _, f := range d.fields(item, p) {
			fp := join(p, f.key)
			switch f.key {
			case "type":
				pd.Type = d.str(f.value, fp)
			case "forced":
				pd.Forced = d.boolean(f.value, fp)
			case "values":
				if d.mapping(f.value, fp) {
					pd.Values, _ = d.anyValue(f.value, fp).(map[string]any)
				}
			default:
				d.unknownKey(f, p, []string{"type", "forced", "values"})
			}
		}
		if pd.Type == "" {
			d.errorf(item, p, "missing required property \"type\"")
		}
		out = append(out, pd)
	}
	return out
}

// checkUniqueIDs reports task ids used twice anywhere in the tree, and
// trigger ids used twice.
func (d *decoder) checkUniqueIDs(f *Flow) {
	first := map[string]*Task{}
	f.Walk(func(t *Task, path string) bool {
		if t.ID == "" {
			return true
		}
		if prev, ok := first[t.ID]; ok {
			d.diags = append(d.diags, Diagnostic{File: d.file, Line: t.Pos.Line, Column: t.Pos.Column, Path: path + ".id",
				Message: "duplicate task id \"" + t.ID + "\" (first at line " + strconv.Itoa(prev.Pos.Line) + "); task ids are unique in the whole flow"})
			return true
		}
		first[t.ID] = t
		return true
	})
	seen := map[string]*Trigger{}
	for i, tr := range f.Triggers {
		if tr.ID == "" {
			continue
		}
		if prev, ok := seen[tr.ID]; ok {
			d.diags = append(d.diags, Diagnostic{File: d.file, Line: tr.Pos.Line, Column: tr.Pos.Column, Path: index("triggers", i) + ".id",
				Message: "duplicate trigger id \"" + tr.ID + "\" (first at line " + strconv.Itoa(prev.Pos.Line) + ")"})
			continue
		}
		seen[tr.ID] = tr
	}
}
