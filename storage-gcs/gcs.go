package storagegcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	gcs "cloud.google.com/go/storage"
	gax "github.com/googleapis/gax-go/v2"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/kiteflow/kite/core/storage"
)

// Config is where Kite keeps its files in Google Cloud Storage.
type Config struct {
	// Bucket holds the objects; required. It must exist: Kite does not
	// create it.
	Bucket string `yaml:"bucket"`
	// Prefix is the folder of the bucket that Kite's objects live under:
	// kite:///a/b is gs://<bucket>/<prefix>/a/b. Default empty, the bucket's
	// root. Two Kite installations can share a bucket with two prefixes.
	// No leading slash; a trailing one is ignored.
	Prefix string `yaml:"prefix"`
	// CredentialsFile is a JSON key of a service account (or authorized
	// user credentials) to authenticate with. Default: Application Default
	// Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, or the
	// metadata server of GKE / Compute Engine, i.e. workload identity).
	// Credential types that make the library fetch URLs or run programs
	// named in the file (external_account, impersonated_service_account)
	// are only taken through Application Default Credentials.
	CredentialsFile string `yaml:"credentials_file"`
	// Endpoint replaces the JSON API's base URL,
	// https://storage.googleapis.com/storage/v1/ (a bare host like
	// http://127.0.0.1:4443 gets /storage/v1/ added). With an http://
	// endpoint requests carry no credentials: it is an emulator, or a proxy
	// that authenticates itself, and tokens are not sent in clear text.
	// When the environment variable STORAGE_EMULATOR_HOST is set, the client
	// library talks to that emulator without credentials (Endpoint, when
	// also set, still wins).
	Endpoint string `yaml:"endpoint"`
	// ChunkSize is how many bytes of a Put are buffered and sent per
	// request of the resumable upload (and resent when a request fails): a
	// positive multiple of 256 KiB, default 16 MiB. Every Put in progress
	// holds one such buffer; it is the only memory a Put holds.
	ChunkSize int `yaml:"chunk_size"`
	// RetryFor bounds how long one operation (or one chunk of an upload)
	// is retried on transient errors before it fails with
	// storage.ErrUnavailable (a task then fails, and its retry policy
	// applies). Default 1m.
	RetryFor time.Duration `yaml:"retry_for"`
}

const (
	// DefaultChunkSize is the default Config.ChunkSize.
	DefaultChunkSize = 16 << 20
	// chunkUnit: GCS takes resumable upload chunks in multiples of 256 KiB.
	chunkUnit    = 256 << 10
	maxChunkSize = 512 << 20
	// maxPrefixLen leaves room under GCS's 1024 bytes of object name for
	// Kite's paths.
	maxPrefixLen = 256
	// maxObjectName is GCS's limit, in bytes of UTF-8.
	maxObjectName = 1024
	// defaultRetryFor is the default Config.RetryFor.
	defaultRetryFor = time.Minute
	// deleteWorkers is how many deletes DeletePrefix has in flight: GCS
	// has no bulk delete in its JSON API, one request per object.
	deleteWorkers = 16
)

// Defaults returns a Config with every default set; Bucket is still to be
// given.
func Defaults() Config {
	return Config{ChunkSize: DefaultChunkSize, RetryFor: defaultRetryFor}
}

// withDefaults returns c with its unset fields defaulted and its prefix
// without a trailing slash.
func (c Config) withDefaults() Config {
	if c.RetryFor == 0 {
		c.RetryFor = defaultRetryFor
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	c.Endpoint = strings.TrimSpace(c.Endpoint)
	return c
}

// Validate returns every problem of c (with defaults applied) at once, each
// naming its YAML field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if err := checkBucket(c.Bucket); err != nil {
		bad("bucket", "%v", err)
	}
	if err := checkPrefix(c.Prefix); err != nil {
		bad("prefix", "%v", err)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("endpoint", "%q is not an http:// or https:// URL", c.Endpoint)
		case u.RawQuery != "" || u.Fragment != "":
			bad("endpoint", "%q must not have a query or a fragment", c.Endpoint)
		case u.Scheme == "http" && c.CredentialsFile != "":
			bad("credentials_file", "is not used with the plain http endpoint %q (credentials are never sent in clear text): remove one of them", c.Endpoint)
		}
	}
	if c.RetryFor < 0 {
		bad("retry_for", "must not be negative, got %s", c.RetryFor)
	}
	if c.ChunkSize < chunkUnit || c.ChunkSize > maxChunkSize || c.ChunkSize%chunkUnit != 0 {
		bad("chunk_size", "must be a multiple of 262144 (256 KiB) between 262144 and %d, got %d", maxChunkSize, c.ChunkSize)
	}
	return errors.Join(errs...)
}

// checkBucket applies GCS's bucket naming rules
// (https://cloud.google.com/storage/docs/buckets#naming).
func checkBucket(b string) error {
	switch {
	case b == "":
		return errors.New("is required: the name of an existing bucket")
	case strings.Contains(b, "://") || strings.Contains(b, "/"):
		return fmt.Errorf("%q: give the bucket's name alone, without gs:// or a path (a folder goes in prefix)", b)
	}
	maxLen := 63
	if strings.Contains(b, ".") {
		maxLen = 222
	}
	if len(b) < 3 || len(b) > maxLen {
		return fmt.Errorf("%q is %d characters long: a bucket name has 3 to 63 (222 with dots, 63 between two dots)", b, len(b))
	}
	for _, r := range b {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' && r != '.' {
			return fmt.Errorf("%q holds %q: a bucket name has only lowercase letters, digits, '-', '_' and '.'", b, r)
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return fmt.Errorf("%q must start and end with a letter or a digit", b)
	}
	for part := range strings.SplitSeq(b, ".") {
		if part == "" || len(part) > 63 {
			return fmt.Errorf("%q: each dot-separated part of a bucket name has 1 to 63 characters", b)
		}
	}
	if ip := net.ParseIP(b); ip != nil {
		return fmt.Errorf("%q: a bucket name cannot be an IP address", b)
	}
	if strings.HasPrefix(b, "goog") || strings.Contains(b, "google") || strings.Contains(b, "g00gle") {
		return fmt.Errorf("%q: a bucket name cannot start with \"goog\" or contain \"google\"", b)
	}
	return nil
}

func isAlnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }

// checkPrefix: a folder of the bucket, written like Kite's own paths so
// that <prefix>/<path> stays inside it.
func checkPrefix(p string) error {
	switch {
	case p == "":
		return nil
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q must not start with a slash (object names are relative to the bucket)", p)
	case len(p) > maxPrefixLen:
		return fmt.Errorf("is %d bytes long, at most %d allowed", len(p), maxPrefixLen)
	case !utf8.ValidString(p):
		return fmt.Errorf("%q is not valid UTF-8", p)
	case strings.ContainsAny(p, "\r\n\\\x00"):
		return fmt.Errorf("%q must not hold a CR, LF, backslash or NUL", p)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%q has an empty, \".\" or \"..\" segment", p)
		}
	}
	return nil
}

// endpointURL is the JSON API base URL of an Endpoint: a bare host gets
// the API's path.
func endpointURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Path == "" || u.Path == "/" {
		return strings.TrimSuffix(endpoint, "/") + "/storage/v1/"
	}
	return endpoint
}

// Store is internal storage in a GCS bucket. It is safe for concurrent use.
type Store struct {
	client *gcs.Client
	bucket *gcs.BucketHandle
	name   string // the bucket's, for messages
	prefix string // "" or the prefix with a trailing slash
	chunk  int
	retry  time.Duration // how long an operation is retried

	closeOnce sync.Once
	closeErr  error
}

var _ storage.Storage = (*Store)(nil)

// New returns a Store on cfg's bucket. It checks cfg and reads the
// credentials file but does not reach GCS: missing credentials or a missing
// bucket show at the first operation. opts go to the client after Kite's
// own (an HTTP client, telemetry options).
func New(ctx context.Context, cfg Config, opts ...option.ClientOption) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gcs storage config: %w", err)
	}
	var copts []option.ClientOption
	switch {
	case os.Getenv("STORAGE_EMULATOR_HOST") != "":
		// The client library itself talks to the emulator without
		// authentication (cloud.google.com/go/storage NewClient).
	case strings.HasPrefix(cfg.Endpoint, "http://"):
		copts = append(copts, option.WithoutAuthentication())
	case cfg.CredentialsFile != "":
		typ, err := credentialsType(cfg.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("gcs storage config: credentials_file: %w", err)
		}
		copts = append(copts, option.WithAuthCredentialsFile(typ, cfg.CredentialsFile))
	}
	if cfg.Endpoint != "" {
		copts = append(copts, option.WithEndpoint(endpointURL(cfg.Endpoint)))
	}
	client, err := gcs.NewClient(ctx, append(copts, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("creating GCS client for bucket %s: %w", cfg.Bucket, err)
	}
	// The library's default policy, RetryIdempotent, retries reads, stats
	// and lists, but an upload or a delete only under a generation
	// precondition, which Kite cannot give: a Put replaces whatever is
	// there. RetryAlways retries them too, and that is safe because Kite's
	// puts are idempotent by contract (storage.Storage: retrying a Put is
	// always safe, the last Put to complete wins): a repeated upload
	// request writes the same object again, and with chunked uploads it
	// only resends the chunk the client still holds. For Delete, a retry
	// whose first attempt succeeded unseen reports ErrNotFound, which
	// callers that delete already take as done (DeletePrefix ignores it).
	// Retries stop after cfg.RetryFor (or when ctx ends) with ErrUnavailable.
	client.SetRetry(
		gcs.WithPolicy(gcs.RetryAlways),
		gcs.WithBackoff(gax.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}),
		gcs.WithMaxRetryDuration(cfg.RetryFor),
	)
	s := &Store{
		client: client,
		bucket: client.Bucket(cfg.Bucket),
		name:   cfg.Bucket,
		chunk:  cfg.ChunkSize,
		retry:  cfg.RetryFor,
	}
	if cfg.Prefix != "" {
		s.prefix = cfg.Prefix + "/"
	}
	return s, nil
}

// credentialsType reads the type of a JSON credentials file and accepts the
// types whose loading reaches only Google's token endpoint.
func credentialsType(file string) (option.CredentialsType, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return "", fmt.Errorf("%s is not a JSON credentials file: %w", file, err)
	}
	switch t := option.CredentialsType(head.Type); t {
	case option.ServiceAccount, option.AuthorizedUser:
		return t, nil
	default:
		return "", fmt.Errorf("%s has credentials of type %q: a credentials file must be a service_account key "+
			"or authorized_user credentials; use Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS) for other types",
			file, head.Type)
	}
}

// object is the object name of uri: the prefix, then the URI's path.
func (s *Store) object(uri string) (string, error) {
	p, err := storage.Parse(uri)
	if err != nil {
		return "", err
	}
	name := s.prefix + p
	switch {
	case len(name) > maxObjectName:
		return "", fmt.Errorf("%w %q: its object name is %d bytes long, GCS allows %d", storage.ErrInvalidURI, uri, len(name), maxObjectName)
	case !utf8.ValidString(name) || strings.ContainsAny(name, "\r\n"):
		return "", fmt.Errorf("%w %q: GCS object names are UTF-8 without CR or LF", storage.ErrInvalidURI, uri)
	}
	return name, nil
}

// folder is the object name prefix of the folder URI prefix, with its
// trailing slash ("" for storage.Root in a store without a prefix).
func (s *Store) folder(prefix string) (string, error) {
	p, err := storage.ParsePrefix(prefix)
	if err != nil {
		return "", err
	}
	if p == "" { // storage.Root: every object of the store
		return s.prefix, nil
	}
	return s.prefix + p + "/", nil
}

// uri is the URI of an object name listed under s.prefix; false for
// objects Kite cannot have written (a console's "folder/" placeholder).
func (s *Store) uri(name string) (string, bool) {
	p, ok := strings.CutPrefix(name, s.prefix)
	if !ok {
		return "", false
	}
	uri := storage.URI(p)
	if _, err := storage.Parse(uri); err != nil {
		return "", false
	}
	return uri, true
}

// fail translates an error of the client library for op on uri: a
// missing object is storage.ErrNotFound; a transient failure (network,
// 408, 429, 5xx, a retry budget spent on those) is storage.ErrUnavailable,
// and so is a deadline that ended the operation, as the library's retries
// run until ctx ends: GCS did not answer in time (the error wraps
// context.DeadlineExceeded too). A cancelled ctx is only that. The
// library's error stays wrapped.
func (s *Store) fail(op, uri, name string, err error) error {
	where := fmt.Sprintf("%s %s (gs://%s/%s)", op, uri, s.name, name)
	switch {
	case errors.Is(err, gcs.ErrObjectNotExist):
		return fmt.Errorf("%s: %w", where, storage.ErrNotFound)
	case errors.Is(err, gcs.ErrBucketNotExist):
		return fmt.Errorf("%s: bucket %s does not exist: %w", where, s.name, err)
	case errors.Is(err, context.DeadlineExceeded), gcs.ShouldRetry(err):
		return fmt.Errorf("%s: %w: %w", where, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// Put uploads r to uri in chunks of ChunkSize (a resumable upload). GCS
// makes the object visible only when the upload is finalized by a
// successful Close, so a Put that fails leaves nothing: on any error the
// writer's context is cancelled before Close, which abandons the upload.
func (s *Store) Put(ctx context.Context, uri string, r io.Reader) (int64, error) {
	name, err := s.object(uri)
	if err != nil {
		return 0, err
	}
	// The client retries some upload requests (an upload in one request,
	// the start of a resumable one) until its context ends, whatever
	// RetryFor says: each call into the writer that waits for GCS (a Write
	// with a chunk in flight, the Close) gets a deadline of its own, so
	// that an outage fails the Put with ErrUnavailable instead of hanging.
	// Time spent waiting for r does not count.
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := s.bucket.Object(name).NewWriter(wctx)
	w.ChunkSize = s.chunk
	w.ChunkRetryDeadline = s.retry
	// Kite's files are bytes to Kite; no sniffing of the first 512.
	w.ContentType = "application/octet-stream"
	limit := s.retry + transferTime(s.chunk)
	guard := func(f func() error) error {
		t := time.AfterFunc(limit, func() { cancel(errStalled) })
		defer t.Stop()
		return f()
	}
	src := &sourceReader{r: r}
	buf := make([]byte, copyBuffer)
	var written int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if err = guard(func() error { _, err := w.Write(buf[:n]); return err }); err != nil {
				break
			}
			written += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	if err == nil {
		err = guard(w.Close)
		if err == nil {
			return written, nil
		}
	} else {
		cancel(err) // before Close, which would otherwise finalize what was sent
		_ = w.Close()
	}
	switch {
	case src.err != nil:
		return 0, fmt.Errorf("put %s: reading the content: %w", uri, src.err)
	case errors.Is(context.Cause(wctx), errStalled) && ctx.Err() == nil:
		return 0, fmt.Errorf("put %s (gs://%s/%s): %w: GCS did not answer within %s", uri, s.name, name, storage.ErrUnavailable, limit)
	}
	return 0, s.fail("put", uri, name, err)
}

// copyBuffer is how many bytes of a Put go to the writer per call.
const copyBuffer = 1 << 20

// errStalled ends a Put whose writer waited for GCS longer than allowed.
var errStalled = errors.New("GCS did not answer within the retry deadline")

// transferTime is what sending n bytes may take, at 1 MiB/s at least,
// beyond the retries.
func transferTime(n int) time.Duration {
	return time.Second + time.Duration(n)*time.Second/(1<<20)
}

// sourceReader remembers the error of the content being put, to tell it
// from an error of GCS.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}

// Get opens a range of the object at uri. A range that starts at or past
// the end reads nothing (GCS answers 416, which is not an error here).
func (s *Store) Get(ctx context.Context, uri string, rng storage.Range) (io.ReadCloser, error) {
	name, err := s.object(uri)
	if err != nil {
		return nil, err
	}
	if rng.Offset < 0 {
		return nil, fmt.Errorf("get %s: the range's offset %d is negative", uri, rng.Offset)
	}
	offset, length := rng.Offset, rng.Length
	if length <= 0 { // to the end, as the zero Range is the whole object
		length = -1
	}
	r, err := s.bucket.Object(name).NewRangeReader(ctx, offset, length)
	if err != nil {
		if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.fail("get", uri, name, err)
	}
	return &objectReader{r: r, s: s, uri: uri, name: name}, nil
}

// httpStatus is the HTTP status of a GCS error, 0 if there is none.
func httpStatus(err error) int {
	var e *googleapi.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// objectReader translates the errors of a read cut short.
type objectReader struct {
	r         *gcs.Reader
	s         *Store
	uri, name string
}

func (o *objectReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		err = io.EOF
	default:
		err = o.s.fail("read", o.uri, o.name, err)
	}
	return n, err
}

func (o *objectReader) Close() error { return o.r.Close() }

// Stat describes the object at uri.
func (s *Store) Stat(ctx context.Context, uri string) (storage.Info, error) {
	name, err := s.object(uri)
	if err != nil {
		return storage.Info{}, err
	}
	attrs, err := s.bucket.Object(name).Attrs(ctx)
	if err != nil {
		return storage.Info{}, s.fail("stat", uri, name, err)
	}
	return storage.Info{URI: uri, Size: attrs.Size, Updated: attrs.Updated}, nil
}

// List returns the objects under the folder prefix, sorted by URI.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Info, error) {
	var infos []storage.Info
	err := s.walk(ctx, "list", prefix, func(uri string, attrs *gcs.ObjectAttrs) error {
		infos = append(infos, storage.Info{URI: uri, Size: attrs.Size, Updated: attrs.Updated})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// GCS lists in name order, and stripping the common prefix keeps it;
	// sorted again so as not to depend on it (emulators).
	slices.SortFunc(infos, func(a, b storage.Info) int { return strings.Compare(a.URI, b.URI) })
	return infos, nil
}

// walk calls fn for each object under the folder prefix, in the order GCS
// lists them, one page at a time.
func (s *Store) walk(ctx context.Context, op, prefix string, fn func(uri string, attrs *gcs.ObjectAttrs) error) error {
	folder, err := s.folder(prefix)
	if err != nil {
		return err
	}
	q := &gcs.Query{Prefix: folder}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated"}); err != nil {
		return fmt.Errorf("%s %s: %w", op, prefix, err)
	}
	it := s.bucket.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return s.fail(op, prefix, folder, err)
		}
		uri, ok := s.uri(attrs.Name)
		if !ok {
			continue
		}
		if err := fn(uri, attrs); err != nil {
			return err
		}
	}
}

// Delete removes the object at uri.
func (s *Store) Delete(ctx context.Context, uri string) error {
	name, err := s.object(uri)
	if err != nil {
		return err
	}
	if err := s.bucket.Object(name).Delete(ctx); err != nil {
		return s.fail("delete", uri, name, err)
	}
	return nil
}

// DeletePrefix removes every object under the folder prefix, deleteWorkers
// at a time (GCS deletes one object per request), and returns how many it
// removed. Objects already gone (deleted concurrently) are not counted and
// not an error.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	var deleted atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteWorkers)
	err := s.walk(gctx, "delete", prefix, func(uri string, attrs *gcs.ObjectAttrs) error {
		name := attrs.Name
		g.Go(func() error {
			err := s.bucket.Object(name).Delete(gctx)
			switch {
			case err == nil:
				deleted.Add(1)
			case errors.Is(err, gcs.ErrObjectNotExist):
			default:
				return s.fail("delete", uri, name, err)
			}
			return nil
		})
		return gctx.Err()
	})
	if werr := g.Wait(); werr != nil {
		// The first delete's error; it also ended the listing.
		err = werr
	}
	return int(deleted.Load()), err
}

// Close closes the client. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.client.Close() })
	return s.closeErr
}
