package flow

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kiteflow/kite/core/plugin"
)

// Parser turns flow YAML into a validated Flow.
type Parser struct {
	// Registry resolves task, trigger and condition types.
	Registry *plugin.Registry
	// CheckExpr, when set, checks the syntax of every string that holds an
	// expression ({{ … }} or {% … %}). Its error may implement ExprError to
	// give the position within the string. A syntax error is a warning: as in
	// Kestra, it fails the task that renders the string, not the flow.
	CheckExpr func(src string) error
	// Strict makes warnings errors.
	Strict bool
}

// ExprError is implemented by expression syntax errors that know where in
// the expression source they are (1-based line and column).
type ExprError interface {
	error
	Position() (line, column int)
	// Detail is the message without the position.
	Detail() string
}

// Parse parses and validates one flow source. file names the source in
// diagnostics. On any error it returns Diagnostics (wrapping
// ErrInvalidFlow) listing every problem found, warnings included, and a nil
// flow. A valid flow carries its warnings in Flow.Warnings.
func (p *Parser) Parse(file string, src []byte) (*Flow, error) {
	d := &decoder{p: p, file: file}
	f := d.parse(src)
	d.diags.sort()
	if p.Strict {
		for i := range d.diags {
			d.diags[i].Warning = false
		}
	}
	if len(d.diags.Errors()) > 0 {
		return nil, d.diags
	}
	f.Warnings = d.diags
	return f, nil
}

// decoder carries the state of one Parse call.
type decoder struct {
	p        *Parser
	file     string
	lines    []string // the source, for positions inside block scalars
	diags    Diagnostics
	defaults []*PluginDefault
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.diags = append(d.diags, Diagnostic{File: d.file, Line: n.Line, Column: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) unsupported(n *yaml.Node, path, format string, args ...any) {
	d.diags = append(d.diags, Diagnostic{File: d.file, Line: n.Line, Column: n.Column, Path: path,
		Message: "not supported yet: " + fmt.Sprintf(format, args...), Unsupported: true})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) parse(src []byte) *Flow {
	d.lines = strings.Split(string(src), "\n")
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil {
		line, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		if err.Error() == "EOF" {
			msg = "the file is empty; a flow needs at least id, namespace and tasks"
		}
		d.diags = append(d.diags, Diagnostic{File: d.file, Line: line, Column: 1, Message: "YAML syntax: " + msg})
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "", "a flow file holds one YAML document; found a second one (remove the '---' separator)")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if n := expandedSize(root, map[*yaml.Node]int{}, 0); n > maxNodes {
		d.errorf(root, "", "the flow holds more than %d values once its YAML aliases are expanded; write it without nesting anchors", maxNodes)
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", "a flow must be a YAML mapping with id, namespace and tasks, got %s", kindName(root))
		return nil
	}
	f := &Flow{Source: string(src)}
	d.flow(root, f)
	return f
}

// maxNodes bounds the values of one flow, aliases expanded, so that a
// "billion laughs" document cannot exhaust memory or time.
const maxNodes = 100_000

// expandedSize counts the nodes of a tree as if every alias were replaced by
// what it names, stopping early past maxNodes. memo holds the size of each
// anchored node, so the count costs one visit per node.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int, depth int) int {
	if n == nil {
		return 0
	}
	if depth > 1000 {
		return maxNodes + 1
	}
	if n.Kind == yaml.AliasNode {
		if size, ok := memo[n.Alias]; ok {
			return size
		}
		memo[n.Alias] = maxNodes + 1 // an alias inside its own anchor
		size := expandedSize(n.Alias, memo, depth+1)
		memo[n.Alias] = size
		return size
	}
	size := 1
	for _, c := range n.Content {
		size += expandedSize(c, memo, depth+1)
		if size > maxNodes {
			return size
		}
	}
	return size
}

// field is one key: value pair of a mapping.
type field struct {
	key   string
	kNode *yaml.Node
	value *yaml.Node
}

// fields returns the pairs of a mapping node, reporting duplicate keys and
// non-scalar keys. Aliases are resolved.
func (d *decoder) fields(n *yaml.Node, path string) []field {
	n = resolve(n)
	seen := map[string]*yaml.Node{}
	var out []field
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			// "<<: *anchor" merges the anchored mapping's keys.
			for _, m := range mergeSources(v) {
				for _, f := range d.fields(m, path) {
					if _, ok := seen[f.key]; !ok {
						seen[f.key] = f.kNode
						out = append(out, f)
					}
				}
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain strings")
			continue
		}
		if prev, ok := seen[k.Value]; ok {
			d.errorf(k, join(path, k.Value), "duplicate key %q (first at line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, field{key: k.Value, kNode: k, value: v})
	}
	return out
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.SequenceNode {
		var out []*yaml.Node
		for _, c := range v.Content {
			out = append(out, resolve(c))
		}
		return out
	}
	return []*yaml.Node{v}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!int":
			return "an integer (" + n.Value + ")"
		case "!!float":
			return "a number (" + n.Value + ")"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "nothing"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Column: n.Column} }

// unknownKey reports a key that is not allowed, suggesting the closest
// allowed one.
func (d *decoder) unknownKey(f field, path string, allowed []string) {
	msg := fmt.Sprintf("unknown property %q", f.key)
	if s := plugin.Closest(f.key, allowed, 1); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	if len(allowed) > 0 {
		msg += " (allowed: " + strings.Join(allowed, ", ") + ")"
	}
	d.errorf(f.kNode, join(path, f.key), "%s", msg)
}

// scalar-reading helpers. Each reports a located error and returns the zero
// value when the node does not hold the expected kind.

func (d *decoder) str(n *yaml.Node, path string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, path, "expected a string, got %s", kindName(n))
		return ""
	}
	return n.Value
}

// text is a string property that may hold an expression.
func (d *decoder) text(n *yaml.Node, path string) string {
	s := d.str(n, path)
	d.checkExpr(n, path, s)
	return s
}

func (d *decoder) boolean(n *yaml.Node, path string) bool {
	if n.Kind == yaml.ScalarNode {
		switch n.Tag {
		case "!!bool":
			return n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
		case "!!str":
			switch strings.ToLower(n.Value) {
			case "true":
				return true
			case "false":
				return false
			}
		}
	}
	d.errorf(n, path, "expected true or false, got %s", kindName(n))
	return false
}

func (d *decoder) integer(n *yaml.Node, path string) int {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!str") {
		if v, err := strconv.Atoi(n.Value); err == nil {
			return v
		}
	}
	d.errorf(n, path, "expected an integer, got %s", kindName(n))
	return 0
}

func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float" || n.Tag == "!!str") {
		if v, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return v, true
		}
	}
	d.errorf(n, path, "expected a number, got %s", kindName(n))
	return 0, false
}

func (d *decoder) duration(n *yaml.Node, path string) time.Duration {
	s := d.str(n, path)
	if s == "" {
		return 0
	}
	v, err := ParseDuration(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
	}
	return v
}

func (d *decoder) oneOf(n *yaml.Node, path, what string, allowed ...string) string {
	s := d.str(n, path)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	if s != "" || n.Kind == yaml.ScalarNode {
		d.errorf(n, path, "invalid %s %q; allowed: %s", what, s, strings.Join(allowed, ", "))
	}
	return ""
}

func (d *decoder) seq(n *yaml.Node, path string) []*yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", kindName(n))
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = resolve(c)
	}
	return out
}

func (d *decoder) mapping(n *yaml.Node, path string) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return false
	}
	return true
}

// checkExpr checks the expression syntax of a string value, reporting the
// error at its position in the file.
func (d *decoder) checkExpr(n *yaml.Node, path, s string) {
	if d.p.CheckExpr == nil || !strings.Contains(s, "{{") && !strings.Contains(s, "{%") {
		return
	}
	err := d.p.CheckExpr(s)
	if err == nil {
		return
	}
	line, col, msg := n.Line, n.Column, err.Error()
	var ee ExprError
	if errors.As(err, &ee) {
		l, c := ee.Position()
		msg = ee.Detail()
		switch n.Style {
		case yaml.LiteralStyle, yaml.FoldedStyle:
			// Block scalars start on the line after the indicator, indented.
			line += l
			col = d.indent(line) + c
		default:
			line += l - 1
			if l == 1 {
				col += c - 1
				if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
					col++
				}
			} else {
				col = c
			}
		}
	}
	diag := Diagnostic{File: d.file, Line: line, Column: col, Path: path, Warning: true,
		Message: fmt.Sprintf("expression syntax: %s; the task fails when it renders this", msg)}
	if strings.HasPrefix(msg, "not supported yet: ") {
		diag.Message, diag.Unsupported = msg+"; the task fails when it renders this", true
	}
	d.diags = append(d.diags, diag)
}

// indent is the number of leading spaces of a 1-based source line.
func (d *decoder) indent(line int) int {
	if line < 1 || line > len(d.lines) {
		return 0
	}
	l := d.lines[line-1]
	return len(l) - len(strings.TrimLeft(l, " "))
}

// anyValue decodes a node into plain Go values (string, int, float64, bool,
// nil, []any, map[string]any), checking expressions in strings.
func (d *decoder) anyValue(n *yaml.Node, path string) any {
	n = resolve(n)
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil
		case "!!bool":
			return d.boolean(n, path)
		case "!!int":
			if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return int(v)
			}
			var v any
			if err := n.Decode(&v); err == nil {
				return v
			}
			return n.Value
		case "!!float":
			var v float64
			if err := n.Decode(&v); err == nil {
				return v
			}
			return n.Value
		}
		d.checkExpr(n, path, n.Value)
		return n.Value
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			out = append(out, d.anyValue(c, index(path, i)))
		}
		return out
	case yaml.MappingNode:
		out := map[string]any{}
		for _, f := range d.fields(n, path) {
			out[f.key] = d.anyValue(f.value, join(path, f.key))
		}
		return out
	}
	return nil
}
