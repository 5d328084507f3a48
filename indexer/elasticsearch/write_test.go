package elasticsearch

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/repository"
)

func exec(id string) repository.Doc {
	return execDoc(repository.Execution{ID: id, Namespace: "n", FlowID: "f", State: "SUCCESS", Start: day0}, 3)
}

func TestWriteSendsExternalVersionsToTheRightIndices(t *testing.T) {
	f := newFakeES(t)
	f.onBulk = func(ops []bulkOp) []string {
		var items []string
		for _, op := range ops {
			items = append(items, itemCreated(op))
		}
		return items
	}
	s := f.store(Config{IndexPrefix: "k-", BulkWorkers: 1})
	docs := []repository.Doc{
		exec("e1"),
		{Kind: repository.Logs, ID: "0-1", Version: 7, Source: repository.Log{Message: "m", Level: "INFO", Time: time.Date(2026, 3, 10, 23, 59, 0, 0, time.FixedZone("X", -3600))}},
		{Kind: repository.Events, ID: "e1/1", Version: 1, Source: map[string]any{"execution_id": "e1", "seq": 1, "time": "2026-03-09T10:00:00Z"}},
		{Kind: repository.TaskRuns, ID: "tr", Version: 2, Delete: true},
		{Kind: repository.Flows, ID: "ns/f", Version: 0, Source: []byte(`  {}  `)},
	}
	rej, err := s.Write(t.Context(), docs)
	if err != nil || len(rej) > 0 {
		t.Fatalf("Write: %v %v", rej, err)
	}
	bulks := f.sentBulks()
	if len(bulks) != 1 {
		t.Fatalf("%d bulk requests, want 1", len(bulks))
	}
	ops := bulks[0]
	want := []struct{ action, index, id string }{
		{"index", "k-executions", "e1"},
		{"index", "k-logs-2026.03.11", "0-1"}, // 23:59 at UTC-1 is the next day in UTC
		{"index", "k-events-2026.03.09", "e1/1"},
		{"delete", "k-task-runs", "tr"},
		{"index", "k-flows", "ns/f"},
	}
	for i, w := range want {
		op := ops[i]
		if op.Action != w.action || op.Index != w.index || op.ID != w.id || op.Version != docs[i].Version || op.VersionType != "external" {
			t.Errorf("op %d = %+v, want %s %s %s version %d external", i, op, w.action, w.index, w.id, docs[i].Version)
		}
		if op.Action == "index" && op.Source[docIDField] != w.id {
			t.Errorf("op %d source %v has no %s", i, op.Source, docIDField)
		}
	}
	if ops[0].Source["state"] != "SUCCESS" || len(ops[4].Source) != 1 {
		t.Errorf("sources: %v, %v", ops[0].Source, ops[4].Source)
	}
}

func TestWriteJudgesBulkItems(t *testing.T) {
	f := newFakeES(t)
	var rounds atomic.Int32
	f.onBulk = func(ops []bulkOp) []string {
		round := rounds.Add(1)
		var items []string
		for _, op := range ops {
			switch {
			case op.ID == "outdated":
				items = append(items, itemConflict(op))
			case op.ID == "bad":
				items = append(items, itemMapping(op))
			case op.ID == "busy" && round == 1:
				items = append(items, itemStatus(op, 429, "es_rejected_execution_exception"))
			case op.ID == "shard" && round < 3:
				items = append(items, itemStatus(op, 503, "unavailable_shards_exception"))
			case op.ID == "gone":
				items = append(items, itemDeleteNotFound(op))
			default:
				items = append(items, itemCreated(op))
			}
		}
		return items
	}
	s := f.store(Config{BulkWorkers: 1})
	docs := []repository.Doc{exec("ok"), exec("outdated"), exec("bad"), exec("busy"), exec("shard"),
		{Kind: repository.Executions, ID: "gone", Version: 1, Delete: true}}
	rej, err := s.Write(t.Context(), docs)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(rej) != 1 || rej[0].Doc.ID != "bad" {
		t.Fatalf("rejected %+v, want bad only", rej)
	}
	if r := rej[0].Reason; !strings.Contains(r, "document_parsing_exception") || !strings.Contains(r, "start") || !strings.Contains(r, "failed to parse date field") {
		t.Errorf("reason %q lacks the type, the field or the cause", r)
	}
	var sent [][]string
	for _, b := range f.sentBulks() {
		var idsSent []string
		for _, op := range b {
			idsSent = append(idsSent, op.ID)
		}
		sent = append(sent, idsSent)
	}
	// Only the documents that the cluster could not take are sent again.
	if want := [][]string{{"ok", "outdated", "bad", "busy", "shard", "gone"}, {"busy", "shard"}, {"shard"}}; !slices.EqualFunc(sent, want, slices.Equal) {
		t.Errorf("bulk requests %v, want %v", sent, want)
	}
}

func TestWriteRetriesAWholeFailedRequest(t *testing.T) {
	f := newFakeES(t)
	var calls atomic.Int32
	f.onBulkFn = func(w http.ResponseWriter, ops []bulkOp) bool {
		if calls.Add(1) <= 4 { // the client's own retries (3), then Write's
			reply(w, 503, `{"error":{"type":"cluster_block_exception","reason":"mock: no master"},"status":503}`)
			return true
		}
		return false
	}
	f.onBulk = func(ops []bulkOp) []string { return []string{itemCreated(ops[0])} }
	s := f.store(Config{BulkWorkers: 1})
	if rej, err := s.Write(t.Context(), []repository.Doc{exec("e1")}); err != nil || len(rej) > 0 {
		t.Fatalf("Write: %v %v", rej, err)
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("%d bulk requests, want 5", n)
	}
}

func TestWriteGivesUpWithErrUnavailable(t *testing.T) {
	f := newFakeES(t)
	f.onBulkFn = func(w http.ResponseWriter, ops []bulkOp) bool {
		reply(w, 429, `{"error":{"type":"es_rejected_execution_exception","reason":"mock: queue full"},"status":429}`)
		return true
	}
	s := f.store(Config{RetryTimeout: 500 * time.Millisecond})
	_, err := s.Write(t.Context(), []repository.Doc{exec("e1"), exec("e2")})
	if !errors.Is(err, repository.ErrUnavailable) {
		t.Fatalf("Write: %v, want ErrUnavailable", err)
	}

	// A server that is gone.
	f.srv.Close()
	if _, err := s.Write(t.Context(), []repository.Doc{exec("e1")}); !errors.Is(err, repository.ErrUnavailable) {
		t.Errorf("Write to a closed server: %v, want ErrUnavailable", err)
	}
}

func TestWriteStopsWithTheContext(t *testing.T) {
	f := newFakeES(t)
	f.onBulk = func(ops []bulkOp) []string {
		return []string{itemStatus(ops[0], 429, "es_rejected_execution_exception")}
	}
	s := f.store(Config{RetryTimeout: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Write(ctx, []repository.Doc{exec("e1")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Write: %v, want the context's error", err)
	}
}

func TestWriteFailsOnAForbiddenItem(t *testing.T) {
	f := newFakeES(t)
	f.onBulk = func(ops []bulkOp) []string {
		return []string{itemStatus(ops[0], 403, "security_exception")}
	}
	s := f.store(Config{})
	_, err := s.Write(t.Context(), []repository.Doc{exec("e1")})
	if err == nil || errors.Is(err, repository.ErrUnavailable) || !strings.Contains(err.Error(), "security_exception") {
		t.Errorf("Write: %v, want a plain error naming security_exception", err)
	}
	if len(f.sentBulks()) != 1 {
		t.Errorf("%d bulk requests, want 1: a 403 is not retried", len(f.sentBulks()))
	}
}

func TestWriteRejectsWhatCannotBeSent(t *testing.T) {
	f := newFakeES(t)
	f.onBulk = func(ops []bulkOp) []string {
		t.Errorf("nothing should be sent, got %+v", ops)
		return nil
	}
	s := f.store(Config{})
	docs := []repository.Doc{
		{Kind: "nope", ID: "x", Source: map[string]any{}},
		{Kind: repository.Executions, Source: map[string]any{}},
		{Kind: repository.Executions, ID: strings.Repeat("x", 513), Source: map[string]any{}},
		{Kind: repository.Executions, ID: "x", Version: -1, Source: map[string]any{}},
		{Kind: repository.Executions, ID: "x"},
		{Kind: repository.Executions, ID: "x", Source: []string{"not an object"}},
		{Kind: repository.Executions, ID: "x", Source: map[string]any{"f": func() {}}},
		{Kind: repository.Logs, ID: "x", Source: map[string]any{"message": "no time"}},
		{Kind: repository.Logs, ID: "x", Source: map[string]any{"time": "yesterday"}},
		{Kind: repository.Events, ID: "x", Delete: true},
	}
	rej, err := s.Write(t.Context(), docs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != len(docs) {
		t.Fatalf("rejected %d of %d: %+v", len(rej), len(docs), rej)
	}
	for i, r := range rej {
		if r.Reason == "" || r.Doc.ID != docs[i].ID {
			t.Errorf("rejection %d: %+v", i, r)
		}
	}
}
