package embedded

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/repository"
)

func TestHistogram(t *testing.T) {
	x := openTest(t, Config{})
	var docs []repository.Doc
	// 30 states, one execution each of state S%02d, 6 of S00, 5 of S01 …:
	// only the 20 most frequent split the buckets.
	n := 0
	for s := range 30 {
		for k := range max(1, 6-s) {
			docs = append(docs, execDoc(1, repository.Execution{ID: fmt.Sprintf("e%03d", n), State: fmt.Sprintf("S%02d", s),
				Start: t0.Add(time.Duration(k)*time.Hour + 30*time.Minute)}))
			n++
		}
	}
	mustWrite(t, x, docs...)
	res, err := x.Aggregate(t.Context(), repository.AggregateRequest{Kind: repository.Executions,
		Since:     t0.Add(-90 * time.Minute),                                        // not aligned: the first bucket starts at t0-2h
		Histogram: &repository.DateHistogram{Interval: time.Hour, SplitBy: "state"}, // Until: now, t0+6h below
	})
	if err != nil {
		t.Fatal(err)
	}
	// Now is t0 (openTest): buckets t0-2h, t0-1h; the documents are after.
	if len(res.Buckets) != 2 || !res.Buckets[0].Start.Equal(t0.Add(-2*time.Hour)) || res.Count != 0 {
		t.Fatalf("until now: %d buckets from %v, count %d", len(res.Buckets), res.Buckets[0].Start, res.Count)
	}
	res, err = x.Aggregate(t.Context(), repository.AggregateRequest{Kind: repository.Executions,
		Since: t0.Add(-90 * time.Minute), Until: t0.Add(6 * time.Hour),
		Histogram: &repository.DateHistogram{Interval: time.Hour, SplitBy: "state"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != int64(n) || len(res.Buckets) != 8 {
		t.Fatalf("count %d, %d buckets; want %d, 8", res.Count, len(res.Buckets), n)
	}
	var total int64
	series := map[string]bool{}
	for i, b := range res.Buckets {
		if want := t0.Add(time.Duration(i-2) * time.Hour); !b.Start.Equal(want) || b.Start.Location() != time.UTC {
			t.Errorf("bucket %d starts %v, want %v", i, b.Start, want)
		}
		var split int64
		for v, c := range b.Split {
			series[v] = true
			split += c
		}
		if split > b.Count {
			t.Errorf("bucket %d: split %d > count %d", i, split, b.Count)
		}
		total += b.Count
	}
	if total != int64(n) {
		t.Errorf("buckets hold %d, want %d", total, n)
	}
	if len(series) != repository.MaxSplitTermsSize || !series["S00"] || !series["S19"] || series["S20"] {
		t.Errorf("split series %v, want S00 … S19", slices.Sorted(maps.Keys(series)))
	}
	if b := res.Buckets[2]; b.Count != 30 || b.Split["S00"] != 1 || len(b.Split) != 20 {
		t.Errorf("bucket t0: %d %v", b.Count, b.Split)
	}
	if b := res.Buckets[7]; b.Count != 1 || fmt.Sprint(b.Split) != "map[S00:1]" {
		t.Errorf("bucket t0+5h: %d %v", b.Count, b.Split)
	}
	if b := res.Buckets[0]; b.Count != 0 || b.Split == nil || len(b.Split) != 0 {
		t.Errorf("empty bucket: %d %v", b.Count, b.Split)
	}
}

func TestHistogramBoolAndNoSplit(t *testing.T) {
	x := openTest(t, Config{})
	mustWrite(t, x,
		repository.Doc{Kind: repository.Flows, ID: "a/x", Version: 1, Source: repository.Flow{Namespace: "a", ID: "x", Disabled: true, Updated: t0}},
		repository.Doc{Kind: repository.Flows, ID: "a/y", Version: 1, Source: repository.Flow{Namespace: "a", ID: "y", Updated: t0.Add(time.Minute)}},
		repository.Doc{Kind: repository.Flows, ID: "a/z", Version: 1, Source: repository.Flow{Namespace: "a", ID: "z", Updated: t0.Add(25 * time.Hour)}},
	)
	res, err := x.Aggregate(t.Context(), repository.AggregateRequest{Kind: repository.Flows, Since: t0, Until: t0.Add(48 * time.Hour),
		Histogram: &repository.DateHistogram{Interval: 24 * time.Hour, SplitBy: "disabled"},
		Terms:     []repository.Terms{{Field: "disabled"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Days are aligned on the epoch: t0 is noon.
	got := fmt.Sprint(res.Buckets)
	want := fmt.Sprint([]repository.Bucket{
		{Start: t0.Add(-12 * time.Hour), Count: 2, Split: map[string]int64{"true": 1, "false": 1}},
		{Start: t0.Add(12 * time.Hour), Count: 1, Split: map[string]int64{"false": 1}},
		{Start: t0.Add(36 * time.Hour), Count: 0, Split: map[string]int64{}},
	})
	if got != want {
		t.Errorf("buckets\n got %s\nwant %s", got, want)
	}
	if got := fmt.Sprint(res.Terms["disabled"]); got != "[{false 2} {true 1}]" {
		t.Errorf("terms of a bool: %s", got)
	}
	res, err = x.Aggregate(t.Context(), repository.AggregateRequest{Kind: repository.Flows, Since: t0, Until: t0.Add(time.Hour),
		Histogram: &repository.DateHistogram{Interval: 30 * time.Minute}})
	if err != nil || len(res.Buckets) != 2 || res.Buckets[0].Count != 2 || res.Buckets[0].Split != nil {
		t.Errorf("without split: %+v, %v", res.Buckets, err)
	}
}

func TestTermsAndPercentiles(t *testing.T) {
	x := fixture(t)
	res, err := x.Aggregate(t.Context(), repository.AggregateRequest{Kind: repository.Executions,
		Terms:       []repository.Terms{{Field: "flow_id"}, {Field: "labels"}, {Field: "state", Size: 2}, {Field: "parent_id"}},
		Percentiles: &repository.Percentiles{Field: "duration", Percents: []float64{1, 25, 50, 99, 100}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{
		"flow_id":   "[{pay 3} {deploy 1} {test 1}]",
		"labels":    "[{a=b=c 1} {env=prod 1} {team=data 1} {team=data-eng 1} {team=ml 1}]",
		"state":     "[{FAILED 2} {KILLED 1}]",
		"parent_id": "[{e1 1}]",
	} {
		if got := fmt.Sprint(res.Terms[f]); got != want {
			t.Errorf("terms of %s: %s, want %s", f, got, want)
		}
	}
	// Durations 500, 1000, 2000: linear interpolation between ranks.
	want := map[float64]float64{1: 510, 25: 750, 50: 1000, 99: 1980, 100: 2000}
	if !maps.Equal(res.Percentiles, want) {
		t.Errorf("percentiles %v, want %v", res.Percentiles, want)
	}
	if res.Count != 5 {
		t.Errorf("count %d", res.Count)
	}
	// A query narrows everything; no value gives no percentiles.
	res, err = x.Aggregate(t.Context(), repository.AggregateRequest{Kind: repository.Executions, Query: exact("state", "FAILED"),
		Terms: []repository.Terms{{Field: "labels"}}, Percentiles: &repository.Percentiles{Field: "flow_revision", Percents: []float64{50}}})
	if err != nil || res.Count != 2 || fmt.Sprint(res.Terms["labels"]) != "[{env=prod 1} {team=data 1}]" || res.Percentiles[50] != 2 {
		t.Errorf("failed executions: %+v, %v", res, err)
	}
	res, err = x.Aggregate(t.Context(), repository.AggregateRequest{Kind: repository.Executions, Query: exact("state", "RUNNING"),
		Percentiles: &repository.Percentiles{Field: "duration", Percents: []float64{50}}})
	if err != nil || len(res.Percentiles) != 0 || res.Terms != nil {
		t.Errorf("no durations: %+v, %v", res, err)
	}
}

func TestAggregateErrors(t *testing.T) {
	x := fixture(t)
	h := &repository.DateHistogram{Interval: time.Hour}
	bad := map[string]repository.AggregateRequest{
		"unknown kind":             {Kind: "nope"},
		"histogram without since":  {Kind: repository.Executions, Histogram: h},
		"histogram until < since":  {Kind: repository.Executions, Histogram: h, Since: t0, Until: t0.Add(-time.Hour)},
		"too many buckets":         {Kind: repository.Executions, Histogram: h, Since: t0.Add(-501 * time.Hour)},
		"zero interval":            {Kind: repository.Executions, Histogram: &repository.DateHistogram{}, Since: t0.Add(-time.Hour)},
		"sub-millisecond interval": {Kind: repository.Executions, Histogram: &repository.DateHistogram{Interval: 1500 * time.Microsecond}, Since: t0.Add(-time.Hour)},
		"split by unknown":         {Kind: repository.Executions, Histogram: &repository.DateHistogram{Interval: time.Hour, SplitBy: "nope"}, Since: t0.Add(-time.Hour)},
		"split by labels":          {Kind: repository.Executions, Histogram: &repository.DateHistogram{Interval: time.Hour, SplitBy: "labels"}, Since: t0.Add(-time.Hour)},
		"terms of unknown":         {Kind: repository.Executions, Terms: []repository.Terms{{Field: "nope"}}},
		"terms of a date":          {Kind: repository.Executions, Terms: []repository.Terms{{Field: "start"}}},
		"percentiles of unknown":   {Kind: repository.Executions, Percentiles: &repository.Percentiles{Field: "nope", Percents: []float64{50}}},
		"percentiles of a keyword": {Kind: repository.Executions, Percentiles: &repository.Percentiles{Field: "namespace", Percents: []float64{50}}},
		"percent 0":                {Kind: repository.Executions, Percentiles: &repository.Percentiles{Field: "duration", Percents: []float64{0}}},
		"percent above 100":        {Kind: repository.Executions, Percentiles: &repository.Percentiles{Field: "duration", Percents: []float64{100.5}}},
		"no percents":              {Kind: repository.Executions, Percentiles: &repository.Percentiles{Field: "duration"}},
		"query of another kind":    {Kind: repository.Flows, Query: exact("state", "FAILED")},
	}
	for name, req := range bad {
		_, err := x.Aggregate(t.Context(), req)
		if !errors.Is(err, repository.ErrInvalidRequest) {
			t.Errorf("%s: %v, want ErrInvalidRequest", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// Exactly MaxBuckets is fine.
	if res, err := x.Aggregate(t.Context(), repository.AggregateRequest{Kind: repository.Executions, Histogram: h,
		Since: t0.Add(-500 * time.Hour)}); err != nil || len(res.Buckets) != 500 {
		t.Errorf("500 buckets: %d, %v", len(res.Buckets), err)
	}
}
