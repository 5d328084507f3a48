package embedded

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
)

// scanAll returns the top-level fields of an object as scanObject sees
// them, values compacted.
func scanAll(t testing.TB, doc []byte) (map[string]string, error) {
	t.Helper()
	out := map[string]string{}
	err := scanObject(doc, func(key string, raw []byte) {
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			t.Fatalf("value of %q is not JSON: %q", key, raw)
		}
		out[key] = b.String()
	})
	return out, err
}

// wantFields returns the top-level fields of an object per encoding/json.
func wantFields(doc []byte) (map[string]string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(doc, &m) != nil || m == nil {
		return nil, false
	}
	out := map[string]string{}
	for k, v := range m {
		var b bytes.Buffer
		_ = json.Compact(&b, v)
		out[k] = b.String()
	}
	return out, true
}

var scanSeeds = []string{
	`{}`,
	` { "a" : 1 , "b":"x"} `,
	`{"a":{"b":[1,{"c":"}"}]},"d":"\"q\\"}`,
	`{"k\u00e9y":"v","n":-1.5e3,"t":true,"f":false,"z":null}`,
	`{"a":[],"b":[[]],"c":{"d":{}}}`,
	`{"s":"a,b}c]d"}`,
	`[1,2]`,
	`"str"`,
}

func TestScanObject(t *testing.T) {
	for _, s := range scanSeeds {
		want, ok := wantFields([]byte(s))
		got, err := scanAll(t, []byte(s))
		if !ok {
			if err == nil {
				t.Errorf("%s: no error for a non-object", s)
			}
			continue
		}
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("%s: got %v, %v; want %v", s, got, err, want)
		}
	}
}

// FuzzScanObject checks scanObject against encoding/json on what
// json.Marshal produces (the scanner's only input).
func FuzzScanObject(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var v any
		if json.Unmarshal(in, &v) != nil {
			return
		}
		doc, err := json.Marshal(v)
		if err != nil {
			return
		}
		want, ok := wantFields(doc)
		got, err := scanAll(t, doc)
		if ok != (err == nil) {
			t.Fatalf("%s: object %t, error %v", doc, ok, err)
		}
		if ok && !maps.Equal(got, want) {
			t.Fatalf("%s: got %v, want %v", doc, got, want)
		}
	})
}
