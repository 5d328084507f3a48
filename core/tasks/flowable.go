package tasks

import "github.com/kiteflow/kite/core/plugin"

// flowableTasks are the task types resolved by the executor.
func flowableTasks() []*plugin.Type {
	return []*plugin.Type{
		{
			Name:        "sequential",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.flow.Sequential", "io.kestra.core.tasks.flows.Sequential"},
			Flowable:    true,
			Description: "Run child tasks one after the other.",
			Properties: flowable(
				req("tasks", taskList(), "Tasks to run in order."),
			),
		},
		{
			Name:        "parallel",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.flow.Parallel", "io.kestra.core.tasks.flows.Parallel"},
			Flowable:    true,
			Description: "Run child tasks in parallel.",
			Properties: flowable(
				req("tasks", taskList(), "Tasks to run in parallel."),
				def("concurrent", dyn(integer()), 0, "Maximum number of child tasks running at once; 0 means no limit."),
				def("failFast", dyn(boolean()), false, "Whether to kill the running child tasks as soon as one fails."),
			),
		},
		{
			Name:        "switch",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.flow.Switch", "io.kestra.core.tasks.flows.Switch"},
			Flowable:    true,
			Description: "Run the task list of the case matching a rendered value, or the defaults.",
			Properties: flowable(
				req("value", dyn(str()), "Value to render and match against the case keys."),
				opt("cases", kind(plugin.KindCases), "Map of case value to the tasks to run when the value matches it."),
				opt("defaults", taskList(), "Tasks to run when no case matches."),
			),
			Outputs: []plugin.Property{
				opt("value", str(), "The rendered value."),
				opt("defaults", boolean(), "Whether no case matched and the defaults ran."),
			},
		},
		{
			Name:        "if",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.flow.If", "io.kestra.core.tasks.flows.If"},
			Flowable:    true,
			Description: "Run one of two task lists depending on a rendered condition.",
			Properties: flowable(
				req("condition", dyn(str()), "Expression; false, 0, -0, an empty string and null are false, anything else is true."),
				req("then", taskList(), "Tasks to run when the condition is true."),
				opt("else", taskList(), "Tasks to run when the condition is false."),
			),
			Outputs: []plugin.Property{
				opt("evaluationResult", boolean(), "The condition's truth value."),
			},
		},
		{
			Name:        "for-each",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.flow.ForEach"},
			Flowable:    true,
			Description: "Run a group of tasks once for each value of a list; the value is {{ taskrun.value }}.",
			Properties: flowable(
				req("values", dyn(oneOf(listOf(anyValue()), str())), "Values to iterate over: a list, or a string holding a JSON array."),
				def("concurrencyLimit", integer(), 1, "Number of value groups running at once; 0 means no limit."),
				req("tasks", taskList(), "Tasks to run for each value, in order."),
			),
		},
		{
			Name:        "each-sequential",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.flow.EachSequential", "io.kestra.core.tasks.flows.EachSequential"},
			Flowable:    true,
			Description: "Deprecated: run a group of tasks for each value of a list, one value after the other; use for-each.",
			Properties: flowable(
				req("value", dyn(oneOf(listOf(anyValue()), str())), "Values to iterate over: a list, or a string holding a JSON array."),
				req("tasks", taskList(), "Tasks to run for each value, in order."),
			),
		},
		{
			Name:        "each-parallel",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.flow.EachParallel", "io.kestra.core.tasks.flows.EachParallel"},
			Flowable:    true,
			Description: "Deprecated: run a group of tasks for each value of a list, values in parallel; use for-each.",
			Properties: flowable(
				req("value", dyn(oneOf(listOf(anyValue()), str())), "Values to iterate over: a list, or a string holding a JSON array."),
				def("concurrent", integer(), 0, "Maximum number of task runs at once; 0 means no limit."),
				req("tasks", taskList(), "Tasks to run for each value; they run in parallel."),
			),
		},
		subflowType(),
		pauseType(),
		{
			Name:        "allow-failure",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.flow.AllowFailure", "io.kestra.core.tasks.flows.AllowFailure"},
			Flowable:    true,
			Description: "Deprecated: run child tasks in order and end in WARNING instead of failing; use the allowFailure task property.",
			Properties: flowable(
				req("tasks", taskList(), "Tasks to run in order."),
			),
		},
	}
}

func subflowType() *plugin.Type {
	// Subflow is not a Kestra FlowableTask (it has no errors or finally),
	// but the executor resolves it, so it is flowable for Kite.
	return &plugin.Type{
		Name:     "subflow",
		Category: plugin.CategoryTask,
		Aliases: []string{
			"io.kestra.plugin.core.flow.Subflow", "io.kestra.core.tasks.flows.Subflow",
			"io.kestra.plugin.core.flow.Flow", "io.kestra.core.tasks.flows.Flow",
		},
		Flowable:    true,
		Description: "Start an execution of another flow and, by default, wait for it to end.",
		Properties: []plugin.Property{
			req("namespace", dyn(str()), "Namespace of the flow to execute."),
			req("flowId", dyn(str()), "Identifier of the flow to execute."),
			opt("revision", dyn(integer()), "Revision of the flow to execute; the latest by default."),
			opt("inputs", dyn(mapOf(nil)), "Inputs of the subflow execution, by input id."),
			opt("labels", dyn(labelsSchema()), "Labels of the subflow execution, as a map or a list of {key, value}."),
			def("wait", boolean(), true, "Whether to wait for the subflow execution to end before going on."),
			def("transmitFailed", boolean(), true, "Whether a failed or killed subflow execution fails this task (only when waiting)."),
			def("inheritLabels", dyn(boolean()), false, "Whether the subflow execution inherits this execution's labels."),
			opt("scheduleDate", dyn(str()), "Date-time (ISO-8601) at which to start the subflow execution instead of now."),
			def("restartBehavior", enum("RETRY_FAILED", "NEW_EXECUTION"), "RETRY_FAILED", "On restart, whether to restart the failed subflow execution or create a new one."),
			deprecated(opt("outputs", dyn(mapOf(nil)), "Values to extract from the subflow execution as this task's outputs."), "the outputs of the subflow's definition"),
		},
		Outputs: []plugin.Property{
			opt("executionId", str(), "Identifier of the subflow execution."),
			opt("state", enum(states...), "Final state of the subflow execution (only when waiting)."),
			opt("outputs", mapOf(nil), "Outputs of the subflow execution (only when waiting)."),
		},
	}
}

func pauseType() *plugin.Type {
	return &plugin.Type{
		Name:        "pause",
		Category:    plugin.CategoryTask,
		Aliases:     []string{"io.kestra.plugin.core.flow.Pause", "io.kestra.core.tasks.flows.Pause"},
		Flowable:    true,
		Description: "Pause the execution until it is resumed, or until a duration has passed.",
		Properties: flowable(
			withAliases(opt("delay", dyn(duration()), "How long to pause before going on by itself; without it the execution waits to be resumed."), "pauseDuration"),
			def("behavior", dyn(enum("RESUME", "WARN", "FAIL", "CANCEL")), "RESUME", "What happens when the pause duration has passed: go on, end in WARNING, fail, or cancel."),
			opt("onResume", oneOf(listOf(anyValue()), mapOf(nil)), "Inputs asked when resuming, declared like flow inputs; their values are the onResume output."),
			deprecated(opt("tasks", taskList(), "Tasks to run after resuming."), "tasks after the pause task"),
		),
		Outputs: []plugin.Property{
			opt("onResume", mapOf(nil), "Values of the onResume inputs given when resuming."),
		},
	}
}
