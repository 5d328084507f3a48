package storagegcs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/storage/storagetest"
	"github.com/kiteflow/kite/storage-gcs/gcstest"
)

// fakeGCS is fake-gcs-server in-process, serving on 127.0.0.1 behind a
// handler that records the chunks of resumable uploads (the requests
// carrying an upload_id, POST from the Go client) and can answer with
// errors.
type fakeGCS struct {
	srv     *fakestorage.Server
	url     string // http://127.0.0.1:PORT
	buckets atomic.Int64

	mu     sync.Mutex
	chunks map[string][]string // object name → Content-Range of each resumable upload request
	fail   int                 // answer this many more requests with failStatus
	failOn string              // only requests whose path has this prefix
}

const failStatus = http.StatusServiceUnavailable

// startFake starts fake-gcs-server for the test, behind f.handler.
func startFake(tb testing.TB) *fakeGCS {
	tb.Helper()
	f := &fakeGCS{chunks: map[string][]string{}}
	gs := gcstest.Start(tb, f.handler)
	f.srv, f.url = gs.Server, gs.URL
	return f
}

func (f *fakeGCS) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		failing := f.fail > 0 && strings.HasPrefix(r.URL.Path, f.failOn)
		if failing {
			f.fail--
		}
		q := r.URL.Query()
		if !failing && q.Get("upload_id") != "" {
			f.chunks[q.Get("name")] = append(f.chunks[q.Get("name")], r.Header.Get("Content-Range"))
		}
		f.mu.Unlock()
		if failing {
			_, _ = io.Copy(io.Discard, r.Body)
			http.Error(w, `{"error": {"code": 503, "message": "injected"}}`, failStatus)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// failNext makes the next n requests whose path starts with pathPrefix
// fail with 503.
func (f *fakeGCS) failNext(n int, pathPrefix string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.failOn = n, pathPrefix
}

// pending is how many injected failures are still to come.
func (f *fakeGCS) pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

func (f *fakeGCS) uploadChunks(object string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.chunks[object]
}

// newBucket creates a bucket of its own for a test.
func (f *fakeGCS) newBucket() string {
	name := fmt.Sprintf("kite-test-%d", f.buckets.Add(1))
	f.srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
	return name
}

// open returns a Store on cfg, completed with the fake's endpoint, closed
// when the test ends.
func (f *fakeGCS) open(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	cfg.Endpoint = f.url
	s, err := New(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestAcceptance(t *testing.T) {
	f := startFake(t)
	storagetest.Run(t, func(tb testing.TB) storage.Storage {
		return f.open(tb, Config{Bucket: f.newBucket(), Prefix: "kite/data"})
	})
}

// TestAcceptanceSmallChunks runs the suite with the smallest chunks, so that
// every object past 256 KiB is a resumable upload of several requests.
func TestAcceptanceSmallChunks(t *testing.T) {
	f := startFake(t)
	storagetest.Run(t, func(tb testing.TB) storage.Storage {
		return f.open(tb, Config{Bucket: f.newBucket(), ChunkSize: chunkUnit})
	})
}

// TestChunkedUpload checks that a Put larger than ChunkSize goes as a
// resumable upload in ChunkSize requests, and that a small one is one
// request.
func TestChunkedUpload(t *testing.T) {
	f := startFake(t)
	bucket := f.newBucket()
	s := f.open(t, Config{Bucket: bucket, Prefix: "p", ChunkSize: chunkUnit})
	const size = 3*chunkUnit + 1000
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	uri := storage.URI("ns/flow/executions/e/big.bin")
	n, err := s.Put(t.Context(), uri, bytes.NewReader(data))
	if err != nil || n != size {
		t.Fatalf("Put = %d, %v, want %d, nil", n, err, size)
	}
	// The Go client streams: it sends full chunks with an unknown total,
	// then the rest with the total.
	want := []string{
		fmt.Sprintf("bytes 0-%d/*", chunkUnit-1),
		fmt.Sprintf("bytes %d-%d/*", chunkUnit, 2*chunkUnit-1),
		fmt.Sprintf("bytes %d-%d/*", 2*chunkUnit, 3*chunkUnit-1),
		fmt.Sprintf("bytes %d-%d/%d", 3*chunkUnit, size-1, size),
	}
	if got := f.uploadChunks("p/ns/flow/executions/e/big.bin"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("upload requests (Content-Range) =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	obj, err := f.srv.GetObject(bucket, "p/ns/flow/executions/e/big.bin")
	if err != nil || !bytes.Equal(obj.Content, data) {
		t.Errorf("the bucket holds %d bytes (%v), want the %d put", len(obj.Content), err, size)
	}

	small := storage.URI("ns/flow/executions/e/small.bin")
	if _, err := s.Put(t.Context(), small, strings.NewReader("small")); err != nil {
		t.Fatal(err)
	}
	if got := f.uploadChunks("p/ns/flow/executions/e/small.bin"); len(got) != 0 {
		t.Errorf("a Put smaller than a chunk sent %d chunk requests, want a single upload request", len(got))
	}
}

// TestRetries checks that transient errors (503) are retried, uploads and
// deletes included, and that what was put arrives whole.
func TestRetries(t *testing.T) {
	f := startFake(t)
	bucket := f.newBucket()
	s := f.open(t, Config{Bucket: bucket, ChunkSize: chunkUnit})
	data := bytes.Repeat([]byte{'r'}, 2*chunkUnit+5)
	uri := storage.URI("ns/flow/executions/e/retried.bin")
	tests := []struct {
		name string
		path string // of the requests that fail
		do   func(t *testing.T)
	}{
		{"upload", "/upload/", func(t *testing.T) {
			if _, err := s.Put(t.Context(), uri, bytes.NewReader(data)); err != nil {
				t.Fatalf("Put: %v", err)
			}
		}},
		{"stat", "/storage/v1/b/", func(t *testing.T) {
			if info, err := s.Stat(t.Context(), uri); err != nil || info.Size != int64(len(data)) {
				t.Fatalf("Stat = %+v, %v", info, err)
			}
		}},
		{"read", "/" + bucket + "/", func(t *testing.T) {
			r, err := s.Get(t.Context(), uri, storage.Whole)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			got, err := io.ReadAll(r)
			_ = r.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Get read %d bytes (%v), want the %d put", len(got), err, len(data))
			}
		}},
		{"list", "/storage/v1/b/", func(t *testing.T) {
			if infos, err := s.List(t.Context(), storage.URI("ns")); err != nil || len(infos) != 1 {
				t.Fatalf("List = %+v, %v", infos, err)
			}
		}},
		{"delete", "/storage/v1/b/", func(t *testing.T) {
			if err := s.Delete(t.Context(), uri); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.failNext(2, tt.path)
			tt.do(t)
			if n := f.pending(); n != 0 {
				t.Errorf("%d of the 2 failures injected were not met: the test does not test retries", n)
			}
		})
	}
}

// TestUnavailable: a server that keeps failing, or nothing listening, is
// ErrUnavailable once the caller's deadline ends the retries.
func TestUnavailable(t *testing.T) {
	f := startFake(t)
	failing := f.open(t, Config{Bucket: f.newBucket()})
	f.failNext(1<<30, "/")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	_ = l.Close()
	unreachable, err := New(t.Context(), Config{Bucket: "kite-nowhere", Endpoint: closed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unreachable.Close() })

	uri := storage.URI("ns/flow/executions/e/x")
	ops := []struct {
		name string
		do   func(ctx context.Context, s *Store) error
	}{
		{"Put", func(ctx context.Context, s *Store) error {
			_, err := s.Put(ctx, uri, strings.NewReader("x"))
			return err
		}},
		{"Get", func(ctx context.Context, s *Store) error {
			r, err := s.Get(ctx, uri, storage.Whole)
			if err == nil {
				_ = r.Close()
			}
			return err
		}},
		{"Stat", func(ctx context.Context, s *Store) error { _, err := s.Stat(ctx, uri); return err }},
		{"List", func(ctx context.Context, s *Store) error { _, err := s.List(ctx, storage.URI("ns")); return err }},
		{"Delete", func(ctx context.Context, s *Store) error { return s.Delete(ctx, uri) }},
		{"DeletePrefix", func(ctx context.Context, s *Store) error {
			_, err := s.DeletePrefix(ctx, storage.URI("ns"))
			return err
		}},
	}
	for _, backend := range []struct {
		name  string
		store *Store
	}{
		{"503", failing},
		{"closed port", unreachable},
	} {
		for _, op := range ops {
			t.Run(backend.name+"/"+op.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
				defer cancel()
				err := op.do(ctx, backend.store)
				t.Logf("%s: %v", op.name, err)
				if !errors.Is(err, storage.ErrUnavailable) {
					t.Errorf("%s: error %v, want one wrapping storage.ErrUnavailable", op.name, err)
				}
				if err != nil && !strings.Contains(err.Error(), "kite:///ns") {
					t.Errorf("%s: error %q does not name the URI", op.name, err)
				}
			})
		}
	}
}

// TestPrefixIsolates: two stores on one bucket with two prefixes see only
// their own objects, and the objects are at <prefix>/<path>.
func TestPrefixIsolates(t *testing.T) {
	f := startFake(t)
	bucket := f.newBucket()
	a := f.open(t, Config{Bucket: bucket, Prefix: "a"})
	b := f.open(t, Config{Bucket: bucket, Prefix: "b/"})
	root := f.open(t, Config{Bucket: bucket})
	uri := storage.URI("ns/flow/executions/e/out.txt")
	if _, err := a.Put(t.Context(), uri, strings.NewReader("from a")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(t.Context(), uri); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("b sees a's object: Stat error %v, want ErrNotFound", err)
	}
	if _, err := b.Put(t.Context(), uri, strings.NewReader("from b")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		s    *Store
		want string
	}{{a, "from a"}, {b, "from b"}} {
		r, err := tt.s.Get(t.Context(), uri, storage.Whole)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		_ = r.Close()
		if string(got) != tt.want {
			t.Errorf("Get = %q, want %q", got, tt.want)
		}
	}
	for _, name := range []string{"a/ns/flow/executions/e/out.txt", "b/ns/flow/executions/e/out.txt"} {
		if _, err := f.srv.GetObject(bucket, name); err != nil {
			t.Errorf("no object %s in the bucket: %v", name, err)
		}
	}
	infos, err := root.List(t.Context(), storage.URI("a"))
	if err != nil || len(infos) != 1 || infos[0].URI != storage.URI("a/ns/flow/executions/e/out.txt") {
		t.Errorf("List of the bucket's root store = %+v, %v", infos, err)
	}
	if n, err := b.DeletePrefix(t.Context(), storage.URI("ns")); err != nil || n != 1 {
		t.Errorf("b.DeletePrefix = %d, %v, want 1, nil", n, err)
	}
	if infos, err := a.List(t.Context(), storage.URI("ns")); err != nil || len(infos) != 1 {
		t.Errorf("after b.DeletePrefix, a.List = %+v, %v, want a's object", infos, err)
	}
}

// TestListSkipsForeignObjects: objects Kite cannot have written (a
// console's folder placeholder) are not listed.
func TestListSkipsForeignObjects(t *testing.T) {
	f := startFake(t)
	bucket := f.newBucket()
	s := f.open(t, Config{Bucket: bucket, Prefix: "kite"})
	for _, name := range []string{"kite/ns/", "kite/ns/a//b", "kite/ns/ok"} {
		f.srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: name}, Content: []byte("x")})
	}
	infos, err := s.List(t.Context(), storage.URI("ns"))
	if err != nil || len(infos) != 1 || infos[0].URI != storage.URI("ns/ok") {
		t.Errorf("List = %+v, %v, want kite:///ns/ok only", infos, err)
	}
}

// TestEmulatorHostEnv: with STORAGE_EMULATOR_HOST set and no endpoint, the
// client library finds the emulator itself, without credentials.
func TestEmulatorHostEnv(t *testing.T) {
	f := startFake(t)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(f.url, "http://"))
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "none.json"))
	s, err := New(t.Context(), Config{Bucket: f.newBucket(), ChunkSize: chunkUnit})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	uri := storage.URI("ns/x")
	data := bytes.Repeat([]byte{'e'}, chunkUnit+1)
	if _, err := s.Put(t.Context(), uri, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := f.uploadChunks("ns/x"); len(got) != 2 {
		t.Errorf("upload requests = %q, want 2 chunks", got)
	}
	r, err := s.Get(t.Context(), uri, storage.Range{Offset: chunkUnit})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil || string(got) != "e" {
		t.Errorf("Get of the last byte = %q, %v", got, err)
	}
}

func TestConfigValidate(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"minimal", Config{Bucket: "kite-files"}, nil},
		{"everything", Config{Bucket: "kite_files.example.com", Prefix: "prod/kite/", CredentialsFile: "/etc/kite/sa.json",
			Endpoint: "https://storage.example.com/storage/v1/", ChunkSize: 8 << 20}, nil},
		{"emulator", Config{Bucket: "abc", Endpoint: "http://127.0.0.1:4443"}, nil},
		{"no bucket", Config{}, []string{"bucket: is required"}},
		{"gs URL", Config{Bucket: "gs://kite"}, []string{"bucket:", "without gs://"}},
		{"uppercase", Config{Bucket: "Kite"}, []string{"bucket:", "lowercase"}},
		{"short", Config{Bucket: "ab"}, []string{"bucket:", "3 to 63"}},
		{"long", Config{Bucket: long}, []string{"bucket:", "3 to 63"}},
		{"long part", Config{Bucket: long + ".com"}, []string{"bucket:", "1 to 63"}},
		{"dots", Config{Bucket: "a..b"}, []string{"bucket:", "1 to 63"}},
		{"dash first", Config{Bucket: "-kite"}, []string{"bucket:", "start and end"}},
		{"IP", Config{Bucket: "192.168.5.4"}, []string{"bucket:", "IP address"}},
		{"goog", Config{Bucket: "goog-kite"}, []string{"bucket:", "goog"}},
		{"google", Config{Bucket: "my-google-kite"}, []string{"bucket:", "google"}},
		{"leading slash", Config{Bucket: "kite", Prefix: "/kite"}, []string{"prefix:", "must not start with a slash"}},
		{"dot dot prefix", Config{Bucket: "kite", Prefix: "a/../b"}, []string{"prefix:", `".."`}},
		{"double slash prefix", Config{Bucket: "kite", Prefix: "a//b"}, []string{"prefix:", "empty"}},
		{"newline prefix", Config{Bucket: "kite", Prefix: "a\nb"}, []string{"prefix:", "LF"}},
		{"bad endpoint", Config{Bucket: "kite", Endpoint: "storage.example.com"}, []string{"endpoint:", "http://"}},
		{"endpoint query", Config{Bucket: "kite", Endpoint: "https://x/storage/v1/?a=b"}, []string{"endpoint:", "query"}},
		{"http with credentials", Config{Bucket: "kite", Endpoint: "http://127.0.0.1:4443", CredentialsFile: "sa.json"},
			[]string{"credentials_file:", "clear text"}},
		{"small chunk", Config{Bucket: "kite", ChunkSize: 1000}, []string{"chunk_size:", "262144"}},
		{"odd chunk", Config{Bucket: "kite", ChunkSize: 300 << 10}, []string{"chunk_size:", "multiple"}},
		{"negative chunk", Config{Bucket: "kite", ChunkSize: -1}, []string{"chunk_size:"}},
		{"several", Config{Bucket: "K", Prefix: "/x", ChunkSize: 1}, []string{"bucket:", "prefix:", "chunk_size:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q, want it to say %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg := Defaults()
	cfg.Bucket = "kite"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Defaults with a bucket: %v", err)
	}
	if cfg.ChunkSize != 16<<20 {
		t.Errorf("default chunk size = %d, want 16 MiB", cfg.ChunkSize)
	}
	if got := (Config{}).withDefaults().ChunkSize; got != DefaultChunkSize {
		t.Errorf("unset chunk size becomes %d, want %d", got, DefaultChunkSize)
	}
}

func TestNewCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	tests := []struct {
		name, file, want string
	}{
		{"missing", filepath.Join(dir, "missing.json"), "no such file"},
		{"not JSON", write("bad.json", "nope"), "not a JSON credentials file"},
		{"external account", write("ext.json", `{"type": "external_account"}`), `type "external_account"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(t.Context(), Config{Bucket: "kite", CredentialsFile: tt.file})
			if err == nil || !strings.Contains(err.Error(), "credentials_file") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want a credentials_file error saying %q", err, tt.want)
			}
		})
	}
}

func TestEndpointURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:4443":                    "http://127.0.0.1:4443/storage/v1/",
		"http://127.0.0.1:4443/":                   "http://127.0.0.1:4443/storage/v1/",
		"https://storage.example.com/storage/v1/":  "https://storage.example.com/storage/v1/",
		"https://private.example.com/custom/path/": "https://private.example.com/custom/path/",
	} {
		if got := endpointURL(in); got != want {
			t.Errorf("endpointURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkStore(b *testing.B) {
	f := startFake(b)
	storagetest.Bench(b, func(tb testing.TB) storage.Storage {
		return f.open(tb, Config{Bucket: f.newBucket()})
	})
}

// TestOutageFailsWithinRetryFor: with GCS failing, every operation gives up
// with ErrUnavailable once RetryFor has passed, whatever its kind: a Put of
// one request (which the client would otherwise retry until its context
// ends), a Put in chunks, reads, lists and deletes.
func TestOutageFailsWithinRetryFor(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "outage", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	s, err := New(t.Context(), Config{Bucket: "kite-test", Endpoint: down.URL, ChunkSize: 256 << 10, RetryFor: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	const uri = "kite:///ns/f/executions/e/x"
	for _, op := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"small put", func(ctx context.Context) error {
			_, err := s.Put(ctx, uri, strings.NewReader("x"))
			return err
		}},
		{"chunked put", func(ctx context.Context) error {
			_, err := s.Put(ctx, uri, bytes.NewReader(make([]byte, 600<<10)))
			return err
		}},
		{"get", func(ctx context.Context) error {
			_, err := s.Get(ctx, uri, storage.Whole)
			return err
		}},
		{"stat", func(ctx context.Context) error { _, err := s.Stat(ctx, uri); return err }},
		{"list", func(ctx context.Context) error { _, err := s.List(ctx, "kite:///ns"); return err }},
		{"delete", func(ctx context.Context) error { return s.Delete(ctx, uri) }},
	} {
		t.Run(op.name, func(t *testing.T) {
			// The test's own deadline is far beyond RetryFor and the
			// transfer allowance: hitting it means the operation hung.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := op.do(ctx)
			if !errors.Is(err, storage.ErrUnavailable) || ctx.Err() != nil {
				t.Fatalf("%s during an outage = %v (ctx: %v); want ErrUnavailable before the test's deadline", op.name, err, ctx.Err())
			}
		})
	}
}
