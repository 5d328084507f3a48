package plugin

import (
	"reflect"
	"strings"
	"testing"
)

func testRegistry(t *testing.T) *Registry {
	t.Helper()
	r := NewRegistry()
	err := r.Register(
		&Type{Name: "log", Category: CategoryTask, Aliases: []string{"io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log"}},
		&Type{Name: "sequential", Category: CategoryTask, Flowable: true, Aliases: []string{"io.kestra.plugin.core.flow.Sequential"}},
		&Type{Name: "each-sequential", Category: CategoryTask, Flowable: true, Aliases: []string{"io.kestra.plugin.core.flow.EachSequential"}},
		&Type{Name: "schedule", Category: CategoryTrigger},
		// Categories have their own names: a condition may share a task's name.
		&Type{Name: "log", Category: CategoryCondition},
	)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegisterRefusesClashes(t *testing.T) {
	r := testRegistry(t)
	err := r.Register(&Type{Name: "print", Category: CategoryTask, Aliases: []string{"io.kestra.core.tasks.log.Log"}})
	if err == nil || !strings.Contains(err.Error(), `name "io.kestra.core.tasks.log.Log" is already used by "log"`) {
		t.Errorf("clash not reported: %v", err)
	}
	if err := r.Register(&Type{Name: "x"}); err == nil {
		t.Error("a type without a category was accepted")
	}
}

func TestLookup(t *testing.T) {
	r := testRegistry(t)
	for _, name := range []string{"log", "io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log"} {
		if tp, ok := r.Lookup(CategoryTask, name); !ok || tp.Name != "log" {
			t.Errorf("Lookup(%q) = %v, %v", name, tp, ok)
		}
	}
	if _, ok := r.Lookup(CategoryTrigger, "log"); ok {
		t.Error("a task name resolved as a trigger")
	}
	if got := names(r.Types(CategoryTask)); !reflect.DeepEqual(got, []string{"each-sequential", "log", "sequential"}) {
		t.Errorf("Types = %v", got)
	}
}

func names(ts []*Type) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func TestSuggest(t *testing.T) {
	r := testRegistry(t)
	tests := []struct {
		in   string
		want []string
	}{
		// A class name gets a class name back, the current Kestra one first.
		{"io.kestra.plugin.core.log.Lg", []string{"io.kestra.plugin.core.log.Log"}},
		{"io.kestra.core.tasks.log.Logg", []string{"io.kestra.core.tasks.log.Log"}},
		// A short name gets a short name back.
		{"sequencial", []string{"sequential"}},
		{"LOG", []string{"log"}},
		// Nothing close: no suggestion rather than a wild one.
		{"kubernetes", nil},
	}
	for _, tt := range tests {
		if got := r.Suggest(CategoryTask, tt.in, 3); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	got := Closest("mesage", []string{"id", "type", "message", "level"}, 2)
	if !reflect.DeepEqual(got, []string{"message"}) {
		t.Errorf("Closest = %v", got)
	}
}
