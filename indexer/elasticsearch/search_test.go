package elasticsearch

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/repository"
)

// TestSearchPagesWithAPointInTime follows the requests of a two-page walk
// on the mock server (Elasticsearch's PIT API).
func TestSearchPagesWithAPointInTime(t *testing.T) {
	f := newFakeES(t)
	var searches []map[string]any
	f.other = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		switch r.Method + " " + r.URL.Path {
		case "POST /kite-executions/_pit":
			if r.URL.Query().Get("keep_alive") != pitKeepAlive {
				t.Errorf("keep_alive = %q", r.URL.Query().Get("keep_alive"))
			}
			reply(w, 200, `{"id":"pit-1"}`)
		case "POST /_search":
			var req map[string]any
			_ = json.Unmarshal(body, &req)
			searches = append(searches, req)
			if len(searches) == 1 {
				reply(w, 200, `{"pit_id":"pit-2","_shards":{"total":1,"failed":0},"hits":{"total":{"value":3,"relation":"eq"},"hits":[
					{"_source":{"id":"a"},"sort":[1700000000000,"a"]},{"_source":{"id":"b"},"sort":[1700000000000,"b"]},{"_source":{"id":"c"},"sort":[1600000000000,"c"]}]}}`)
			} else {
				reply(w, 200, `{"pit_id":"pit-3","_shards":{"total":1,"failed":0},"hits":{"total":{"value":3,"relation":"eq"},"hits":[
					{"_source":{"id":"c"},"sort":[1600000000000,"c"]}]}}`)
			}
		case "DELETE /_pit":
			if !strings.Contains(string(body), `"pit-3"`) {
				t.Errorf("closed %s, want pit-3", body)
			}
			reply(w, 200, `{"succeeded":true,"num_freed":1}`)
		default:
			return false
		}
		return true
	}
	s := f.store(Config{})
	req := repository.SearchRequest{Kind: repository.Executions, Size: 2}
	res, err := s.Search(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, res.Hits); res.Total != 3 || !slices.Equal(got, []string{"a", "b"}) || res.Cursor == "" {
		t.Fatalf("page 1: %v total %d cursor %q", got, res.Total, res.Cursor)
	}
	req.Cursor = res.Cursor
	res, err = s.Search(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, res.Hits); !slices.Equal(got, []string{"c"}) || res.Cursor != "" {
		t.Fatalf("page 2: %v cursor %q", got, res.Cursor)
	}
	f.sync()
	if len(searches) != 2 {
		t.Fatalf("%d searches", len(searches))
	}
	sameJSON(t, searches[0]["pit"], `{"id":"pit-1","keep_alive":"5m"}`)
	sameJSON(t, searches[0]["size"], `3`)
	sameJSON(t, searches[0]["track_total_hits"], `true`)
	if _, ok := searches[0]["search_after"]; ok {
		t.Error("page 1 has search_after")
	}
	sameJSON(t, searches[1]["pit"], `{"id":"pit-2","keep_alive":"5m"}`)
	sameJSON(t, searches[1]["search_after"], `[1700000000000,"b"]`)
	if want := []string{"POST /kite-executions/_pit", "POST /_search", "POST /_search", "DELETE /_pit"}; !slices.Equal(f.requests, want) {
		t.Errorf("requests %v, want %v", f.requests, want)
	}
}

func TestSearchErrors(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		body     string
		cursor   bool
		want     error
		wantText string
	}{
		{"bad query", 400, `{"error":{"root_cause":[{"type":"query_shard_exception","reason":"failed to create query"}],"type":"search_phase_execution_exception","reason":"all shards failed"},"status":400}`,
			false, repository.ErrInvalidRequest, "failed to create query"},
		{"overloaded", 429, `{"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"},"status":429}`,
			false, repository.ErrUnavailable, "rejected execution"},
		{"failing", 503, `{"error":{"type":"search_phase_execution_exception","reason":"all shards failed"},"status":503}`,
			false, repository.ErrUnavailable, "all shards failed"},
		{"expired point in time", 404, `{"error":{"root_cause":[{"type":"search_context_missing_exception","reason":"No search context found for id [4]"}],"type":"search_phase_execution_exception","reason":"all shards failed"},"status":404}`,
			true, repository.ErrBadCursor, "No search context"},
		{"partial results", 200, `{"_shards":{"total":2,"failed":1,"failures":[{"reason":{"type":"node_disconnected_exception","reason":"gone"}}]},"hits":{"total":{"value":0},"hits":[]}}`,
			false, repository.ErrUnavailable, "node_disconnected_exception"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeES(t)
			f.other = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				switch r.URL.Path {
				case "/kite-executions/_pit":
					reply(w, 200, `{"id":"pit-1"}`)
				case "/_search":
					reply(w, c.status, c.body)
				case "/_pit":
					reply(w, 200, `{}`)
				default:
					return false
				}
				return true
			}
			s := f.store(Config{})
			req := repository.SearchRequest{Kind: repository.Executions}
			if c.cursor {
				req.Cursor = cursor{PIT: "pit-1", After: []json.RawMessage{json.RawMessage(`1`)}, Hash: requestHash(req)}.encode()
			}
			_, err := s.Search(t.Context(), req)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.wantText) {
				t.Errorf("Search: %v, want %v with %q", err, c.want, c.wantText)
			}
		})
	}
}

func TestSearchWithNoIndexFindsNothing(t *testing.T) {
	f := newFakeES(t)
	f.other = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		switch r.URL.Path {
		case "/kite-logs-*/_pit":
			reply(w, 404, `{"error":{"type":"index_not_found_exception","reason":"no such index [kite-logs-*]"},"status":404}`)
		case "/_cat/indices/kite-logs-*":
			reply(w, 200, `[]`)
		default:
			return false
		}
		return true
	}
	s := f.store(Config{})
	res, err := s.Search(t.Context(), repository.SearchRequest{Kind: repository.Logs})
	if err != nil || res.Total != 0 || len(res.Hits) != 0 || res.Cursor != "" {
		t.Errorf("Search = %+v, %v, want nothing", res, err)
	}
}

func TestAggregateParsesTheAnswer(t *testing.T) {
	f := newFakeES(t)
	var sent map[string]any
	f.other = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if r.URL.Path != "/kite-executions/_search" {
			return false
		}
		_ = json.Unmarshal(body, &sent)
		// Buckets at 0h (2 docs), 2h (1 doc); the 1h one is missing from
		// the answer and must be filled in.
		reply(w, 200, `{"_shards":{"total":1,"failed":0},"hits":{"total":{"value":3,"relation":"eq"},"hits":[]},"aggregations":{
			"histogram":{"buckets":[
				{"key":1772323200000,"key_as_string":"2026-03-01T00:00:00.000Z","doc_count":2,"split":{"buckets":[{"key":"FAILED","doc_count":2}]}},
				{"key":1772330400000,"doc_count":1,"split":{"buckets":[{"key":"SUCCESS","doc_count":1}]}}]},
			"terms_0":{"buckets":[{"key":"load","doc_count":2},{"key":"test","doc_count":1}]},
			"terms_1":{"buckets":[{"key":1,"key_as_string":"true","doc_count":3}]},
			"percentiles":{"values":[{"key":50.0,"value":1500.0},{"key":99.9,"value":null}]}}}`)
		return true
	}
	s := f.store(Config{})
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	res, err := s.Aggregate(t.Context(), repository.AggregateRequest{
		Kind: repository.Executions, Since: base.Add(30 * time.Minute), Until: base.Add(2*time.Hour + time.Second),
		Histogram:   &repository.DateHistogram{Interval: time.Hour, SplitBy: "state"},
		Terms:       []repository.Terms{{Field: "flow_id"}, {Field: "labels", Size: 1000}},
		Percentiles: &repository.Percentiles{Field: "duration", Percents: []float64{50, 99.9}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sync()
	sameJSON(t, sent["aggs"], `{
		"histogram":{"date_histogram":{"field":"start","fixed_interval":"3600000ms","min_doc_count":0,
			"extended_bounds":{"min":1772323200000,"max":1772330400000}},
			"aggs":{"split":{"terms":{"field":"state","size":20}}}},
		"terms_0":{"terms":{"field":"flow_id","size":10,"order":[{"_count":"desc"},{"_key":"asc"}]}},
		"terms_1":{"terms":{"field":"label_pairs","size":100,"order":[{"_count":"desc"},{"_key":"asc"}]}},
		"percentiles":{"percentiles":{"field":"duration","percents":[50,99.9],"keyed":false}}}`)
	sameJSON(t, sent["query"], `{"bool":{"filter":[{"range":{"start":{"gte":"2026-03-01T00:30:00.000Z","lt":"2026-03-01T02:00:01.000Z"}}}]}}`)
	if res.Count != 3 || len(res.Buckets) != 3 {
		t.Fatalf("count %d, buckets %+v", res.Count, res.Buckets)
	}
	for i, want := range []struct {
		count int64
		split map[string]int64
	}{{2, map[string]int64{"FAILED": 2}}, {0, map[string]int64{}}, {1, map[string]int64{"SUCCESS": 1}}} {
		b := res.Buckets[i]
		if !b.Start.Equal(base.Add(time.Duration(i)*time.Hour)) || b.Count != want.count || !mapsEqual(b.Split, want.split) {
			t.Errorf("bucket %d = %+v, want %d %v", i, b, want.count, want.split)
		}
	}
	if got := res.Terms["flow_id"]; len(got) != 2 || got[0] != (repository.TermCount{Value: "load", Count: 2}) {
		t.Errorf("terms flow_id %v", got)
	}
	if got := res.Terms["labels"]; len(got) != 1 || got[0].Value != "true" {
		t.Errorf("terms labels %v (key_as_string first)", got)
	}
	if len(res.Percentiles) != 1 || res.Percentiles[50] != 1500 {
		t.Errorf("percentiles %v, want 50 only (99.9 has no value)", res.Percentiles)
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	err := Config{URLs: []string{"localhost:9200"}, Flavor: "solr", IndexPrefix: "Kite*", Shards: -1, Replicas: -1,
		APIKey: "k", Username: "u", FlushBytes: maxFlushBytes + 1, Retention: -time.Hour}.Validate()
	for _, field := range []string{"urls[0]", "flavor", "index_prefix", "shards", "replicas", "api_key", "flush_bytes", "retention"} {
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate: %v, want a problem with %s", err, field)
		}
	}
}

func TestOpenSearchTransportAddsTheProductHeader(t *testing.T) {
	var gotType string
	rt := openSearchTransport{next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		gotType = r.Header.Get("Content-Type")
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}, nil
	})}
	req, _ := http.NewRequest(http.MethodPost, "http://x/_bulk", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/vnd.elasticsearch+x-ndjson; compatible-with=8")
	res, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Error("no X-Elastic-Product header")
	}
	if gotType != "application/x-ndjson" {
		t.Errorf("Content-Type sent %q, want application/x-ndjson", gotType)
	}
	if req.Header.Get("Content-Type") == gotType {
		t.Error("the caller's request was changed")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewNamesTheURLItCannotReach(t *testing.T) {
	f := newFakeES(t)
	url := f.srv.URL
	f.srv.Close()
	_, err := New(t.Context(), Config{URLs: []string{url}}, nil)
	if err == nil || !strings.Contains(err.Error(), url) || !errors.Is(err, repository.ErrUnavailable) {
		t.Errorf("New: %v, want an error naming %s", err, url)
	}
}
