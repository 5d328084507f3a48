package elasticsearch

// A mock of Elasticsearch's HTTP answers, for unit tests of how the Store
// reads them (bulk item errors, error statuses, cursors). It plays recorded
// response formats, not a search engine: what the Store does against a
// real server is checked by the integration tests on OpenSearch.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// bulkOp is one action of a bulk request, as the mock server received it.
type bulkOp struct {
	Action      string
	Index, ID   string
	Version     int64
	VersionType string
	Source      map[string]any
}

// fakeES answers the requests New makes (info, templates, indices,
// mappings, the generation) and passes the others to the test's handler.
type fakeES struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	bulks    [][]bulkOp              // every bulk request, in order
	onBulk   func([]bulkOp) []string // the items of the answer, in order: JSON objects
	onBulkFn func(w http.ResponseWriter, ops []bulkOp) bool
	other    func(w http.ResponseWriter, r *http.Request, body []byte) bool // true when answered
	requests []string                                                       // "METHOD PATH" of the others
}

func newFakeES(t testing.TB) *fakeES {
	wait := clientRetryWait
	clientRetryWait = time.Millisecond
	t.Cleanup(func() { clientRetryWait = wait })
	f := &fakeES{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// store opens a Store on the mock server (flavor elasticsearch: the mock
// sends the product header).
func (f *fakeES) store(cfg Config) *Store {
	f.t.Helper()
	cfg.URLs = []string{f.srv.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, cfg, zaptest.NewLogger(f.t))
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	f.t.Cleanup(func() { _ = s.Close() })
	return s
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (f *fakeES) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	body, _ := io.ReadAll(r.Body)
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/":
		reply(w, 200, `{"cluster_name":"mock","version":{"number":"8.19.0"}}`)
	case r.Method == http.MethodPut && (strings.HasPrefix(p, "/_index_template/") || strings.HasSuffix(p, "/_mapping") || !strings.Contains(p[1:], "/")):
		reply(w, 200, `{"acknowledged":true}`)
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/_doc/generation"):
		reply(w, 200, `{"found":true,"_source":{"generation":"gen-1"}}`)
	case r.Method == http.MethodPost && p == "/_bulk":
		ops := parseBulk(f.t, body)
		f.mu.Lock()
		f.bulks = append(f.bulks, ops)
		onBulk, onBulkFn := f.onBulk, f.onBulkFn
		f.mu.Unlock()
		if onBulkFn != nil && onBulkFn(w, ops) {
			return
		}
		items := onBulk(ops)
		reply(w, 200, fmt.Sprintf(`{"took":1,"errors":true,"items":[%s]}`, strings.Join(items, ",")))
	default:
		// The handler runs under the lock: tests read what it recorded
		// after f.sync().
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests = append(f.requests, r.Method+" "+p)
		if f.other == nil || !f.other(w, r, body) {
			reply(w, 404, `{"error":{"type":"mock","reason":"no answer for `+r.Method+" "+p+`"},"status":404}`)
		}
	}
}

// sync makes what handlers wrote visible to the test.
func (f *fakeES) sync() {
	f.mu.Lock()
	defer f.mu.Unlock()
}

// sentBulks returns the bulk requests received so far.
func (f *fakeES) sentBulks() [][]bulkOp {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bulks)
}

// parseBulk reads a bulk request's NDJSON.
func parseBulk(t testing.TB, body []byte) []bulkOp {
	var ops []bulkOp
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var meta map[string]struct {
			Index       string `json:"_index"`
			ID          string `json:"_id"`
			Version     int64  `json:"version"`
			VersionType string `json:"version_type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &meta); err != nil || len(meta) != 1 {
			t.Errorf("bulk action line %s: %v", sc.Bytes(), err)
			return nil
		}
		for action, m := range meta {
			op := bulkOp{Action: action, Index: m.Index, ID: m.ID, Version: m.Version, VersionType: m.VersionType}
			if action != "delete" && sc.Scan() {
				if err := json.Unmarshal(sc.Bytes(), &op.Source); err != nil {
					t.Errorf("bulk source line %s: %v", sc.Bytes(), err)
				}
			}
			ops = append(ops, op)
		}
	}
	return ops
}

// Bulk answer items in Elasticsearch's format.
func itemCreated(op bulkOp) string {
	return fmt.Sprintf(`{%q:{"_index":%q,"_id":%q,"_version":%d,"result":"created","status":201}}`, op.Action, op.Index, op.ID, op.Version)
}

func itemConflict(op bulkOp) string {
	return fmt.Sprintf(`{%q:{"_index":%q,"_id":%q,"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[%s]: version conflict, current version [9] is higher or equal to the one provided [%d]"}}}`,
		op.Action, op.Index, op.ID, op.ID, op.Version)
}

func itemMapping(op bulkOp) string {
	return fmt.Sprintf(`{%q:{"_index":%q,"_id":%q,"status":400,"error":{"type":"document_parsing_exception","reason":"[1:20] failed to parse field [start] of type [date] in document with id '%s'","caused_by":{"type":"illegal_argument_exception","reason":"failed to parse date field [x]"}}}}`,
		op.Action, op.Index, op.ID, op.ID)
}

func itemStatus(op bulkOp, status int, typ string) string {
	return fmt.Sprintf(`{%q:{"_index":%q,"_id":%q,"status":%d,"error":{"type":%q,"reason":"mock %s"}}}`, op.Action, op.Index, op.ID, status, typ, typ)
}

func itemDeleteNotFound(op bulkOp) string {
	return fmt.Sprintf(`{"delete":{"_index":%q,"_id":%q,"_version":%d,"result":"not_found","status":404}}`, op.Index, op.ID, op.Version)
}
