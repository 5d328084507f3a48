package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
)

// Conversions of rendered property values, shared by the runners. A
// property declared as a list or a map may also be written as one
// {{ expression }}, which renders to the typed value or to its JSON text;
// both are accepted.

// stringListProp renders a property holding a list of strings.
func stringListProp(ctx context.Context, rc *RunContext, name string) ([]string, error) {
	v, err := rc.Value(ctx, name)
	if err != nil {
		return nil, err
	}
	return toStringList(name, v)
}

// stringMapProp renders a property holding a map of strings.
func stringMapProp(ctx context.Context, rc *RunContext, name string) (map[string]string, error) {
	v, err := rc.Value(ctx, name)
	if err != nil {
		return nil, err
	}
	return toStringMap(name, v)
}

// boolProp renders a boolean property; def when unset.
func boolProp(ctx context.Context, rc *RunContext, name string, def bool) (bool, error) {
	v, err := rc.Value(ctx, name)
	if err != nil {
		return false, err
	}
	return toBool(name, v, def)
}

// levelProp renders a log level property; INFO when unset.
func levelProp(ctx context.Context, rc *RunContext, name string) (Level, error) {
	s, err := rc.String(ctx, name)
	if err != nil {
		return "", err
	}
	return parseLevel(name, s)
}

// toStringList converts v to a list of strings: a list (each scalar item
// stringified), the JSON text of a list, or a single string.
func toStringList(what string, v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []string:
		return x, nil
	case string:
		if t := strings.TrimSpace(x); strings.HasPrefix(t, "[") {
			var l []any
			if err := json.Unmarshal([]byte(t), &l); err != nil {
				return nil, fmt.Errorf("%s: %q is not a JSON list of strings: %w", what, abbreviate(x, 80), err)
			}
			return toStringList(what, l)
		}
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for i, item := range x {
			switch item.(type) {
			case nil:
				return nil, fmt.Errorf("%s[%d]: expected a string, got null", what, i)
			case []any, map[string]any:
				return nil, fmt.Errorf("%s[%d]: expected a string, got %s", what, i, typeName(item))
			}
			out = append(out, expr.Stringify(item))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: expected a list of strings, got %s", what, typeName(v))
}

// toStringMap converts v to a map of strings: a map (scalar values
// stringified, null values left out as Kestra does) or the JSON text of one.
func toStringMap(what string, v any) (map[string]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case map[string]string:
		return x, nil
	case string:
		if strings.TrimSpace(x) == "" {
			return nil, nil
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(x), &m); err != nil {
			return nil, fmt.Errorf("%s: expected a map, got the string %q", what, abbreviate(x, 80))
		}
		return toStringMap(what, m)
	case map[string]any:
		out := make(map[string]string, len(x))
		for k, item := range x {
			switch item.(type) {
			case nil:
				continue
			case []any, map[string]any:
				return nil, fmt.Errorf("%s.%s: expected a string, got %s", what, k, typeName(item))
			}
			out[k] = expr.Stringify(item)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: expected a map, got %s", what, typeName(v))
}

// toBool converts v to a boolean: a bool or the strings true and false
// (any case); def when v is nil.
func toBool(what string, v any, def bool) (bool, error) {
	switch x := v.(type) {
	case nil:
		return def, nil
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "":
			return def, nil
		}
		return false, fmt.Errorf("%s: expected true or false, got %q", what, abbreviate(x, 80))
	}
	return false, fmt.Errorf("%s: expected true or false, got %s", what, typeName(v))
}

// toInt converts v to an int: an integer, an integral float or a decimal
// string.
func toInt(what string, v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < math.MaxInt32 {
			return int(x), nil
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return n, nil
		}
		return 0, fmt.Errorf("%s: expected an integer, got %q", what, abbreviate(x, 80))
	}
	return 0, fmt.Errorf("%s: expected an integer, got %s", what, typeName(v))
}

// toDuration converts a rendered duration (ISO-8601 or Go style) to a
// time.Duration; 0 when v is nil or empty.
func toDuration(what string, v any) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("%s: expected a duration such as PT30S, got %s", what, typeName(v))
	}
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	d, err := flow.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("%s: duration %q is negative", what, s)
	}
	return d, nil
}

var levels = []Level{LevelTrace, LevelDebug, LevelInfo, LevelWarn, LevelError}

// parseLevel reads a log level name (any case; WARNING means WARN); INFO
// when s is empty.
func parseLevel(what, s string) (Level, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	switch t {
	case "":
		return LevelInfo, nil
	case "WARNING":
		return LevelWarn, nil
	}
	if l := Level(t); slices.Contains(levels, l) {
		return l, nil
	}
	return "", fmt.Errorf("%s: unknown log level %q; use one of TRACE, DEBUG, INFO, WARN, ERROR", what, s)
}

// typeName names the kind of a decoded value for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, float64, json.Number:
		return "a number"
	case []any, []string:
		return "a list"
	case map[string]any, map[string]string:
		return "a map"
	}
	return fmt.Sprintf("a %T", v)
}

// abbreviate shortens s to at most n runes for error messages.
func abbreviate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
