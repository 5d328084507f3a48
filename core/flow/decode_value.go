package flow

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/kiteflow/kite/core/plugin"
)

// value decodes a property value against its schema, reporting located
// errors. Dynamic properties may hold an expression string instead of a
// value of their kind.
func (d *decoder) value(n *yaml.Node, path string, s *plugin.Schema) any {
	n = resolve(n)
	if s == nil {
		return d.anyValue(n, path)
	}
	if len(s.OneOf) > 0 {
		return d.oneOfValue(n, path, s)
	}
	if s.Dynamic && isExprString(n) && s.Kind != plugin.KindString {
		d.checkExpr(n, path, n.Value)
		return n.Value
	}
	switch s.Kind {
	case plugin.KindString:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s", kindName(n))
			return nil
		}
		if n.Tag == "!!null" {
			return nil
		}
		if s.Dynamic {
			d.checkExpr(n, path, n.Value)
		}
		return n.Value
	case plugin.KindInt:
		return d.integer(n, path)
	case plugin.KindNumber:
		if n.Tag == "!!int" {
			return d.integer(n, path)
		}
		v, _ := d.number(n, path)
		return v
	case plugin.KindBool:
		return d.boolean(n, path)
	case plugin.KindDuration:
		d.duration(n, path)
		return n.Value
	case plugin.KindEnum:
		return d.oneOf(n, path, "value", s.Enum...)
	case plugin.KindCron:
		c := d.str(n, path)
		if c != "" {
			if err := checkCron(c); err != nil {
				d.errorf(n, path, "%v", err)
			}
		}
		return c
	case plugin.KindList:
		items := d.seq(n, path)
		out := make([]any, 0, len(items))
		for i, item := range items {
			out = append(out, d.value(item, index(path, i), s.Elem))
		}
		return out
	case plugin.KindMap:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		if !d.mapping(n, path) {
			return nil
		}
		out := map[string]any{}
		for _, f := range d.fields(n, path) {
			out[f.key] = d.value(f.value, join(path, f.key), s.Elem)
		}
		return out
	case plugin.KindObject:
		return d.object(n, path, s)
	case plugin.KindTasks:
		return d.tasks(n, path)
	case plugin.KindCases:
		if !d.mapping(n, path) {
			return nil
		}
		out := map[string][]*Task{}
		for _, f := range d.fields(n, path) {
			out[f.key] = d.tasks(f.value, join(path, f.key))
		}
		return out
	case plugin.KindConds:
		return d.conditions(n, path)
	default:
		return d.anyValue(n, path)
	}
}

// object decodes a mapping with fixed fields.
func (d *decoder) object(n *yaml.Node, path string, s *plugin.Schema) any {
	if !d.mapping(n, path) {
		return nil
	}
	spec := &plugin.Type{Properties: s.Fields}
	out := map[string]any{}
	set := map[string]bool{}
	var names []string
	for _, p := range s.Fields {
		names = append(names, p.Name)
	}
	for _, f := range d.fields(n, path) {
		prop, ok := spec.Property(f.key)
		if !ok {
			d.unknownKey(f, path, names)
			continue
		}
		set[prop.Name] = true
		out[prop.Name] = d.value(f.value, join(path, f.key), prop.Schema)
	}
	for _, p := range s.Fields {
		if set[p.Name] {
			continue
		}
		if p.Required {
			d.errorf(n, path, "missing required property %q", p.Name)
		} else if p.Default != nil {
			out[p.Name] = p.Default
		}
	}
	return out
}

// oneOfValue accepts the first alternative that decodes without error. When
// only one alternative has the node's shape (a scalar, a list, a mapping),
// that one decides, so its own error is reported.
func (d *decoder) oneOfValue(n *yaml.Node, path string, s *plugin.Schema) any {
	var fit []*plugin.Schema
	for _, alt := range s.OneOf {
		if shapeFits(n, alt) {
			fit = append(fit, alt)
		}
	}
	if len(fit) == 1 {
		return d.value(n, path, fit[0])
	}
	var kinds []string
	for _, alt := range s.OneOf {
		trial := &decoder{p: d.p, file: d.file, lines: d.lines, defaults: d.defaults}
		v := trial.value(n, path, alt)
		if len(trial.diags) == 0 {
			return v
		}
		kinds = append(kinds, describe(alt))
	}
	d.errorf(n, path, "expected %s, got %s", strings.Join(kinds, " or "), kindName(n))
	return nil
}

// shapeFits reports whether a node has the YAML shape a schema reads.
func shapeFits(n *yaml.Node, s *plugin.Schema) bool {
	switch s.Kind {
	case plugin.KindList, plugin.KindTasks:
		return n.Kind == yaml.SequenceNode
	case plugin.KindMap, plugin.KindObject, plugin.KindCases:
		return n.Kind == yaml.MappingNode
	case plugin.KindAny:
		return true
	case plugin.KindConds:
		return n.Kind != yaml.ScalarNode
	}
	return n.Kind == yaml.ScalarNode
}

func describe(s *plugin.Schema) string {
	switch s.Kind {
	case plugin.KindList:
		return "a list"
	case plugin.KindMap, plugin.KindObject:
		return "a mapping"
	case plugin.KindInt:
		return "an integer"
	case plugin.KindBool:
		return "a boolean"
	case plugin.KindString:
		if s.Dynamic {
			return "a string (or expression)"
		}
		return "a string"
	}
	return "a " + string(s.Kind)
}

func isExprString(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!str" &&
		(strings.Contains(n.Value, "{{") || strings.Contains(n.Value, "{%"))
}

var (
	cronParser        = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	cronSecondsParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
)

// ParseCron parses a cron expression of 5 fields (minute hour day-of-month
// month day-of-week), 6 fields (with seconds first) or a descriptor such as
// @hourly, @daily or @every 5m.
func ParseCron(expr string) (cron.Schedule, error) {
	fields := strings.Fields(expr)
	if len(fields) == 6 {
		return cronSecondsParser.Parse(expr)
	}
	return cronParser.Parse(expr)
}

func checkCron(expr string) error {
	if _, err := ParseCron(expr); err != nil {
		n := len(strings.Fields(expr))
		hint := "5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly"
		if !strings.HasPrefix(expr, "@") && n != 5 && n != 6 {
			return fmt.Errorf("invalid cron expression %q: it has %s fields; write %s", expr, strconv.Itoa(n), hint)
		}
		return fmt.Errorf("invalid cron expression %q: %w; write %s", expr, err, hint)
	}
	return nil
}
