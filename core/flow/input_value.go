package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kiteflow/kite/core/expr"
)

// Layouts of the date and time input types (ISO-8601, as Kestra reads them).
const (
	DateLayout = "2006-01-02"
	TimeLayout = "15:04:05"
)

// check reports problems of the declaration itself (not of a value).
func (in *Input) check() []error {
	var errs []error
	switch in.Type {
	case InputEnum, InputSelect, InputMultiselect:
		if len(in.Values) == 0 && in.ValuesExpr == "" && !in.AllowCustomValue {
			errs = append(errs, fmt.Errorf("a %s input needs values (the allowed choices)", in.Type))
		}
	case InputArray:
		switch in.ItemType {
		case "":
			errs = append(errs, fmt.Errorf("an ARRAY input needs itemType (the type of its items)"))
		case InputArray, InputFile:
			errs = append(errs, fmt.Errorf("an ARRAY input cannot hold %s items", in.ItemType))
		}
	}
	if in.Min != nil && in.Max != nil && *in.Min > *in.Max {
		errs = append(errs, fmt.Errorf("min (%v) is greater than max (%v)", *in.Min, *in.Max))
	}
	for _, b := range []struct {
		name string
		v    *string
	}{{"after", in.After}, {"before", in.Before}} {
		if b.v == nil {
			continue
		}
		if _, err := parseTemporal(in.Type, *b.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.name, err))
		}
	}
	for _, b := range []struct {
		name string
		v    *string
	}{{"min", in.MinDuration}, {"max", in.MaxDuration}} {
		if b.v == nil {
			continue
		}
		if in.Type != InputDuration {
			errs = append(errs, fmt.Errorf("%s of a %s input is a number, got %q", b.name, in.Type, *b.v))
		} else if _, err := ParseDuration(*b.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.name, err))
		}
	}
	return errs
}

// Coerce converts a raw value (from YAML, JSON, a CLI flag or an API call)
// to the input's type and checks the input's validation rules. The result
// is JSON-friendly: STRING-like types give a string; INT an int; FLOAT a
// float64; BOOLEAN a bool; DATETIME an RFC 3339 string in UTC; DATE and
// TIME their ISO-8601 forms; DURATION the ISO-8601 form (PT1M30S); JSON,
// YAML and ARRAY decoded values; MULTISELECT a []any of strings.
func (in *Input) Coerce(v any) (any, error) {
	return coerce(in, in.Type, v)
}

func coerce(in *Input, t InputType, v any) (any, error) {
	if v == nil {
		return nil, errors.New("no value")
	}
	switch t {
	case InputString, InputSecret, InputEmail:
		s, err := scalarString(v)
		if err != nil {
			return nil, err
		}
		return s, in.checkString(t, s)
	case InputInt:
		n, err := toInt(v)
		if err != nil {
			return nil, err
		}
		return n, in.checkRange(float64(n))
	case InputFloat:
		f, err := toFloat(v)
		if err != nil {
			return nil, err
		}
		return f, in.checkRange(f)
	case InputBoolean, InputBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, fmt.Errorf("expected true or false, got %s", show(v))
	case InputDateTime, InputDate, InputTime:
		s, err := scalarString(v)
		if err != nil {
			return nil, err
		}
		tm, err := parseTemporal(t, s)
		if err != nil {
			return nil, err
		}
		if err := in.checkTemporal(t, tm); err != nil {
			return nil, err
		}
		return formatTemporal(t, tm), nil
	case InputDuration:
		s, err := scalarString(v)
		if err != nil {
			return nil, err
		}
		dur, err := ParseDuration(s)
		if err != nil {
			return nil, err
		}
		if in.MinDuration != nil {
			if lo, err := ParseDuration(*in.MinDuration); err == nil && dur < lo {
				return nil, fmt.Errorf("%s is shorter than the minimum %s", s, *in.MinDuration)
			}
		}
		if in.MaxDuration != nil {
			if hi, err := ParseDuration(*in.MaxDuration); err == nil && dur > hi {
				return nil, fmt.Errorf("%s is longer than the maximum %s", s, *in.MaxDuration)
			}
		}
		return FormatDuration(dur), nil
	case InputJSON:
		if s, ok := v.(string); ok {
			out, err := expr.ParseJSON(s)
			if err != nil {
				return nil, fmt.Errorf("invalid JSON: %w", err)
			}
			return out, nil
		}
		return v, nil
	case InputYAML:
		if s, ok := v.(string); ok {
			var out any
			if err := yaml.Unmarshal([]byte(s), &out); err != nil {
				return nil, fmt.Errorf("invalid YAML: %w", err)
			}
			return out, nil
		}
		return v, nil
	case InputURI, InputFile:
		s, err := scalarString(v)
		if err != nil {
			return nil, err
		}
		u, err := url.Parse(s)
		if err != nil || (t == InputURI && u.Scheme == "") {
			return nil, fmt.Errorf("expected an absolute URI (scheme://…), got %q", s)
		}
		if t == InputFile && in.Extension != "" && !strings.HasSuffix(s, in.Extension) {
			return nil, fmt.Errorf("expected a file ending in %s, got %q", in.Extension, s)
		}
		return s, nil
	case InputEnum, InputSelect:
		s, err := scalarString(v)
		if err != nil {
			return nil, err
		}
		return s, in.checkChoice(s)
	case InputMultiselect:
		items, err := toList(v)
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, len(items))
		for _, item := range items {
			s, err := scalarString(item)
			if err != nil {
				return nil, err
			}
			if err := in.checkChoice(s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	case InputArray:
		items, err := toList(v)
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, len(items))
		item := &Input{ID: in.ID, Type: in.ItemType}
		for i, x := range items {
			c, err := coerce(item, in.ItemType, x)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out = append(out, c)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown input type %q", t)
}

func (in *Input) checkString(t InputType, s string) error {
	if in.Validator != "" {
		re, err := regexp.Compile("^(?:" + in.Validator + ")$")
		if err == nil && !re.MatchString(s) {
			return fmt.Errorf("%q does not match the pattern %s", s, in.Validator)
		}
	}
	n := len([]rune(s))
	if in.MinLength != nil && n < *in.MinLength {
		return fmt.Errorf("%q is shorter than %d characters", s, *in.MinLength)
	}
	if in.MaxLength != nil && n > *in.MaxLength {
		return fmt.Errorf("%q is longer than %d characters", s, *in.MaxLength)
	}
	if t == InputEmail {
		if _, err := mail.ParseAddress(s); err != nil {
			return fmt.Errorf("%q is not an email address", s)
		}
	}
	return nil
}

func (in *Input) checkRange(f float64) error {
	if in.Min != nil && f < *in.Min {
		return fmt.Errorf("%v is less than the minimum %v", f, *in.Min)
	}
	if in.Max != nil && f > *in.Max {
		return fmt.Errorf("%v is greater than the maximum %v", f, *in.Max)
	}
	return nil
}

func (in *Input) checkChoice(s string) error {
	if in.AllowCustomValue || in.ValuesExpr != "" {
		return nil
	}
	for _, v := range in.Values {
		if v == s {
			return nil
		}
	}
	return fmt.Errorf("%q is not one of the allowed values: %s", s, strings.Join(in.Values, ", "))
}

func (in *Input) checkTemporal(t InputType, v time.Time) error {
	if in.After != nil {
		if lo, err := parseTemporal(t, *in.After); err == nil && !v.After(lo) {
			return fmt.Errorf("%s is not after %s", formatTemporal(t, v), *in.After)
		}
	}
	if in.Before != nil {
		if hi, err := parseTemporal(t, *in.Before); err == nil && !v.Before(hi) {
			return fmt.Errorf("%s is not before %s", formatTemporal(t, v), *in.Before)
		}
	}
	return nil
}

func parseTemporal(t InputType, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch t {
	case InputDate:
		v, err := time.Parse(DateLayout, s)
		if err != nil {
			return v, fmt.Errorf("expected a date like 2024-12-31, got %q", s)
		}
		return v, nil
	case InputTime:
		for _, l := range []string{TimeLayout, "15:04", "15:04:05.999999999"} {
			if v, err := time.Parse(l, s); err == nil {
				return v, nil
			}
		}
		return time.Time{}, fmt.Errorf("expected a time like 13:45:00, got %q", s)
	default:
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return v, fmt.Errorf("expected a date-time with a zone like 2024-12-31T13:45:00Z, got %q", s)
		}
		return v, nil
	}
}

func formatTemporal(t InputType, v time.Time) string {
	switch t {
	case InputDate:
		return v.Format(DateLayout)
	case InputTime:
		return v.Format(TimeLayout)
	default:
		return v.UTC().Format(time.RFC3339Nano)
	}
}

func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool, int, int64, float64, json.Number:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("expected a single value, got %s", show(v))
}

func toInt(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case float64:
		if x == float64(int(x)) {
			return int(x), nil
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return int(n), nil
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("expected an integer, got %s", show(v))
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case float64:
		return x, nil
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f, nil
		}
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, nil
		}
	}
	return 0, fmt.Errorf("expected a number, got %s", show(v))
}

// toList accepts a list, or a string holding a JSON list.
func toList(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case string:
		parsed, err := expr.ParseJSON(x)
		out, isList := parsed.([]any)
		if err != nil || !isList {
			return nil, fmt.Errorf("expected a list (or a JSON array), got %q", x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("expected a list, got %s", show(v))
}

func show(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%v", v)
}
