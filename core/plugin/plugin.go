// Package plugin is the registry of task, trigger and condition types.
//
// Every type declares its properties once, here; the flow parser validates
// against these declarations, the JSON Schema is generated from them, and the
// docs list them. A type is known by one short Kite name (for example "log")
// and any number of aliases (Kestra's class names, old and new).
package plugin

import (
	"fmt"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Category says where a type may appear in a flow.
type Category string

const (
	CategoryTask      Category = "task"
	CategoryTrigger   Category = "trigger"
	CategoryCondition Category = "condition"
)

// Kind is the shape of a property value.
type Kind string

const (
	KindString   Kind = "string"   // text; any YAML scalar is accepted and kept as written
	KindInt      Kind = "integer"  // whole number
	KindNumber   Kind = "number"   // integer or float
	KindBool     Kind = "boolean"  // true or false
	KindDuration Kind = "duration" // ISO-8601 (PT5S, P1D) or Go style (5s, 1h30m)
	KindEnum     Kind = "enum"     // one of Schema.Enum
	KindList     Kind = "list"     // list of Schema.Elem
	KindMap      Kind = "map"      // map of string to Schema.Elem (nil Elem: any value)
	KindObject   Kind = "object"   // fixed fields, Schema.Fields
	KindAny      Kind = "any"      // any YAML value
	KindCron     Kind = "cron"     // a cron expression (5 or 6 fields, or @hourly etc.)
	KindTasks    Kind = "tasks"    // a list of tasks
	KindCases    Kind = "cases"    // a map of string to a list of tasks (Switch cases)
	KindConds    Kind = "conditions"
)

// Schema describes a property value.
type Schema struct {
	Kind Kind
	// Elem is the element schema of a list or map.
	Elem *Schema
	// Enum lists the allowed values of an enum.
	Enum []string
	// Fields are the properties of an object.
	Fields []Property
	// OneOf lists alternative schemas (for example a list, or a string holding
	// a JSON list); a value is valid when one of them accepts it.
	OneOf []*Schema
	// Dynamic properties may hold {{ expressions }} in place of a literal of
	// their kind; the value is then checked when it is rendered at run time.
	Dynamic bool
}

// Property is one named property of a type.
type Property struct {
	Name        string
	Schema      *Schema
	Required    bool
	Default     any
	Description string
	// Aliases are other accepted spellings (older Kestra names).
	Aliases []string
	// Deprecated says what to use instead of a deprecated property; empty
	// for a current one.
	Deprecated string
}

// Type is a task, trigger or condition type.
type Type struct {
	// Name is the short Kite name, lowercase kebab-case: "log", "for-each".
	Name     string
	Category Category
	// Aliases are the other names that mean this type, typically Kestra's
	// class names ("io.kestra.plugin.core.log.Log").
	Aliases []string
	// Flowable tasks are resolved by the executor (they hold child tasks);
	// runnable tasks are run by workers.
	Flowable    bool
	Description string
	Properties  []Property
	// Outputs documents what the type produces (names and schemas).
	Outputs []Property
	// Unsupported, when set, marks a type Kite knows by name but does not
	// run yet; it is the reason, shown as "not supported yet: <reason>".
	Unsupported string
}

// Property returns the property named name (or one of its aliases).
func (t *Type) Property(name string) (*Property, bool) {
	for i := range t.Properties {
		p := &t.Properties[i]
		if p.Name == name {
			return p, true
		}
		for _, a := range p.Aliases {
			if a == name {
				return p, true
			}
		}
	}
	return nil, false
}

// Registry holds the known types. It is safe for concurrent reads once
// registration is done; registration is not concurrency safe and happens at
// start-up.
type Registry struct {
	byName map[Category]map[string]*Type // every name and alias → type
	types  map[Category][]*Type          // canonical types in registration order
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[Category]map[string]*Type{}, types: map[Category][]*Type{}}
}

// Register adds types. It fails if a name or alias is already taken within
// the type's category, or if a type has no name or category.
func (r *Registry) Register(types ...*Type) error {
	for _, t := range types {
		if t.Name == "" || t.Category == "" {
			return fmt.Errorf("registering type %q: name and category are required", t.Name)
		}
		names := r.byName[t.Category]
		if names == nil {
			names = map[string]*Type{}
			r.byName[t.Category] = names
		}
		for _, n := range append([]string{t.Name}, t.Aliases...) {
			if prev, ok := names[n]; ok {
				return fmt.Errorf("registering %s type %q: name %q is already used by %q", t.Category, t.Name, n, prev.Name)
			}
			names[n] = t
		}
		r.types[t.Category] = append(r.types[t.Category], t)
	}
	return nil
}

// MustRegister is Register for package initialisation of built-in types,
// where a clash is a programming error.
func (r *Registry) MustRegister(types ...*Type) {
	if err := r.Register(types...); err != nil {
		panic(err)
	}
}

// Lookup finds a type of the category by its name or one of its aliases.
func (r *Registry) Lookup(c Category, name string) (*Type, bool) {
	t, ok := r.byName[c][name]
	return t, ok
}

// Types returns the canonical types of a category, sorted by name.
func (r *Registry) Types(c Category) []*Type {
	out := append([]*Type(nil), r.types[c]...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns every name and alias of a category, sorted.
func (r *Registry) Names(c Category) []string {
	out := make([]string, 0, len(r.byName[c]))
	for n := range r.byName[c] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Suggest returns up to limit names of the category closest to name, closest
// first, for "did you mean" messages: one name per type, in the form most
// like what was written (a class name for a class name, a short name for a
// short name). Names far from name are left out, so the result may be empty.
func (r *Registry) Suggest(c Category, name string, limit int) []string {
	type hit struct {
		name      string
		seg, full int
	}
	var hits []hit
	for _, t := range r.types[c] {
		var best *hit
		for _, n := range append([]string{t.Name}, t.Aliases...) {
			seg, ok := closeness(name, n)
			if !ok {
				continue
			}
			h := hit{n, seg, levenshtein.ComputeDistance(strings.ToLower(name), strings.ToLower(n))}
			if best == nil || h.seg < best.seg || h.seg == best.seg && h.full < best.full {
				best = &h
			}
		}
		if best != nil {
			hits = append(hits, *best)
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].seg != hits[j].seg {
			return hits[i].seg < hits[j].seg
		}
		if hits[i].full != hits[j].full {
			return hits[i].full < hits[j].full
		}
		return hits[i].name < hits[j].name
	})
	var out []string
	for i := 0; i < len(hits) && i < limit; i++ {
		out = append(out, hits[i].name)
	}
	return out
}

// Closest returns up to limit candidates closest to s by edit distance (case
// insensitive; for dotted class names the last segment is compared too),
// keeping only plausible ones.
func Closest(s string, candidates []string, limit int) []string {
	type scored struct {
		name string
		d    int
	}
	var hits []scored
	for _, c := range candidates {
		if d, ok := closeness(s, c); ok {
			hits = append(hits, scored{c, d})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].d != hits[j].d {
			return hits[i].d < hits[j].d
		}
		return hits[i].name < hits[j].name
	})
	var out []string
	for _, h := range hits {
		if len(out) == limit {
			break
		}
		out = append(out, h.name)
	}
	return out
}

// closeness is the edit distance between s and candidate (the smaller of
// the whole names' and the last dotted segments'), and whether it is small
// enough for a suggestion.
func closeness(s, candidate string) (int, bool) {
	ls, lc := strings.ToLower(s), strings.ToLower(candidate)
	d := levenshtein.ComputeDistance(ls, lc)
	if strings.Contains(ls, ".") || !strings.Contains(lc, ".") {
		// Compare last segments only when both are class names, or the
		// candidate is not one: "sequencial" should find "sequential", not
		// every class ending in ".Sequential".
		if d2 := levenshtein.ComputeDistance(lastSegment(ls), lastSegment(lc)); d2 < d && strings.Contains(ls, ".") == strings.Contains(lc, ".") {
			d = d2
		}
	}
	return d, d <= len(lastSegment(ls))/3+1
}

func lastSegment(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[i+1:]
	}
	return s
}
