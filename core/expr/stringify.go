package expr

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Stringify converts a value to text as a template prints it: strings as
// they are, integers without decimals, floats in Java's shortest form (1.0,
// 1.5, 1.0E10), booleans as true/false, null as "", dates as ISO-8601 and
// lists and maps as compact JSON with keys in order.
func Stringify(v any) string {
	switch x := v.(type) {
	case nil, undefinedValue:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return formatFloat(x)
	case float32:
		return formatFloat(float64(x))
	case time.Time:
		return formatISO(x)
	case json.Number:
		return x.String()
	case []byte:
		return string(x)
	}
	if i, ok := toInt(v); ok {
		return strconv.FormatInt(i, 10)
	}
	if u, ok := v.(uint64); ok {
		return strconv.FormatUint(u, 10)
	}
	if _, ok := asList(v); ok {
		return toJSON(v)
	}
	if _, ok := asMap(v); ok {
		return toJSON(v)
	}
	switch x := v.(type) {
	case fmt.Stringer:
		return x.String()
	case error:
		return x.Error()
	}
	return fmt.Sprint(v)
}

// formatISO formats a date as ISO-8601 with its offset ("Z" for UTC).
func formatISO(t time.Time) string { return t.Format(time.RFC3339Nano) }

// formatFloat prints a float like Java's Double.toString: always a decimal
// point, and scientific notation below 1e-3 or from 1e7 on.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.ContainsRune(s, '.') {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	if !strings.ContainsRune(mant, '.') {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// maxJSONDepth bounds nesting when serialising, which also stops cycles.
const maxJSONDepth = 500

// toJSON serialises v as compact JSON: map keys in order, floats as Java
// prints them, dates as ISO-8601 strings, no HTML escaping.
func toJSON(v any) string {
	s, err := marshalJSON(v, DefaultLimits.MaxOutput)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return s
}

// marshalJSON is toJSON failing past limit bytes or maxJSONDepth levels.
func marshalJSON(v any, limit int) (string, error) {
	w := jsonWriter{limit: limit}
	if err := w.write(v, 0); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

type jsonWriter struct {
	b     strings.Builder
	limit int
}

func (w *jsonWriter) write(v any, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("value nested deeper than %d levels", maxJSONDepth)
	}
	if w.b.Len() > w.limit {
		return fmt.Errorf("%w: JSON longer than %d bytes", ErrLimit, w.limit)
	}
	b := &w.b
	switch x := v.(type) {
	case nil, undefinedValue:
		b.WriteString("null")
		return nil
	case string:
		writeJSONString(b, x)
		return nil
	case bool:
		b.WriteString(strconv.FormatBool(x))
		return nil
	case float64:
		writeJSONFloat(b, x)
		return nil
	case float32:
		writeJSONFloat(b, float64(x))
		return nil
	case time.Time:
		writeJSONString(b, formatISO(x))
		return nil
	case json.Number:
		b.WriteString(x.String())
		return nil
	case []any:
		return w.list(x, depth)
	case map[string]any:
		return w.object(x, depth)
	}
	if i, ok := toInt(v); ok {
		b.WriteString(strconv.FormatInt(i, 10))
		return nil
	}
	if u, ok := v.(uint64); ok {
		b.WriteString(strconv.FormatUint(u, 10))
		return nil
	}
	if l, ok := asList(v); ok {
		return w.list(l, depth)
	}
	if m, ok := asMap(v); ok {
		return w.object(m, depth)
	}
	data, err := json.Marshal(v)
	if err != nil {
		writeJSONString(b, Stringify(v))
		return nil //nolint:nilerr // unknown types serialise as their text
	}
	b.Write(data)
	return nil
}

func writeJSONFloat(b *strings.Builder, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		b.WriteString("null")
		return
	}
	b.WriteString(formatFloat(f))
}

func (w *jsonWriter) list(l []any, depth int) error {
	w.b.WriteByte('[')
	for i, item := range l {
		if i > 0 {
			w.b.WriteByte(',')
		}
		if err := w.write(item, depth+1); err != nil {
			return err
		}
	}
	w.b.WriteByte(']')
	return nil
}

func (w *jsonWriter) object(m map[string]any, depth int) error {
	w.b.WriteByte('{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			w.b.WriteByte(',')
		}
		writeJSONString(&w.b, k)
		w.b.WriteByte(':')
		if err := w.write(m[k], depth+1); err != nil {
			return err
		}
	}
	w.b.WriteByte('}')
	return nil
}

const hexDigits = "0123456789abcdef"

func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// ParseJSON parses JSON text the way templates see it: integers become
// int64 when they fit and float64 otherwise, so 2 stays 2 (not 2.0).
func ParseJSON(s string) (any, error) { return fromJSON(s) }

// fromJSON parses JSON text; integers become int64 when they fit and
// float64 otherwise.
func fromJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parsing JSON: unexpected data after the value")
	}
	return fromJSONNumbers(v), nil
}

func fromJSONNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fromJSONNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = fromJSONNumbers(x[k])
		}
	}
	return v
}
