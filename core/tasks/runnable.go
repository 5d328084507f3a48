package tasks

import "github.com/kiteflow/kite/core/plugin"

// runnableTasks are the task types run by workers.
func runnableTasks() []*plugin.Type {
	return []*plugin.Type{
		{
			Name:        "log",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log"},
			Description: "Log one or more messages to the execution's logs.",
			Properties: []plugin.Property{
				req("message", dyn(stringOrList()), "Message to log, or a list of messages logged one after the other."),
				def("level", dyn(enum(logLevels...)), "INFO", "Log level of the messages."),
			},
		},
		{
			Name:        "return",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.debug.Return", "io.kestra.core.tasks.debugs.Return"},
			Description: "Render a template and return it as the task's `value` output.",
			Properties: []plugin.Property{
				opt("format", dyn(str()), "Template to render; the result becomes the `value` output."),
			},
			Outputs: []plugin.Property{
				opt("value", str(), "The rendered format."),
			},
		},
		{
			Name:     "debug",
			Category: plugin.CategoryTask,
			Aliases: []string{
				"echo",
				"io.kestra.plugin.core.debug.Echo", "io.kestra.core.tasks.debugs.Echo",
			},
			Description: "Deprecated Kestra Echo task: log a rendered message; use log instead.",
			Properties: []plugin.Property{
				req("format", dyn(str()), "Template to render and log."),
				def("level", dyn(enum(logLevels...)), "INFO", "Log level of the message."),
			},
		},
		{
			Name:        "output-values",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.output.OutputValues", "io.kestra.core.tasks.outputs.OutputValues"},
			Description: "Output rendered values, available to later tasks as outputs.<task>.values.",
			Properties: []plugin.Property{
				opt("values", dyn(mapOf(nil)), "Map of output names to values; string values are rendered."),
			},
			Outputs: []plugin.Property{
				opt("values", mapOf(nil), "The rendered values, by name."),
			},
		},
		{
			Name:        "sleep",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.flow.Sleep", "io.kestra.core.tasks.flows.Sleep"},
			Description: "Wait for a fixed duration, then succeed.",
			Properties: []plugin.Property{
				req("duration", dyn(duration()), "How long to wait (ISO-8601 such as PT30S, or Go style such as 30s)."),
			},
		},
		{
			Name:        "fail",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.execution.Fail", "io.kestra.core.tasks.executions.Fail"},
			Description: "Fail the task, optionally only when a condition renders true.",
			Properties: []plugin.Property{
				opt("condition", dyn(str()), "Expression; the task fails only when it renders a true value. Without it the task always fails."),
				def("errorMessage", dyn(str()), "Task failure", "Error message the task fails with."),
			},
		},
		{
			Name:        "labels",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.execution.Labels", "io.kestra.core.tasks.executions.Labels"},
			Description: "Add or update labels of the current execution.",
			Properties: []plugin.Property{
				req("labels", dyn(labelsSchema()), "Labels to set, as a map of key to value or a list of {key, value}."),
			},
		},
		commandsType(),
		httpRequestType(),
	}
}

func commandsType() *plugin.Type {
	return &plugin.Type{
		Name:        "commands",
		Category:    plugin.CategoryTask,
		Aliases:     []string{"io.kestra.plugin.scripts.shell.Commands", "io.kestra.core.tasks.scripts.Bash"},
		Description: "Run shell commands in a working directory of their own.",
		Properties: []plugin.Property{
			req("commands", dyn(listOf(str())), "Commands to run, one after the other, with the interpreter."),
			opt("beforeCommands", dyn(listOf(str())), "Commands run before `commands`, to set up the environment."),
			opt("env", dyn(mapOf(str())), "Additional environment variables of the commands."),
			def("interpreter", dyn(oneOf(listOf(str()), str())), []string{"/bin/sh", "-c"}, "Interpreter and its arguments; the commands are passed as the last argument."),
			opt("inputFiles", dyn(oneOf(mapOf(str()), str())), "Files to create in the working directory: a map of file name to content or internal storage URI."),
			opt("outputFiles", dyn(listOf(str())), "Glob patterns of files in the working directory to keep in internal storage as outputs."),
			opt("namespaceFiles", object(
				def("enabled", dyn(boolean()), true, "Whether to copy namespace files into the working directory."),
				opt("include", dyn(listOf(str())), "Glob patterns of namespace files to include."),
				opt("exclude", dyn(listOf(str())), "Glob patterns of namespace files to exclude."),
				def("ifExists", dyn(enum("OVERWRITE", "FAIL", "WARN", "IGNORE")), "OVERWRITE", "What to do when a file already exists in the working directory."),
				def("folderPerNamespace", dyn(boolean()), false, "Whether to put each namespace's files in a folder named after it."),
				opt("namespaces", dyn(listOf(str())), "Namespaces to take files from; the flow's namespace by default."),
			), "Namespace files to copy into the working directory."),
			def("warningOnStdErr", dyn(boolean()), true, "Whether output on standard error sets the task to WARNING."),
			def("failFast", dyn(boolean()), true, "Whether to stop at the first command that exits with a non-zero status."),
			opt("taskRunner", anyValue(), "Kestra task runner; accepted for compatibility, Kite runs commands as local processes."),
			opt("containerImage", dyn(str()), "Container image of container-based task runners; accepted for compatibility and not used by Kite."),
			deprecated(opt("runner", enum("PROCESS", "DOCKER"), "Kestra runner type; accepted for compatibility, Kite runs commands as local processes."), "taskRunner"),
		},
		Outputs: []plugin.Property{
			opt("exitCode", integer(), "Exit code of the last command."),
			opt("vars", mapOf(nil), "Values the commands emitted with ::{\"outputs\": {...}}::."),
			opt("outputFiles", mapOf(str()), "Internal storage URIs of the kept output files, by file name."),
			opt("stdOutLineCount", integer(), "Number of lines written to standard output."),
			opt("stdErrLineCount", integer(), "Number of lines written to standard error."),
		},
	}
}

func httpRequestType() *plugin.Type {
	return &plugin.Type{
		Name:        "http-request",
		Category:    plugin.CategoryTask,
		Aliases:     []string{"io.kestra.plugin.core.http.Request", "io.kestra.plugin.fs.http.Request"},
		Description: "Send an HTTP request and output the response.",
		Properties: []plugin.Property{
			req("uri", dyn(str()), "Fully qualified URI to send the request to."),
			def("method", dyn(enum("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")), "GET", "HTTP method."),
			opt("headers", dyn(mapOf(str())), "Request headers."),
			opt("body", dyn(str()), "Request body, sent as is."),
			def("contentType", dyn(str()), "application/json", "Content type of the request body."),
			opt("formData", dyn(mapOf(nil)), "Form fields, sent URL-encoded, or as multipart when contentType is multipart/form-data."),
			opt("options", object(
				opt("timeout", object(
					opt("connectTimeout", dyn(duration()), "Time allowed to establish the connection."),
					opt("readIdleTimeout", dyn(duration()), "Time a read may stay idle before the request fails."),
				), "Timeouts of the request."),
				deprecated(opt("connectTimeout", duration(), "Time allowed to establish the connection."), "timeout.connectTimeout"),
				deprecated(opt("readTimeout", duration(), "Time a read may stay idle before the request fails."), "timeout.readIdleTimeout"),
				def("followRedirects", dyn(boolean()), true, "Whether to follow redirects."),
				def("allowFailed", dyn(boolean()), false, "Whether a response code of 400 or more succeeds instead of failing the task."),
				opt("allowedResponseCodes", dyn(listOf(integer())), "Response codes that succeed; any other code fails the task."),
				def("defaultCharset", dyn(str()), "UTF-8", "Charset of the request body."),
				opt("proxy", anyValue(), "Proxy configuration; accepted for compatibility."),
				opt("auth", anyValue(), "Authentication configuration (BASIC or BEARER); accepted for compatibility."),
				opt("ssl", anyValue(), "SSL options; accepted for compatibility."),
				opt("logs", listOf(enum("REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS", "RESPONSE_BODY")), "Parts of the request and response to log."),
			), "HTTP client options."),
			def("encryptBody", dyn(boolean()), false, "Whether to output the response body encrypted, as encryptedBody."),
			deprecated(opt("allowFailed", dyn(boolean()), "Whether a response code of 400 or more succeeds instead of failing the task."), "options.allowFailed"),
			deprecated(opt("sslOptions", anyValue(), "SSL options; accepted for compatibility."), "options.ssl"),
		},
		Outputs: []plugin.Property{
			opt("uri", str(), "URI the request was sent to."),
			opt("code", integer(), "Status code of the response."),
			opt("headers", mapOf(listOf(str())), "Headers of the response."),
			opt("body", anyValue(), "Body of the response, unless encryptBody is set."),
			opt("encryptedBody", str(), "Encrypted body of the response, when encryptBody is set."),
		},
	}
}
