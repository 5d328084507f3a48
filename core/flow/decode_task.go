package flow

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kiteflow/kite/core/plugin"
)

// taskKeys are the properties every task has, whatever its type.
var taskKeys = []string{
	"id", "type", "description", "retry", "timeout", "disabled", "allowFailure",
	"allowWarning", "runIf", "workerGroup", "logLevel", "logToFile",
}

// triggerKeys are the properties every trigger has.
var triggerKeys = []string{"id", "type", "description", "disabled", "conditions"}

func (d *decoder) tasks(n *yaml.Node, path string) []*Task {
	var out []*Task
	for i, item := range d.seq(n, path) {
		if t := d.task(item, index(path, i)); t != nil {
			out = append(out, t)
		}
	}
	return out
}

// typed resolves the "type" of a task, trigger or condition mapping. It
// returns nil (after reporting) when the type is missing, unknown or not
// supported.
func (d *decoder) typed(n *yaml.Node, path string, fs []field, c plugin.Category) (*plugin.Type, string) {
	var tf *field
	for i := range fs {
		if fs[i].key == "type" {
			tf = &fs[i]
		}
	}
	if tf == nil {
		d.errorf(n, path, "missing required property \"type\"")
		return nil, ""
	}
	name := d.str(tf.value, join(path, "type"))
	if name == "" {
		return nil, ""
	}
	spec, ok := d.p.Registry.Lookup(c, name)
	if !ok {
		s := d.p.Registry.Suggest(c, name, 3)
		if kestraPlugin(name) && !samePackage(name, s) {
			// A Kestra class Kite has nothing of, rather than a typo of one
			// it has: a plugin or a test class of Kestra's.
			d.unsupported(tf.value, join(path, "type"), "%s type %q is a Kestra plugin Kite does not provide", c, name)
			return nil, name
		}
		msg := fmt.Sprintf("unknown %s type %q", c, name)
		if len(s) > 0 {
			msg += "; did you mean " + quoteList(s) + "?"
		}
		d.errorf(tf.value, join(path, "type"), "%s", msg)
		return nil, name
	}
	if spec.Unsupported != "" {
		d.unsupported(tf.value, join(path, "type"), "%s type %q: %s", c, name, spec.Unsupported)
		return nil, name
	}
	return spec, name
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func (d *decoder) task(n *yaml.Node, path string) *Task {
	if !d.mapping(n, path) {
		return nil
	}
	fs := d.fields(n, path)
	spec, typeName := d.typed(n, path, fs, plugin.CategoryTask)
	t := &Task{TypeName: typeName, Spec: spec, Pos: pos(n), Props: map[string]any{}}
	if spec != nil {
		t.Type = spec.Name
	}
	hasID := false
	var own []field
	for _, f := range fs {
		v, p := f.value, join(path, f.key)
		switch f.key {
		case "id":
			t.ID, hasID = d.str(v, p), true
			if t.ID != "" {
				d.checkID(v, p, t.ID, taskIDPattern, maxTaskIDLen, "task id", "letters, digits, '_' and '-', starting with a letter or digit")
			}
		case "type":
		case "description":
			t.Description = d.str(v, p)
		case "retry":
			t.Retry = d.retry(v, p)
		case "timeout":
			t.Timeout = d.duration(v, p)
		case "disabled":
			t.Disabled = d.boolean(v, p)
		case "allowFailure":
			t.AllowFailure = d.boolean(v, p)
		case "allowWarning":
			t.AllowWarning = d.boolean(v, p)
		case "runIf":
			t.RunIf = d.text(v, p)
		case "workerGroup":
			t.WorkerGroup = d.workerGroup(v, p)
		case "logLevel":
			t.LogLevel = d.oneOf(v, p, "log level", "TRACE", "DEBUG", "INFO", "WARN", "ERROR")
		case "logToFile":
			if d.boolean(v, p) {
				d.unsupported(f.kNode, p, "logToFile (task logs written to internal storage)")
			}
		default:
			own = append(own, f)
		}
	}
	if !hasID {
		d.errorf(n, path, "missing required property \"id\"")
	}
	if spec == nil {
		return t
	}
	d.props(n, path, spec, own, t.Props, taskKeys, typeName)
	return t
}

// props decodes a type's own properties into out, applies plugin defaults,
// and reports unknown and missing required properties.
func (d *decoder) props(n *yaml.Node, path string, spec *plugin.Type, own []field, out map[string]any, common []string, typeName string) {
	for _, f := range own {
		prop, ok := spec.Property(f.key)
		if !ok {
			d.unknownKey(f, path, append(append([]string(nil), common...), propNames(spec)...))
			continue
		}
		if _, dup := out[prop.Name]; dup {
			d.errorf(f.kNode, join(path, f.key), "property %q is set twice (once under another name)", prop.Name)
			continue
		}
		out[prop.Name] = d.value(f.value, join(path, f.key), prop.Schema)
	}
	d.applyDefaults(spec, typeName, out, path)
	for _, prop := range spec.Properties {
		if _, ok := out[prop.Name]; ok {
			continue
		}
		if prop.Required {
			d.errorf(n, path, "missing required property %q of type %q", prop.Name, spec.Name)
		} else if prop.Default != nil {
			out[prop.Name] = prop.Default
		}
	}
}

func propNames(spec *plugin.Type) []string {
	out := make([]string, 0, len(spec.Properties))
	for _, p := range spec.Properties {
		out = append(out, p.Name)
	}
	return out
}

// applyDefaults merges the flow's pluginDefaults for this type: a default
// matches a type by any of its names, or as a prefix of the class name as
// written ("io.kestra.plugin.core.log" matches "io.kestra.plugin.core.log.Log").
func (d *decoder) applyDefaults(spec *plugin.Type, typeName string, out map[string]any, path string) {
	for _, pd := range d.defaults {
		if !d.defaultMatches(pd.Type, spec, typeName) {
			continue
		}
		for k, v := range pd.Values {
			prop, ok := spec.Property(k)
			if !ok {
				// A default for a property the type lacks is ignored, as in
				// Kestra: one default may target several types by prefix.
				continue
			}
			if _, set := out[prop.Name]; set && !pd.Forced {
				continue
			}
			out[prop.Name] = v
		}
	}
}

func (d *decoder) defaultMatches(pattern string, spec *plugin.Type, typeName string) bool {
	if pattern == "" {
		return false
	}
	if other, ok := d.p.Registry.Lookup(spec.Category, pattern); ok {
		return other == spec
	}
	return strings.HasPrefix(typeName, pattern+".")
}

func (d *decoder) workerGroup(n *yaml.Node, path string) string {
	if n.Kind == yaml.ScalarNode {
		return d.str(n, path)
	}
	if !d.mapping(n, path) {
		return ""
	}
	var key string
	for _, f := range d.fields(n, path) {
		switch f.key {
		case "key":
			key = d.str(f.value, join(path, "key"))
		case "fallback":
			d.oneOf(f.value, join(path, "fallback"), "worker group fallback", "FAIL", "WAIT", "CANCEL")
		default:
			d.unknownKey(f, path, []string{"key", "fallback"})
		}
	}
	return key
}

func (d *decoder) triggers(n *yaml.Node, path string) []*Trigger {
	var out []*Trigger
	for i, item := range d.seq(n, path) {
		p := index(path, i)
		if !d.mapping(item, p) {
			continue
		}
		fs := d.fields(item, p)
		spec, typeName := d.typed(item, p, fs, plugin.CategoryTrigger)
		tr := &Trigger{TypeName: typeName, Spec: spec, Pos: pos(item), Props: map[string]any{}}
		if spec != nil {
			tr.Type = spec.Name
		}
		hasID := false
		var own []field
		for _, f := range fs {
			v, fp := f.value, join(p, f.key)
			switch f.key {
			case "id":
				tr.ID, hasID = d.str(v, fp), true
				if tr.ID != "" {
					d.checkID(v, fp, tr.ID, taskIDPattern, maxTaskIDLen, "trigger id", "letters, digits, '_' and '-', starting with a letter or digit")
				}
			case "type":
			case "description":
				tr.Description = d.str(v, fp)
			case "disabled":
				tr.Disabled = d.boolean(v, fp)
			case "conditions":
				tr.Conditions = d.conditions(v, fp)
			default:
				own = append(own, f)
			}
		}
		if !hasID {
			d.errorf(item, p, "missing required property \"id\"")
		}
		if spec != nil {
			d.props(item, p, spec, own, tr.Props, triggerKeys, typeName)
		}
		out = append(out, tr)
	}
	return out
}

// conditions reads a list of conditions, or a mapping of named conditions
// (as MultipleCondition writes them).
func (d *decoder) conditions(n *yaml.Node, path string) []*Condition {
	var items []*yaml.Node
	var paths []string
	switch n.Kind {
	case yaml.MappingNode:
		for _, f := range d.fields(n, path) {
			items = append(items, f.value)
			paths = append(paths, join(path, f.key))
		}
	default:
		for i, item := range d.seq(n, path) {
			items = append(items, item)
			paths = append(paths, index(path, i))
		}
	}
	var out []*Condition
	for i, item := range items {
		p := paths[i]
		if !d.mapping(item, p) {
			continue
		}
		fs := d.fields(item, p)
		spec, typeName := d.typed(item, p, fs, plugin.CategoryCondition)
		c := &Condition{TypeName: typeName, Spec: spec, Pos: pos(item), Props: map[string]any{}}
		if spec == nil {
			out = append(out, c)
			continue
		}
		c.Type = spec.Name
		var own []field
		for _, f := range fs {
			if f.key != "type" {
				own = append(own, f)
			}
		}
		d.props(item, p, spec, own, c.Props, []string{"type"}, typeName)
		out = append(out, c)
	}
	return out
}

// retryKeys are the properties of each retry type. Kestra spells the
// attempt limit maxAttempt; maxAttempts is accepted too.
var retryKeys = map[string][]string{
	RetryConstant:    {"type", "interval", "maxAttempt", "maxDuration", "warningOnRetry", "behavior"},
	RetryExponential: {"type", "interval", "maxInterval", "delayFactor", "maxAttempt", "maxDuration", "warningOnRetry", "behavior"},
	RetryRandom:      {"type", "minInterval", "maxInterval", "maxAttempt", "maxDuration", "warningOnRetry", "behavior"},
}

// retry reads a retry policy (of a task or of the flow).
func (d *decoder) retry(n *yaml.Node, path string) *Retry {
	if !d.mapping(n, path) {
		return nil
	}
	fs := d.fields(n, path)
	r := &Retry{DelayFactor: 2, Behavior: RetryFailedTask, Pos: pos(n)}
	for _, f := range fs {
		if f.key == "type" {
			r.Type = d.oneOf(f.value, join(path, "type"), "retry type", RetryConstant, RetryExponential, RetryRandom)
		}
	}
	if r.Type == "" {
		if !hasKey(fs, "type") {
			d.errorf(n, path, "missing required property \"type\" (constant, exponential or random)")
		}
		return nil
	}
	allowed := retryKeys[r.Type]
	set := map[string]bool{}
	for _, f := range fs {
		p := join(path, f.key)
		key := f.key
		if key == "maxAttempts" {
			key = "maxAttempt"
		}
		if !contains(allowed, key) {
			d.unknownKey(f, path, allowed)
			continue
		}
		if set[key] {
			d.errorf(f.kNode, p, "maxAttempt is set twice (maxAttempt and maxAttempts are one property)")
			continue
		}
		set[key] = true
		switch key {
		case "interval":
			r.Interval = d.duration(f.value, p)
		case "maxInterval":
			r.MaxInterval = d.duration(f.value, p)
		case "minInterval":
			r.MinInterval = d.duration(f.value, p)
		case "delayFactor":
			r.DelayFactor, _ = d.number(f.value, p)
		case "maxAttempt":
			r.MaxAttempts = d.integer(f.value, p)
			if r.MaxAttempts < 1 {
				d.errorf(f.value, p, "maxAttempt must be at least 1, got %d", r.MaxAttempts)
			}
		case "maxDuration":
			r.MaxDuration = d.duration(f.value, p)
		case "warningOnRetry":
			r.WarningOnRetry = d.boolean(f.value, p)
		case "behavior":
			r.Behavior = d.oneOf(f.value, p, "retry behavior", RetryFailedTask, RetryCreateNewExecution)
		}
	}
	need := map[string][]string{
		RetryConstant:    {"interval"},
		RetryExponential: {"interval", "maxInterval"},
		RetryRandom:      {"minInterval", "maxInterval"},
	}[r.Type]
	for _, k := range need {
		if !set[k] {
			d.errorf(n, path, "missing required property %q of a %s retry", k, r.Type)
		}
	}
	if !set["maxAttempt"] && !set["maxDuration"] {
		d.errorf(n, path, "a retry needs maxAttempt or maxDuration, or it would retry forever")
	}
	return r
}

func hasKey(fs []field, k string) bool {
	for _, f := range fs {
		if f.key == k {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func kestraPlugin(name string) bool { return strings.HasPrefix(name, "io.kestra.") }

// samePackage reports whether one of the suggestions is a class of the same
// Java package as name, which makes name look like a typo of it.
func samePackage(name string, suggestions []string) bool {
	pkg := name[:strings.LastIndexByte(name, '.')+1]
	for _, s := range suggestions {
		if strings.HasPrefix(s, pkg) && !strings.Contains(s[len(pkg):], ".") {
			return true
		}
	}
	return false
}
