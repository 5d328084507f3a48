// Package codec converts between core's models (core/execution, core/flow)
// and the protobuf messages of proto/: the public API's (kite.v1) and the
// records of Kafka topics (kite.event.v1). Every role that reads or writes
// those messages (the API, the executor, the worker, the indexer) converts
// through here, so a value reads back the same wherever it is read.
package codec

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxExactInt is the largest integer a float64 holds exactly.
const maxExactInt = 1 << 53

// ToStruct converts a map of template values (strings, numbers, booleans,
// dates, lists, maps) to a protobuf Struct. Dates become RFC 3339 strings;
// other values go through their JSON form. nil gives nil.
func ToStruct(m map[string]any) (*structpb.Struct, error) {
	if m == nil {
		return nil, nil
	}
	fields := make(map[string]*structpb.Value, len(m))
	for k, v := range m {
		pv, err := ToValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		fields[k] = pv
	}
	return &structpb.Struct{Fields: fields}, nil
}

// ToValue converts one template value; see ToStruct.
func ToValue(v any) (*structpb.Value, error) {
	switch x := v.(type) {
	case nil:
		return structpb.NewNullValue(), nil
	case string:
		return structpb.NewStringValue(x), nil
	case bool:
		return structpb.NewBoolValue(x), nil
	case int:
		return structpb.NewNumberValue(float64(x)), nil
	case int32:
		return structpb.NewNumberValue(float64(x)), nil
	case int64:
		return structpb.NewNumberValue(float64(x)), nil
	case uint64:
		return structpb.NewNumberValue(float64(x)), nil
	case float32:
		return structpb.NewNumberValue(float64(x)), nil
	case float64:
		return structpb.NewNumberValue(x), nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return structpb.NewNumberValue(f), nil
	case time.Time:
		return structpb.NewStringValue(x.Format(time.RFC3339Nano)), nil
	case []byte:
		return structpb.NewStringValue(string(x)), nil
	case []any:
		list := &structpb.ListValue{Values: make([]*structpb.Value, len(x))}
		for i, e := range x {
			pv, err := ToValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			list.Values[i] = pv
		}
		return structpb.NewListValue(list), nil
	case []string:
		list := &structpb.ListValue{Values: make([]*structpb.Value, len(x))}
		for i, e := range x {
			list.Values[i] = structpb.NewStringValue(e)
		}
		return structpb.NewListValue(list), nil
	case map[string]any:
		s, err := ToStruct(x)
		if err != nil {
			return nil, err
		}
		return structpb.NewStructValue(s), nil
	case map[string]string:
		fields := make(map[string]*structpb.Value, len(x))
		for k, e := range x {
			fields[k] = structpb.NewStringValue(e)
		}
		return structpb.NewStructValue(&structpb.Struct{Fields: fields}), nil
	}
	// Anything else (typed slices and maps, structs) through its JSON form.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("value of type %T: %w", v, err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return nil, fmt.Errorf("value of type %T: %w", v, err)
	}
	return ToValue(generic)
}

// FromStruct converts a Struct back to template values. Numbers without a
// fraction become int64 (a Struct has only doubles), so that an integer
// output renders as 2 and not 2.0; nil gives nil.
func FromStruct(s *structpb.Struct) map[string]any {
	if s == nil {
		return nil
	}
	m := make(map[string]any, len(s.Fields))
	for k, v := range s.Fields {
		m[k] = FromValue(v)
	}
	return m
}

// FromValue converts one Struct value; see FromStruct.
func FromValue(v *structpb.Value) any {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_NumberValue:
		f := k.NumberValue
		if f == math.Trunc(f) && math.Abs(f) <= maxExactInt {
			return int64(f)
		}
		return f
	case *structpb.Value_ListValue:
		out := make([]any, len(k.ListValue.GetValues()))
		for i, e := range k.ListValue.GetValues() {
			out[i] = FromValue(e)
		}
		return out
	case *structpb.Value_StructValue:
		return FromStruct(k.StructValue)
	}
	return nil
}

// Time converts a time; the zero time gives nil.
func Time(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// FromTime converts a timestamp; nil gives the zero time.
func FromTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
