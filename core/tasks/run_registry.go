package tasks

// Runners returns the runner of every runnable built-in task type, keyed by
// the type's short name ("log", "commands"). Each call returns a new map;
// runners hold no state and are safe for concurrent use.
func Runners() map[string]Runner {
	return map[string]Runner{
		"log":           RunnerFunc(runLog),
		"debug":         RunnerFunc(runDebug),
		"return":        RunnerFunc(runReturn),
		"output-values": RunnerFunc(runOutputValues),
		"sleep":         RunnerFunc(runSleep),
		"fail":          RunnerFunc(runFail),
		"labels":        RunnerFunc(runLabels),
		"commands":      RunnerFunc(runCommands),
		"http-request":  RunnerFunc(runHTTPRequest),

		"storage-write":                         RunnerFunc(runStorageWrite),
		"storage-size":                          RunnerFunc(runStorageSize),
		"storage-delete":                        RunnerFunc(runStorageDelete),
		"storage-purge-current-execution-files": RunnerFunc(runStoragePurgeExecution),
	}
}
