package expr

import (
	"context"
	"fmt"
	"strings"
)

// renderTemplate renders t's nodes to a string.
func (st *state) renderTemplate(ctx context.Context, t *Template) (string, error) {
	var b strings.Builder
	if err := st.renderNodes(ctx, t.nodes, &b); err != nil {
		return "", err
	}
	return b.String(), nil
}

func (st *state) renderNodes(ctx context.Context, nodes []node, b *strings.Builder) error {
	for _, n := range nodes {
		switch n := n.(type) {
		case *textNode:
			b.WriteString(n.text)
		case *printNode:
			v, err := st.eval(ctx, n.x)
			if err == nil {
				err = st.writeValue(b, v)
			}
			if err != nil {
				return blockError(n.blk, err)
			}
		case *ifNode:
			if err := st.renderIf(ctx, n, b); err != nil {
				return err
			}
		case *forNode:
			if err := st.renderFor(ctx, n, b); err != nil {
				return err
			}
		case *setNode:
			v, err := st.eval(ctx, n.value)
			if err != nil {
				return blockError(n.blk, err)
			}
			st.sc.set(n.name, v)
		}
		if b.Len() > st.e.limits.MaxOutput {
			return fmt.Errorf("rendering template: %w: output larger than %d bytes", ErrLimit, st.e.limits.MaxOutput)
		}
	}
	return nil
}

func (st *state) writeValue(b *strings.Builder, v any) error {
	if s, ok := v.(string); ok {
		b.WriteString(s)
		return nil
	}
	_, isList := asList(v)
	_, isMap := asMap(v)
	if !isList && !isMap {
		b.WriteString(Stringify(v))
		return nil
	}
	s, err := marshalJSON(v, st.e.limits.MaxOutput-b.Len())
	if err != nil {
		return err
	}
	b.WriteString(s)
	return nil
}

func (st *state) renderIf(ctx context.Context, n *ifNode, b *strings.Builder) error {
	for _, br := range n.branches {
		c, err := st.eval(ctx, br.cond)
		if err != nil {
			return blockError(br.blk, err)
		}
		if Truthy(c) {
			return st.renderNodes(ctx, br.body, b)
		}
	}
	return st.renderNodes(ctx, n.els, b)
}

// iterItems returns what a for loop iterates: list items, or map entries in
// key order as {key, value} maps. null iterates nothing.
func iterItems(v any) ([]any, bool) {
	if v == nil {
		return nil, true
	}
	if l, ok := asList(v); ok {
		return l, true
	}
	if m, ok := asMap(v); ok {
		out := make([]any, 0, len(m))
		for _, k := range sortedKeys(m) {
			out = append(out, map[string]any{"key": k, "value": m[k]})
		}
		return out, true
	}
	return nil, false
}

func (st *state) renderFor(ctx context.Context, n *forNode, b *strings.Builder) error {
	v, err := st.eval(ctx, n.iter)
	if err != nil {
		return blockError(n.blk, err)
	}
	items, ok := iterItems(v)
	if !ok {
		return blockError(n.blk, errorAt(n.iter.position(), "cannot iterate over %s %q", typeName(v), n.iter))
	}
	if len(items) == 0 {
		return st.renderNodes(ctx, n.empty, b)
	}
	outer := st.sc
	defer func() { st.sc = outer }()
	length := int64(len(items))
	for i, item := range items {
		st.budget.iterations++
		if st.budget.iterations > st.e.limits.MaxIterations {
			return blockError(n.blk, fmt.Errorf("%w: more than %d loop iterations", ErrLimit, st.e.limits.MaxIterations))
		}
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("rendering template: %w", err)
			}
		}
		idx := int64(i)
		st.sc = &scope{parent: outer, vars: map[string]any{
			n.name: item,
			"loop": map[string]any{
				"index":    idx,
				"revindex": length - 1 - idx,
				"first":    i == 0,
				"last":     idx == length-1,
				"length":   length,
			},
		}}
		if err := st.renderNodes(ctx, n.body, b); err != nil {
			return err
		}
	}
	return nil
}
