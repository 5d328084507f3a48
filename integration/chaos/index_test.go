package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// indexView is what the search index (through the API's SearchService)
// holds about the run.
type indexView struct {
	states          map[string]string // execution id → state
	execByState     map[string]int64
	taskRuns        int64
	taskRunsByState map[string]int64
	events          int64
}

// readIndex pages through every execution document and counts task runs and
// events by state.
func readIndex(ctx context.Context, search kitev1.SearchServiceClient) (*indexView, error) {
	ix := &indexView{states: map[string]string{}}
	cursor := ""
	for {
		resp, err := search.SearchExecutions(ctx, &kitev1.SearchServiceSearchExecutionsRequest{Search: &kitev1.SearchQuery{
			Size: 1000, Cursor: cursor, Sort: []*kitev1.SortField{{Field: "id"}}}})
		if err != nil {
			return nil, fmt.Errorf("searching executions: %w", err)
		}
		for _, doc := range resp.GetPage().GetDocuments() {
			f := doc.GetFields()
			ix.states[f["id"].GetStringValue()] = f["state"].GetStringValue()
		}
		if cursor = resp.GetPage().GetNextCursor(); cursor == "" {
			break
		}
	}
	var err error
	if _, ix.execByState, err = aggregate(ctx, search, kitev1.SearchKind_SEARCH_KIND_EXECUTIONS); err != nil {
		return nil, err
	}
	if ix.taskRuns, ix.taskRunsByState, err = aggregate(ctx, search, kitev1.SearchKind_SEARCH_KIND_TASK_RUNS); err != nil {
		return nil, err
	}
	if ix.events, _, err = aggregate(ctx, search, kitev1.SearchKind_SEARCH_KIND_EVENTS); err != nil {
		return nil, err
	}
	return ix, nil
}

// aggregate counts the documents of a kind, in all and by state.
func aggregate(ctx context.Context, search kitev1.SearchServiceClient, kind kitev1.SearchKind) (int64, map[string]int64, error) {
	resp, err := search.Aggregate(ctx, &kitev1.SearchServiceAggregateRequest{Kind: kind, Terms: []string{"state"}, TermsSize: 100})
	if err != nil {
		return 0, nil, fmt.Errorf("aggregating %s: %w", kind, err)
	}
	byState := map[string]int64{}
	for _, terms := range resp.GetTerms() {
		for _, tc := range terms.GetValues() {
			byState[tc.GetValue()] = tc.GetCount()
		}
	}
	return resp.GetCount(), byState, nil
}

// kafkaCounts are the numbers of the Kafka view that the index must match.
type kafkaCounts struct {
	execByState     map[string]int64
	taskRuns        int64
	taskRunsByState map[string]int64
	events          int64
}

func countKafka(v *kafkaView) kafkaCounts {
	k := kafkaCounts{execByState: map[string]int64{}, taskRunsByState: map[string]int64{}}
	for _, f := range v.execs {
		k.execByState[string(f.e.State)]++
		k.events += f.e.Seq
		for _, tr := range f.e.TaskRuns {
			k.taskRuns++
			k.taskRunsByState[string(tr.State)]++
		}
	}
	return k
}

// compareIndex lists every difference between the index and Kafka.
func compareIndex(v *kafkaView, k kafkaCounts, ix *indexView) []string {
	var out []string
	for _, id := range v.sortedIDs() {
		want := string(v.execs[id].e.State)
		switch got, ok := ix.states[id]; {
		case !ok:
			out = append(out, fmt.Sprintf("execution %s (%s): on Kafka (%s), not in the index", id, v.execs[id].e.FlowID, want))
		case got != want:
			out = append(out, fmt.Sprintf("execution %s (%s): %s on Kafka, %s in the index", id, v.execs[id].e.FlowID, want, got))
		}
	}
	extra := []string{}
	for id := range ix.states {
		if _, ok := v.execs[id]; !ok {
			extra = append(extra, id)
		}
	}
	slices.Sort(extra)
	for _, id := range extra {
		out = append(out, fmt.Sprintf("execution %s: in the index (%s), not on Kafka", id, ix.states[id]))
	}
	if !maps.Equal(k.execByState, ix.execByState) {
		out = append(out, fmt.Sprintf("executions by state: Kafka %s, index %s", fmtCounts(k.execByState), fmtCounts(ix.execByState)))
	}
	if k.taskRuns != ix.taskRuns || !maps.Equal(k.taskRunsByState, ix.taskRunsByState) {
		out = append(out, fmt.Sprintf("task runs: Kafka %d %s, index %d %s", k.taskRuns, fmtCounts(k.taskRunsByState), ix.taskRuns, fmtCounts(ix.taskRunsByState)))
	}
	if k.events != ix.events {
		out = append(out, fmt.Sprintf("events: Kafka %d, index %d", k.events, ix.events))
	}
	return out
}

// checkIndex compares the index with Kafka until they match (the indexer
// may still be catching up), for at most within.
func checkIndex(ctx context.Context, search kitev1.SearchServiceClient, v *kafkaView, within time.Duration, logf func(string, ...any)) check {
	k := countKafka(v)
	c := check{name: "the search index matches Kafka (executions and their states, task runs, events)", checked: len(v.execs)}
	deadline := time.Now().Add(within)
	start := time.Now()
	var last []string
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		ix, err := readIndex(rctx, search)
		cancel()
		if err != nil {
			last = []string{err.Error()}
		} else if last = compareIndex(v, k, ix); len(last) == 0 {
			c.note = fmt.Sprintf("matched %s after the check started", time.Since(start).Round(time.Second))
			return c
		}
		if time.Now().After(deadline) {
			c.bad = last
			c.note = fmt.Sprintf("still different after %s", within)
			return c
		}
		logf("index: %d differences with Kafka (first: %s); waiting for the indexer", len(last), last[0])
		select {
		case <-ctx.Done():
			c.bad = append(c.bad, last...)
			c.fail("%v", ctx.Err())
			return c
		case <-tick.C:
		}
	}
}

// fmtCounts prints counts by key in key order.
func fmtCounts[N int | int64](m map[string]N) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}
