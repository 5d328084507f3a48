package tasks

import "github.com/kiteflow/kite/core/plugin"

// triggerCommon are the properties Kestra accepts on every trigger beyond
// id, type, description, disabled and conditions (which the flow parser
// reads itself).
func triggerCommon(props ...plugin.Property) []plugin.Property {
	return append(props,
		opt("labels", dyn(labelsSchema()), "Labels of the executions the trigger creates, as a map or a list of {key, value}."),
		opt("stopAfter", stateList(), "Disable the trigger once an execution it created ends in one of these states."),
		withAliases(opt("logLevel", enum(logLevels...), "Minimum level of the trigger's logs."), "minLogLevel"),
		opt("workerGroup", object(
			opt("key", str(), "Worker group key."),
		), "Worker group that evaluates the trigger; accepted for compatibility."),
	)
}

// triggers are the trigger types.
func triggers() []*plugin.Type {
	return []*plugin.Type{
		{
			Name:        "schedule",
			Category:    plugin.CategoryTrigger,
			Aliases:     []string{"io.kestra.plugin.core.trigger.Schedule", "io.kestra.core.models.triggers.types.Schedule"},
			Description: "Start executions on a cron schedule.",
			Properties: triggerCommon(
				req("cron", kind(plugin.KindCron), "Cron expression: 5 fields (6 with withSeconds) or a nickname such as @hourly or @daily."),
				def("withSeconds", boolean(), false, "Whether the cron expression has a leading seconds field."),
				def("timezone", str(), "Etc/UTC", "IANA time zone the cron expression is evaluated in."),
				opt("inputs", dyn(mapOf(nil)), "Inputs of the executions, by input id."),
				opt("lateMaximumDelay", duration(), "Skip a scheduled execution that could not start within this delay of its date."),
				opt("recoverMissedSchedules", enum("ALL", "NONE", "LAST"), "Which schedules missed while Kite was down to run on restart; ALL by default."),
				deprecated(opt("backfill", object(
					opt("start", str(), "Date-time (ISO-8601) of the first schedule to backfill."),
					opt("end", str(), "Date-time (ISO-8601) after which backfilling stops."),
					opt("inputs", mapOf(nil), "Inputs of the backfilled executions."),
					opt("labels", labelsSchema(), "Labels of the backfilled executions."),
				), "Run the schedules between start and end that are in the past."), "a backfill started from the API or CLI"),
			),
			Outputs: []plugin.Property{
				opt("date", str(), "Date-time of the schedule that fired."),
				opt("next", str(), "Date-time of the next schedule."),
				opt("previous", str(), "Date-time of the previous schedule."),
			},
		},
		{
			Name:        "flow",
			Category:    plugin.CategoryTrigger,
			Aliases:     []string{"io.kestra.plugin.core.trigger.Flow", "io.kestra.core.models.triggers.types.Flow"},
			Description: "Start an execution when executions of other flows change state.",
			Properties: triggerCommon(
				opt("inputs", dyn(mapOf(nil)), "Inputs of the execution, by input id; {{ trigger.outputs }} holds the upstream flow's outputs."),
				def("states", stateList(), terminatedStates, "Upstream execution states the trigger reacts to; terminal states by default."),
				opt("preconditions", object(
					opt("id", str(), "Identifier of the preconditions, under which their state is kept."),
					opt("flows", listOf(object(
						req("namespace", str(), "Namespace of the upstream flow."),
						opt("flowId", str(), "Identifier of the upstream flow; any flow of the namespace when absent."),
						opt("states", stateList(), "States the upstream execution must be in."),
						opt("labels", mapOf(str()), "Labels the upstream execution must have."),
					)), "Upstream flows whose executions must all match within the time window."),
					opt("where", listOf(object(
						req("id", str(), "Identifier of the filter."),
						def("operand", enum("AND", "OR"), "AND", "How the filters are combined."),
						req("filters", listOf(object(
							req("field", enum("FLOW_ID", "NAMESPACE", "STATE", "EXPRESSION"), "Field of the execution to filter on."),
							req("type", enum("EQUAL_TO", "NOT_EQUAL_TO", "IN", "NOT_IN", "IS_TRUE", "IS_FALSE", "IS_NULL", "IS_NOT_NULL", "STARTS_WITH", "ENDS_WITH", "REGEX", "CONTAINS"), "Comparison to apply."),
							opt("value", str(), "Value to compare with (or the expression, for the EXPRESSION field)."),
							opt("values", listOf(str()), "Values to compare with, for IN and NOT_IN."),
						)), "Filters of this precondition."),
					)), "Execution filters that must all match within the time window."),
					opt("timeWindow", timeWindowSchema(), "Time window within which the preconditions must be met; a one-day duration window by default."),
					def("resetOnSuccess", boolean(), true, "Whether the preconditions' results are reset once they all matched and the trigger fired."),
				), "Preconditions on several upstream executions, met within a time window."),
			),
			Outputs: []plugin.Property{
				opt("executionId", str(), "Identifier of the upstream execution."),
				opt("executionLabels", mapOf(nil), "Labels of the upstream execution."),
				opt("state", enum(states...), "State of the upstream execution."),
				opt("namespace", str(), "Namespace of the upstream flow."),
				opt("flowId", str(), "Identifier of the upstream flow."),
				opt("flowRevision", integer(), "Revision of the upstream flow."),
				opt("outputs", mapOf(nil), "Outputs of the upstream execution."),
			},
		},
		{
			Name:        "webhook",
			Category:    plugin.CategoryTrigger,
			Aliases:     []string{"io.kestra.plugin.core.trigger.Webhook", "io.kestra.core.models.triggers.types.Webhook"},
			Description: "Start an execution when an HTTP request reaches the flow's webhook URL.",
			Properties: triggerCommon(
				req("key", dyn(str()), "Secret key that is part of the webhook URL (at most 256 characters)."),
				opt("inputs", dyn(mapOf(nil)), "Inputs of the execution, by input id."),
				def("wait", boolean(), false, "Whether the HTTP call waits for the execution to end."),
				def("returnOutputs", boolean(), false, "Whether the HTTP response holds the execution's outputs (requires wait)."),
				opt("responseContentType", enum("application/json", "text/plain"), "Content type of the response when returning outputs."),
			),
			Outputs: []plugin.Property{
				opt("body", anyValue(), "Request body, decoded when it is JSON."),
				opt("headers", mapOf(listOf(str())), "Request headers."),
				opt("parameters", mapOf(listOf(str())), "Query parameters."),
			},
		},
		{
			Name:        "http-trigger",
			Category:    plugin.CategoryTrigger,
			Aliases:     []string{"io.kestra.plugin.core.http.Trigger", "io.kestra.plugin.fs.http.Trigger"},
			Description: "Kestra's HTTP polling trigger.",
			Unsupported: "polling an HTTP endpoint is not implemented",
		},
	}
}

// timeWindowSchema is Kestra's TimeWindow of flow trigger preconditions and
// multiple conditions.
func timeWindowSchema() *plugin.Schema {
	return object(
		def("type", enum("DURATION_WINDOW", "SLIDING_WINDOW", "DAILY_TIME_DEADLINE", "DAILY_TIME_WINDOW"), "DURATION_WINDOW", "Kind of window."),
		opt("window", duration(), "Length of a duration or sliding window; one day by default."),
		opt("windowAdvance", duration(), "Offset of the start of duration windows from midnight."),
		opt("deadline", str(), "Time of day (HH:mm:ss) before which the preconditions must be met, for DAILY_TIME_DEADLINE."),
		opt("startTime", str(), "Time of day (HH:mm:ss) the window opens, for DAILY_TIME_WINDOW."),
		opt("endTime", str(), "Time of day (HH:mm:ss) the window closes, for DAILY_TIME_WINDOW."),
	)
}
