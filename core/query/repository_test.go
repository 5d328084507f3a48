package query_test

import (
	"strings"
	"testing"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// TestRepositorySchemas parses typical queries against the schemas the
// repositories use.
func TestRepositorySchemas(t *testing.T) {
	for _, tt := range []struct {
		kind     repository.Kind
		in, want string
	}{
		{repository.Executions, "state:failed and labels.team:data and duration > 1m and start > now-7d",
			"(and state=FAILED labels.team=data duration>60000ms start>2026-02-25T05:06:07Z)"},
		{repository.Executions, `namespace:prod.* and not state:(SUCCESS or WARNING) and "out of memory"`,
			`(and namespace~prod.* (not (or state=SUCCESS state=WARNING)) text="out of memory")`},
		{repository.Executions, "state:*ING and flow_revision >= 3", "(and (or state=RUNNING state=KILLING state=WARNING state=RETRYING) flow_revision>=3)"},
		{repository.TaskRuns, "task_id:extract and attempts > 1 and end:*", "(and task_id=extract attempts>1 end:*)"},
		{repository.Events, "type:task_run_* and seq >= 10", "(and (or type=TASK_RUN_CREATED type=TASK_RUN_STATE type=TASK_RUN_REMOVED) seq>=10)"},
		{repository.Logs, `level:(warn or error) and "connection refused"`, `(and (or level=WARN level=ERROR) text="connection refused")`},
		{repository.Logs, "time >= 2026-03-01 and time < 2026-03-02 and timeout*", "(and time>=2026-03-01T00:00:00Z time<2026-03-02T00:00:00Z text~timeout*)"},
		{repository.Flows, "disabled:false and labels.env:prod and kafka", "(and disabled=false labels.env=prod text=kafka)"},
		{repository.Triggers, "next_time < now and backfill:true", "(and next_time<2026-03-04T05:06:07Z backfill=true)"},
	} {
		t.Run(string(tt.kind)+" "+tt.in, func(t *testing.T) {
			n, err := query.Parse(tt.in, repository.Schema(tt.kind), now)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := query.Format(n); got != tt.want {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}

	// Bare words search each kind's full-text fields.
	for kind, field := range map[repository.Kind]string{
		repository.Executions: "error", repository.TaskRuns: "error", repository.Events: "error",
		repository.Logs: "message", repository.Flows: "source",
	} {
		s := repository.Schema(kind)
		n, err := query.Parse("word", s, now)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if ft := n.(*query.FullText); len(ft.Fields) != 1 || ft.Fields[0] != s.Field(field) {
			t.Errorf("%s: bare words search %v, want %s", kind, ft.Fields, field)
		}
	}

	for _, tt := range []struct {
		kind     repository.Kind
		in, want string
	}{
		{repository.Triggers, "nightly", "column 1: bare words are not supported when searching triggers: use field:value; fields: namespace, flow_id, …"},
		{repository.Executions, "namespace:prod and stat:FAILED", `column 20: unknown field "stat" for executions (did you mean "state"?); fields: id, namespace, flow_id, flow_revision, state, start, end, duration, labels.KEY, …`},
		{repository.Logs, "level:warning", `column 7: unknown value "warning" for level (did you mean "WARN"?); values: TRACE, DEBUG, INFO, WARN, ERROR`},
		{repository.Flows, "labels:prod", "column 1: use labels.KEY:value: labels holds key/value pairs"},
		{repository.Events, "time:2026-01-02", "column 6: use a range: time >= 2026-01-02 and time < 2026-01-03"},
	} {
		_, err := query.Parse(tt.in, repository.Schema(tt.kind), now)
		prefix, cut := strings.CutSuffix(tt.want, "…")
		if err == nil || !cut && err.Error() != tt.want || cut && !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("%s: Parse(%q) error\n got %v\nwant %s", tt.kind, tt.in, err, tt.want)
		}
	}

	// Every kind's schema is usable: each field can be tested for a value.
	for _, kind := range repository.Kinds {
		s := repository.Schema(kind)
		for _, f := range s.Fields {
			name := f.Name
			if f.Type == query.Labels {
				name += ".k"
			}
			if _, err := query.Parse(name+":*", s, now); err != nil {
				t.Errorf("%s: %s:* : %v", kind, name, err)
			}
			if strings.ContainsAny(f.Name, " :()\\\"") {
				t.Errorf("%s: field name %q cannot be written in a query", kind, f.Name)
			}
		}
	}
}
