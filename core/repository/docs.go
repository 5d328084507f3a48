// Package repository is Kite's searchable store of everything that
// happened: executions, task runs, events, logs, flows and triggers, as
// flat documents (Kibana-friendly: one JSON object per document, labels as
// key/value pairs, times in RFC 3339 UTC, durations in milliseconds).
//
// The indexer role (services/indexer) projects Kafka's topics into
// documents and writes them through a Sink; the API's SearchService reads
// them through a Repository. Implementations: indexer/elasticsearch
// (Elasticsearch 8 or OpenSearch 2) and indexer/embedded (standalone, in
// the data dir). Both pass the acceptance suite in repotest.
package repository

import (
	"time"

	"github.com/kiteflow/kite/core/query"
)

// Kind is a kind of document; each has its own index and schema.
type Kind string

// The kinds of documents.
const (
	Executions Kind = "executions"
	TaskRuns   Kind = "task_runs"
	Events     Kind = "events"
	Logs       Kind = "logs"
	Flows      Kind = "flows"
	Triggers   Kind = "triggers"
)

// Kinds lists every kind.
var Kinds = []Kind{Executions, TaskRuns, Events, Logs, Flows, Triggers}

// Label is a key/value label.
type Label struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Execution is an execution's document (id: the execution id). Inputs,
// outputs and trigger variables are stored, not indexed.
type Execution struct {
	ID           string         `json:"id"`
	Namespace    string         `json:"namespace"`
	FlowID       string         `json:"flow_id"`
	FlowRevision int32          `json:"flow_revision"`
	State        string         `json:"state"`
	Start        time.Time      `json:"start"`
	End          *time.Time     `json:"end,omitempty"`
	Duration     *int64         `json:"duration,omitempty"` // milliseconds, from start to end; unset until it ends
	Labels       []Label        `json:"labels,omitempty"`
	LabelPairs   []string       `json:"label_pairs,omitempty"` // "KEY=value", see query.LabelPairsField
	Inputs       map[string]any `json:"inputs,omitempty"`
	Outputs      map[string]any `json:"outputs,omitempty"`
	Trigger      map[string]any `json:"trigger,omitempty"`
	ParentID     string         `json:"parent_id,omitempty"`
	OriginalID   string         `json:"original_id,omitempty"` // the execution this one retries
	Error        string         `json:"error,omitempty"`
	Updated      time.Time      `json:"updated"` // the last state change
}

// TaskRun is a task run's document (id: the task run id).
type TaskRun struct {
	ID               string         `json:"id"`
	ExecutionID      string         `json:"execution_id"`
	Namespace        string         `json:"namespace"`
	FlowID           string         `json:"flow_id"`
	TaskID           string         `json:"task_id"`
	ParentTaskRunID  string         `json:"parent_task_run_id,omitempty"`
	Value            *string        `json:"value,omitempty"` // the ForEach iteration value
	State            string         `json:"state"`
	Start            time.Time      `json:"start"`
	End              *time.Time     `json:"end,omitempty"`
	Duration         *int64         `json:"duration,omitempty"` // milliseconds
	Attempts         int            `json:"attempts"`
	Outputs          map[string]any `json:"outputs,omitempty"`
	Error            string         `json:"error,omitempty"`
	ChildExecutionID string         `json:"child_execution_id,omitempty"`
}

// Event is one event of an execution's history (id: EXECUTION-ID/SEQ).
type Event struct {
	ExecutionID string         `json:"execution_id"`
	Seq         int64          `json:"seq"`
	Type        string         `json:"type"` // CREATED, STATE, TASK_RUN_CREATED …
	Time        time.Time      `json:"time"`
	TaskRunID   string         `json:"task_run_id,omitempty"`
	State       string         `json:"state,omitempty"`
	Attempt     int32          `json:"attempt,omitempty"`
	Error       string         `json:"error,omitempty"`
	Detail      map[string]any `json:"detail,omitempty"` // the rest of the event, stored, not indexed
}

// Log is one log line of a task run (id: PARTITION-OFFSET of its record).
type Log struct {
	ExecutionID string    `json:"execution_id"`
	Namespace   string    `json:"namespace"`
	FlowID      string    `json:"flow_id"`
	TaskID      string    `json:"task_id,omitempty"`
	TaskRunID   string    `json:"task_run_id,omitempty"`
	Attempt     int32     `json:"attempt,omitempty"`
	Level       string    `json:"level"` // TRACE, DEBUG, INFO, WARN, ERROR
	Message     string    `json:"message"`
	Time        time.Time `json:"time"`
}

// Flow is a flow's latest revision (id: NAMESPACE/FLOW-ID). A deleted flow
// has no document.
type Flow struct {
	Namespace   string    `json:"namespace"`
	ID          string    `json:"id"`
	Revision    int32     `json:"revision"`
	Description string    `json:"description,omitempty"`
	Labels      []Label   `json:"labels,omitempty"`
	LabelPairs  []string  `json:"label_pairs,omitempty"`
	Disabled    bool      `json:"disabled"`
	Source      string    `json:"source"`
	Updated     time.Time `json:"updated"`
}

// Trigger is a trigger's state (id: NAMESPACE/FLOW-ID/TRIGGER-ID).
type Trigger struct {
	Namespace    string     `json:"namespace"`
	FlowID       string     `json:"flow_id"`
	TriggerID    string     `json:"trigger_id"`
	Type         string     `json:"type"`
	FlowRevision int32      `json:"flow_revision"`
	Disabled     bool       `json:"disabled"`
	NextTime     *time.Time `json:"next_time,omitempty"`
	LastTime     *time.Time `json:"last_time,omitempty"`
	Backfill     bool       `json:"backfill"` // a backfill is under way
	Updated      time.Time  `json:"updated"`
}

// The lists of values of the Enum fields.
var (
	States    = []string{"CREATED", "QUEUED", "RUNNING", "PAUSED", "RESTARTED", "KILLING", "SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRYING", "RETRIED", "SKIPPED"}
	LogLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}
)

func kw(name, doc string) *query.Field {
	return &query.Field{Name: name, Type: query.Keyword, Doc: doc}
}

func typed(name string, t query.FieldType, doc string) *query.Field {
	return &query.Field{Name: name, Type: t, Doc: doc}
}

func enum(name string, values []string, doc string) *query.Field {
	return &query.Field{Name: name, Type: query.Enum, Values: values, Doc: doc}
}

// schemas are the queryable fields of each kind; every other document
// field is stored only.
var schemas = map[Kind]*query.Schema{
	Executions: {Kind: string(Executions), FullText: []string{"error"}, Fields: []*query.Field{
		kw("id", "the execution id"),
		kw("namespace", "the flow's namespace"),
		kw("flow_id", "the flow's id"),
		typed("flow_revision", query.Number, "the flow revision run"),
		enum("state", States, "the current state"),
		typed("start", query.Date, "when it was created"),
		typed("end", query.Date, "when it ended"),
		typed("duration", query.Duration, "from start to end"),
		typed("labels", query.Labels, "labels.KEY: a label's value"),
		kw("parent_id", "the parent execution, for a subflow's"),
		kw("original_id", "the execution a retry execution retries"),
		typed("error", query.Text, "the failure message"),
		typed("updated", query.Date, "the last state change"),
	}},
	TaskRuns: {Kind: string(TaskRuns), FullText: []string{"error"}, Fields: []*query.Field{
		kw("id", "the task run id"),
		kw("execution_id", "its execution"),
		kw("namespace", "the flow's namespace"),
		kw("flow_id", "the flow's id"),
		kw("task_id", "the task's id in the flow"),
		kw("parent_task_run_id", "the enclosing flowable's task run"),
		kw("value", "the ForEach iteration value"),
		enum("state", States, "the current state"),
		typed("start", query.Date, "when it was created"),
		typed("end", query.Date, "when it ended"),
		typed("duration", query.Duration, "from start to end"),
		typed("attempts", query.Number, "how many attempts it had"),
		typed("error", query.Text, "the failure message"),
		kw("child_execution_id", "the execution a Subflow task started"),
	}},
	Events: {Kind: string(Events), FullText: []string{"error"}, Fields: []*query.Field{
		kw("execution_id", "the execution"),
		typed("seq", query.Number, "the event's number in its execution, from 1"),
		enum("type", []string{"CREATED", "STATE", "TASK_RUN_CREATED", "TASK_RUN_STATE", "ATTEMPT", "OUTPUTS", "LABELS", "TIMER_SET", "TIMER_CANCELLED", "CHILD", "TASK_RUN_REMOVED", "ITERATIONS"}, "what the event records"),
		typed("time", query.Date, "when it happened"),
		kw("task_run_id", "the task run concerned"),
		enum("state", States, "the state taken"),
		typed("attempt", query.Number, "the attempt number"),
		typed("error", query.Text, "the failure message"),
	}},
	Logs: {Kind: string(Logs), FullText: []string{"message"}, Fields: []*query.Field{
		kw("execution_id", "the execution"),
		kw("namespace", "the flow's namespace"),
		kw("flow_id", "the flow's id"),
		kw("task_id", "the task's id"),
		kw("task_run_id", "the task run"),
		typed("attempt", query.Number, "the attempt number"),
		enum("level", LogLevels, "TRACE, DEBUG, INFO, WARN or ERROR"),
		typed("message", query.Text, "the log line"),
		typed("time", query.Date, "when it was logged"),
	}},
	Flows: {Kind: string(Flows), FullText: []string{"source"}, Fields: []*query.Field{
		kw("namespace", "the namespace"),
		kw("id", "the flow id"),
		typed("revision", query.Number, "the latest revision"),
		typed("description", query.Text, "the flow's description"),
		typed("labels", query.Labels, "labels.KEY: a label's value"),
		typed("disabled", query.Bool, "true when the flow is disabled"),
		typed("source", query.Text, "the YAML source"),
		typed("updated", query.Date, "when the revision was applied"),
	}},
	Triggers: {Kind: string(Triggers), Fields: []*query.Field{
		kw("namespace", "the flow's namespace"),
		kw("flow_id", "the flow's id"),
		kw("trigger_id", "the trigger's id"),
		kw("type", "the trigger type"),
		typed("flow_revision", query.Number, "the flow revision it fires"),
		typed("disabled", query.Bool, "true when disabled"),
		typed("next_time", query.Date, "its next fire"),
		typed("last_time", query.Date, "its last evaluation"),
		typed("backfill", query.Bool, "true while a backfill runs"),
		typed("updated", query.Date, "when its state last changed"),
	}},
}

// Schema returns the queryable fields of a kind, nil for an unknown kind.
func Schema(k Kind) *query.Schema { return schemas[k] }

// TimeField is the date field of a kind that time ranges (Since, Until),
// the default sort and date histograms use.
func TimeField(k Kind) string {
	switch k {
	case Executions, TaskRuns:
		return "start"
	case Events, Logs:
		return "time"
	default:
		return "updated"
	}
}
