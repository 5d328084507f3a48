package elasticsearch

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/kiteflow/kite/core/repository"
	"github.com/kiteflow/kite/integration/searchtest"
)

// testPrefix is an index prefix of the test's own: indices and templates
// of concurrent tests (and packages) on the shared node never meet.
func testPrefix(tb testing.TB) string {
	tb.Helper()
	sum := sha256.Sum256([]byte(tb.Name()))
	return "kt-" + hex.EncodeToString(sum[:4]) + "-" + strings.ToLower(rand.Text()[:6]) + "-"
}

// newTestStore opens a Store on the real OpenSearch (skipping without
// one) with indices of the test's own, deleted when the test ends.
func newTestStore(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	url := searchtest.URL(tb)
	cfg.URLs = []string{url}
	cfg.Flavor = FlavorOpenSearch
	if cfg.IndexPrefix == "" {
		cfg.IndexPrefix = testPrefix(tb)
	}
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	s, err := New(ctx, cfg, zaptest.NewLogger(tb))
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		dropPrefix(tb, s, cfg.IndexPrefix)
		_ = s.Close()
	})
	return s
}

// dropPrefix deletes the indices and index templates of a prefix.
func dropPrefix(tb testing.TB, s *Store, prefix string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names, err := s.indices(ctx, prefix+"*")
	if err != nil {
		tb.Errorf("cleanup: listing indices: %v", err)
	}
	if len(names) > 0 {
		if status, body, err := s.call(ctx, http.MethodDelete, "/"+strings.Join(names, ","), nil, nil); err != nil || status != http.StatusOK {
			tb.Errorf("cleanup: deleting %v: %d %s %v", names, status, body, err)
		}
	}
	for _, k := range append([]repository.Kind{metaName}, repository.Kinds...) {
		pattern, _ := s.template(k)
		if status, body, err := s.call(ctx, http.MethodDelete, "/_index_template/"+templateName(pattern), nil, nil); err != nil || (status != http.StatusOK && status != http.StatusNotFound) {
			tb.Errorf("cleanup: deleting template %s: %d %s %v", templateName(pattern), status, body, err)
		}
	}
}

// write writes docs, fails the test on an error or a rejection, and
// refreshes.
func write(tb testing.TB, s *Store, docs ...repository.Doc) {
	tb.Helper()
	rej, err := s.Write(tb.Context(), docs)
	if err != nil {
		tb.Fatalf("Write: %v", err)
	}
	if len(rej) > 0 {
		tb.Fatalf("Write rejected %d documents, the first: %s", len(rej), rej[0].Reason)
	}
	refresh(tb, s)
}

func refresh(tb testing.TB, s *Store) {
	tb.Helper()
	if err := s.Refresh(tb.Context()); err != nil {
		tb.Fatalf("Refresh: %v", err)
	}
}

// search runs a search and fails the test on an error.
func search(tb testing.TB, s *Store, req repository.SearchRequest) repository.SearchResult {
	tb.Helper()
	res, err := s.Search(tb.Context(), req)
	if err != nil {
		tb.Fatalf("Search(%+v): %v", req, err)
	}
	return res
}

// ids returns the "id" (or else "execution_id"/"seq", "message") of hits.
func ids(tb testing.TB, hits []json.RawMessage) []string {
	tb.Helper()
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		var d struct {
			ID      string `json:"id"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(h, &d); err != nil {
			tb.Fatalf("decoding hit %s: %v", h, err)
		}
		if d.ID == "" {
			d.ID = d.Message
		}
		out = append(out, d.ID)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// day0 is the day the test data happens on.
var day0 = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

func execDoc(e repository.Execution, version int64) repository.Doc {
	return repository.Doc{Kind: repository.Executions, ID: e.ID, Version: version, Source: e}
}
