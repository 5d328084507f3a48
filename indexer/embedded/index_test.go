package embedded

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/repository"
)

func TestGeneration(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index") // created by Open
	x := openTest(t, Config{Dir: dir})
	gen, err := x.Generation(t.Context())
	if err != nil || len(gen) != 32 {
		t.Fatalf("Generation() = %q, %v", gen, err)
	}
	mustWrite(t, x, execDoc(1, repository.Execution{ID: "a", Start: t0}))
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}

	// Reopened: the same generation and documents.
	x = openTest(t, Config{Dir: dir})
	if g, _ := x.Generation(t.Context()); g != gen {
		t.Errorf("reopened: generation %q, want %q", g, gen)
	}
	if got := find(t, x, nil); !slices.Equal(got, []string{"a"}) {
		t.Errorf("reopened: %v", got)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}

	// A database of another schema is created anew.
	x = openTest(t, Config{Dir: dir})
	if _, err := x.w.Exec("UPDATE meta SET value = 'old' WHERE key = 'schema'"); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openTest(t, Config{Dir: dir})
	g2, _ := x.Generation(t.Context())
	if g2 == gen {
		t.Error("another schema: the same generation")
	}
	if got := find(t, x, nil); len(got) != 0 {
		t.Errorf("another schema: documents left %v", got)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}

	// A deleted database is a new one.
	for _, f := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	x = openTest(t, Config{Dir: dir})
	if g3, _ := x.Generation(t.Context()); g3 == gen || g3 == g2 {
		t.Errorf("a deleted database: generation %q again", g3)
	}
}

func TestOpenErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no dir":             {},
		"negative retention": {Dir: t.TempDir(), Retention: -time.Hour},
		"dir is a file":      {Dir: filepath.Join(writeFile(t, "x"), "sub")},
		"not a database":     {Dir: filepath.Dir(writeFile(t, FileName))},
	} {
		if x, err := Open(t.Context(), cfg, nil); err == nil {
			_ = x.Close()
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func writeFile(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, []byte("not a database, definitely not one, no no no, not at all, nope!!"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestPurge(t *testing.T) {
	x := openTest(t, Config{Retention: 24 * time.Hour})
	var docs []repository.Doc
	for i := range 12 {
		at := t0.Add(-time.Duration(i) * 6 * time.Hour) // 0h, 6h … 66h ago
		id := string(rune('a' + i))
		docs = append(docs,
			repository.Doc{Kind: repository.Logs, ID: id, Version: 1, Source: repository.Log{ExecutionID: "e", Level: "INFO", Message: "line " + id, Time: at}},
			repository.Doc{Kind: repository.Events, ID: id, Version: 1, Source: repository.Event{ExecutionID: "e", Seq: int64(i), Type: "STATE", Time: at}},
			execDoc(1, repository.Execution{ID: id, Start: at}),
		)
	}
	mustWrite(t, x, docs...)
	n, err := x.Purge(t.Context(), t0)
	if err != nil {
		t.Fatal(err)
	}
	// Older than 24h: 30h … 66h ago, 7 of each of logs and events.
	if n != 14 {
		t.Errorf("purged %d, want 14", n)
	}
	for kind, want := range map[repository.Kind]int64{repository.Logs: 5, repository.Events: 5, repository.Executions: 12} {
		res, err := x.Search(t.Context(), repository.SearchRequest{Kind: kind})
		if err != nil || res.Total != want {
			t.Errorf("%s after the purge: %d, %v, want %d", kind, res.Total, err, want)
		}
	}
	var fts int
	if err := x.r.QueryRow("SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH 'line'").Scan(&fts); err != nil || fts != 5 {
		t.Errorf("full text of logs after the purge: %d, %v, want 5", fts, err)
	}
	if n, err := x.Purge(t.Context(), t0); err != nil || n != 0 {
		t.Errorf("purge again: %d, %v", n, err)
	}
	// Without retention, nothing goes.
	y := openTest(t, Config{})
	mustWrite(t, y, docs...)
	if n, err := y.Purge(t.Context(), t0.Add(1000*time.Hour)); err != nil || n != 0 {
		t.Errorf("purge without retention: %d, %v", n, err)
	}
}
