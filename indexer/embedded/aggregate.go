package embedded

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// Aggregate implements repository.Repository, reading one snapshot:
//
//   - the date histogram's buckets are aligned on multiples of the interval
//     since the Unix epoch, from the one holding Since to the one holding
//     the last millisecond before Until (Until defaults to now); each
//     bucket's Split counts the documents of the SplitBy values that are the
//     most frequent over the whole range (MaxSplitTermsSize of them), so
//     that every bucket has the same series;
//   - terms are ordered by count descending, then value ascending; a Bool
//     field's values are "true" and "false";
//   - percentiles are exact, by linear interpolation between the closest
//     ranks (the R-7 / NumPy default method: the p-th percentile of n sorted
//     values v[0..n-1] is v[h] interpolated at h = (n-1)·p/100), over the
//     values read and sorted in Go (8 bytes a document).
//
// Histograms and terms count in Go too (kite_agg, see udf.go), in one pass
// over the index that the query selects.
//
// A request that cannot be served as asked (an unknown field or one of the
// wrong type, a histogram without Since or needing more than MaxBuckets
// buckets, a percent outside (0, 100]) is an error wrapping
// repository.ErrInvalidRequest.
func (x *Index) Aggregate(ctx context.Context, req repository.AggregateRequest) (repository.AggregateResult, error) {
	t, err := x.table(req.Kind)
	if err != nil {
		return repository.AggregateResult{}, err
	}
	if req.Histogram != nil && req.Until.IsZero() {
		req.Until = x.cfg.Now()
	}
	plan, err := t.planAggregate(req)
	if err != nil {
		return repository.AggregateResult{}, fmt.Errorf("%w: %s: %w", repository.ErrInvalidRequest, req.Kind, err)
	}
	where, args, err := t.where(req.Query, req.Since, req.Until)
	if err != nil {
		return repository.AggregateResult{}, err
	}
	var res repository.AggregateResult
	err = x.read(ctx, func(tx *sql.Tx) error {
		a := &aggregator{ctx: ctx, tx: tx, t: t, where: where, args: args}
		return a.aggregate(plan, req, &res)
	})
	if err != nil {
		return repository.AggregateResult{}, fmt.Errorf("aggregating %s: %w", req.Kind, err)
	}
	return res, nil
}

type histPlan struct {
	base, interval int64 // milliseconds: the first bucket's start, the width
	buckets        int
	split          *column // nil for none
}

type termsPlan struct {
	field *query.Field
	size  int
}

type aggPlan struct {
	hist  *histPlan
	terms []termsPlan
	pct   *column
}

// planAggregate checks a request.
func (t *table) planAggregate(req repository.AggregateRequest) (aggPlan, error) {
	var p aggPlan
	if h := req.Histogram; h != nil {
		if req.Since.IsZero() {
			return p, fmt.Errorf("a date histogram needs a start (Since)")
		}
		if !req.Until.After(req.Since) {
			return p, fmt.Errorf("a date histogram needs Until (%s) after Since (%s)",
				req.Until.UTC().Format(time.RFC3339Nano), req.Since.UTC().Format(time.RFC3339Nano))
		}
		iv := h.Interval.Milliseconds()
		if iv <= 0 || h.Interval%time.Millisecond != 0 {
			return p, fmt.Errorf("a date histogram's interval must be a positive whole number of milliseconds, not %s", h.Interval)
		}
		first := floorDiv(req.Since.UnixMilli(), iv)
		last := floorDiv(req.Until.UnixMilli()-1, iv)
		n := last - first + 1
		if n > repository.MaxBuckets {
			return p, fmt.Errorf("a date histogram of %s from %s to %s needs %d buckets, more than %d: use a wider interval",
				h.Interval, req.Since.UTC().Format(time.RFC3339), req.Until.UTC().Format(time.RFC3339), n, repository.MaxBuckets)
		}
		p.hist = &histPlan{base: first * iv, interval: iv, buckets: int(n)}
		if h.SplitBy != "" {
			f := t.schema.Field(h.SplitBy)
			if f == nil {
				return p, fmt.Errorf("cannot split a date histogram by %q: no such field (fields: %s)", h.SplitBy, fieldNames(t.schema))
			}
			switch f.Type {
			case query.Keyword, query.Enum, query.Bool:
			default:
				return p, fmt.Errorf("cannot split a date histogram by %s, a %s field: only keyword, enum and bool fields", h.SplitBy, f.Type)
			}
			p.hist.split = t.byField[f.Name]
		}
	}
	for _, tr := range req.Terms {
		f := t.schema.Field(tr.Field)
		if f == nil {
			return p, fmt.Errorf("no terms of %q: no such field (fields: %s)", tr.Field, fieldNames(t.schema))
		}
		switch f.Type {
		case query.Keyword, query.Enum, query.Bool, query.Labels:
		default:
			return p, fmt.Errorf("no terms of %s, a %s field: only keyword, enum, bool and labels fields", tr.Field, f.Type)
		}
		size := tr.Size
		if size <= 0 {
			size = repository.DefaultTermsSize
		}
		p.terms = append(p.terms, termsPlan{field: f, size: min(size, repository.MaxTermsSize)})
	}
	if pr := req.Percentiles; pr != nil {
		f := t.schema.Field(pr.Field)
		if f == nil {
			return p, fmt.Errorf("no percentiles of %q: no such field (fields: %s)", pr.Field, fieldNames(t.schema))
		}
		if f.Type != query.Number && f.Type != query.Duration {
			return p, fmt.Errorf("no percentiles of %s, a %s field: only number and duration fields", pr.Field, f.Type)
		}
		if len(pr.Percents) == 0 {
			return p, fmt.Errorf("percentiles of %s: no percents asked", pr.Field)
		}
		for _, pc := range pr.Percents {
			if !(pc > 0 && pc <= 100) {
				return p, fmt.Errorf("percentiles of %s: %v is not in (0, 100]", pr.Field, pc)
			}
		}
		p.pct = t.byField[f.Name]
	}
	return p, nil
}

func fieldNames(s *query.Schema) string { return strings.Join(s.Names(), ", ") }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// aggregator runs the queries of one request in its snapshot.
type aggregator struct {
	ctx   context.Context
	tx    *sql.Tx
	t     *table
	where string
	args  []any
}

// aggregate computes what plan asks in one pass over the rows the query
// selects (a SELECT of COUNT(*) and kite_agg calls), plus one over the
// label pairs for terms of labels.
func (a *aggregator) aggregate(plan aggPlan, req repository.AggregateRequest, res *repository.AggregateResult) error {
	t := a.t
	var (
		sel   []string // the SELECT list
		args  []any    // its arguments
		dest  []any    // where its values go
		unreg []func()
	)
	defer func() {
		for _, f := range unreg {
			f()
		}
	}()
	// add selects kite_agg(handle, expr) with acc as its target.
	add := func(acc accumulator, expr string, exprArgs ...any) {
		handle, unregister := register(acc)
		unreg = append(unreg, unregister)
		sel = append(sel, fmt.Sprintf("%s(?, %s)", aggFunc, expr))
		args = append(append(args, handle), exprArgs...)
		dest = append(dest, new(any))
	}
	if plan.hist == nil {
		sel, dest = append(sel, "COUNT(*)"), append(dest, &res.Count)
	}
	var finish []func() error
	if h := plan.hist; h != nil {
		split := "NULL"
		if h.split != nil {
			split = t.col(h.split)
		}
		counts := newGroupCounts()
		// The time range is in a.where: every row's bucket is in [0, buckets).
		add(counts, fmt.Sprintf("(%s - ?) / ?, %s", t.col(t.time), split), h.base, h.interval)
		finish = append(finish, func() error {
			b, err := histogram(h, counts)
			if err != nil {
				return fmt.Errorf("date histogram: %w", err)
			}
			res.Buckets = b
			for _, b := range b { // the buckets cover the range: they count every document
				res.Count += b.Count
			}
			return nil
		})
	}
	for _, tr := range plan.terms {
		if res.Terms == nil {
			res.Terms = map[string][]repository.TermCount{}
		}
		if tr.field.Type == query.Labels {
			finish = append(finish, func() error {
				tc, err := a.labelTerms(tr.size)
				if err != nil {
					return fmt.Errorf("terms of %s: %w", tr.field.Name, err)
				}
				res.Terms[tr.field.Name] = tc
				return nil
			})
			continue
		}
		c := t.byField[tr.field.Name]
		counts := newGroupCounts()
		add(counts, "0, "+t.col(c))
		finish = append(finish, func() error {
			res.Terms[tr.field.Name] = terms(counts, c, tr.size)
			return nil
		})
	}
	if c := plan.pct; c != nil {
		vals := &numbers{}
		add(vals, t.col(c)+", NULL")
		finish = append(finish, func() error {
			res.Percentiles = percentiles(vals.v, req.Percentiles.Percents)
			return nil
		})
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(sel, ", "), t.name, a.where)
	if err := a.tx.QueryRowContext(a.ctx, q, append(args, a.args...)...).Scan(dest...); err != nil {
		return err
	}
	for _, f := range finish {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// histogram makes the buckets of h from the counts by (bucket, split
// value).
func histogram(h *histPlan, counts *groupCounts) ([]repository.Bucket, error) {
	buckets := make([]repository.Bucket, h.buckets)
	for i := range buckets {
		buckets[i].Start = time.UnixMilli(h.base + int64(i)*h.interval).UTC()
		if h.split != nil {
			buckets[i].Split = map[string]int64{}
		}
	}
	totals := map[string]int64{}
	for k, n := range counts.m {
		if k.bucket < 0 || k.bucket >= int64(len(buckets)) {
			return nil, fmt.Errorf("bucket %d out of range", k.bucket) // cannot happen: the range is in the WHERE
		}
		buckets[k.bucket].Count += *n
		if v, ok := termValue(k, h.split); ok {
			totals[v] += *n
		}
	}
	if h.split != nil {
		keep := map[string]bool{}
		for _, tc := range topTerms(totals, repository.MaxSplitTermsSize) {
			keep[tc.Value] = true
		}
		for k, n := range counts.m {
			if v, ok := termValue(k, h.split); ok && keep[v] {
				buckets[k.bucket].Split[v] += *n
			}
		}
	}
	return buckets, nil
}

// termValue is a counted value as a term: a Bool column's 0/1 as "false"
// and "true"; false for NULL.
func termValue(k groupKey, c *column) (string, bool) {
	switch k.kind {
	case 's':
		return k.s, true
	case 'i':
		if c != nil && c.field.Type == query.Bool {
			return strconv.FormatBool(k.i != 0), true
		}
		return strconv.FormatInt(k.i, 10), true
	}
	return "", false
}

// topTerms orders counts by count descending then value ascending, and
// keeps the first n.
func topTerms(counts map[string]int64, n int) []repository.TermCount {
	out := make([]repository.TermCount, 0, len(counts))
	for v, c := range counts {
		out = append(out, repository.TermCount{Value: v, Count: c})
	}
	slices.SortFunc(out, func(a, b repository.TermCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Value, b.Value)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// terms are the size most frequent values of c.
func terms(counts *groupCounts, c *column, size int) []repository.TermCount {
	byValue := make(map[string]int64, len(counts.m))
	for k, n := range counts.m {
		if v, ok := termValue(k, c); ok {
			byValue[v] += *n
		}
	}
	return topTerms(byValue, size)
}

// labelTerms are the size most frequent label pairs of the documents the
// query selects.
func (a *aggregator) labelTerms(size int) ([]repository.TermCount, error) {
	t := a.t
	q := fmt.Sprintf("SELECT %s(?, 0, pair) FROM %s", aggFunc, t.labels)
	if a.where != "1" {
		q += fmt.Sprintf(" WHERE rid IN (SELECT rid FROM %s WHERE %s)", t.name, a.where)
	}
	counts := newGroupCounts()
	handle, unregister := register(counts)
	defer unregister()
	var ignored any
	if err := a.tx.QueryRowContext(a.ctx, q, append([]any{handle}, a.args...)...).Scan(&ignored); err != nil {
		return nil, err
	}
	return terms(counts, nil, size), nil
}

// percentiles interpolates the percents of v; empty for no value.
func percentiles(v []float64, percents []float64) map[float64]float64 {
	out := map[float64]float64{}
	if len(v) == 0 {
		return out
	}
	slices.Sort(v)
	for _, p := range percents {
		h := float64(len(v)-1) * p / 100
		lo := int(math.Floor(h))
		x := v[lo]
		if frac := h - float64(lo); frac > 0 && lo+1 < len(v) {
			x += (v[lo+1] - x) * frac
		}
		out[p] = x
	}
	return out
}
