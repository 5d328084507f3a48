package flow_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
)

const schemaURL = "file:///kite-flow.schema.json"

// compiledSchema generates the flow JSON Schema from the built-in registry
// and compiles it, which checks it against the draft-07 meta-schema.
func compiledSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	raw, err := flow.JSONSchema(tasks.Registry())
	if err != nil {
		t.Fatalf("JSONSchema: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		t.Fatalf("adding the schema: %v", err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		t.Fatalf("the schema is not a valid draft-07 JSON Schema: %v", err)
	}
	return s
}

// yamlInstance reads a YAML flow as the JSON value a schema validates.
func yamlInstance(t testing.TB, file string) any {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	js, err := json.Marshal(jsonValue(v))
	if err != nil {
		t.Fatalf("%s: converting to JSON: %v", file, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return inst
}

// jsonValue turns YAML-decoded maps with non-string keys into JSON objects.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonValue(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonValue(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonValue(e)
		}
		return x
	}
	return v
}

func testFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "schema", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test flows in testdata/schema/%s (%v)", dir, err)
	}
	return files
}

func TestJSONSchemaAcceptsValidFlows(t *testing.T) {
	s := compiledSchema(t)
	// The parser's own valid flows and the examples must pass the schema too.
	extra, _ := filepath.Glob("testdata/valid/*.yaml")
	examples, _ := filepath.Glob("../../examples/flows/*.yaml")
	if len(extra) == 0 || len(examples) == 0 {
		t.Fatal("no parser testdata or examples found")
	}
	for _, file := range append(append(testFiles(t, "valid"), extra...), examples...) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if err := s.Validate(yamlInstance(t, file)); err != nil {
				t.Errorf("valid flow rejected:\n%v", err)
			}
		})
	}
}

// TestJSONSchemaRejectsInvalidFlows validates each invalid flow; its first
// line, "# want: <text>", is a part of the error it must get.
func TestJSONSchemaRejectsInvalidFlows(t *testing.T) {
	s := compiledSchema(t)
	for _, file := range testFiles(t, "invalid") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(src), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatalf("the first line of %s is not \"# want: <part of the error>\"", file)
			}
			err = s.Validate(yamlInstance(t, file))
			if err == nil {
				t.Fatal("invalid flow accepted")
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %q:\n%v", want, err)
			}
		})
	}
}

// TestJSONSchemaAgreesWithParser checks that the schema and the parser
// judge the test flows alike, except flows whose first line starts with
// "# The schema accepts" (types the schema allows but Kite does not run).
func TestJSONSchemaAgreesWithParser(t *testing.T) {
	p := &flow.Parser{Registry: tasks.Registry()}
	for _, dir := range []string{"valid", "invalid"} {
		for _, file := range testFiles(t, dir) {
			t.Run(dir+"/"+filepath.Base(file), func(t *testing.T) {
				src, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				_, err = p.Parse(file, src)
				switch {
				case dir == "invalid" && err == nil:
					t.Error("the parser accepts a flow the schema rejects")
				case dir == "valid" && err != nil && !bytes.HasPrefix(src, []byte("# The schema accepts")):
					t.Errorf("the parser rejects a flow the schema accepts: %v", err)
				}
			})
		}
	}
}

func TestJSONSchemaIsDeterministic(t *testing.T) {
	a, err := flow.JSONSchema(tasks.Registry())
	if err != nil {
		t.Fatal(err)
	}
	b, err := flow.JSONSchema(tasks.Registry())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two generations of the schema differ")
	}
}

// TestJSONSchemaDocumentsTypes checks what an editor shows: a definition
// per type, with the type's names, descriptions and defaults.
func TestJSONSchemaDocumentsTypes(t *testing.T) {
	raw, err := flow.JSONSchema(tasks.Registry())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema string `json:"$schema"`
		Defs   map[string]struct {
			Description string `json:"description"`
			Properties  map[string]struct {
				Description string `json:"description"`
				Default     any    `json:"default"`
				Enum        []string
			} `json:"properties"`
			Required             []string `json:"required"`
			AdditionalProperties *bool    `json:"additionalProperties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema = %q, want draft-07", doc.Schema)
	}

	log, ok := doc.Defs["task.log"]
	if !ok {
		t.Fatal("no definition for the log task")
	}
	if log.Description == "" || log.Properties["message"].Description == "" {
		t.Error("the log task or its message property has no description")
	}
	if !slices.Contains(log.Properties["type"].Enum, "io.kestra.core.tasks.log.Log") {
		t.Errorf("log type names = %v, want Kestra's old class name among them", log.Properties["type"].Enum)
	}
	if !slices.Contains(log.Required, "message") || !slices.Contains(log.Required, "id") {
		t.Errorf("log required = %v, want id and message", log.Required)
	}
	if log.AdditionalProperties == nil || *log.AdditionalProperties {
		t.Error("the log task accepts unknown properties")
	}
	if got := log.Properties["level"].Default; got != "INFO" {
		t.Errorf("log level default = %v, want INFO", got)
	}
	for _, common := range []string{"retry", "timeout", "runIf", "allowFailure", "workerGroup"} {
		if _, ok := log.Properties[common]; !ok {
			t.Errorf("log task lacks the common property %q", common)
		}
	}

	if _, ok := doc.Defs["task.pause"].Properties["pauseDuration"]; !ok {
		t.Error("pause does not accept pauseDuration, the alias of delay")
	}
	if dag := doc.Defs["task.dag"]; dag.AdditionalProperties != nil && !*dag.AdditionalProperties {
		t.Error("the unsupported dag task rejects unknown properties")
	}
	for _, def := range []string{"trigger.schedule", "condition.execution-status", "task", "trigger", "condition", "tasks"} {
		if _, ok := doc.Defs[def]; !ok {
			t.Errorf("no definition %q", def)
		}
	}
}
