// Package storage is Kite's internal storage: where the bytes of files live
// (FILE inputs, task output files, outputs too large for a Kafka record).
// The repository records where a file is; storage holds what it is.
//
// Objects are addressed by URIs of the form
//
//	kite:///<namespace as path>/<flow>/executions/<execution>/...
//
// built by the functions of uri.go, and nowhere else. Implementations are
// siblings: the local filesystem (package storage/local) and Google Cloud
// Storage (storage-gcs). Package storage/storagetest holds the acceptance
// suite every implementation passes.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors. Implementations translate their backend's errors into
// these at the edge, wrapped with what they were doing, so callers test with
// errors.Is.
var (
	// ErrNotFound: no object at that URI.
	ErrNotFound = errors.New("no such file in internal storage")
	// ErrInvalidURI: the URI is not a kite:/// URI Kite builds (wrong
	// scheme, a host, empty or ".." segments, a trailing slash).
	ErrInvalidURI = errors.New("invalid internal storage URI")
	// ErrUnavailable: the backend could not be reached or failed; trying
	// again later may succeed (a task fails with a retryable error).
	ErrUnavailable = errors.New("internal storage unavailable")
)

// Info describes a stored object.
type Info struct {
	URI     string
	Size    int64
	Updated time.Time
}

// Range selects bytes [Offset, Offset+Length) of an object; a Length of
// 0 or less means to the end, so the zero Range is the whole object. A
// negative Offset is an error.
type Range struct {
	Offset int64
	Length int64
}

// Whole is the Range of a whole object.
var Whole = Range{Length: -1}

// Storage stores objects by URI. Every method is safe for concurrent use and
// returns promptly once ctx is done.
//
// Contracts every implementation keeps (storagetest checks them):
//   - Atomic visibility: an object appears whole or not at all. A reader never
//     sees a partial object; a Put that fails or whose ctx ends leaves the
//     previous object (or none) in place and nothing else visible.
//   - Idempotent puts: putting the same URI again replaces the object; the
//     last Put to complete wins. Retrying a Put is always safe.
//   - Streaming: Put reads r to its end without holding the whole object in
//     memory; Get returns a reader the caller must Close.
//   - Not found: Get, Stat and Delete of a missing object return an error
//     wrapping ErrNotFound. DeletePrefix of nothing is not an error.
//   - Prefixes are URI prefixes at a path boundary: List and DeletePrefix of
//     "kite:///ns/flow/executions/abc" concern that folder and not
//     "…/executions/abcd".
type Storage interface {
	// Put stores the bytes of r under uri and returns how many were written.
	Put(ctx context.Context, uri string, r io.Reader) (int64, error)
	// Get opens the object at uri for reading, the bytes of rng only
	// (Whole for all of them). A range past the end reads what exists.
	Get(ctx context.Context, uri string, rng Range) (io.ReadCloser, error)
	// Stat describes the object at uri.
	Stat(ctx context.Context, uri string) (Info, error)
	// List returns the objects under prefix (a folder URI, with or without
	// its trailing slash), at any depth, sorted by URI.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes the object at uri.
	Delete(ctx context.Context, uri string) error
	// DeletePrefix removes every object under prefix and returns how many.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
	// Close releases the storage's resources. It is idempotent.
	Close() error
}
