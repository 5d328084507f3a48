// Package tasks declares Kite's built-in task, trigger and condition types:
// their short names, the Kestra class names they answer to, and the
// properties each accepts. The declarations are what the flow parser
// validates against and what the JSON Schema and docs are generated from;
// the behaviour of each type lives with the executor (flowable tasks) and
// the worker (runnable tasks).
//
// Property names, defaults and required flags follow Kestra's, so that a
// Kestra flow validates unchanged. Types Kite knows by name but does not run
// yet are registered with Unsupported set and accept any property.
package tasks

import (
	"fmt"

	"github.com/kiteflow/kite/core/plugin"
)

// Register adds every built-in type to r. It fails if one of their names is
// already taken in r.
func Register(r *plugin.Registry) error {
	for _, group := range []struct {
		what  string
		types []*plugin.Type
	}{
		{"runnable tasks", runnableTasks()},
		{"storage tasks", storageTasks()},
		{"flowable tasks", flowableTasks()},
		{"unsupported tasks", unsupportedTasks()},
		{"triggers", triggers()},
		{"conditions", conditions()},
	} {
		if err := r.Register(group.types...); err != nil {
			return fmt.Errorf("registering built-in %s: %w", group.what, err)
		}
	}
	return nil
}

// Registry returns a new registry holding every built-in type. Each call
// builds fresh declarations, so callers may add their own types to it.
func Registry() *plugin.Registry {
	r := plugin.NewRegistry()
	// The built-in names are fixed and tested not to clash, so a failure
	// here is a programming error, as plugin.MustRegister documents.
	if err := Register(r); err != nil {
		panic(err)
	}
	return r
}

// Schema constructors, to keep the declarations readable.

func kind(k plugin.Kind) *plugin.Schema { return &plugin.Schema{Kind: k} }

func str() *plugin.Schema      { return kind(plugin.KindString) }
func integer() *plugin.Schema  { return kind(plugin.KindInt) }
func boolean() *plugin.Schema  { return kind(plugin.KindBool) }
func duration() *plugin.Schema { return kind(plugin.KindDuration) }
func anyValue() *plugin.Schema { return kind(plugin.KindAny) }
func taskList() *plugin.Schema { return kind(plugin.KindTasks) }

func enum(values ...string) *plugin.Schema {
	return &plugin.Schema{Kind: plugin.KindEnum, Enum: values}
}

func listOf(elem *plugin.Schema) *plugin.Schema {
	return &plugin.Schema{Kind: plugin.KindList, Elem: elem}
}

// mapOf is a map of string to elem; a nil elem accepts any value.
func mapOf(elem *plugin.Schema) *plugin.Schema {
	return &plugin.Schema{Kind: plugin.KindMap, Elem: elem}
}

func object(fields ...plugin.Property) *plugin.Schema {
	return &plugin.Schema{Kind: plugin.KindObject, Fields: fields}
}

// oneOf is a value accepted by any of the alternatives. Its Kind is
// KindAny: the alternatives carry the shapes.
func oneOf(alternatives ...*plugin.Schema) *plugin.Schema {
	return &plugin.Schema{Kind: plugin.KindAny, OneOf: alternatives}
}

// dyn marks s as dynamic: it may hold {{ expressions }} rendered at run time.
// The alternatives of a oneOf are marked too, since a value is checked
// against them.
func dyn(s *plugin.Schema) *plugin.Schema {
	s.Dynamic = true
	for _, alt := range s.OneOf {
		dyn(alt)
	}
	return s
}

// Property constructors.

func opt(name string, s *plugin.Schema, desc string) plugin.Property {
	return plugin.Property{Name: name, Schema: s, Description: desc}
}

func req(name string, s *plugin.Schema, desc string) plugin.Property {
	return plugin.Property{Name: name, Schema: s, Required: true, Description: desc}
}

func def(name string, s *plugin.Schema, value any, desc string) plugin.Property {
	return plugin.Property{Name: name, Schema: s, Default: value, Description: desc}
}

// deprecated marks p as deprecated, with what to use instead.
func deprecated(p plugin.Property, instead string) plugin.Property {
	p.Deprecated = instead
	return p
}

// withAliases gives p other accepted spellings.
func withAliases(p plugin.Property, aliases ...string) plugin.Property {
	p.Aliases = aliases
	return p
}

// Shared value shapes.

// States are Kestra's execution and task run states.
var states = []string{
	"CREATED", "SUBMITTED", "RUNNING", "PAUSED", "RESTARTED", "KILLING",
	"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "QUEUED",
	"RETRYING", "RETRIED", "SKIPPED", "BREAKPOINT", "RESUBMITTED",
}

// terminatedStates are the states an execution ends in.
var terminatedStates = []string{"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED"}

var logLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}

func stateList() *plugin.Schema { return listOf(enum(states...)) }

// labelsSchema accepts labels as a map (key: value) or as a list of
// {key, value} objects, as Kestra does.
func labelsSchema() *plugin.Schema {
	return oneOf(
		mapOf(str()),
		listOf(object(
			req("key", str(), "Label key."),
			req("value", str(), "Label value."),
		)),
	)
}

// stringOrList accepts one string or a list of strings.
func stringOrList() *plugin.Schema {
	return oneOf(str(), listOf(str()))
}

// flowable appends the errors and finally task lists every flowable task
// accepts.
func flowable(props ...plugin.Property) []plugin.Property {
	return append(props,
		opt("errors", taskList(), "Tasks to run when one of the child tasks fails."),
		opt("finally", taskList(), "Tasks to run after the child tasks, whatever their outcome."),
	)
}
