package storage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kiteflow/kite/core/storage"
)

func TestParse(t *testing.T) {
	tests := []struct {
		uri  string
		want string // "" when invalid
	}{
		{"kite:///a", "a"},
		{"kite:///company/team/flow/executions/e1/inputs/file/data.csv", "company/team/flow/executions/e1/inputs/file/data.csv"},
		{"kite:///a/.hidden/b..c/...", "a/.hidden/b..c/..."},
		{"kite:///a/b c/é", "a/b c/é"},
		{"kite:///a/%2e%2e/b", "a/%2e%2e/b"}, // not decoded: a literal name

		{"", ""},
		{"kite:", ""},
		{"kite://", ""},
		{"kite:///", ""},
		{"kite:/a", ""},
		{"kite://a", ""},
		{"kite://host/a", ""},
		{"KITE:///a", ""},
		{"s3:///a", ""},
		{"file:///etc/passwd", ""},
		{"/etc/passwd", ""},
		{"a/b", ""},
		{" kite:///a", ""},
		{"kite:////a", ""},
		{"kite:////etc/passwd", ""},
		{"kite:///a/../b", ""},
		{"kite:///../a", ""},
		{"kite:///a/..", ""},
		{"kite:///..", ""},
		{"kite:///a/./b", ""},
		{"kite:///.", ""},
		{"kite:///a//b", ""},
		{"kite:///a/", ""},
		{"kite:///a//", ""},
		{`kite:///a\b`, ""},
		{`kite:///a\..\..\b`, ""},
		{`kite:///..\a`, ""},
		{"kite:///a\x00b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := storage.Parse(tt.uri)
			if tt.want == "" {
				if !errors.Is(err, storage.ErrInvalidURI) {
					t.Errorf("Parse(%q) = %q, %v, want an error wrapping ErrInvalidURI", tt.uri, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Parse(%q) = %q, %v, want %q", tt.uri, got, err, tt.want)
			}
			if back := storage.URI(got); back != tt.uri {
				t.Errorf("URI(Parse(%q)) = %q", tt.uri, back)
			}
			if !storage.IsURI(tt.uri) {
				t.Errorf("IsURI(%q) = false", tt.uri)
			}
		})
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		prefix string
		want   string // "" when invalid
	}{
		{"kite:///a", "a"},
		{"kite:///a/", "a"},
		{"kite:///a/b/", "a/b"},
		{"kite://", ""},
		{"kite:////", ""},
		{"kite:///a//", ""},
		{"kite:///a//b/", ""},
		{"kite:///a/../", ""},
		{"kite:///a/./", ""},
		{"kite:///../", ""},
		{"kite://host/a/", ""},
		{`kite:///a\`, ""},
		{"s3:///a/", ""},
	}
	if got, err := storage.ParsePrefix(storage.Root); got != "" || err != nil {
		t.Errorf("ParsePrefix(Root) = %q, %v, want \"\", nil", got, err)
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			got, err := storage.ParsePrefix(tt.prefix)
			if tt.want == "" {
				if !errors.Is(err, storage.ErrInvalidURI) {
					t.Errorf("ParsePrefix(%q) = %q, %v, want an error wrapping ErrInvalidURI", tt.prefix, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParsePrefix(%q) = %q, %v, want %q", tt.prefix, got, err, tt.want)
			}
		})
	}
}

func TestExecutionPrefix(t *testing.T) {
	tests := []struct {
		namespace, flow, execution string
		want                       string // "" when ParsePrefix must refuse it
	}{
		{"company.team", "nightly", "e1", "kite:///company/team/nightly/executions/e1"},
		{"company", "nightly", "e1", "kite:///company/nightly/executions/e1"},
		// Nothing must name a wider folder than one execution.
		{"company.team", "nightly", "", ""},
		{"company.team", "", "e1", ""},
		{"", "nightly", "e1", ""},
		{"company..team", "nightly", "e1", ""},
		{"company.team.", "nightly", "e1", ""},
		{"company.team", "nightly", "..", ""},
		{"company.team", "..", "e1", ""},
	}
	for _, tt := range tests {
		got := storage.ExecutionPrefix(tt.namespace, tt.flow, tt.execution)
		_, err := storage.ParsePrefix(got)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ExecutionPrefix(%q, %q, %q) = %q, which ParsePrefix takes", tt.namespace, tt.flow, tt.execution, got)
			}
			continue
		}
		if got != tt.want || err != nil {
			t.Errorf("ExecutionPrefix(%q, %q, %q) = %q (%v), want %q", tt.namespace, tt.flow, tt.execution, got, err, tt.want)
		}
	}
}

func TestInputFile(t *testing.T) {
	const prefix = "kite:///company/team/nightly/executions/e1/inputs/"
	tests := []struct {
		input, fileName string
		want            string // "" when invalid
	}{
		{"data", "data.csv", prefix + "data/data.csv"},
		{"data", "/home/me/data.csv", prefix + "data/data.csv"},
		{"data", `C:\Users\me\data.csv`, prefix + "data/data.csv"},
		{"data", "../../../etc/passwd", prefix + "data/passwd"},
		{"data", `..\..\secret`, prefix + "data/secret"},
		{"data", "dir/", prefix + "data/dir"},
		{"data", ".hidden", prefix + "data/.hidden"},
		{"data", "", ""},
		{"data", ".", ""},
		{"data", "..", ""},
		{"data", "/", ""},
		{"data", `\`, ""},
		{"data", "a/..", ""},
		{"data", "nul\x00.csv", ""},
		{"", "data.csv", ""},
		{"..", "data.csv", ""},
		{"a/../..", "data.csv", ""},
	}
	for _, tt := range tests {
		t.Run(tt.input+"|"+tt.fileName, func(t *testing.T) {
			got, err := storage.InputFile("company.team", "nightly", "e1", tt.input, tt.fileName)
			if tt.want == "" {
				if err == nil {
					t.Errorf("InputFile(%q, %q) = %q, want an error", tt.input, tt.fileName, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("InputFile(%q, %q) = %q, %v, want %q", tt.input, tt.fileName, got, err, tt.want)
			}
		})
	}
}

func TestTaskFile(t *testing.T) {
	const prefix = "kite:///company/team/nightly/executions/e1/tasks/extract/r1/"
	tests := []struct {
		name string
		want string // "" when invalid
	}{
		{"out.csv", prefix + "out.csv"},
		{"reports/2024/summary.csv", prefix + "reports/2024/summary.csv"},
		{".out", prefix + ".out"},
		{"", ""},
		{"/etc/passwd", ""},
		{"../r2/out.csv", ""},
		{"reports/../../r2/out.csv", ""},
		{"..", ""},
		{"./out.csv", ""},
		{"reports//out.csv", ""},
		{"reports/", ""},
		{`..\r2\out.csv`, ""},
		{"out\x00.csv", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := storage.TaskFile("company.team", "nightly", "e1", "extract", "r1", tt.name)
			if tt.want == "" {
				if !errors.Is(err, storage.ErrInvalidURI) {
					t.Errorf("TaskFile(%q) = %q, %v, want an error wrapping ErrInvalidURI", tt.name, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("TaskFile(%q) = %q, %v, want %q", tt.name, got, err, tt.want)
			}
			if !storage.Within(got, storage.ExecutionPrefix("company.team", "nightly", "e1")) {
				t.Errorf("TaskFile(%q) = %q, not within its execution", tt.name, got)
			}
		})
	}
}

func TestValueURIs(t *testing.T) {
	out, err := storage.OutputValue("company.team", "nightly", "e1", "extract", "r1", 2, "rows")
	if want := "kite:///company/team/nightly/executions/e1/tasks/extract/r1/outputs-2/rows.json"; err != nil || out != want {
		t.Errorf("OutputValue = %q, %v, want %q", out, err, want)
	}
	in, err := storage.InputValue("company.team", "nightly", "e1", "big")
	if want := "kite:///company/team/nightly/executions/e1/inputs-values/big.json"; err != nil || in != want {
		t.Errorf("InputValue = %q, %v, want %q", in, err, want)
	}
	if got, err := storage.OutputValue("company.team", "nightly", "e1", "extract", "..", 1, "k"); err == nil {
		t.Errorf("OutputValue with a %q task run = %q, want an error", "..", got)
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		uri, prefix string
		want        bool
	}{
		{"kite:///a/b", "kite:///a", true},
		{"kite:///a/b", "kite:///a/", true},
		{"kite:///a/b/c/d", "kite:///a/b", true},
		{"kite:///a", "kite:///a", true},
		{"kite:///a", "kite:///a/", true},
		{"kite:///a/", "kite:///a", true},
		{"kite:///ab", "kite:///a", false},
		{"kite:///ab/c", "kite:///a", false},
		{"kite:///a", "kite:///a/b", false},
		{"kite:///b/a", "kite:///a", false},
		{"kite:///company/team/x", "kite:///company/teamx", false},
		{"kite:///company/teamx/x", "kite:///company/team", false},
		// Traversal stays out, whatever its prefix.
		{"kite:///a/../b", "kite:///a", false},
		{"kite:///a/..", "kite:///a", false},
		{"kite:///a/b/../../c", "kite:///a/b", false},
		{`kite:///a/..\..\b`, "kite:///a", false},
		{"kite:///a//b", "kite:///a", false},
		{"kite:///a/./b", "kite:///a", false},
		{"kite://host/a/b", "kite://host/a", false},
		{"kite:///a/b", storage.Root, true},
		{"kite:///a/../b", storage.Root, false},
		{"", "", false},
		{"/etc/passwd", "", false},
	}
	for _, tt := range tests {
		if got := storage.Within(tt.uri, tt.prefix); got != tt.want {
			t.Errorf("Within(%q, %q) = %v, want %v", tt.uri, tt.prefix, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"kite:///a/b", "kite:///a/../b", "kite:///a//b", `kite:///a\b`, "kite://h/a", "kite:///a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		p, err := storage.Parse(uri)
		if err != nil {
			if !errors.Is(err, storage.ErrInvalidURI) {
				t.Errorf("Parse(%q): error %v not wrapping ErrInvalidURI", uri, err)
			}
			return
		}
		// A valid path joins under a folder without leaving it.
		if storage.URI(p) != uri || p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
			t.Errorf("Parse(%q) = %q", uri, p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00") {
				t.Errorf("Parse(%q) = %q, with segment %q", uri, p, seg)
			}
		}
	})
}
