package embedded

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiteflow/kite/core/query"
)

// row is what a document stores besides its JSON: the value of each
// column (nil for NULL), its label pairs and its Text fields.
type row struct {
	values   []any    // per table.columns
	labels   string   // sorted pairs, "\n"-joined; "" for none
	pairs    []string // sorted, distinct
	texts    []any    // per table.textCols: string or nil
	textHash any      // int64, nil when every Text field is empty
}

// extract reads the queryable fields of a document's JSON. An error says
// which field does not have the type its schema gives it (the document is
// rejected, as Elasticsearch rejects a mapping error).
func (t *table) extract(doc []byte) (*row, error) {
	r := &row{values: make([]any, len(t.columns))}
	if len(t.textCols) > 0 {
		r.texts = make([]any, len(t.textCols))
	}
	var err error
	var pairsRaw, labelsRaw []byte
	scanErr := scanObject(doc, func(key string, raw []byte) {
		if err != nil {
			return
		}
		if i, ok := t.colIndex[key]; ok {
			c := t.columns[i]
			var v any
			if v, err = fieldValue(c.field.Type, raw); err != nil {
				err = fmt.Errorf("field %s (%s): %w", c.field.Name, c.field.Type, err)
				return
			}
			if c.text >= 0 && v != nil {
				r.texts[c.text] = v
				v = int64(1)
			}
			r.values[i] = v
			return
		}
		if t.labelsF != nil {
			switch key {
			case query.LabelPairsField:
				pairsRaw = raw
			case t.labelsF.Name:
				labelsRaw = raw
			}
		}
	})
	if scanErr != nil {
		return nil, fmt.Errorf("the document is not a JSON object: %w", scanErr)
	}
	if err != nil {
		return nil, err
	}
	if len(t.textCols) > 0 {
		r.textHash = hashTexts(r.texts)
	}
	if t.labelsF != nil {
		pairs, err := labelPairs(pairsRaw, labelsRaw, t.labelsF.Name)
		if err != nil {
			return nil, err
		}
		r.pairs = pairs
		r.labels = strings.Join(pairs, "\n")
	}
	return r, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// decodeValue decodes a JSON value, numbers as json.Number. Plain strings,
// numbers and literals, most of a document, skip the reflection of
// encoding/json.
func decodeValue(raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("empty value")
	}
	switch c := raw[0]; {
	case c == '"' && len(raw) >= 2 && raw[len(raw)-1] == '"' && bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0 && bytes.IndexByte(raw[1:len(raw)-1], '"') < 0:
		return string(raw[1 : len(raw)-1]), nil
	case c == '-' || (c >= '0' && c <= '9'):
		return json.Number(raw), nil
	case bytes.Equal(raw, []byte("true")):
		return true, nil
	case bytes.Equal(raw, []byte("false")):
		return false, nil
	case bytes.Equal(raw, []byte("null")):
		return nil, nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// fieldValue converts a JSON value to its column's value: string, int64,
// float64 or nil.
func fieldValue(typ query.FieldType, raw json.RawMessage) (any, error) {
	v, err := decodeValue(raw)
	if err != nil || v == nil {
		return nil, err
	}
	switch typ {
	case query.Keyword, query.Enum:
		switch v := v.(type) {
		case string:
			if v == "" {
				return nil, nil
			}
			return v, nil
		case json.Number:
			return v.String(), nil
		case bool:
			return strconv.FormatBool(v), nil
		}
		return nil, fmt.Errorf("want a string, got %s", jsonType(v))
	case query.Text:
		switch v := v.(type) {
		case string:
			if v == "" {
				return nil, nil
			}
			return v, nil
		case json.Number:
			return v.String(), nil
		case bool:
			return strconv.FormatBool(v), nil
		case []any: // several values, as Elasticsearch accepts
			parts := make([]string, 0, len(v))
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("want a string or strings, got an array of %s", jsonType(e))
				}
				parts = append(parts, s)
			}
			if s := strings.Join(parts, "\n"); s != "" {
				return s, nil
			}
			return nil, nil
		}
		return nil, fmt.Errorf("want a string, got %s", jsonType(v))
	case query.Number:
		n, ok := v.(json.Number)
		if s, isStr := v.(string); isStr { // "12", as Elasticsearch coerces
			n, ok = json.Number(strings.TrimSpace(s)), true
		}
		if !ok {
			return nil, fmt.Errorf("want a number, got %s", jsonType(v))
		}
		return number(n)
	case query.Duration:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("want milliseconds, got %s", jsonType(v))
		}
		x, err := number(n)
		if err != nil {
			return nil, err
		}
		if f, isFloat := x.(float64); isFloat {
			return int64(math.Round(f)), nil
		}
		return x, nil
	case query.Date:
		switch v := v.(type) {
		case string:
			tm, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("want an RFC 3339 time: %w", err)
			}
			return tm.UnixMilli(), nil
		case json.Number: // epoch milliseconds, as Elasticsearch's default date format accepts
			ms, err := v.Int64()
			if err != nil {
				return nil, fmt.Errorf("want an RFC 3339 time or epoch milliseconds, got %s", v)
			}
			return ms, nil
		}
		return nil, fmt.Errorf("want an RFC 3339 time, got %s", jsonType(v))
	case query.Bool:
		switch v := v.(type) {
		case bool:
			return boolInt(v), nil
		case string:
			if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
				return boolInt(b), nil
			}
		}
		return nil, fmt.Errorf("want true or false, got %s", jsonType(v))
	}
	return nil, fmt.Errorf("unsupported field type %s", typ)
}

// number is an int64 when n is an integer that fits, else a float64.
func number(n json.Number) (any, error) {
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("want a number, got %q", string(n))
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f), nil
	}
	return f, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number (" + v.String() + ")"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// labelPairs returns a document's "KEY=value" label pairs, sorted and
// distinct: its label_pairs field (query.LabelPairsField), or else pairs
// made from the Labels field's {key, value} objects.
func labelPairs(pairsRaw, labelsRaw []byte, labelsField string) ([]string, error) {
	var pairs []string
	switch {
	case pairsRaw != nil && !isNull(pairsRaw):
		err := scanArray(pairsRaw, func(raw []byte) error {
			if len(raw) == 0 || raw[0] != '"' {
				return fmt.Errorf("want a string, got %s", raw)
			}
			s, err := unquote(raw)
			pairs = append(pairs, s)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("field %s: want an array of \"KEY=value\" strings: %w", query.LabelPairsField, err)
		}
	case labelsRaw != nil && !isNull(labelsRaw):
		var labels []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		}
		if err := json.Unmarshal(labelsRaw, &labels); err != nil {
			return nil, fmt.Errorf("field %s: want an array of {key, value} objects: %w", labelsField, err)
		}
		for _, l := range labels {
			pairs = append(pairs, l.Key+"="+l.Value)
		}
	}
	for _, p := range pairs {
		if strings.Contains(p, "\n") {
			return nil, errors.New("field " + query.LabelPairsField + ": a label holds a line break")
		}
	}
	slices.Sort(pairs)
	return slices.Compact(pairs), nil
}

// hashTexts digests the Text fields, so that an update that leaves them as
// they were does not rewrite the full-text index.
func hashTexts(texts []any) any {
	h := fnv.New64a()
	empty := true
	for _, t := range texts {
		if s, ok := t.(string); ok {
			empty = false
			h.Write([]byte(s))
		}
		h.Write([]byte{0})
	}
	if empty {
		return nil
	}
	return int64(h.Sum64())
}
