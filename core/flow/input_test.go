package flow

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestInputCoerce(t *testing.T) {
	tests := []struct {
		name    string
		in      Input
		value   any
		want    any
		wantErr string
	}{
		{"string", Input{Type: InputString}, "hi", "hi", ""},
		{"string from number", Input{Type: InputString}, 12, "12", ""},
		{"string validator ok", Input{Type: InputString, Validator: `A\d+`}, "A12", "A12", ""},
		{"string validator is anchored", Input{Type: InputString, Validator: `A\d+`}, "xA12", nil, "does not match the pattern"},
		{"string max length", Input{Type: InputString, MaxLength: ptr(2)}, "abc", nil, "longer than 2"},
		{"int from string", Input{Type: InputInt}, "42", 42, ""},
		{"int from float", Input{Type: InputInt}, 42.0, 42, ""},
		{"int not a number", Input{Type: InputInt}, "x", nil, "expected an integer"},
		{"int below min", Input{Type: InputInt, Min: ptr(10.0)}, 5, nil, "less than the minimum 10"},
		{"int above max", Input{Type: InputInt, Max: ptr(20.0)}, 25, nil, "greater than the maximum 20"},
		{"float", Input{Type: InputFloat, Min: ptr(0.1), Max: ptr(0.5)}, "0.25", 0.25, ""},
		{"float out of range", Input{Type: InputFloat, Max: ptr(0.5)}, 0.6, nil, "greater than the maximum"},
		{"boolean", Input{Type: InputBoolean}, "TRUE", true, ""},
		{"boolean invalid", Input{Type: InputBool}, "yes", nil, "expected true or false"},
		{"datetime normalised to UTC", Input{Type: InputDateTime}, "2023-06-01T12:00:00+02:00", "2023-06-01T10:00:00Z", ""},
		{"datetime without zone", Input{Type: InputDateTime}, "2023-06-01 12:00", nil, "date-time with a zone"},
		{"datetime before", Input{Type: InputDateTime, Before: ptr("2023-12-31T23:59:59Z")}, "2024-01-01T00:00:00Z", nil, "is not before"},
		{"date after", Input{Type: InputDate, After: ptr("2023-01-01")}, "2023-02-01", "2023-02-01", ""},
		{"date not after", Input{Type: InputDate, After: ptr("2023-01-01")}, "2022-12-01", nil, "is not after 2023-01-01"},
		{"time", Input{Type: InputTime}, "13:45", "13:45:00", ""},
		{"duration", Input{Type: InputDuration}, "90s", "PT1M30S", ""},
		{"duration bounds", Input{Type: InputDuration, MinDuration: ptr("PT10S"), MaxDuration: ptr("PT20S")}, "PT30S", nil, "longer than the maximum PT20S"},
		{"json string: integers stay integers", Input{Type: InputJSON}, `{"a":[1,2.5]}`, map[string]any{"a": []any{int64(1), 2.5}}, ""},
		{"json invalid", Input{Type: InputJSON}, `{"a":`, nil, "invalid JSON"},
		{"yaml string", Input{Type: InputYAML}, "a: 1", map[string]any{"a": 1}, ""},
		{"uri", Input{Type: InputURI}, "https://example.com/x", "https://example.com/x", ""},
		{"uri relative", Input{Type: InputURI}, "x/y", nil, "absolute URI"},
		{"enum", Input{Type: InputEnum, Values: []string{"A", "B"}}, "B", "B", ""},
		{"enum refused", Input{Type: InputEnum, Values: []string{"A", "B"}}, "C", nil, `"C" is not one of the allowed values: A, B`},
		{"select custom", Input{Type: InputSelect, Values: []string{"A"}, AllowCustomValue: true}, "Z", "Z", ""},
		{"multiselect", Input{Type: InputMultiselect, Values: []string{"A", "B"}}, []any{"A", "B"}, []any{"A", "B"}, ""},
		{"multiselect from JSON", Input{Type: InputMultiselect, Values: []string{"A", "B"}}, `["B"]`, []any{"B"}, ""},
		{"array of int", Input{Type: InputArray, ItemType: InputInt}, `[1, "2"]`, []any{1, 2}, ""},
		{"array bad item", Input{Type: InputArray, ItemType: InputInt}, []any{1, "x"}, nil, "item 1: expected an integer"},
		{"email", Input{Type: InputEmail}, "a@b.c", "a@b.c", ""},
		{"email invalid", Input{Type: InputEmail}, "nope", nil, "not an email address"},
		{"file extension", Input{Type: InputFile, Extension: ".csv"}, "kite:///a/b.txt", nil, "ending in .csv"},
		{"nil", Input{Type: InputString}, nil, nil, "no value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Coerce(tt.value)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"PT30S", 30 * time.Second, false},
		{"PT1H30M", 90 * time.Minute, false},
		{"P1D", 24 * time.Hour, false},
		{"PT0.5S", 500 * time.Millisecond, false},
		{"1h30m", 90 * time.Minute, false},
		{"P1M", 0, true},
		{"ten", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	for _, d := range []time.Duration{0, time.Second, 90 * time.Minute, 1500 * time.Millisecond, 25 * time.Hour} {
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d {
			t.Errorf("round trip of %v via %q gave %v, %v", d, FormatDuration(d), back, err)
		}
	}
}
