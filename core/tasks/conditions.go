package tasks

import "github.com/kiteflow/kite/core/plugin"

// conditionAliases returns Kestra's names of a condition class: the current
// one, the 0.17 one ending in "Condition", and the pre-0.17 one.
func conditionAliases(class string) []string {
	return []string{
		"io.kestra.plugin.core.condition." + class,
		"io.kestra.plugin.core.condition." + class + "Condition",
		"io.kestra.core.models.conditions.types." + class + "Condition",
	}
}

var daysOfWeek = []string{"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"}

// dateProp is the date a calendar condition checks.
func dateProp() plugin.Property {
	return def("date", dyn(str()), "{{ trigger.date }}", "Date-time (ISO-8601) to check; the trigger's date by default.")
}

// conditions are the condition types of triggers.
func conditions() []*plugin.Type {
	return []*plugin.Type{
		{
			Name:        "execution-flow",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("ExecutionFlow"),
			Description: "Match executions of one flow.",
			Properties: []plugin.Property{
				req("namespace", str(), "Namespace of the flow."),
				req("flowId", str(), "Identifier of the flow."),
			},
		},
		{
			Name:        "execution-status",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("ExecutionStatus"),
			Description: "Match executions by state.",
			Properties: []plugin.Property{
				opt("in", stateList(), "States the execution must be in."),
				opt("notIn", stateList(), "States the execution must not be in."),
			},
		},
		{
			Name:        "execution-namespace",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("ExecutionNamespace"),
			Description: "Match executions by namespace.",
			Properties: []plugin.Property{
				req("namespace", str(), "Namespace to compare the execution's namespace with."),
				opt("comparison", enum("EQUALS", "PREFIX", "SUFFIX"), "How to compare the namespaces; EQUALS by default (PREFIX when prefix is set)."),
				def("prefix", boolean(), false, "Shortcut for comparison PREFIX, used when comparison is not set."),
			},
		},
		{
			Name:        "execution-labels",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("ExecutionLabels"),
			Description: "Match executions that have all the given labels.",
			Properties: []plugin.Property{
				req("labels", labelsSchema(), "Labels the execution must have, as a map or a list of {key, value}."),
			},
		},
		{
			Name:        "execution-outputs",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("ExecutionOutputs"),
			Description: "Match executions whose outputs make an expression true.",
			Properties: []plugin.Property{
				req("expression", dyn(str()), "Expression over the execution's outputs ({{ trigger.outputs }}); matches when it renders true."),
			},
		},
		{
			Name:     "expression",
			Category: plugin.CategoryCondition,
			Aliases: []string{
				"io.kestra.plugin.core.condition.Expression",
				"io.kestra.plugin.core.condition.ExpressionCondition",
				"io.kestra.core.models.conditions.types.VariableCondition",
			},
			Description: "Match when an expression renders true.",
			Properties: []plugin.Property{
				req("expression", dyn(str()), "Expression; matches when it renders true."),
			},
		},
		{
			Name:        "multiple",
			Category:    plugin.CategoryCondition,
			Aliases:     []string{"io.kestra.plugin.core.condition.MultipleCondition", "io.kestra.core.models.conditions.types.MultipleCondition"},
			Description: "Deprecated: match when several named conditions all matched within a time window; use flow trigger preconditions.",
			Properties: []plugin.Property{
				req("id", str(), "Identifier under which the conditions' results are kept."),
				req("conditions", mapOf(anyValue()), "Conditions to meet, by a name unique in the trigger."),
				opt("timeWindow", timeWindowSchema(), "Time window within which all conditions must match; a one-day duration window by default."),
				deprecated(opt("window", duration(), "Length of the time window."), "timeWindow.window"),
				deprecated(opt("windowAdvance", duration(), "Offset of the start of the time window from midnight."), "timeWindow.windowAdvance"),
				def("resetOnSuccess", boolean(), true, "Whether the results are reset once all conditions matched."),
			},
		},
		{
			Name:        "day-week",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("DayWeek"),
			Description: "Match on a given day of the week.",
			Properties: []plugin.Property{
				dateProp(),
				req("dayOfWeek", enum(daysOfWeek...), "Day of the week."),
			},
		},
		{
			Name:        "day-week-in-month",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("DayWeekInMonth"),
			Description: "Match on a given day of the week in a given week of the month (such as the first Monday).",
			Properties: []plugin.Property{
				dateProp(),
				req("dayOfWeek", enum(daysOfWeek...), "Day of the week."),
				req("dayInMonth", enum("FIRST", "SECOND", "THIRD", "FOURTH", "LAST"), "Which occurrence of that day in the month."),
			},
		},
		{
			Name:        "date-time-between",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("DateTimeBetween"),
			Description: "Match when a date-time is between two date-times.",
			Properties: []plugin.Property{
				dateProp(),
				opt("after", str(), "Date-time (ISO-8601) the date must be after."),
				opt("before", str(), "Date-time (ISO-8601) the date must be before."),
			},
		},
		{
			Name:        "time-between",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("TimeBetween"),
			Description: "Match when the time of day of a date-time is between two times.",
			Properties: []plugin.Property{
				dateProp(),
				opt("after", str(), "Time of day (HH:mm:ss, with an optional offset) the time must be after."),
				opt("before", str(), "Time of day (HH:mm:ss, with an optional offset) the time must be before."),
			},
		},
		{
			Name:        "weekend",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("Weekend"),
			Description: "Match on Saturdays and Sundays.",
			Properties: []plugin.Property{
				dateProp(),
			},
		},
		{
			Name:        "not",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("Not"),
			Description: "Match when none of the conditions matches.",
			Properties: []plugin.Property{
				req("conditions", kind(plugin.KindConds), "Conditions that must all fail."),
			},
		},
		{
			Name:        "or",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("Or"),
			Description: "Match when at least one of the conditions matches.",
			Properties: []plugin.Property{
				req("conditions", kind(plugin.KindConds), "Conditions of which one must match."),
			},
		},
		{
			Name:        "flow",
			Category:    plugin.CategoryCondition,
			Aliases:     []string{"io.kestra.plugin.core.condition.FlowCondition", "io.kestra.core.models.conditions.types.FlowCondition"},
			Description: "Deprecated: match executions of one flow; use execution-flow.",
			Properties: []plugin.Property{
				req("namespace", str(), "Namespace of the flow."),
				req("flowId", str(), "Identifier of the flow."),
			},
		},
		{
			Name:        "flow-namespace",
			Category:    plugin.CategoryCondition,
			Aliases:     []string{"io.kestra.plugin.core.condition.FlowNamespaceCondition", "io.kestra.core.models.conditions.types.FlowNamespaceCondition"},
			Description: "Deprecated: match executions by flow namespace; use execution-namespace.",
			Properties: []plugin.Property{
				req("namespace", str(), "Namespace to compare with."),
				def("prefix", boolean(), false, "Whether the namespace is compared as a prefix."),
			},
		},
		{
			Name:        "public-holiday",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("PublicHoliday"),
			Description: "Match on public holidays of a country.",
			Unsupported: "public holiday calendars are not available",
		},
		{
			Name:        "has-retry-attempt",
			Category:    plugin.CategoryCondition,
			Aliases:     conditionAliases("HasRetryAttempt"),
			Description: "Match executions with a retried task run.",
			Unsupported: "only used by flow listeners, which Kite does not have",
		},
	}
}
