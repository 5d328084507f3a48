package elasticsearch

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// pitKeepAlive is how long a point in time lives after each page: a
// cursor unused for longer is expired (repository.ErrBadCursor).
const pitKeepAlive = "5m"

// cursor is what a SearchResult.Cursor encodes: the point in time the
// pages read, the sort values of the page's last hit, and a hash of the
// request it continues.
type cursor struct {
	PIT   string            `json:"p"`
	After []json.RawMessage `json:"a"`
	Hash  string            `json:"h"`
}

func (c cursor) encode() string {
	js, _ := json.Marshal(c) // strings and raw JSON always encode
	return base64.RawURLEncoding.EncodeToString(js)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	js, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(js, &c) != nil || c.PIT == "" || len(c.After) == 0 {
		return cursor{}, fmt.Errorf("%w: cannot decode it", repository.ErrBadCursor)
	}
	return c, nil
}

// searchResponse is the part of a search answer Kite reads.
type searchResponse struct {
	PitID  string `json:"pit_id"`
	Shards struct {
		Failed   int          `json:"failed"`
		Failures []shardError `json:"failures"`
	} `json:"_shards"`
	Hits struct {
		Total struct {
			Value int64 `json:"value"`
		} `json:"total"`
		Hits []struct {
			Source json.RawMessage   `json:"_source"`
			Sort   []json.RawMessage `json:"sort"`
		} `json:"hits"`
	} `json:"hits"`
	Aggregations json.RawMessage `json:"aggregations"`
}

// partial is an error when some shards failed: the answer is incomplete.
func (r *searchResponse) partial() error {
	if r.Shards.Failed == 0 {
		return nil
	}
	reason := "unknown reason"
	if len(r.Shards.Failures) > 0 && r.Shards.Failures[0].Reason != nil {
		reason = r.Shards.Failures[0].Reason.Type + ": " + r.Shards.Failures[0].Reason.Reason
	}
	return fmt.Errorf("%w: %d shards failed: %s", repository.ErrUnavailable, r.Shards.Failed, reason)
}

// Search returns one page of documents, sorted as asked with ties broken
// by document id. Pages read one point in time (a snapshot kept 5 minutes
// after each page), so a walk through every page sees each matching
// document exactly once, whatever is written meanwhile.
func (s *Store) Search(ctx context.Context, req repository.SearchRequest) (repository.SearchResult, error) {
	schema := repository.Schema(req.Kind)
	if schema == nil {
		return repository.SearchResult{}, fmt.Errorf("%w: unknown kind %q", repository.ErrInvalidRequest, req.Kind)
	}
	q, err := filter(req.Kind, req.Query, req.Since, req.Until)
	if err != nil {
		return repository.SearchResult{}, err
	}
	sorts, err := sortClause(req.Kind, schema, req.Sort)
	if err != nil {
		return repository.SearchResult{}, err
	}
	size := req.Size
	if size <= 0 {
		size = repository.DefaultSize
	}
	size = min(size, repository.MaxSize)
	hash := requestHash(req)

	var cur cursor
	if req.Cursor != "" {
		if cur, err = decodeCursor(req.Cursor); err != nil {
			return repository.SearchResult{}, err
		}
		if cur.Hash != hash {
			return repository.SearchResult{}, fmt.Errorf("%w: it continues another search", repository.ErrBadCursor)
		}
	} else {
		pit, err := s.openPIT(ctx, req.Kind)
		if err != nil || pit == "" {
			return repository.SearchResult{}, err // pit == "": no index yet, nothing found
		}
		cur = cursor{PIT: pit, Hash: hash}
	}

	body := dsl{
		"size":             size + 1, // one more tells whether another page follows
		"query":            q,
		"sort":             sorts,
		"track_total_hits": true,
		"pit":              dsl{"id": cur.PIT, "keep_alive": pitKeepAlive},
	}
	if cur.After != nil {
		body["search_after"] = cur.After
	}
	out, pit, err := s.page(ctx, req.Kind, body, size, cur)
	switch {
	case err != nil && req.Cursor == "":
		s.closePIT(ctx, cur.PIT) // opened for nothing; a cursor's stays for a retry
	case err == nil && out.Cursor == "":
		s.closePIT(ctx, pit) // the last page
	}
	return out, err
}

// page runs one search of a walk and returns its hits, the cursor of the
// next page if there is one, and the point in time's latest id.
func (s *Store) page(ctx context.Context, k repository.Kind, body dsl, size int, cur cursor) (repository.SearchResult, string, error) {
	status, data, err := s.call(ctx, http.MethodPost, "/_search", nil, body)
	if err != nil {
		return repository.SearchResult{}, "", fmt.Errorf("searching %s: %w", k, err)
	}
	if status != http.StatusOK {
		err := apiError(status, data)
		if cur.After != nil && (status == http.StatusNotFound || status == http.StatusBadRequest) {
			// The first page of the same search went through: the point
			// in time expired (404) or the cursor was tampered with.
			return repository.SearchResult{}, "", fmt.Errorf("%w: %w", repository.ErrBadCursor, err)
		}
		return repository.SearchResult{}, "", searchError(k, status, err)
	}
	var res searchResponse
	if err := json.Unmarshal(data, &res); err != nil {
		return repository.SearchResult{}, "", fmt.Errorf("decoding the search of %s: %w", k, err)
	}
	if err := res.partial(); err != nil {
		return repository.SearchResult{}, "", fmt.Errorf("searching %s: %w", k, err)
	}
	pit := cur.PIT
	if res.PitID != "" {
		pit = res.PitID // the id may change from page to page
	}
	out := repository.SearchResult{Total: res.Hits.Total.Value, Hits: make([]json.RawMessage, 0, min(size, len(res.Hits.Hits)))}
	hits := res.Hits.Hits
	if len(hits) > size {
		hits = hits[:size]
		out.Cursor = cursor{PIT: pit, After: hits[size-1].Sort, Hash: cur.Hash}.encode()
	}
	for _, h := range hits {
		out.Hits = append(out.Hits, h.Source)
	}
	return out, pit, nil
}

// searchError wraps an error answer: a 400 is the request's fault
// (repository.ErrInvalidRequest); 429 and 5xx wrap ErrUnavailable.
func searchError(k repository.Kind, status int, err error) error {
	if status == http.StatusBadRequest {
		return fmt.Errorf("searching %s: %w: %w", k, repository.ErrInvalidRequest, err)
	}
	return fmt.Errorf("searching %s: %w", k, err)
}

// filter is the query of a search or aggregation: the parsed query and the
// time range on the kind's time field.
func filter(k repository.Kind, n query.Node, since, until time.Time) (dsl, error) {
	var clauses []any
	if n != nil {
		q, err := compile(n)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", repository.ErrInvalidRequest, err)
		}
		clauses = append(clauses, q)
	}
	r := dsl{}
	if !since.IsZero() {
		r["gte"] = formatTime(since)
	}
	if !until.IsZero() {
		r["lt"] = formatTime(until)
	}
	if len(r) > 0 {
		clauses = append(clauses, dsl{"range": dsl{repository.TimeField(k): r}})
	}
	if len(clauses) == 0 {
		return dsl{"match_all": dsl{}}, nil
	}
	return dsl{"bool": dsl{"filter": clauses}}, nil
}

// sortClause is the requested order (default: the time field, newest
// first), then the document id.
func sortClause(k repository.Kind, schema *query.Schema, sorts []repository.Sort) ([]any, error) {
	if len(sorts) == 0 {
		sorts = []repository.Sort{{Field: repository.TimeField(k), Desc: true}}
	}
	out := make([]any, 0, len(sorts)+1)
	for _, so := range sorts {
		f := schema.Field(so.Field)
		if f == nil || f.Type == query.Text || f.Type == query.Labels {
			return nil, fmt.Errorf("%w: cannot sort %s by %q: sortable fields are %s", repository.ErrInvalidRequest, k, so.Field, strings.Join(sortable(schema), ", "))
		}
		order := "asc"
		if so.Desc {
			order = "desc"
		}
		out = append(out, dsl{f.Name: dsl{"order": order}})
	}
	return append(out, dsl{docIDField: dsl{"order": "asc"}}), nil
}

func sortable(schema *query.Schema) []string {
	var out []string
	for _, f := range schema.Fields {
		if f.Type != query.Text && f.Type != query.Labels {
			out = append(out, f.Name)
		}
	}
	return out
}

// openPIT opens a point in time over a kind's indices; "" when there is
// no index to search yet (no log or event written).
func (s *Store) openPIT(ctx context.Context, k repository.Kind) (string, error) {
	path := "/" + s.searchIndex(k) + "/_pit"
	if s.cfg.Flavor == FlavorOpenSearch {
		path = "/" + s.searchIndex(k) + "/_search/point_in_time"
	}
	status, data, err := s.call(ctx, http.MethodPost, path, url.Values{"keep_alive": {pitKeepAlive}}, nil)
	if err != nil {
		return "", fmt.Errorf("searching %s: opening a point in time: %w", k, err)
	}
	if status != http.StatusOK {
		apiErr := apiError(status, data)
		// A pattern that matches no index: Elasticsearch says not found,
		// OpenSearch 2.19 fails with "invalid id: [null]".
		if none, err := s.noIndex(ctx, k); err == nil && none {
			return "", nil
		}
		return "", searchError(k, status, fmt.Errorf("opening a point in time: %w", apiErr))
	}
	var res struct {
		ID    string `json:"id"`     // Elasticsearch
		PitID string `json:"pit_id"` // OpenSearch
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return "", fmt.Errorf("searching %s: decoding the point in time: %w", k, err)
	}
	return res.ID + res.PitID, nil
}

// noIndex tells whether no index of kind k exists.
func (s *Store) noIndex(ctx context.Context, k repository.Kind) (bool, error) {
	names, err := s.indices(ctx, s.searchIndex(k))
	return len(names) == 0, err
}

// closePIT releases a point in time, best effort: it expires anyway.
func (s *Store) closePIT(ctx context.Context, pit string) {
	path, body := "/_pit", any(dsl{"id": pit})
	if s.cfg.Flavor == FlavorOpenSearch {
		path, body = "/_search/point_in_time", dsl{"pit_id": []string{pit}}
	}
	status, data, err := s.call(context.WithoutCancel(ctx), http.MethodDelete, path, nil, body)
	if err == nil && status != http.StatusOK {
		err = apiError(status, data)
	}
	if err != nil {
		s.log.Debug("closing a point in time", zap.Error(err))
	}
}

// requestHash identifies a search but for its cursor and size. The bounds
// of date ranges are left out: a service that parses now-1d again for the
// next page gets a slightly later bound, which continues the same walk.
func requestHash(req repository.SearchRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%d|%d|", req.Kind, unixNano(req.Since), unixNano(req.Until))
	for _, so := range req.Sort {
		fmt.Fprintf(&b, "%q:%t,", so.Field, so.Desc)
	}
	b.WriteByte('|')
	fingerprint(&b, req.Query)
	sum := sha256.Sum256([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fingerprint writes a canonical form of a query, without range dates.
func fingerprint(b *strings.Builder, n query.Node) {
	name := func(f *query.Field) string {
		if f == nil {
			return ""
		}
		return f.Name
	}
	switch n := n.(type) {
	case nil:
		b.WriteString("*")
	case *query.And:
		b.WriteString("and(")
		for _, t := range n.Terms {
			fingerprint(b, t)
			b.WriteByte(',')
		}
		b.WriteByte(')')
	case *query.Or:
		b.WriteString("or(")
		for _, t := range n.Terms {
			fingerprint(b, t)
			b.WriteByte(',')
		}
		b.WriteByte(')')
	case *query.Not:
		b.WriteString("not(")
		fingerprint(b, n.X)
		b.WriteByte(')')
	case *query.Match:
		fmt.Fprintf(b, "match(%q,%q,%d,%q,%v,%d,%t)", name(n.Field), n.Label, n.Kind, n.Text, n.Number, n.Time.UnixNano(), n.Bool)
	case *query.Exists:
		fmt.Fprintf(b, "exists(%q,%q)", name(n.Field), n.Label)
	case *query.Range:
		fmt.Fprintf(b, "range(%q,%d", name(n.Field), n.Op)
		if n.Field == nil || n.Field.Type != query.Date {
			fmt.Fprintf(b, ",%v", n.Number)
		}
		b.WriteByte(')')
	case *query.FullText:
		fmt.Fprintf(b, "text(%d,%q", n.Kind, n.Text)
		for _, f := range n.Fields {
			fmt.Fprintf(b, ",%q", name(f))
		}
		b.WriteByte(')')
	default:
		fmt.Fprintf(b, "%T", n)
	}
}

// indices lists the names of the indices a pattern matches.
func (s *Store) indices(ctx context.Context, pattern string) ([]string, error) {
	q := url.Values{"format": {"json"}, "h": {"index"}, "expand_wildcards": {"all"}}
	status, data, err := s.call(ctx, http.MethodGet, "/_cat/indices/"+pattern, q, nil)
	if err != nil {
		return nil, fmt.Errorf("listing the indices %s: %w", pattern, err)
	}
	if status == http.StatusNotFound {
		return nil, nil
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("listing the indices %s: %w", pattern, apiError(status, data))
	}
	var rows []struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("decoding the indices %s: %w", pattern, err)
	}
	names := make([]string, 0, len(rows))
	for _, r := range rows {
		names = append(names, r.Index)
	}
	return names, nil
}
