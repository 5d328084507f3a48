package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
	"github.com/kiteflow/kite/indexer/embedded"
	"github.com/kiteflow/kite/integration/clustertest"
	"github.com/kiteflow/kite/integration/searchtest"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/app"
	"github.com/kiteflow/kite/services/indexer"
	"github.com/kiteflow/kite/streams"
)

// The flows of the search tests: one that succeeds, one that fails, one
// that loops.
var searchFlows = []string{`id: ok
namespace: kite.search
labels: {team: data}
tasks:
  - {id: hello, type: io.kestra.plugin.core.log.Log, message: "hello from {{ execution.id }}"}
  - {id: ret, type: io.kestra.plugin.core.debug.Return, format: done}
`, `id: fails
namespace: kite.search
tasks:
  - {id: hello, type: io.kestra.plugin.core.log.Log, message: "about to fail"}
  - {id: boom, type: io.kestra.plugin.core.execution.Fail, errorMessage: "connection refused by db"}
`, `id: loop
namespace: kite.search.loop
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [a, b, c]
    tasks:
      - {id: item, type: io.kestra.plugin.core.log.Log, message: "item {{ taskrun.value }}"}
`}

// runSearchLoad applies the search flows and runs n executions of each
// through the API, and returns them as their events fold (the truth Kafka
// holds) once all ended.
func runSearchLoad(t *testing.T, conn *grpc.ClientConn, kafka streams.Config, n int) map[string]*execution.Execution {
	t.Helper()
	for _, src := range searchFlows {
		if _, err := kitev1.NewFlowServiceClient(conn).Apply(t.Context(), &kitev1.FlowServiceApplyRequest{Source: src}); err != nil {
			t.Fatal(err)
		}
	}
	execs := kitev1.NewExecutionServiceClient(conn)
	ids := map[string]bool{}
	for i := range n {
		for _, f := range []struct{ ns, id string }{{"kite.search", "ok"}, {"kite.search", "fails"}, {"kite.search.loop", "loop"}} {
			res, err := execs.Create(t.Context(), &kitev1.ExecutionServiceCreateRequest{Namespace: f.ns, FlowId: f.id,
				Labels: []*kitev1.Label{{Key: "batch", Value: fmt.Sprint(i % 2)}}})
			if err != nil {
				t.Fatal(err)
			}
			ids[res.GetExecution().GetId()] = true
		}
	}
	got, _ := foldEvents(t, kafka, ids, nil)
	return got
}

// docSource is where the checks read documents: a repository, or the
// SearchService of the API.
type docSource interface {
	page(t *testing.T, kind repository.Kind, q, cursor string, size int) repository.SearchResult
}

// repoSource reads a repository directly.
type repoSource struct{ repo repository.Repository }

func (s repoSource) page(t *testing.T, kind repository.Kind, q, cursor string, size int) repository.SearchResult {
	t.Helper()
	n, err := query.Parse(q, repository.Schema(kind), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := s.repo.(interface{ Refresh(context.Context) error }); ok {
		if err := r.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.repo.Search(t.Context(), repository.SearchRequest{Kind: kind, Query: n, Size: size, Cursor: cursor,
		Sort: []repository.Sort{{Field: repository.TimeField(kind)}}})
	if err != nil {
		t.Fatalf("search %s %q: %v", kind, q, err)
	}
	return res
}

// apiSource reads through the SearchService, as users do.
type apiSource struct{ c kitev1.SearchServiceClient }

func (s apiSource) page(t *testing.T, kind repository.Kind, q, cursor string, size int) repository.SearchResult {
	t.Helper()
	sq := &kitev1.SearchQuery{Query: q, Size: int32(size), Cursor: cursor, Sort: []*kitev1.SortField{{Field: repository.TimeField(kind)}}}
	ctx := t.Context()
	var page *kitev1.SearchPage
	var err error
	switch kind {
	case repository.Executions:
		var r *kitev1.SearchServiceSearchExecutionsResponse
		r, err = s.c.SearchExecutions(ctx, &kitev1.SearchServiceSearchExecutionsRequest{Search: sq})
		page = r.GetPage()
	case repository.TaskRuns:
		var r *kitev1.SearchServiceSearchTaskRunsResponse
		r, err = s.c.SearchTaskRuns(ctx, &kitev1.SearchServiceSearchTaskRunsRequest{Search: sq})
		page = r.GetPage()
	case repository.Events:
		var r *kitev1.SearchServiceSearchEventsResponse
		r, err = s.c.SearchEvents(ctx, &kitev1.SearchServiceSearchEventsRequest{Search: sq})
		page = r.GetPage()
	case repository.Logs:
		var r *kitev1.SearchServiceSearchLogsResponse
		r, err = s.c.SearchLogs(ctx, &kitev1.SearchServiceSearchLogsRequest{Search: sq})
		page = r.GetPage()
	case repository.Flows:
		var r *kitev1.SearchServiceSearchFlowsResponse
		r, err = s.c.SearchFlows(ctx, &kitev1.SearchServiceSearchFlowsRequest{Search: sq})
		page = r.GetPage()
	}
	if err != nil {
		t.Fatalf("search %s %q: %v", kind, q, err)
	}
	res := repository.SearchResult{Total: page.GetTotal(), Cursor: page.GetNextCursor()}
	for _, d := range page.GetDocuments() {
		b, err := d.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		res.Hits = append(res.Hits, b)
	}
	return res
}

// searchAll pages through every document a query matches.
func searchAll(t *testing.T, src docSource, kind repository.Kind, q string) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	cursor := ""
	for {
		res := src.page(t, kind, q, cursor, repository.MaxSize)
		out = append(out, res.Hits...)
		if res.Cursor == "" {
			return out
		}
		cursor = res.Cursor
	}
}

// waitIndexed waits until the repository holds want documents of a kind
// matching q.
func waitIndexed(t *testing.T, src docSource, kind repository.Kind, q string, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last int64
	for time.Now().Before(deadline) {
		if last = src.page(t, kind, q, "", 1).Total; last == int64(want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s %q: %d documents indexed after 2 minutes, want %d", kind, q, last, want)
}

// checkProjection checks that the repository says what Kafka says: each
// execution's state, flow and labels, its task runs and their states, its
// events, and its log lines.
func checkProjection(t *testing.T, repo docSource, truth map[string]*execution.Execution) {
	t.Helper()
	var taskRuns, events int
	for _, e := range truth {
		taskRuns += len(e.TaskRuns)
		events += int(e.Seq)
	}
	// The last documents written are the ended executions' headers; wait
	// for every kind to catch up.
	waitIndexed(t, repo, repository.Executions, "namespace:kite.search* and end:*", len(truth))
	waitIndexed(t, repo, repository.TaskRuns, "namespace:kite.search* and end:*", taskRuns)
	waitIndexed(t, repo, repository.Events, "", events)

	for _, raw := range searchAll(t, repo, repository.Executions, "namespace:kite.search*") {
		var d repository.Execution
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		e := truth[d.ID]
		if e == nil {
			t.Errorf("indexed execution %s is not one of the test's", d.ID)
			continue
		}
		if d.State != string(e.State) || d.Namespace != e.Namespace || d.FlowID != e.FlowID || d.End == nil ||
			!d.Start.Equal(e.History[0].Date) || d.Duration == nil || *d.Duration != e.History[len(e.History)-1].Date.Sub(e.History[0].Date).Milliseconds() {
			t.Errorf("execution %s indexed as %+v; Kafka says %s %s/%s", d.ID, d, e.State, e.Namespace, e.FlowID)
		}
		var labels []string
		for _, l := range e.Labels {
			labels = append(labels, l.Key+"="+l.Value)
		}
		if !slices.Equal(d.LabelPairs, labels) {
			t.Errorf("execution %s labels %v, want %v", d.ID, d.LabelPairs, labels)
		}
	}
	byExec := map[string]map[string]string{} // execution → task run id → state
	for _, raw := range searchAll(t, repo, repository.TaskRuns, "namespace:kite.search*") {
		var d repository.TaskRun
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		if byExec[d.ExecutionID] == nil {
			byExec[d.ExecutionID] = map[string]string{}
		}
		byExec[d.ExecutionID][d.ID] = d.State
	}
	for id, e := range truth {
		want := map[string]string{}
		for _, tr := range e.TaskRuns {
			want[tr.ID] = string(tr.State)
		}
		if !maps.Equal(byExec[id], want) {
			t.Errorf("execution %s: task runs indexed %v, Kafka says %v", id, byExec[id], want)
		}
	}
	// Logs: every log line of the test's executions, as the logs topic holds them.
	for _, q := range []string{`namespace:kite.search and "about to fail"`, "namespace:kite.search.loop and message:item"} {
		hits := searchAll(t, repo, repository.Logs, q)
		var want int
		for _, e := range truth {
			switch {
			case strings.Contains(q, "fail") && e.FlowID == "fails":
				want++
			case strings.Contains(q, "item") && e.FlowID == "loop":
				want += 3
			}
		}
		if len(hits) != want {
			t.Errorf("logs %q: %d, want %d", q, len(hits), want)
		}
	}
}

// TestSearchStandalone: standalone indexes into its embedded index what its
// executions did, the SearchService answers queries and aggregations over
// it, and replaying the topics into a fresh index gives the same documents.
func TestSearchStandalone(t *testing.T) {
	a := startApp(t, "standalone", nil, nil)
	conn := dial(t, a)
	kafka := app.Defaults().Kafka
	kafka.Brokers = []string{a.BrokerAddr()}
	truth := runSearchLoad(t, conn, kafka, 10)
	repo := apiSource{c: kitev1.NewSearchServiceClient(conn)}
	checkProjection(t, repo, truth)

	// The SearchService: a query with an error points at it; aggregations.
	_, err := kitev1.NewSearchServiceClient(conn).SearchExecutions(t.Context(), &kitev1.SearchServiceSearchExecutionsRequest{
		Search: &kitev1.SearchQuery{Query: "stat:FAILED"}})
	var desc string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 && br.GetFieldViolations()[0].GetField() == "search.query" {
			desc = br.GetFieldViolations()[0].GetDescription()
		}
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(desc, `column 1: unknown field "stat"`) || !strings.Contains(desc, `did you mean "state"`) {
		t.Errorf("a query with an unknown field: %v (violation %q)", err, desc)
	}
	agg, err := kitev1.NewSearchServiceClient(conn).Aggregate(t.Context(), &kitev1.SearchServiceAggregateRequest{
		Kind: kitev1.SearchKind_SEARCH_KIND_EXECUTIONS, Query: "namespace:kite.search*",
		Since: timestamppb.New(time.Now().Add(-time.Hour)), IntervalSeconds: 3600, SplitBy: "state", Terms: []string{"flow_id"},
		PercentilesField: "duration"})
	if err != nil {
		t.Fatal(err)
	}
	var states = map[string]int64{}
	for _, b := range agg.GetBuckets() {
		for k, v := range b.GetSplit() {
			states[k] += v
		}
	}
	if agg.GetCount() != 30 || states["SUCCESS"] != 20 || states["FAILED"] != 10 || len(agg.GetTerms()) != 1 ||
		len(agg.GetTerms()[0].GetValues()) != 3 || len(agg.GetPercentiles()) != 3 {
		t.Errorf("aggregate: %v", agg)
	}

	// Small pages of a relative query: each page resolves now-1h as the
	// first did, and every hit comes once.
	seen := map[string]int{}
	cursor := ""
	for range 20 {
		res := repo.page(t, repository.Executions, "namespace:kite.search* and start > now-1h", cursor, 7)
		for _, h := range res.Hits {
			var d repository.Execution
			if err := json.Unmarshal(h, &d); err != nil {
				t.Fatal(err)
			}
			seen[d.ID]++
		}
		if cursor = res.Cursor; cursor == "" {
			break
		}
	}
	if len(seen) != len(truth) || slices.ContainsFunc(slices.Collect(maps.Values(seen)), func(n int) bool { return n != 1 }) {
		t.Errorf("pages of 7 saw %d executions (%v), want each of %d once", len(seen), seen, len(truth))
	}

	// Replay: a second indexer from offset 0 into a fresh index writes the
	// same documents.
	fresh, err := embedded.Open(t.Context(), embedded.Config{Dir: t.TempDir()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fresh.Close() })
	runIndexer(t, kafka, fresh)
	checkProjection(t, repoSource{fresh}, truth)
	for _, kind := range []repository.Kind{repository.Executions, repository.TaskRuns, repository.Events, repository.Logs, repository.Flows} {
		q := "namespace:kite.search*"
		if kind == repository.Events {
			q = ""
		}
		a, b := searchAll(t, repo, kind, q), searchAll(t, repoSource{fresh}, kind, q)
		if len(a) != len(b) {
			t.Errorf("%s: %d documents indexed live, %d replayed", kind, len(a), len(b))
			continue
		}
		for i := range a {
			if !jsonEqual(a[i], b[i]) {
				t.Errorf("%s: document %d differs:\nlive     %s\nreplayed %s", kind, i, a[i], b[i])
				break
			}
		}
	}
}

// runIndexer runs an indexer role into store until the test ends.
func runIndexer(t *testing.T, kafka streams.Config, store indexer.Store) {
	t.Helper()
	x, err := indexer.New(indexer.Defaults(), kafka, store, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("indexer: %v", err)
		}
	})
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// TestSearchDistributed: the roles as separate modules on a cluster, with
// OpenSearch as the repository; the search server goes away mid-load (its
// connections cut and refused) and comes back: nothing is missing.
func TestSearchDistributed(t *testing.T) {
	url := searchtest.URL(t)
	clustertest.Each(t, func(t *testing.T, kafka streams.Config) {
		proxy := searchtest.NewProxy(t, url)
		prefix := fmt.Sprintf("kite-t%d-", time.Now().UnixNano())
		t.Cleanup(func() { searchtest.DeleteIndices(t, url, prefix+"*") })
		tune := func(c *app.Config) {
			c.Repository.Type = app.RepositoryElasticsearch
			c.Repository.Elasticsearch = app.ElasticsearchConfig{URLs: []string{proxy.URL()}, Flavor: "opensearch",
				IndexPrefix: prefix, Shards: 1, Replicas: 0}
			c.Indexer.RetryMax = time.Second
		}
		startApp(t, "executor,worker", &kafka, nil)
		startApp(t, "indexer", &kafka, tune)
		a := startApp(t, "api", &kafka, tune)
		conn := dial(t, a)

		// The search server goes away while the executions run.
		proxy.Cut()
		truth := runSearchLoad(t, conn, kafka, 5)
		time.Sleep(2 * time.Second) // the indexer retries meanwhile
		proxy.Restore()
		checkProjection(t, apiSource{c: kitev1.NewSearchServiceClient(conn)}, truth)
	})
}
