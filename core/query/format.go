package query

import (
	"strings"
	"time"
)

// Format writes a query tree in a compact, deterministic debug form, for
// tests and logs:
//
//	(and state=FAILED namespace~prod* (not flow_id=test))
//
// Match is field=value (= exact, ="…" phrase, ~ wildcard), Exists is
// field:*, Range is field>=value, FullText is text=word, text="phrase" or
// text~prefix*. Numbers are written as parsed, durations in milliseconds
// (duration>=10000ms), dates in RFC 3339 UTC. A nil Node is "*".
func Format(n Node) string {
	var b strings.Builder
	format(&b, n)
	return b.String()
}

func format(b *strings.Builder, n Node) {
	switch n := n.(type) {
	case nil:
		b.WriteString("*")
	case *And:
		formatList(b, "(and", n.Terms)
	case *Or:
		formatList(b, "(or", n.Terms)
	case *Not:
		b.WriteString("(not ")
		format(b, n.X)
		b.WriteString(")")
	case *Match:
		b.WriteString(fieldName(n.Field, n.Label))
		switch {
		case n.Label != "" || n.Field.Type == Keyword || n.Field.Type == Enum || n.Field.Type == Text:
			writeText(b, n.Kind, n.Text)
		case n.Field.Type == Duration:
			b.WriteString("=" + formatNumber(n.Number) + "ms")
		default:
			b.WriteString("=" + typedValue(n.Field.Type, n.Number, n.Time, n.Bool))
		}
	case *Exists:
		b.WriteString(fieldName(n.Field, n.Label) + ":*")
	case *Range:
		b.WriteString(n.Field.Name + n.Op.String() + typedValue(n.Field.Type, n.Number, n.Time, false))
		if n.Field.Type == Duration {
			b.WriteString("ms")
		}
	case *FullText:
		b.WriteString("text")
		writeText(b, n.Kind, n.Text)
	}
}

func formatList(b *strings.Builder, head string, terms []Node) {
	b.WriteString(head)
	for _, t := range terms {
		b.WriteByte(' ')
		format(b, t)
	}
	b.WriteByte(')')
}

func writeText(b *strings.Builder, k ValueKind, text string) {
	switch k {
	case Phrase:
		b.WriteString("=" + quote(text))
	case Wildcard:
		b.WriteString("~" + escapeWord(text, true, true))
	default:
		b.WriteString("=" + escapeWord(text, false, true))
	}
}

// typedValue writes the value of a number, duration (milliseconds), date
// or bool field as a query value.
func typedValue(t FieldType, num float64, tm time.Time, bl bool) string {
	switch t {
	case Date:
		return tm.UTC().Format(time.RFC3339Nano)
	case Bool:
		if bl {
			return "true"
		}
		return "false"
	}
	return formatNumber(num)
}

// String writes a query tree back as a query that Parse reads into the
// same tree (the same Format), values in their canonical form: enum values
// in their canonical spelling, durations in milliseconds, dates (relative
// ones resolved) in RFC 3339 UTC. A nil Node is "".
func String(n Node) string {
	var b strings.Builder
	write(&b, n)
	return b.String()
}

func write(b *strings.Builder, n Node) {
	switch n := n.(type) {
	case *And:
		for i, t := range n.Terms {
			if i > 0 {
				b.WriteString(" and ")
			}
			if _, ok := t.(*Or); ok && !compact(t) {
				writeGroup(b, t)
				continue
			}
			write(b, t)
		}
	case *Or:
		if f, label, ok := sameField(n.Terms); ok {
			b.WriteString(fieldName(f, label) + ":(")
			for i, t := range n.Terms {
				if i > 0 {
					b.WriteString(" or ")
				}
				writeValue(b, t)
			}
			b.WriteString(")")
			return
		}
		for i, t := range n.Terms {
			if i > 0 {
				b.WriteString(" or ")
			}
			write(b, t)
		}
	case *Not:
		b.WriteString("not ")
		switch n.X.(type) {
		case *And, *Or:
			if !compact(n.X) {
				writeGroup(b, n.X)
				return
			}
		}
		write(b, n.X)
	case *Match:
		b.WriteString(fieldName(n.Field, n.Label) + ":")
		writeValue(b, n)
	case *Exists:
		b.WriteString(fieldName(n.Field, n.Label) + ":*")
	case *Range:
		b.WriteString(n.Field.Name + " " + n.Op.String() + " " + typedValue(n.Field.Type, n.Number, n.Time, false))
	case *FullText:
		writeWord(b, n.Kind, n.Text, false)
	}
}

// compact reports whether n is an Or written field:(a or b), which needs
// no parentheses around it.
func compact(n Node) bool {
	o, ok := n.(*Or)
	if !ok {
		return false
	}
	_, _, ok = sameField(o.Terms)
	return ok
}

func writeGroup(b *strings.Builder, n Node) {
	b.WriteString("(")
	write(b, n)
	b.WriteString(")")
}

// writeValue writes the value of a Match or Exists.
func writeValue(b *strings.Builder, n Node) {
	switch n := n.(type) {
	case *Exists:
		b.WriteString("*")
	case *Match:
		if n.Label != "" || n.Field.Type == Keyword || n.Field.Type == Enum || n.Field.Type == Text {
			writeWord(b, n.Kind, n.Text, true)
			return
		}
		b.WriteString(typedValue(n.Field.Type, n.Number, n.Time, n.Bool))
	}
}

// writeWord writes a value or a bare word; colons says whether it is a
// value, where ":" needs no escape after the first character.
func writeWord(b *strings.Builder, k ValueKind, text string, colons bool) {
	switch k {
	case Phrase:
		b.WriteString(quote(text))
	default:
		b.WriteString(escapeWord(text, k == Wildcard, colons))
	}
}

// sameField reports whether terms are all a Match or Exists on one field
// (so that they can be written field:(a or b)).
func sameField(terms []Node) (*Field, string, bool) {
	var f *Field
	var label string
	for _, t := range terms {
		var tf *Field
		var tl string
		switch t := t.(type) {
		case *Match:
			tf, tl = t.Field, t.Label
		case *Exists:
			tf, tl = t.Field, t.Label
		default:
			return nil, "", false
		}
		if f == nil {
			f, label = tf, tl
		} else if tf != f || tl != label {
			return nil, "", false
		}
	}
	return f, label, f != nil
}
