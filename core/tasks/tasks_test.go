package tasks_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kiteflow/kite/core/plugin"
	"github.com/kiteflow/kite/core/tasks"
)

var categories = []plugin.Category{plugin.CategoryTask, plugin.CategoryTrigger, plugin.CategoryCondition}

func TestRegistryBuildsWithoutClash(t *testing.T) {
	r := tasks.Registry()
	for _, c := range categories {
		if len(r.Types(c)) == 0 {
			t.Errorf("no %s types registered", c)
		}
	}
	// Registering the built-ins a second time must clash, not silently
	// replace them.
	if err := tasks.Register(r); err == nil {
		t.Error("registering the built-ins twice in one registry: got no error")
	}
	// Each call gives fresh declarations.
	a, _ := tasks.Registry().Lookup(plugin.CategoryTask, "log")
	b, _ := tasks.Registry().Lookup(plugin.CategoryTask, "log")
	if a == b {
		t.Error("Registry() returned shared type declarations")
	}
}

func TestEveryNameAndAliasResolves(t *testing.T) {
	r := tasks.Registry()
	for _, c := range categories {
		for _, typ := range r.Types(c) {
			for _, n := range append([]string{typ.Name}, typ.Aliases...) {
				got, ok := r.Lookup(c, n)
				if !ok || got != typ {
					t.Errorf("%s %q: Lookup(%q) = %v, %v; want the type itself", c, typ.Name, n, got, ok)
				}
			}
		}
	}
}

var shortName = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

func TestDeclarationsAreComplete(t *testing.T) {
	r := tasks.Registry()
	for _, c := range categories {
		for _, typ := range r.Types(c) {
			t.Run(string(c)+"/"+typ.Name, func(t *testing.T) {
				if !shortName.MatchString(typ.Name) {
					t.Errorf("name %q is not lowercase kebab-case", typ.Name)
				}
				if typ.Description == "" {
					t.Error("type has no description")
				}
				if !slices.ContainsFunc(typ.Aliases, func(a string) bool { return strings.HasPrefix(a, "io.kestra.") }) {
					t.Error("type has no Kestra class name among its aliases")
				}
				if typ.Unsupported != "" && len(typ.Properties) > 0 {
					t.Error("unsupported type declares properties; it should accept any")
				}
				seen := map[string]bool{}
				for _, p := range typ.Properties {
					for _, n := range append([]string{p.Name}, p.Aliases...) {
						if seen[n] {
							t.Errorf("property name %q declared twice", n)
						}
						seen[n] = true
					}
					checkProperty(t, p.Name, p)
				}
				for _, p := range typ.Outputs {
					checkProperty(t, "outputs."+p.Name, p)
				}
			})
		}
	}
}

// checkProperty asserts that a property, and every field nested in its
// schema, has a description and a well-formed schema.
func checkProperty(t *testing.T, path string, p plugin.Property) {
	t.Helper()
	if p.Name == "" {
		t.Errorf("%s: property without a name", path)
	}
	if strings.TrimSpace(p.Description) == "" {
		t.Errorf("%s: no description", path)
	}
	if strings.Contains(p.Description, "\n") {
		t.Errorf("%s: description is not one line", path)
	}
	if p.Schema == nil {
		t.Errorf("%s: no schema", path)
		return
	}
	checkSchema(t, path, p.Schema)
	if p.Default != nil {
		checkDefault(t, path, p.Schema, p.Default)
	}
}

func checkSchema(t *testing.T, path string, s *plugin.Schema) {
	t.Helper()
	switch s.Kind {
	case plugin.KindEnum:
		if len(s.Enum) == 0 {
			t.Errorf("%s: enum without values", path)
		}
	case plugin.KindList:
		if s.Elem == nil {
			t.Errorf("%s: list without element schema", path)
		}
	case plugin.KindObject:
		if len(s.Fields) == 0 {
			t.Errorf("%s: object without fields", path)
		}
	case plugin.KindString, plugin.KindInt, plugin.KindNumber, plugin.KindBool, plugin.KindDuration,
		plugin.KindMap, plugin.KindAny, plugin.KindCron, plugin.KindTasks, plugin.KindCases, plugin.KindConds:
	default:
		t.Errorf("%s: unknown kind %q", path, s.Kind)
	}
	if s.Elem != nil {
		checkSchema(t, path+"[]", s.Elem)
	}
	for _, f := range s.Fields {
		checkProperty(t, path+"."+f.Name, f)
	}
	for _, alt := range s.OneOf {
		if alt == nil {
			t.Errorf("%s: nil alternative", path)
			continue
		}
		checkSchema(t, path, alt)
	}
}

func checkDefault(t *testing.T, path string, s *plugin.Schema, v any) {
	t.Helper()
	ok := true
	switch s.Kind {
	case plugin.KindString, plugin.KindDuration, plugin.KindCron:
		_, ok = v.(string)
	case plugin.KindEnum:
		str, isStr := v.(string)
		ok = isStr && slices.Contains(s.Enum, str)
	case plugin.KindInt:
		_, ok = v.(int)
	case plugin.KindBool:
		_, ok = v.(bool)
	case plugin.KindList:
		ok = v != nil
	}
	if !ok {
		t.Errorf("%s: default %#v does not fit kind %s", path, v, s.Kind)
	}
}

func TestFlowablesHaveErrorsAndFinally(t *testing.T) {
	r := tasks.Registry()
	for _, typ := range r.Types(plugin.CategoryTask) {
		// Subflow is resolved by the executor but, as in Kestra, holds no
		// child tasks.
		if !typ.Flowable || typ.Name == "subflow" {
			continue
		}
		for _, name := range []string{"errors", "finally"} {
			p, ok := typ.Property(name)
			if !ok || p.Schema.Kind != plugin.KindTasks {
				t.Errorf("flowable %q: no %s task list", typ.Name, name)
			}
		}
	}
}

func TestKestraClassNames(t *testing.T) {
	r := tasks.Registry()
	tests := []struct {
		category plugin.Category
		class    string
		want     string
	}{
		{plugin.CategoryTask, "io.kestra.plugin.core.log.Log", "log"},
		{plugin.CategoryTask, "io.kestra.core.tasks.log.Log", "log"},
		{plugin.CategoryTask, "io.kestra.core.tasks.debugs.Return", "return"},
		{plugin.CategoryTask, "echo", "debug"},
		{plugin.CategoryTask, "io.kestra.plugin.core.debug.Echo", "debug"},
		{plugin.CategoryTask, "io.kestra.core.tasks.outputs.OutputValues", "output-values"},
		{plugin.CategoryTask, "io.kestra.plugin.core.flow.Sleep", "sleep"},
		{plugin.CategoryTask, "io.kestra.core.tasks.executions.Fail", "fail"},
		{plugin.CategoryTask, "io.kestra.plugin.core.execution.Labels", "labels"},
		{plugin.CategoryTask, "io.kestra.plugin.scripts.shell.Commands", "commands"},
		{plugin.CategoryTask, "io.kestra.core.tasks.scripts.Bash", "commands"},
		{plugin.CategoryTask, "io.kestra.plugin.fs.http.Request", "http-request"},
		{plugin.CategoryTask, "io.kestra.plugin.core.flow.ForEach", "for-each"},
		{plugin.CategoryTask, "io.kestra.core.tasks.flows.EachParallel", "each-parallel"},
		{plugin.CategoryTask, "io.kestra.core.tasks.flows.Flow", "subflow"},
		{plugin.CategoryTask, "io.kestra.core.tasks.flows.Pause", "pause"},
		{plugin.CategoryTask, "io.kestra.plugin.core.flow.AllowFailure", "allow-failure"},
		{plugin.CategoryTask, "io.kestra.plugin.core.flow.Dag", "dag"},
		{plugin.CategoryTask, "io.kestra.core.tasks.storages.LocalFiles", "storage-local-files"},
		{plugin.CategoryTask, "io.kestra.plugin.core.kv.Set", "kv-set"},
		{plugin.CategoryTask, "io.kestra.core.tasks.trigger.Toggle", "toggle"},
		{plugin.CategoryTrigger, "io.kestra.plugin.core.trigger.Schedule", "schedule"},
		{plugin.CategoryTrigger, "io.kestra.core.models.triggers.types.Flow", "flow"},
		{plugin.CategoryTrigger, "io.kestra.plugin.core.trigger.Webhook", "webhook"},
		{plugin.CategoryTrigger, "io.kestra.plugin.fs.http.Trigger", "http-trigger"},
		{plugin.CategoryCondition, "io.kestra.plugin.core.condition.ExecutionStatus", "execution-status"},
		{plugin.CategoryCondition, "io.kestra.plugin.core.condition.ExecutionStatusCondition", "execution-status"},
		{plugin.CategoryCondition, "io.kestra.core.models.conditions.types.ExecutionFlowCondition", "execution-flow"},
		{plugin.CategoryCondition, "io.kestra.core.models.conditions.types.VariableCondition", "expression"},
		{plugin.CategoryCondition, "io.kestra.core.models.conditions.types.MultipleCondition", "multiple"},
		{plugin.CategoryCondition, "io.kestra.plugin.core.condition.DayWeekInMonth", "day-week-in-month"},
	}
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			typ, ok := r.Lookup(tt.category, tt.class)
			if !ok {
				t.Fatalf("%s %q is unknown", tt.category, tt.class)
			}
			if typ.Name != tt.want {
				t.Errorf("%s %q = %q, want %q", tt.category, tt.class, typ.Name, tt.want)
			}
		})
	}
}

func TestUnsupportedTypesSayWhy(t *testing.T) {
	r := tasks.Registry()
	for _, class := range []string{
		"io.kestra.plugin.core.flow.WorkingDirectory",
		"io.kestra.plugin.core.storage.Split",
		"io.kestra.plugin.core.state.Get",
		"io.kestra.plugin.core.namespace.UploadFiles",
		"io.kestra.plugin.core.http.Download",
	} {
		typ, ok := r.Lookup(plugin.CategoryTask, class)
		if !ok {
			t.Errorf("%q is unknown", class)
			continue
		}
		if typ.Unsupported == "" {
			t.Errorf("%q (%s) is not marked unsupported", class, typ.Name)
		}
	}
}

func TestPauseDurationAlias(t *testing.T) {
	typ, _ := tasks.Registry().Lookup(plugin.CategoryTask, "pause")
	p, ok := typ.Property("pauseDuration")
	if !ok || p.Name != "delay" {
		t.Fatalf("pause property pauseDuration = %v, %v; want the delay property", p, ok)
	}
}
