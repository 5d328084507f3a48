package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	"github.com/kiteflow/kite/core/repository"
	"github.com/kiteflow/kite/indexer/embedded"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/search"
)

// startSearchAPI serves the real SearchService over a real embedded index
// holding execs, on 127.0.0.1.
func startSearchAPI(t *testing.T, execs []repository.Execution) string {
	t.Helper()
	idx, err := embedded.Open(t.Context(), embedded.Config{Dir: t.TempDir()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	var docs []repository.Doc
	for _, e := range execs {
		docs = append(docs, repository.Doc{Kind: repository.Executions, ID: e.ID, Version: 1, Source: e})
	}
	if rejected, err := idx.Write(t.Context(), docs); err != nil || len(rejected) > 0 {
		t.Fatalf("Write: %v %v", rejected, err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	kitev1.RegisterSearchServiceServer(srv, search.New(idx, zaptest.NewLogger(t)))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// someExecutions: 12 executions over the last 3 hours, every third FAILED.
func someExecutions(now time.Time) []repository.Execution {
	var out []repository.Execution
	for i := range 12 {
		start := now.Add(-time.Duration(i) * 15 * time.Minute)
		end := start.Add(time.Duration(i+1) * time.Second)
		d := int64(i+1) * 1000
		e := repository.Execution{ID: fmt.Sprintf("E%02d", i), Namespace: "prod.sales", FlowID: "load", State: "SUCCESS",
			Start: start, End: &end, Duration: &d, Updated: end}
		if i%3 == 0 {
			e.State, e.FlowID = "FAILED", "report"
		}
		out = append(out, e)
	}
	return out
}

func TestSearchExecutions(t *testing.T) {
	addr := startSearchAPI(t, someExecutions(time.Now()))
	out, errOut, code := runCLI(t, "search", "executions", "state:FAILED and namespace:prod*", "--since", "24h", "--server", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], "E00") || !strings.Contains(lines[1], "FAILED") {
		t.Errorf("output:\n%s", out)
	}
	if strings.TrimSpace(errOut) != "4 executions" {
		t.Errorf("stderr %q", errOut)
	}

	// --limit pages, newest first by default; --sort changes it.
	out, errOut, _ = runCLI(t, "search", "executions", "--limit", "3", "--sort", "duration:desc", "--server", addr)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[1], "E11") {
		t.Errorf("--limit 3 --sort duration:desc:\n%s", out)
	}
	if strings.TrimSpace(errOut) != "3 of 12 executions shown (--limit for more)" {
		t.Errorf("stderr %q", errOut)
	}
	out, _, _ = runCLI(t, "search", "executions", "flow_id:report", "-o", "json", "--server", addr)
	if n := strings.Count(out, "\n"); n != 4 || !strings.Contains(out, `"id":"E00"`) {
		t.Errorf("-o json: %d lines:\n%s", n, out)
	}

	// A bad query says where and what.
	_, errOut, code = runCLI(t, "search", "executions", "state:FAILED and stat:x", "--server", addr)
	if code == 0 || !strings.Contains(errOut, `column 18: unknown field "stat"`) {
		t.Errorf("bad query: exit %d, %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "search", "executions", "--since", "yesterday", "--server", addr)
	if code == 0 || !strings.Contains(errOut, `--since "yesterday"`) {
		t.Errorf("bad --since: exit %d, %s", code, errOut)
	}
}

func TestStatsExecutions(t *testing.T) {
	now := time.Now()
	addr := startSearchAPI(t, someExecutions(now))
	out, errOut, code := runCLI(t, "stats", "executions", "--since", "4h", "--interval", "1h", "--server", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"12 executions", "legend: S SUCCESS  F FAILED", "top flow_id: load (8), report (4)",
		"top namespace: prod.sales (12)", "duration: p50 "} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	// One bar per hour, each with its count and split.
	var counted int
	for _, l := range strings.Split(out, "\n") {
		var n int
		// A bar line: date, hour, bar, count, split ("SUCCESS 2, FAILED 1",
		// or only one state when the hour has only that one).
		if f := strings.Fields(l); len(f) >= 4 && (strings.Contains(l, "SUCCESS") || strings.Contains(l, "FAILED")) && !strings.HasPrefix(l, "legend") {
			if _, err := fmt.Sscan(f[3], &n); err == nil {
				counted += n
			}
		}
	}
	if counted != 12 {
		t.Errorf("the bars count %d executions, want 12:\n%s", counted, out)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"30m": now.Add(-30 * time.Minute), "7d": now.Add(-7 * 24 * time.Hour), "2w": now.Add(-14 * 24 * time.Hour),
		"2026-11-01T10:00:00Z": time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
	} {
		ts, err := parseWhen("--since", in, now)
		if err != nil || !ts.AsTime().Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, ts.AsTime(), err, want)
		}
	}
	for _, bad := range []string{"-1h", "soon", "7x"} {
		if _, err := parseWhen("--since", bad, now); err == nil {
			t.Errorf("parseWhen(%q): no error", bad)
		}
	}
}
