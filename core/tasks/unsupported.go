package tasks

import "github.com/kiteflow/kite/core/plugin"

// unsupported declares a Kestra core task type Kite knows by name but does
// not run yet. It declares no properties: the parser accepts any.
func unsupported(name, description, reason string, aliases ...string) *plugin.Type {
	return &plugin.Type{
		Name:        name,
		Category:    plugin.CategoryTask,
		Aliases:     aliases,
		Description: description,
		Unsupported: reason,
	}
}

// storageTask declares one of Kestra's internal storage tasks, which Kite
// does not have yet. old tells whether the class existed before 0.17 under
// io.kestra.core.tasks.storages.
func storageTask(name, class, description string, old bool) *plugin.Type {
	aliases := []string{"io.kestra.plugin.core.storage." + class}
	if old {
		aliases = append(aliases, "io.kestra.core.tasks.storages."+class)
	}
	return unsupported(name, description, "internal storage tasks are not implemented", aliases...)
}

func unsupportedTasks() []*plugin.Type {
	const (
		noKV        = "the key-value store is not implemented"
		noNSFiles   = "namespace files are not implemented"
		noState     = "state files are not implemented"
		noExecAdmin = "tasks that manage executions are not implemented"
	)
	return []*plugin.Type{
		unsupported("dag", "Run tasks as a directed acyclic graph of dependencies.",
			"the Dag task is not implemented",
			"io.kestra.plugin.core.flow.Dag", "io.kestra.core.tasks.flows.Dag"),
		unsupported("working-directory", "Run tasks in one shared working directory on one worker.",
			"the WorkingDirectory task is not implemented",
			"io.kestra.plugin.core.flow.WorkingDirectory", "io.kestra.core.tasks.flows.WorkingDirectory",
			"io.kestra.plugin.core.flow.Worker", "io.kestra.core.tasks.flows.Worker"),
		unsupported("wait-for", "Run tasks repeatedly until a condition is true.",
			"the WaitFor task is not implemented",
			"io.kestra.plugin.core.flow.WaitFor"),
		unsupported("loop-until", "Run tasks repeatedly until a condition is true.",
			"the LoopUntil task is not implemented",
			"io.kestra.plugin.core.flow.LoopUntil"),
		unsupported("for-each-item", "Start a subflow execution for each batch of items of a file.",
			"the ForEachItem task is not implemented",
			"io.kestra.plugin.core.flow.ForEachItem", "io.kestra.core.tasks.flows.ForEachItem"),
		unsupported("template", "Include the tasks of a template.",
			"templates are deprecated in Kestra and not implemented",
			"io.kestra.plugin.core.flow.Template", "io.kestra.core.tasks.flows.Template"),
		unsupported("templated-task", "Render a task definition from a template and run it.",
			"the TemplatedTask task is not implemented",
			"io.kestra.plugin.core.templating.TemplatedTask", "io.kestra.core.tasks.templating.TemplatedTask"),

		storageTask("storage-concat", "Concat", "Concatenate files of internal storage.", true),
		storageTask("storage-deduplicate-items", "DeduplicateItems", "Remove duplicate items of an ION file.", true),
		storageTask("storage-filter-items", "FilterItems", "Filter the items of an ION file.", true),
		storageTask("storage-local-files", "LocalFiles", "Create files in, or collect files from, a working directory.", true),
		storageTask("storage-purge", "Purge", "Purge internal storage files.", true),
		storageTask("storage-reverse", "Reverse", "Reverse the lines of a file.", true),
		storageTask("storage-split", "Split", "Split a file of internal storage into several files.", true),

		unsupported("state-get", "Get a state file.", noState,
			"io.kestra.plugin.core.state.Get", "io.kestra.core.tasks.states.Get"),
		unsupported("state-set", "Set a state file.", noState,
			"io.kestra.plugin.core.state.Set", "io.kestra.core.tasks.states.Set"),
		unsupported("state-delete", "Delete a state file.", noState,
			"io.kestra.plugin.core.state.Delete", "io.kestra.core.tasks.states.Delete"),

		unsupported("kv-get", "Get a key-value pair.", noKV, "io.kestra.plugin.core.kv.Get"),
		unsupported("kv-set", "Set a key-value pair.", noKV, "io.kestra.plugin.core.kv.Set"),
		unsupported("kv-delete", "Delete a key-value pair.", noKV, "io.kestra.plugin.core.kv.Delete"),
		unsupported("kv-get-keys", "List the keys of a namespace's key-value store.", noKV, "io.kestra.plugin.core.kv.GetKeys"),
		unsupported("kv-purge", "Purge expired or selected key-value pairs.", noKV, "io.kestra.plugin.core.kv.PurgeKV"),

		unsupported("namespace-upload-files", "Upload files to a namespace.", noNSFiles, "io.kestra.plugin.core.namespace.UploadFiles"),
		unsupported("namespace-download-files", "Download files of a namespace.", noNSFiles, "io.kestra.plugin.core.namespace.DownloadFiles"),
		unsupported("namespace-delete-files", "Delete files of a namespace.", noNSFiles, "io.kestra.plugin.core.namespace.DeleteFiles"),
		unsupported("namespace-purge-files", "Purge old versions of namespace files.", noNSFiles, "io.kestra.plugin.core.namespace.PurgeFiles"),

		unsupported("log-fetch", "Fetch the logs of an execution into a file.",
			"fetching logs into a file is not implemented",
			"io.kestra.plugin.core.log.Fetch", "io.kestra.core.tasks.log.Fetch"),
		unsupported("http-download", "Download a file over HTTP to internal storage.",
			"the HTTP Download task is not implemented",
			"io.kestra.plugin.core.http.Download", "io.kestra.plugin.fs.http.Download"),
		unsupported("toggle", "Enable or disable a trigger of a flow.",
			"the Toggle task is not implemented",
			"io.kestra.plugin.core.trigger.Toggle", "io.kestra.core.tasks.trigger.Toggle"),
		unsupported("resume", "Resume a paused execution.", noExecAdmin,
			"io.kestra.plugin.core.execution.Resume"),
		unsupported("count", "Count executions matching criteria.", noExecAdmin,
			"io.kestra.plugin.core.execution.Count", "io.kestra.core.tasks.executions.Counts"),
		unsupported("purge-executions", "Purge executions, logs and files older than a date.", noExecAdmin,
			"io.kestra.plugin.core.execution.PurgeExecutions"),
		unsupported("exit", "End the execution in a given state.",
			"the Exit task is not implemented",
			"io.kestra.plugin.core.execution.Exit"),
		unsupported("set-variables", "Set variables of the current execution.",
			"execution variables are not implemented",
			"io.kestra.plugin.core.execution.SetVariables"),
		unsupported("unset-variables", "Remove variables of the current execution.",
			"execution variables are not implemented",
			"io.kestra.plugin.core.execution.UnsetVariables"),
	}
}
