package elasticsearch

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// histogramPlan is the buckets a date histogram must return: n buckets of
// interval ms from start (ms since the epoch, a multiple of interval).
type histogramPlan struct {
	start, interval int64
	n               int
	split           string // field, "" for none
}

// aggregation request names.
const (
	aggHistogram   = "histogram"
	aggSplit       = "split"
	aggPercentiles = "percentiles"
)

func termsAggName(i int) string { return "terms_" + strconv.Itoa(i) }

// Aggregate counts the documents a query matches and computes the asked
// aggregations in one search: a date histogram (fixed_interval, buckets
// aligned on the epoch, empty ones included) optionally split by a terms
// sub-aggregation, terms aggregations, and percentiles (t-digest,
// approximate).
func (s *Store) Aggregate(ctx context.Context, req repository.AggregateRequest) (repository.AggregateResult, error) {
	schema := repository.Schema(req.Kind)
	if schema == nil {
		return repository.AggregateResult{}, fmt.Errorf("%w: unknown kind %q", repository.ErrInvalidRequest, req.Kind)
	}
	until := req.Until
	if req.Histogram != nil && until.IsZero() {
		until = s.now()
	}
	q, err := filter(req.Kind, req.Query, req.Since, until)
	if err != nil {
		return repository.AggregateResult{}, err
	}
	aggs, plan, err := aggregations(req, schema, until)
	if err != nil {
		return repository.AggregateResult{}, err
	}
	body := dsl{"size": 0, "query": q, "track_total_hits": true}
	if len(aggs) > 0 {
		body["aggs"] = aggs
	}
	params := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}}
	status, data, err := s.call(ctx, http.MethodPost, "/"+s.searchIndex(req.Kind)+"/_search", params, body)
	if err != nil {
		return repository.AggregateResult{}, fmt.Errorf("aggregating %s: %w", req.Kind, err)
	}
	if status != http.StatusOK {
		return repository.AggregateResult{}, searchError(req.Kind, status, apiError(status, data))
	}
	var res searchResponse
	if err := json.Unmarshal(data, &res); err != nil {
		return repository.AggregateResult{}, fmt.Errorf("decoding the aggregation of %s: %w", req.Kind, err)
	}
	if err := res.partial(); err != nil {
		return repository.AggregateResult{}, fmt.Errorf("aggregating %s: %w", req.Kind, err)
	}
	out, err := parseAggregations(req, plan, res.Aggregations)
	if err != nil {
		return repository.AggregateResult{}, fmt.Errorf("decoding the aggregation of %s: %w", req.Kind, err)
	}
	out.Count = res.Hits.Total.Value
	return out, nil
}

// aggregations builds the aggs of a request, checking its fields.
func aggregations(req repository.AggregateRequest, schema *query.Schema, until time.Time) (dsl, *histogramPlan, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", repository.ErrInvalidRequest, fmt.Sprintf(format, args...))
	}
	aggs := dsl{}
	var plan *histogramPlan
	if h := req.Histogram; h != nil {
		if req.Since.IsZero() {
			return nil, nil, invalid("a date histogram needs since")
		}
		if h.Interval < time.Millisecond || h.Interval%time.Millisecond != 0 {
			return nil, nil, invalid("the histogram interval %s is not a whole number of milliseconds", h.Interval)
		}
		iv := h.Interval.Milliseconds()
		start := floorDiv(req.Since.UnixMilli(), iv) * iv
		n := 0
		if until.After(req.Since) {
			// Buckets start before until: ceil((until - start) / iv).
			span := until.Sub(time.UnixMilli(start))
			n64 := int64(span / h.Interval)
			if span%h.Interval != 0 {
				n64++
			}
			if n64 > repository.MaxBuckets {
				return nil, nil, invalid("%s to %s by %s needs %d buckets, at most %d allowed", req.Since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339), h.Interval, n64, repository.MaxBuckets)
			}
			n = int(n64)
		}
		plan = &histogramPlan{start: start, interval: iv, n: n}
		if h.SplitBy != "" {
			f := schema.Field(h.SplitBy)
			if f == nil || (f.Type != query.Keyword && f.Type != query.Enum && f.Type != query.Bool) {
				return nil, nil, invalid("cannot split by %q: a keyword, enum or bool field of %s is needed", h.SplitBy, req.Kind)
			}
			plan.split = f.Name
		}
		if n > 0 {
			hist := dsl{
				"field":           repository.TimeField(req.Kind),
				"fixed_interval":  strconv.FormatInt(iv, 10) + "ms",
				"min_doc_count":   0,
				"extended_bounds": dsl{"min": start, "max": start + int64(n-1)*iv},
			}
			agg := dsl{"date_histogram": hist}
			if plan.split != "" {
				agg["aggs"] = dsl{aggSplit: dsl{"terms": dsl{"field": plan.split, "size": repository.MaxSplitTermsSize}}}
			}
			aggs[aggHistogram] = agg
		}
	}
	for i, t := range req.Terms {
		f := schema.Field(t.Field)
		if f == nil || (f.Type != query.Keyword && f.Type != query.Enum && f.Type != query.Bool && f.Type != query.Labels) {
			return nil, nil, invalid("cannot count the values of %q: a keyword, enum, bool or labels field of %s is needed", t.Field, req.Kind)
		}
		field := f.Name
		if f.Type == query.Labels {
			field = query.LabelPairsField
		}
		size := t.Size
		if size <= 0 {
			size = repository.DefaultTermsSize
		}
		size = min(size, repository.MaxTermsSize)
		aggs[termsAggName(i)] = dsl{"terms": dsl{
			"field": field, "size": size,
			"order": []any{dsl{"_count": "desc"}, dsl{"_key": "asc"}},
		}}
	}
	if p := req.Percentiles; p != nil {
		f := schema.Field(p.Field)
		if f == nil || (f.Type != query.Number && f.Type != query.Duration) {
			return nil, nil, invalid("cannot compute percentiles of %q: a number or duration field of %s is needed", p.Field, req.Kind)
		}
		if len(p.Percents) == 0 {
			return nil, nil, invalid("percentiles of %s need percents", p.Field)
		}
		for _, pc := range p.Percents {
			if !(pc > 0 && pc <= 100) {
				return nil, nil, invalid("the percent %v is not in (0, 100]", pc)
			}
		}
		aggs[aggPercentiles] = dsl{"percentiles": dsl{"field": f.Name, "percents": p.Percents, "keyed": false}}
	}
	return aggs, plan, nil
}

// floorDiv divides rounding toward minus infinity (times before 1970).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// termBucket is a bucket of a terms aggregation.
type termBucket struct {
	Key         json.RawMessage `json:"key"`
	KeyAsString string          `json:"key_as_string"`
	DocCount    int64           `json:"doc_count"`
}

// value is the bucket's key as text: bool keys come as 1/0 with
// key_as_string true/false.
func (b termBucket) value() string {
	if b.KeyAsString != "" {
		return b.KeyAsString
	}
	var s string
	if json.Unmarshal(b.Key, &s) == nil {
		return s
	}
	return string(b.Key)
}

type termsAgg struct {
	Buckets []termBucket `json:"buckets"`
}

func parseAggregations(req repository.AggregateRequest, plan *histogramPlan, raw json.RawMessage) (repository.AggregateResult, error) {
	var aggs map[string]json.RawMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &aggs); err != nil {
			return repository.AggregateResult{}, err
		}
	}
	var out repository.AggregateResult
	if plan != nil {
		out.Buckets = make([]repository.Bucket, plan.n)
		for i := range out.Buckets {
			out.Buckets[i].Start = time.UnixMilli(plan.start + int64(i)*plan.interval).UTC()
			if plan.split != "" {
				out.Buckets[i].Split = map[string]int64{}
			}
		}
		if js, ok := aggs[aggHistogram]; ok {
			var h struct {
				Buckets []struct {
					Key      int64    `json:"key"`
					DocCount int64    `json:"doc_count"`
					Split    termsAgg `json:"split"`
				} `json:"buckets"`
			}
			if err := json.Unmarshal(js, &h); err != nil {
				return repository.AggregateResult{}, fmt.Errorf("histogram: %w", err)
			}
			for _, b := range h.Buckets {
				off := b.Key - plan.start
				if off < 0 || off%plan.interval != 0 || off/plan.interval >= int64(plan.n) {
					continue // outside [since, until): cannot hold a document
				}
				bk := &out.Buckets[off/plan.interval]
				bk.Count = b.DocCount
				for _, sb := range b.Split.Buckets {
					bk.Split[sb.value()] = sb.DocCount
				}
			}
		}
	}
	if len(req.Terms) > 0 {
		out.Terms = make(map[string][]repository.TermCount, len(req.Terms))
		for i, t := range req.Terms {
			var ta termsAgg
			if js, ok := aggs[termsAggName(i)]; ok {
				if err := json.Unmarshal(js, &ta); err != nil {
					return repository.AggregateResult{}, fmt.Errorf("terms of %s: %w", t.Field, err)
				}
			}
			counts := make([]repository.TermCount, 0, len(ta.Buckets))
			for _, b := range ta.Buckets {
				counts = append(counts, repository.TermCount{Value: b.value(), Count: b.DocCount})
			}
			out.Terms[t.Field] = counts
		}
	}
	if p := req.Percentiles; p != nil {
		out.Percentiles = map[float64]float64{}
		if js, ok := aggs[aggPercentiles]; ok {
			var pa struct {
				Values []struct {
					Key   float64  `json:"key"`
					Value *float64 `json:"value"` // null when no document has the field
				} `json:"values"`
			}
			if err := json.Unmarshal(js, &pa); err != nil {
				return repository.AggregateResult{}, fmt.Errorf("percentiles of %s: %w", p.Field, err)
			}
			for _, v := range pa.Values {
				if v.Value == nil || math.IsNaN(*v.Value) {
					continue
				}
				out.Percentiles[requestedPercent(p.Percents, v.Key)] = *v.Value
			}
		}
	}
	return out, nil
}

// requestedPercent is the requested percent that the answer's key stands
// for (the same number, barring a round trip through text).
func requestedPercent(asked []float64, key float64) float64 {
	for _, p := range asked {
		if math.Abs(p-key) < 1e-9 {
			return p
		}
	}
	return key
}
