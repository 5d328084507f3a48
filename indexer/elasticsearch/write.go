package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esutil"
	"go.uber.org/zap"

	"github.com/kiteflow/kite/core/repository"
)

const (
	// maxIDBytes is the servers' limit on a document id; a longer one
	// fails the whole bulk request, so it is rejected beforehand.
	maxIDBytes = 512
	// maxDocBytes bounds a document: a bigger one cannot fit in a request
	// under the servers' default http.max_content_length (100 MB).
	maxDocBytes    = 50 << 20
	firstRetryWait = 100 * time.Millisecond
	maxRetryWait   = 5 * time.Second
)

// bulkItem is a document ready for the bulk API.
type bulkItem struct {
	index   string
	action  string // index or delete
	id      string
	version int64
	body    []byte // nil for delete
	expired bool   // a log or event older than the retention: not written
}

// verdict is what became of one document in one bulk round.
type verdict int

const (
	unknown   verdict = iota // no answer (yet): never taken as written
	stored                   // indexed or deleted
	outdated                 // a version as new or newer is stored: ignored
	rejected                 // refused for good (mapping error)
	transient                // the cluster could not take it now: retry
	failed                   // refused for a reason retrying here cannot fix (permissions)
)

// itemResult is a document's verdict with the reason.
type itemResult struct {
	verdict verdict
	reason  string
	err     error
}

// Write stores docs with the bulk API, external versions making replays and
// reorderings harmless: a 409 version conflict is an outdated document,
// ignored. Documents the cluster refuses with 400 (mapping or parse errors)
// are returned as rejected, as are documents that cannot be sent (unknown
// kind, no id, a log or event without a time). Logs and events of a day
// past the retention are ignored. Documents the cluster could not take
// (429, 5xx, no connection) are sent again with backoff until ctx ends or
// Config.RetryTimeout passes; Write then fails with an error wrapping
// repository.ErrUnavailable. Write does not wait for a refresh: see
// Refresh.
func (s *Store) Write(ctx context.Context, docs []repository.Doc) ([]repository.Rejected, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	items := make([]bulkItem, len(docs))
	reasons := make([]string, len(docs)) // rejections, by document
	todo := make([]int, 0, len(docs))
	for i, d := range docs {
		it, reason := s.prepare(d)
		if reason != "" {
			reasons[i] = reason
			continue
		}
		items[i] = it
		if !it.expired {
			todo = append(todo, i)
		}
	}

	deadline := time.Now().Add(s.cfg.RetryTimeout)
	wait := firstRetryWait
	for len(todo) > 0 {
		results := s.bulk(ctx, items, todo)
		var again []int
		var lastErr error
		for _, i := range todo {
			r := results[i]
			switch r.verdict {
			case stored, outdated:
			case rejected:
				reasons[i] = r.reason
			case failed:
				return nil, fmt.Errorf("indexing %s %s: %w", docs[i].Kind, docs[i].ID, r.err)
			default: // transient, unknown
				again = append(again, i)
				if r.err != nil {
					lastErr = r.err
				}
			}
		}
		todo = again
		if len(todo) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("indexing %d of %d documents: %w", len(todo), len(docs), err)
		}
		if lastErr == nil {
			lastErr = errors.New("no answer for the document")
		}
		if time.Now().Add(wait).After(deadline) {
			if !errors.Is(lastErr, repository.ErrUnavailable) {
				lastErr = fmt.Errorf("%w: %w", repository.ErrUnavailable, lastErr)
			}
			return nil, fmt.Errorf("indexing %d of %d documents, still failing after %s: %w", len(todo), len(docs), s.cfg.RetryTimeout, lastErr)
		}
		s.log.Warn("bulk write incomplete, retrying", zap.Int("pending", len(todo)), zap.Duration("backoff", wait), zap.Error(lastErr))
		t := time.NewTimer(wait/2 + rand.N(wait/2+1)) // jitter spreads the retries of several indexers
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("indexing %d of %d documents: %w", len(todo), len(docs), ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, maxRetryWait)
	}

	var out []repository.Rejected
	for i, r := range reasons {
		if r != "" {
			out = append(out, repository.Rejected{Doc: docs[i], Reason: r})
		}
	}
	return out, nil
}

// bulkMetaBytes is about what a bulk request adds to a document: its action
// line (index, id, version) and newlines.
const bulkMetaBytes = 160

// bulk sends the documents items[i] for i in todo, with a bulk indexer of
// its own, and returns their verdicts (by document index).
func (s *Store) bulk(ctx context.Context, items []bulkItem, todo []int) []itemResult {
	results := make([]itemResult, len(items))
	// Each worker allocates a buffer of FlushBytes up front: sized to the
	// batch, a small Write does not allocate (and clear) megabytes.
	need := 0
	for _, i := range todo {
		need += len(items[i].body) + bulkMetaBytes
	}
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		NumWorkers:    min(s.cfg.BulkWorkers, len(todo)),
		FlushBytes:    min(s.cfg.FlushBytes, need),
		FlushInterval: s.cfg.FlushInterval,
		Client:        s.es,
		// Requests end with the Write's context (the workers' own is
		// context.Background).
		OnFlushStart: func(context.Context) context.Context { return ctx },
	})
	if err != nil {
		for _, i := range todo {
			results[i] = itemResult{verdict: failed, err: fmt.Errorf("starting a bulk indexer: %w", err)}
		}
		return results
	}
	for _, i := range todo {
		it := items[i]
		bit := esutil.BulkIndexerItem{
			Index:       it.index,
			Action:      it.action,
			DocumentID:  it.id,
			Version:     &it.version,
			VersionType: "external",
			OnSuccess: func(_ context.Context, _ esutil.BulkIndexerItem, _ esutil.BulkIndexerResponseItem) {
				results[i] = itemResult{verdict: stored}
			},
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				results[i] = judge(it.action, res, err)
			},
		}
		if it.body != nil {
			bit.Body = bytes.NewReader(it.body)
		}
		if err := bi.Add(ctx, bit); err != nil {
			results[i] = itemResult{verdict: transient, err: err}
			break // ctx ended: what was added is still sent and judged
		}
	}
	// Close sends what is queued and waits for every answer, even when ctx
	// ended (the requests then fail fast), so that no callback runs after
	// bulk returns.
	_ = bi.Close(context.WithoutCancel(ctx))
	return results
}

// judge tells what a failed bulk item means. err is set when the whole
// request failed (no connection, an error status): the item is retried.
func judge(action string, res esutil.BulkIndexerResponseItem, err error) itemResult {
	if err != nil {
		return itemResult{verdict: transient, err: fmt.Errorf("%w: %w", repository.ErrUnavailable, err)}
	}
	reason := res.Error.Type + ": " + res.Error.Reason
	if res.Error.Cause.Reason != "" {
		reason += ": " + res.Error.Cause.Reason
	}
	e := &httpError{Status: res.Status, Type: res.Error.Type, Reason: res.Error.Reason}
	switch {
	case res.Status == http.StatusConflict:
		return itemResult{verdict: outdated}
	case res.Status == http.StatusNotFound && action == "delete" && res.Error.Type == "":
		return itemResult{verdict: stored} // nothing to delete: the tombstone is written all the same
	case res.Status == http.StatusBadRequest:
		return itemResult{verdict: rejected, reason: reason}
	case res.Status == http.StatusTooManyRequests || res.Status >= 500:
		return itemResult{verdict: transient, err: e}
	default:
		return itemResult{verdict: failed, err: e}
	}
}

// prepare checks a document and encodes it for the bulk API; a non-empty
// reason rejects it.
func (s *Store) prepare(d repository.Doc) (bulkItem, string) {
	switch {
	case repository.Schema(d.Kind) == nil:
		return bulkItem{}, fmt.Sprintf("unknown kind %q", d.Kind)
	case d.ID == "":
		return bulkItem{}, "the document has no id"
	case len(d.ID) > maxIDBytes:
		return bulkItem{}, fmt.Sprintf("the id is %d bytes long, at most %d allowed", len(d.ID), maxIDBytes)
	case d.Version < 0:
		return bulkItem{}, fmt.Sprintf("the version %d is negative", d.Version)
	case !d.Delete && d.Source == nil:
		return bulkItem{}, "the document has no source"
	}
	it := bulkItem{index: s.index(d.Kind), action: "index", id: d.ID, version: d.Version}
	var src []byte
	if d.Source != nil {
		var err error
		if src, err = encodeSource(d.Source); err != nil {
			return bulkItem{}, err.Error()
		}
	}
	if daily(d.Kind) {
		if src == nil {
			return bulkItem{}, fmt.Sprintf("deleting a document of %s needs its source, whose time names its daily index", d.Kind)
		}
		t, err := docTime(d.Source, src)
		if err != nil {
			return bulkItem{}, err.Error()
		}
		it.index = s.dailyIndex(d.Kind, t)
		// A replay of old logs would create daily indices that retention
		// deletes again within the hour: skip them as already expired.
		it.expired = s.expired(t, s.now())
	}
	if d.Delete {
		it.action = "delete"
		return it, ""
	}
	if len(src) > maxDocBytes {
		return bulkItem{}, fmt.Sprintf("the document is %d bytes long, at most %d allowed", len(src), maxDocBytes)
	}
	it.body = withDocID(src, d.ID)
	return it, ""
}

// encodeSource returns a document's JSON object.
func encodeSource(src any) ([]byte, error) {
	var b []byte
	raw := true
	switch v := src.(type) {
	case json.RawMessage:
		b = v
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(src); err != nil {
			return nil, fmt.Errorf("encoding the document: %w", err)
		}
		raw = false
	}
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' || (raw && !json.Valid(b)) {
		return nil, errors.New("the document is not a JSON object")
	}
	return b, nil
}

// withDocID adds the doc_id field to a JSON object.
func withDocID(obj []byte, id string) []byte {
	q, _ := json.Marshal(id) // a string always encodes
	out := make([]byte, 0, len(obj)+len(docIDField)+len(q)+4)
	out = append(out, `{"`+docIDField+`":`...)
	out = append(out, q...)
	rest := bytes.TrimSpace(obj[1:])
	if len(rest) > 1 { // not just "}"
		out = append(out, ',')
	}
	return append(out, rest...)
}

// docTime is the time of a log or event, which chooses its daily index.
func docTime(src any, js []byte) (time.Time, error) {
	var t time.Time
	switch v := src.(type) {
	case repository.Log:
		t = v.Time
	case *repository.Log:
		t = v.Time
	case repository.Event:
		t = v.Time
	case *repository.Event:
		t = v.Time
	default:
		var doc struct {
			Time json.RawMessage `json:"time"`
		}
		if err := json.Unmarshal(js, &doc); err != nil || len(doc.Time) == 0 || string(doc.Time) == "null" {
			return time.Time{}, errors.New("the document has no time, which names its daily index")
		}
		if err := json.Unmarshal(doc.Time, &t); err != nil {
			return time.Time{}, fmt.Errorf("time: %s is not an RFC 3339 time: %w", doc.Time, err)
		}
	}
	if t.IsZero() {
		return time.Time{}, errors.New("the document has no time, which names its daily index")
	}
	return t, nil
}
