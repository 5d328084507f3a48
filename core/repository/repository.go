package repository

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/kiteflow/kite/core/query"
)

// Size limits of searches and aggregations: a request above them gets
// them, never an error, and never a deep page.
const (
	DefaultSize       = 50
	MaxSize           = 1000
	MaxBuckets        = 500 // date histogram buckets
	DefaultTermsSize  = 10
	MaxTermsSize      = 100
	MaxSplitTermsSize = 20 // the values a histogram is split by
)

// ErrBadCursor is returned for a cursor that this repository did not
// issue for the same search, or that expired.
var ErrBadCursor = errors.New("repository: invalid or expired cursor")

// ErrInvalidRequest wraps errors of a request that cannot be served as
// asked (a field of the wrong type for an aggregation, too many buckets):
// the caller's mistake, not a failure.
var ErrInvalidRequest = errors.New("repository: invalid request")

// ErrUnavailable wraps errors of a search server that is down or
// overloaded: the request may be retried.
var ErrUnavailable = errors.New("repository: search server unavailable")

// Sort orders hits by a schema field.
type Sort struct {
	Field string
	Desc  bool
}

// SearchRequest asks for one page of documents of one kind.
type SearchRequest struct {
	Kind Kind
	// Query is a parsed query (query.Parse with Schema(Kind)); nil matches
	// every document.
	Query query.Node
	// Since and Until bound TimeField(Kind): Since <= t < Until; the zero
	// time leaves a side open.
	Since, Until time.Time
	// Sort is the order of hits, by Keyword, Enum, Number, Date, Duration
	// or Bool fields; empty means TimeField(Kind) descending. Ties are
	// broken by document id, so pages never overlap.
	Sort []Sort
	// Size is the page size: DefaultSize when 0, at most MaxSize.
	Size int
	// Cursor continues a previous search (SearchResult.Cursor); the
	// request must otherwise be the same.
	Cursor string
}

// SearchResult is one page of hits.
type SearchResult struct {
	// Total counts the matching documents (all pages).
	Total int64
	// Hits are the documents' JSON, as indexed (the kind's struct:
	// Execution, TaskRun …).
	Hits []json.RawMessage
	// Cursor fetches the next page; empty when this page is the last.
	Cursor string
}

// DateHistogram counts documents per fixed interval of TimeField(Kind),
// split by the values of a field.
type DateHistogram struct {
	// Interval is the bucket width; the buckets are aligned on multiples
	// of it since the Unix epoch (UTC). A range needing more than
	// MaxBuckets buckets is an error.
	Interval time.Duration
	// SplitBy is a Keyword, Enum or Bool field whose top values
	// (MaxSplitTermsSize) split each bucket's count; empty for none.
	SplitBy string
}

// Terms asks for the most frequent values of a field.
type Terms struct {
	// Field is a Keyword, Enum, Bool or Labels field; on a Labels field the
	// values are "KEY=value" pairs.
	Field string
	Size  int // DefaultTermsSize when 0, at most MaxTermsSize
}

// Percentiles asks for percentiles of a Number or Duration field.
type Percentiles struct {
	Field    string
	Percents []float64 // 0 < p <= 100, such as 50, 95, 99
}

// AggregateRequest asks for statistics over the documents a query matches.
type AggregateRequest struct {
	Kind         Kind
	Query        query.Node
	Since, Until time.Time
	// Histogram, when set, needs Since (Until defaults to now).
	Histogram   *DateHistogram
	Terms       []Terms
	Percentiles *Percentiles
}

// Bucket is one interval of a date histogram.
type Bucket struct {
	Start time.Time
	Count int64
	// Split counts the bucket's documents by value of SplitBy (values
	// with no document left out).
	Split map[string]int64
}

// TermCount is a value and how many documents have it.
type TermCount struct {
	Value string
	Count int64
}

// AggregateResult holds what an AggregateRequest asked for.
type AggregateResult struct {
	// Count is the number of matching documents.
	Count int64
	// Buckets cover [Since, Until) without gaps (empty buckets included),
	// oldest first.
	Buckets []Bucket
	// Terms holds, per requested field, its values, most frequent first
	// (ties by value).
	Terms map[string][]TermCount
	// Percentiles maps each requested percent to the field's value
	// (approximate on Elasticsearch); empty when no document has the field.
	Percentiles map[float64]float64
}

// Repository is the read side.
type Repository interface {
	Search(ctx context.Context, req SearchRequest) (SearchResult, error)
	Aggregate(ctx context.Context, req AggregateRequest) (AggregateResult, error)
}

// Doc is a document to write.
type Doc struct {
	Kind Kind
	ID   string
	// Version orders the writes of one document (the Kafka offset or
	// event sequence it was projected from): a write whose version is not
	// above the stored one is ignored, so redelivery and reordering never
	// regress a document.
	Version int64
	// Source is the document (Execution, TaskRun …); nil with Delete.
	Source any
	// Delete removes the document (at Version: an older write arriving
	// later does not bring it back where the backend keeps tombstones).
	Delete bool
}

// Rejected is a document the repository refused for good (a mapping
// error): retrying it cannot succeed; the indexer sends it to the dead
// letter topic.
type Rejected struct {
	Doc    Doc
	Reason string
}

// Sink is the write side, used by the indexer.
type Sink interface {
	// Write stores docs, in order. It returns when every document is
	// durably stored, ignored as outdated (see Doc.Version) or rejected.
	// An error means nothing can be assumed written: the caller retries
	// the whole batch (writes are idempotent); errors of a search server
	// that is down or overloaded wrap ErrUnavailable.
	Write(ctx context.Context, docs []Doc) ([]Rejected, error)
	// Generation identifies the repository's content: it is created with
	// the indices and changes when they are created anew (deleted, or a
	// new data dir). The indexer resumes from the offsets it committed
	// for the generation, so an empty repository is rebuilt from Kafka.
	Generation(ctx context.Context) (string, error)
}
