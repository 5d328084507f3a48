package flow

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kiteflow/kite/core/plugin"
)

// JSON Schema of flow documents, for editors (yaml-language-server, VS Code,
// IntelliJ) and for tools that check flows without Kite.
//
// The schema is draft-07, the draft yaml-language-server supports best. A
// task is an anyOf over one definition per task type; each definition pins
// "type" to the type's name and aliases with an enum, lists the common task
// properties and the type's own, and forbids any other property. Editors
// pick the branch whose "type" matches, which gives completion and hover
// documentation per type. Triggers and conditions work the same way. Types
// Kite knows but does not run (plugin.Type.Unsupported) accept any property.
//
// The schema mirrors the parser but is not the whole truth: cross-field
// rules (unique task ids, input defaults that fit the input) and expression
// syntax are checked by Parse only.

const schemaDraft = "http://json-schema.org/draft-07/schema#"

// Value patterns, in the ECMA-262 subset JSON Schema uses.
const (
	// schemaExprPattern matches a string holding a {{ expression }} or a
	// {% tag %}: what a dynamic property may hold instead of its kind.
	schemaExprPattern = `\{\{|\{%`
	// schemaDurationPattern matches ISO-8601 durations without years or months
	// (PT30S, P1DT2H) and Go durations (30s, 1h30m).
	schemaDurationPattern = `^(-?[Pp](\d+[Ww])?(\d+[Dd])?([Tt](\d+(\.\d+)?[Hh])?(\d+(\.\d+)?[Mm])?(\d+(\.\d+)?[Ss])?)?|[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+|0)$`
	// schemaCronPattern matches 5 or 6 fields, or a descriptor such as @daily.
	schemaCronPattern = `^\s*(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every\s+\S+|\S+(\s+\S+){4,5})\s*$`
)

var schemaLogLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}

type jsObject = map[string]any

// JSONSchema returns the JSON Schema (draft-07) of a flow document whose
// task, trigger and condition types are those of r, indented for reading.
// It fails if a type declares a property without a schema.
func JSONSchema(r *plugin.Registry) ([]byte, error) {
	defs := jsObject{}
	for _, c := range []struct {
		category plugin.Category
		def      string
		common   func() (props jsObject, required []string)
	}{
		{plugin.CategoryTask, "task", jsTaskCommon},
		{plugin.CategoryTrigger, "trigger", jsTriggerCommon},
		{plugin.CategoryCondition, "condition", jsConditionCommon},
	} {
		var branches []any
		for _, t := range r.Types(c.category) {
			def, err := jsType(t, c.common)
			if err != nil {
				return nil, fmt.Errorf("generating the JSON Schema of %s type %q: %w", c.category, t.Name, err)
			}
			key := c.def + "." + t.Name
			defs[key] = def
			branches = append(branches, jsRef(key))
		}
		if branches == nil {
			// No type of this category: nothing can match.
			defs[c.def] = jsObject{"description": "No " + string(c.category) + " type is registered.", "not": jsObject{}}
			continue
		}
		defs[c.def] = jsObject{
			"title":       jsCapitalize(string(c.category)),
			"description": "A " + string(c.category) + "; its properties depend on its type.",
			"anyOf":       branches,
		}
	}
	// A null list is an empty one, as the parser reads it (Kestra flows write "defaults: null").
	defs["tasks"] = jsObject{"type": []string{"array", "null"}, "items": jsRef("task")}
	defs["conditions"] = jsObject{
		"description": "Conditions, as a list or as a mapping of name to condition.",
		"anyOf": []any{
			jsObject{"type": "array", "items": jsRef("condition")},
			jsObject{"type": "object", "additionalProperties": jsRef("condition")},
		},
	}
	defs["retry"] = jsRetry()
	defs["labels"] = jsLabels()
	defs["input"] = jsInput()
	defs["output"] = jsOutput()

	doc := jsObject{
		"$schema":     schemaDraft,
		"title":       "Kite flow",
		"description": "A Kite flow: a Kestra-compatible workflow definition.",
		"type":        "object",
		"required":    []string{"id", "namespace", "tasks"},
		"properties":  jsFlowProperties(),
		// Unknown top-level keys are errors, as in the parser.
		"additionalProperties": false,
		"definitions":          defs,
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the flow JSON Schema: %w", err)
	}
	return append(out, '\n'), nil
}

func jsRef(def string) jsObject { return jsObject{"$ref": "#/definitions/" + def} }

// jsDescribed returns a copy of s with a description. A $ref ignores its
// sibling keywords in draft-07, so a reference is wrapped in allOf first.
func jsDescribed(s jsObject, desc string) jsObject {
	if _, isRef := s["$ref"]; isRef {
		s = jsObject{"allOf": []any{s}}
	} else {
		c := make(jsObject, len(s)+1)
		for k, v := range s {
			c[k] = v
		}
		s = c
	}
	if desc != "" {
		s["description"] = desc
	}
	return s
}

// jsType is the definition of one task, trigger or condition type.
func jsType(t *plugin.Type, common func() (jsObject, []string)) (jsObject, error) {
	props, required := common()
	names := append([]string{t.Name}, t.Aliases...)
	props["type"] = jsObject{
		"description": "The type: " + t.Name + " (or one of its Kestra class names).",
		"enum":        names,
	}
	desc := t.Description
	if t.Unsupported != "" {
		desc = "Not supported by Kite yet: " + t.Unsupported + ". " + desc
		return jsObject{
			"title":       t.Name,
			"description": desc,
			"type":        "object",
			"properties":  props,
			"required":    required,
		}, nil
	}
	if t.Flowable {
		desc += " (Flowable: resolved by the executor.)"
	}
	// A required property with aliases is required under any of its names.
	var requiredAlts []any
	for _, p := range t.Properties {
		s, err := jsProperty(p)
		if err != nil {
			return nil, fmt.Errorf("property %q: %w", p.Name, err)
		}
		props[p.Name] = s
		for _, a := range p.Aliases {
			props[a] = jsDescribed(s, "Same as "+p.Name+". "+p.Description)
		}
		switch {
		case !p.Required:
		case len(p.Aliases) == 0:
			required = append(required, p.Name)
		default:
			var alts []any
			for _, n := range append([]string{p.Name}, p.Aliases...) {
				alts = append(alts, jsObject{"required": []string{n}})
			}
			requiredAlts = append(requiredAlts, jsObject{"anyOf": alts})
		}
	}
	out := jsObject{
		"title":                t.Name,
		"description":          desc,
		"type":                 "object",
		"properties":           props,
		"required":             required,
		"additionalProperties": false,
	}
	if requiredAlts != nil {
		out["allOf"] = requiredAlts
	}
	return out, nil
}

// jsProperty is the schema of one declared property, with its documentation.
func jsProperty(p plugin.Property) (jsObject, error) {
	if p.Schema == nil {
		return nil, fmt.Errorf("no schema declared")
	}
	s, err := jsValue(p.Schema)
	if err != nil {
		return nil, err
	}
	desc := p.Description
	if p.Deprecated != "" {
		desc += " Deprecated: use " + p.Deprecated + " instead."
	}
	s = jsDescribed(s, desc)
	if p.Deprecated != "" {
		s["deprecated"] = true
	}
	if p.Default != nil {
		s["default"] = p.Default
	}
	return s, nil
}

// jsValue is the schema of a value of s.
func jsValue(s *plugin.Schema) (jsObject, error) {
	if len(s.OneOf) > 0 {
		var alts []any
		for _, alt := range s.OneOf {
			if alt == nil {
				return nil, fmt.Errorf("nil alternative in oneOf")
			}
			a, err := jsValue(alt)
			if err != nil {
				return nil, err
			}
			alts = append(alts, a)
		}
		return jsObject{"anyOf": alts}, nil
	}
	var out jsObject
	switch s.Kind {
	case plugin.KindString:
		// Any scalar is accepted and kept as written.
		return jsObject{"type": []string{"string", "number", "boolean", "null"}}, nil
	case plugin.KindInt:
		out = jsObject{"type": "integer"}
	case plugin.KindNumber:
		out = jsObject{"type": "number"}
	case plugin.KindBool:
		out = jsObject{"type": "boolean"}
	case plugin.KindDuration:
		out = jsDuration()
	case plugin.KindEnum:
		out = jsObject{"type": "string", "enum": s.Enum}
	case plugin.KindCron:
		out = jsObject{"type": "string", "pattern": schemaCronPattern}
	case plugin.KindList:
		items := jsObject{}
		if s.Elem != nil {
			var err error
			if items, err = jsValue(s.Elem); err != nil {
				return nil, err
			}
		}
		out = jsObject{"type": "array", "items": items}
	case plugin.KindMap:
		var elem any = true
		if s.Elem != nil {
			e, err := jsValue(s.Elem)
			if err != nil {
				return nil, err
			}
			elem = e
		}
		out = jsObject{"type": []string{"object", "null"}, "additionalProperties": elem}
	case plugin.KindObject:
		props := jsObject{}
		var required []string
		for _, f := range s.Fields {
			fs, err := jsProperty(f)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			props[f.Name] = fs
			for _, a := range f.Aliases {
				props[a] = jsDescribed(fs, "Same as "+f.Name+". "+f.Description)
			}
			if f.Required {
				required = append(required, f.Name)
			}
		}
		out = jsObject{"type": "object", "properties": props, "additionalProperties": false}
		if required != nil {
			out["required"] = required
		}
	case plugin.KindAny:
		return jsObject{}, nil
	case plugin.KindTasks:
		return jsRef("tasks"), nil
	case plugin.KindCases:
		return jsObject{"type": "object", "additionalProperties": jsRef("tasks")}, nil
	case plugin.KindConds:
		return jsRef("conditions"), nil
	default:
		return nil, fmt.Errorf("unknown kind %q", s.Kind)
	}
	if s.Dynamic {
		// An expression stands for a value of the kind, checked once rendered.
		out = jsObject{"anyOf": []any{out, jsObject{"type": "string", "pattern": schemaExprPattern}}}
	}
	return out, nil
}

func jsDuration() jsObject {
	return jsObject{"type": "string", "pattern": schemaDurationPattern}
}

func jsEnum(values ...string) jsObject {
	return jsObject{"type": "string", "enum": values}
}

func jsID(pattern string, maxLen int, desc string) jsObject {
	return jsObject{"type": "string", "pattern": pattern, "maxLength": maxLen, "description": desc}
}

func jsBool(desc string) jsObject { return jsObject{"type": "boolean", "description": desc} }

func jsText(desc string) jsObject { return jsObject{"type": "string", "description": desc} }

// jsTaskCommon are the properties of every task, read by the parser itself.
func jsTaskCommon() (jsObject, []string) {
	return jsObject{
		"id":           jsID(taskIDPattern.String(), maxTaskIDLen, "Task identifier, unique in the whole flow."),
		"description":  jsText("Documentation of the task."),
		"retry":        jsDescribed(jsRef("retry"), "How the task is retried when it fails."),
		"timeout":      jsDescribed(jsDuration(), "Maximum run time of the task; it fails once exceeded."),
		"disabled":     jsBool("Whether the task is skipped."),
		"allowFailure": jsBool("Whether the execution goes on, in WARNING, when the task fails."),
		"allowWarning": jsBool("Whether a task ending in WARNING counts as SUCCESS."),
		"runIf":        jsText("Expression; the task is SKIPPED when it renders false."),
		"workerGroup": jsDescribed(jsObject{"anyOf": []any{
			jsObject{"type": "string"},
			jsObject{
				"type": "object",
				"properties": jsObject{
					"key":      jsText("Worker group key."),
					"fallback": jsDescribed(jsEnum("FAIL", "WAIT", "CANCEL"), "What happens when no worker of the group is available."),
				},
				"additionalProperties": false,
			},
		}}, "Worker group that runs the task."),
		"logLevel":  jsDescribed(jsEnum(schemaLogLevels...), "Minimum level of the task's logs."),
		"logToFile": jsBool("Whether task logs go to a file in internal storage; Kite does not support true."),
	}, []string{"id", "type"}
}

// jsTriggerCommon are the properties of every trigger read by the parser
// itself; the others are declared per trigger type.
func jsTriggerCommon() (jsObject, []string) {
	return jsObject{
		"id":          jsID(taskIDPattern.String(), maxTaskIDLen, "Trigger identifier, unique in the flow."),
		"description": jsText("Documentation of the trigger."),
		"disabled":    jsBool("Whether the trigger is disabled."),
		"conditions":  jsDescribed(jsRef("conditions"), "Conditions that must all match for the trigger to start an execution."),
	}, []string{"id", "type"}
}

func jsConditionCommon() (jsObject, []string) {
	return jsObject{}, []string{"type"}
}

func jsCapitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func jsFlowProperties() jsObject {
	return jsObject{
		"id":             jsID(flowIDPattern.String(), maxFlowIDLen, "Flow identifier, unique in its namespace."),
		"namespace":      jsID(namespacePattern.String(), maxNamespaceLen, "Namespace of the flow: lowercase, dot-separated (company.team)."),
		"revision":       jsObject{"type": "integer", "minimum": 1, "description": "Revision number; set by Kite when the flow is saved."},
		"description":    jsText("Documentation of the flow (Markdown)."),
		"labels":         jsDescribed(jsRef("labels"), "Labels of the flow's executions."),
		"inputs":         jsObject{"type": "array", "items": jsRef("input"), "description": "Inputs of the flow's executions."},
		"variables":      jsObject{"type": "object", "description": "Variables, available to expressions as vars.<name>."},
		"tasks":          jsDescribed(jsObject{"type": "array", "items": jsRef("task"), "minItems": 1}, "Tasks of the flow, run in order."),
		"errors":         jsDescribed(jsRef("tasks"), "Tasks to run when the execution fails."),
		"finally":        jsDescribed(jsRef("tasks"), "Tasks to run at the end of the execution, whatever its outcome."),
		"afterExecution": jsDescribed(jsRef("tasks"), "Tasks to run once the execution has ended and its state is final."),
		"triggers":       jsObject{"type": "array", "items": jsRef("trigger"), "description": "Triggers that start executions of the flow."},
		"concurrency": jsObject{
			"type":        "object",
			"description": "Limit on the number of the flow's executions running at once.",
			"properties": jsObject{
				"limit":    jsObject{"type": "integer", "minimum": 1, "description": "Maximum number of running executions."},
				"behavior": jsDescribed(jsEnum(ConcurrencyQueue, ConcurrencyCancel, ConcurrencyFail), "What happens to an execution over the limit: wait, be cancelled, or fail."),
			},
			"required":             []string{"limit"},
			"additionalProperties": false,
		},
		"outputs":        jsObject{"type": "array", "items": jsRef("output"), "description": "Outputs of the flow's executions, computed when they end."},
		"retry":          jsDescribed(jsRef("retry"), "How failed executions are retried."),
		"pluginDefaults": jsPluginDefaults("Default property values of tasks and triggers, by type.", false),
		"taskDefaults":   jsPluginDefaults("Default property values of tasks, by type.", true),
		"disabled":       jsBool("Whether the flow is disabled: its triggers do not fire."),
		"deleted":        jsObject{"type": "boolean", "enum": []any{false}, "description": "Accepted for Kestra compatibility; only false."},
		"tenantId":       jsText("Accepted for Kestra compatibility; Kite's tenant comes from the API."),
		"workerGroup":    jsObject{"description": "Accepted for Kestra compatibility; not used."},
	}
}

func jsPluginDefaults(desc string, deprecated bool) jsObject {
	s := jsObject{
		"type": "array",
		"items": jsObject{
			"type": "object",
			"properties": jsObject{
				"type":   jsText("Type these defaults apply to: a name, an alias, or a prefix of Kestra class names."),
				"forced": jsObject{"type": "boolean", "default": false, "description": "Whether the defaults override values set on the task."},
				"values": jsObject{"type": "object", "description": "Property values, by property name."},
			},
			"required":             []string{"type"},
			"additionalProperties": false,
		},
		"description": desc,
	}
	if deprecated {
		s["description"] = desc + " Deprecated: use pluginDefaults instead."
		s["deprecated"] = true
	}
	return s
}

func jsLabels() jsObject {
	scalar := jsObject{"type": []string{"string", "number", "boolean", "null"}}
	return jsObject{
		"description": "Labels, as a mapping of key to value or a list of {key, value}.",
		"anyOf": []any{
			jsObject{"type": "object", "additionalProperties": scalar},
			jsObject{"type": "array", "items": jsObject{
				"type": "object",
				"properties": jsObject{
					"key":   jsText("Label key."),
					"value": jsDescribed(scalar, "Label value."),
				},
				"required":             []string{"key"},
				"additionalProperties": false,
			}},
		},
	}
}

func jsInputType() jsObject {
	names := make([]string, len(inputTypes))
	for i, t := range inputTypes {
		names[i] = string(t)
	}
	return jsEnum(names...)
}

func jsInput() jsObject {
	number := jsObject{"type": []string{"number", "string"}}
	return jsObject{
		"type":        "object",
		"description": "A flow input.",
		"properties": jsObject{
			"id":               jsID(inputIDPattern.String(), maxTaskIDLen, "Input identifier; its value is inputs.<id>."),
			"name":             jsDescribed(jsID(inputIDPattern.String(), maxTaskIDLen, ""), "Older spelling of id. Deprecated: use id instead."),
			"type":             jsDescribed(jsInputType(), "Type of the input's value."),
			"description":      jsText("Documentation of the input."),
			"displayName":      jsText("Name shown instead of the id in forms."),
			"required":         jsObject{"type": "boolean", "default": true, "description": "Whether a value is required."},
			"defaults":         jsObject{"description": "Default value; may be an expression."},
			"prefill":          jsObject{"description": "Value shown in forms that may be cleared; used as the default."},
			"validator":        jsText("Regular expression a STRING value must match in full."),
			"min":              jsDescribed(number, "Lower bound of an INT or FLOAT value, or minimal DURATION."),
			"max":              jsDescribed(number, "Upper bound of an INT or FLOAT value, or maximal DURATION."),
			"minLength":        jsObject{"type": "integer", "minimum": 0, "description": "Minimal length of a STRING value."},
			"maxLength":        jsObject{"type": "integer", "minimum": 0, "description": "Maximal length of a STRING value."},
			"after":            jsText("DATE, TIME or DATETIME the value must be after."),
			"before":           jsText("DATE, TIME or DATETIME the value must be before."),
			"values":           jsDescribed(jsObject{"anyOf": []any{jsObject{"type": "array", "items": jsObject{"type": "string"}}, jsObject{"type": "string", "pattern": schemaExprPattern}}}, "Allowed values of ENUM, SELECT and MULTISELECT inputs, or an expression giving them."),
			"options":          jsDescribed(jsObject{"type": "array", "items": jsObject{"type": "string"}}, "Older spelling of values. Deprecated: use values instead."),
			"allowCustomValue": jsBool("Whether SELECT and MULTISELECT inputs accept values not listed."),
			"itemType":         jsDescribed(jsInputType(), "Type of the items of an ARRAY input."),
			"extension":        jsText("File name suffix a FILE input must have (.csv)."),
			"dependsOn": jsObject{
				"type":        "object",
				"description": "Inputs this input's defaults or values depend on.",
				"properties": jsObject{
					"inputs":    jsObject{"type": "array", "items": jsObject{"type": "string"}, "description": "Ids of the inputs depended on."},
					"condition": jsText("Expression; the input is shown only when it renders true."),
				},
				"additionalProperties": false,
			},
			"expression":      jsText("Expression giving the values of a SELECT or MULTISELECT input."),
			"autoSelectFirst": jsBool("Whether the first value is selected by default in forms."),
			"isRadio":         jsBool("Whether forms show the values as radio buttons."),
		},
		"required": []string{"type"},
		"oneOf": []any{
			jsObject{"required": []string{"id"}},
			jsObject{"required": []string{"name"}},
		},
		"additionalProperties": false,
	}
}

func jsOutput() jsObject {
	return jsObject{
		"type":        "object",
		"description": "A flow output, computed when the execution ends.",
		"properties": jsObject{
			"id":          jsID(inputIDPattern.String(), maxTaskIDLen, "Output identifier."),
			"type":        jsDescribed(jsInputType(), "Type of the output's value; STRING by default."),
			"value":       jsObject{"description": "Value of the output, usually an expression."},
			"description": jsText("Documentation of the output."),
			"displayName": jsText("Name shown instead of the id."),
			"required":    jsObject{"type": "boolean", "default": true, "description": "Whether the execution fails when the value is missing."},
		},
		"required":             []string{"id", "value"},
		"additionalProperties": false,
	}
}

// jsRetry is a retry policy, of a task or of the flow.
func jsRetry() jsObject {
	common := func() jsObject {
		p := jsObject{
			"maxAttempt":     jsObject{"type": "integer", "minimum": 1, "description": "Maximum number of attempts, the first included."},
			"maxAttempts":    jsObject{"type": "integer", "minimum": 1, "description": "Another spelling of maxAttempt."},
			"maxDuration":    jsDescribed(jsDuration(), "Maximum time spent retrying."),
			"warningOnRetry": jsObject{"type": "boolean", "default": false, "description": "Whether a success after retries ends in WARNING."},
		}
		p["behavior"] = jsDescribed(jsEnum(RetryFailedTask, RetryCreateNewExecution), "Whether to retry the failed task in the same execution or create a new execution.")
		p["behavior"].(jsObject)["default"] = RetryFailedTask
		return p
	}
	policy := func(typ, desc string, required []string, props jsObject) jsObject {
		p := common()
		p["type"] = jsObject{"const": typ, "description": "Retry policy: " + typ + "."}
		for k, v := range props {
			p[k] = v
		}
		return jsObject{
			"title":                typ + " retry",
			"description":          desc,
			"type":                 "object",
			"properties":           p,
			"required":             append([]string{"type"}, required...),
			"additionalProperties": false,
			"anyOf": []any{
				jsObject{"required": []string{"maxAttempt"}},
				jsObject{"required": []string{"maxAttempts"}},
				jsObject{"required": []string{"maxDuration"}},
			},
		}
	}
	return jsObject{
		"description": "Retry policy; needs maxAttempt or maxDuration.",
		"oneOf": []any{
			policy(RetryConstant, "Retry after a fixed interval.", []string{"interval"}, jsObject{
				"interval": jsDescribed(jsDuration(), "Wait between attempts."),
			}),
			policy(RetryExponential, "Retry after waits growing by delayFactor.", []string{"interval", "maxInterval"}, jsObject{
				"interval":    jsDescribed(jsDuration(), "First wait."),
				"maxInterval": jsDescribed(jsDuration(), "Longest wait."),
				"delayFactor": jsObject{"type": "number", "default": 2, "description": "Factor each wait is multiplied by."},
			}),
			policy(RetryRandom, "Retry after random waits between minInterval and maxInterval.", []string{"minInterval", "maxInterval"}, jsObject{
				"minInterval": jsDescribed(jsDuration(), "Shortest wait."),
				"maxInterval": jsDescribed(jsDuration(), "Longest wait."),
			}),
		},
	}
}
