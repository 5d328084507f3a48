package flow

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var inputKeys = []string{
	"id", "name", "type", "description", "displayName", "required", "defaults", "prefill",
	"validator", "min", "max", "minLength", "maxLength", "after", "before", "values",
	"options", "allowCustomValue", "itemType", "extension", "dependsOn", "expression",
	"autoSelectFirst", "isRadio",
}

func (d *decoder) inputType(n *yaml.Node, path string) InputType {
	s := d.str(n, path)
	for _, t := range inputTypes {
		if strings.EqualFold(s, string(t)) {
			return t
		}
	}
	if s != "" {
		names := make([]string, len(inputTypes))
		for i, t := range inputTypes {
			names[i] = string(t)
		}
		d.errorf(n, path, "unknown input type %q; allowed: %s", s, strings.Join(names, ", "))
	}
	return ""
}

func (d *decoder) inputs(n *yaml.Node, path string) []*Input {
	var out []*Input
	seen := map[string]int{}
	for i, item := range d.seq(n, path) {
		p := index(path, i)
		if !d.mapping(item, p) {
			continue
		}
		in := d.input(item, p)
		if in.ID != "" {
			if line, dup := seen[in.ID]; dup {
				d.errorf(item, p, "duplicate input id %q (first at line %d)", in.ID, line)
			}
			seen[in.ID] = item.Line
		}
		out = append(out, in)
	}
	return out
}

func (d *decoder) input(n *yaml.Node, path string) *Input {
	in := &Input{Required: true, Pos: pos(n)}
	fs := d.fields(n, path)
	var defaultsNode *yaml.Node
	for _, f := range fs {
		v, p := f.value, join(path, f.key)
		switch f.key {
		case "id", "name":
			if in.ID != "" {
				d.errorf(f.kNode, p, "an input has either id or name (the older spelling), not both")
				continue
			}
			in.ID = d.str(v, p)
			if in.ID != "" {
				d.checkID(v, p, in.ID, inputIDPattern, maxTaskIDLen, "input id", "letters, digits, '.', '_' and '-', starting with a letter or digit")
			}
		case "type":
			in.Type = d.inputType(v, p)
		case "description":
			in.Description = d.str(v, p)
		case "displayName":
			in.DisplayName = d.str(v, p)
		case "required":
			in.Required = d.boolean(v, p)
		case "defaults", "prefill":
			if in.HasDefaults {
				d.errorf(f.kNode, p, "an input has either defaults or prefill, not both")
				continue
			}
			in.Defaults, in.HasDefaults, defaultsNode = d.anyValue(v, p), true, v
		case "validator":
			in.Validator = d.str(v, p)
			if _, err := regexp.Compile(in.Validator); err != nil {
				d.errorf(v, p, "invalid regular expression: %v", err)
			}
		case "min", "max":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
				s := v.Value
				if f.key == "min" {
					in.MinDuration = &s
				} else {
					in.MaxDuration = &s
				}
				continue
			}
			x, ok := d.number(v, p)
			if ok {
				if f.key == "min" {
					in.Min = &x
				} else {
					in.Max = &x
				}
			}
		case "minLength", "maxLength":
			x := d.integer(v, p)
			if f.key == "minLength" {
				in.MinLength = &x
			} else {
				in.MaxLength = &x
			}
		case "after", "before":
			s := d.str(v, p)
			if f.key == "after" {
				in.After = &s
			} else {
				in.Before = &s
			}
		case "values", "options":
			if isExprString(v) {
				d.checkExpr(v, p, v.Value)
				in.ValuesExpr = v.Value
				continue
			}
			for j, item := range d.seq(v, p) {
				in.Values = append(in.Values, d.str(item, index(p, j)))
			}
		case "allowCustomValue":
			in.AllowCustomValue = d.boolean(v, p)
		case "itemType":
			in.ItemType = d.inputType(v, p)
		case "extension":
			in.Extension = d.str(v, p)
		case "dependsOn":
			in.DependsOn = d.dependsOn(v, p)
		case "expression":
			d.text(v, p)
		case "autoSelectFirst", "isRadio":
			d.boolean(v, p)
		default:
			d.unknownKey(f, path, inputKeys)
		}
	}
	if in.ID == "" && !hasKey(fs, "id") && !hasKey(fs, "name") {
		d.errorf(n, path, "missing required property \"id\"")
	}
	if in.Type == "" {
		if !hasKey(fs, "type") {
			d.errorf(n, path, "missing required property \"type\"")
		}
		return in
	}
	for _, err := range in.check() {
		d.errorf(n, path, "%v", err)
	}
	if in.HasDefaults && in.Defaults != nil && !HasExpression(in.Defaults) {
		if _, err := in.Coerce(in.Defaults); err != nil {
			d.errorf(defaultsNode, join(path, "defaults"), "the default value does not pass the input's own validation: %v", err)
		}
	}
	return in
}

func (d *decoder) dependsOn(n *yaml.Node, path string) []string {
	if !d.mapping(n, path) {
		return nil
	}
	var out []string
	for _, f := range d.fields(n, path) {
		p := join(path, f.key)
		switch f.key {
		case "inputs":
			for i, item := range d.seq(f.value, p) {
				out = append(out, d.str(item, index(p, i)))
			}
		case "condition":
			d.text(f.value, p)
		default:
			d.unknownKey(f, path, []string{"inputs", "condition"})
		}
	}
	return out
}

// HasExpression reports whether a decoded value holds an expression in any
// of its strings.
func HasExpression(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, "{{") || strings.Contains(x, "{%")
	case []any:
		for _, e := range x {
			if HasExpression(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if HasExpression(e) {
				return true
			}
		}
	}
	return false
}

// DecodeInputs reads input declarations given as decoded values (a list of
// maps, as a Pause task's onResume holds them), with the rules of a flow's
// inputs.
func DecodeInputs(decls []any) ([]*Input, error) {
	var n yaml.Node
	if err := n.Encode(decls); err != nil {
		return nil, fmt.Errorf("input declarations: %w", err)
	}
	d := &decoder{p: &Parser{}}
	ins := d.inputs(&n, "onResume")
	if errs := d.diags.Errors(); len(errs) > 0 {
		return nil, errs
	}
	return ins, nil
}
