package bench

import "time"

// Result is one `kite bench` run: where it ran and what it measured. It is
// written as JSON (results.json), as a text table (results.txt, printed)
// and as a chart (results.svg); see report.go.
type Result struct {
	// Name says what was measured, e.g. "standalone (embedded broker)" or
	// "distributed (Kafka 4.3.1, OpenSearch 2.19, one process per role)".
	Name     string    `json:"name"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	// Versions are kite's (version, commit, Go) and those given with
	// --version (the broker's, the search server's).
	Versions map[string]string `json:"versions"`
	Settings Settings          `json:"settings"`

	// Rates are the two-task flow (Log + Return) at each fixed rate, in the
	// order run.
	Rates []RateRun `json:"rates"`
	// HighestRate is the highest rate of Rates that passed (every execution
	// succeeded, p99 under the limit); 0 when none did.
	HighestRate int `json:"highest_rate"`
	// Ifs is the flow of five If tasks (ten task runs) at Settings.IfRate;
	// nil when not run.
	Ifs *RateRun `json:"ifs,omitempty"`
	// ForEach are the ForEach runs, one execution each, smallest first.
	ForEach []ForEachRun `json:"foreach,omitempty"`
}

// Machine is the host kite bench ran on (the server's, when they share it).
type Machine struct {
	Hostname    string `json:"hostname"`
	OS          string `json:"os"`     // GOOS/GOARCH and the kernel release
	CPU         string `json:"cpu"`    // model name
	Cores       int    `json:"cores"`  // logical CPUs
	MemoryBytes int64  `json:"memory"` // total
}

// Settings are the knobs of the run.
type Settings struct {
	Server      string  `json:"server"`  // the API's gRPC address
	Brokers     string  `json:"brokers"` // Kafka bootstrap
	Observe     string  `json:"observe"` // how terminal states were seen
	StepSeconds float64 `json:"step_seconds"`
	// P99LimitMs is the latency a rate's p99 must stay under to pass.
	P99LimitMs float64 `json:"p99_limit_ms"`
	IfRate     int     `json:"if_rate"`
	// ForEachConcurrency is the ForEach's concurrencyLimit (0: all items
	// at once).
	ForEachConcurrency int `json:"foreach_concurrency"`
}

// Quantiles are latencies in milliseconds.
type Quantiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// RateRun is one flow created at a fixed rate for a while.
type RateRun struct {
	Flow            string  `json:"flow"`
	Rate            int     `json:"rate"` // executions per minute offered
	DurationSeconds float64 `json:"duration_seconds"`
	Created         int     `json:"created"`
	Succeeded       int     `json:"succeeded"`
	Failed          int     `json:"failed"`     // ended in another state than SUCCESS
	Unfinished      int     `json:"unfinished"` // not ended when the run stopped waiting
	CreateErrors    int     `json:"create_errors"`
	// Errors are the distinct Create errors, the first few.
	Errors []ErrorCount `json:"errors,omitempty"`
	// Latency is from each Create call's scheduled start to its terminal
	// state seen, over the executions that succeeded.
	Latency Quantiles `json:"latency_ms"`
	// CreateLatency is the Create call alone.
	CreateLatency Quantiles `json:"create_latency_ms"`
	// DonePerMinute is the executions that succeeded per minute, from the
	// first scheduled start to the last end.
	DonePerMinute float64 `json:"done_per_minute"`
	// TaskRunsPerExecution is the task runs an execution had (the most).
	TaskRunsPerExecution int  `json:"task_runs_per_execution"`
	Passed               bool `json:"passed"`
	// Hops break the latency down between milestones (the first two task
	// runs' states), p50/p95/p99 of each.
	Hops []Hop `json:"hops,omitempty"`
	// Usage is what the processes and the indexer did meanwhile.
	Usage Usage `json:"usage"`
}

// Hop is one part of an execution's latency.
type Hop struct {
	Name    string    `json:"name"`
	Latency Quantiles `json:"latency_ms"`
}

// ForEachRun is one execution of a ForEach over Items items, each running
// one task.
type ForEachRun struct {
	Items int    `json:"items"`
	State string `json:"state"`
	// WallMs is from the Create call to the terminal state seen.
	WallMs      float64 `json:"wall_ms"`
	TaskRuns    int     `json:"task_runs"`
	TasksPerSec float64 `json:"tasks_per_second"`
	// KafkaBytes is what the Kite topics grew by on the brokers (log
	// sizes, every partition and replica), from before the Create call to
	// after the end; BytesByTopic splits it by topic (without the prefix).
	KafkaBytes   int64            `json:"kafka_bytes"`
	BytesByTopic map[string]int64 `json:"kafka_bytes_by_topic"`
	BytesPerItem float64          `json:"kafka_bytes_per_item"`
	Usage        Usage            `json:"usage"`
}

// Usage is what the processes did during a run.
type Usage struct {
	// Processes are each process given to kite bench, in the order given.
	Processes []ProcessUsage `json:"processes"`
	// Projection is the indexer's (nil without an indexer among the
	// processes' metrics).
	Projection *Projection `json:"projection,omitempty"`
}

// ProcessUsage is one process's CPU and memory during a run.
type ProcessUsage struct {
	Name string `json:"name"`
	// Cores is CPU time over wall time (1.0: one core busy all along).
	Cores float64 `json:"cpu_cores"`
	// RSSMaxBytes is the highest resident set size sampled (about once a
	// second).
	RSSMaxBytes int64 `json:"rss_max_bytes"`
}

// Projection is the indexer's work during a run. The lag is from an event's
// record timestamp to its document written, read off the indexer's
// histogram: each value is the upper bound of the bucket that holds the
// quantile, -1 when that is past the histogram's last bound (120 s).
type Projection struct {
	DocsPerSecond float64 `json:"docs_per_second"`
	LagP50Ms      float64 `json:"lag_p50_ms"`
	LagP99Ms      float64 `json:"lag_p99_ms"`
}
