// Package storagetest is the acceptance suite of storage.Storage: every
// implementation runs Run in its tests and Bench in its benchmarks, so that
// all of them keep the contracts written at the interface.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kiteflow/kite/core/storage"
)

// Run checks the contracts of storage.Storage against the implementation
// open returns. Each subtest opens a fresh, empty store; open registers its
// Close with t.Cleanup.
func Run(t *testing.T, open func(t testing.TB) storage.Storage) {
	tests := []struct {
		name string
		test func(t *testing.T, s storage.Storage)
	}{
		{"PutGet", testPutGet},
		{"PutGetLarge", testPutGetLarge},
		{"Ranges", testRanges},
		{"RangesLarge", testRangesLarge},
		{"Stat", testStat},
		{"PutReplaces", testPutReplaces},
		{"List", testList},
		{"Delete", testDelete},
		{"DeletePrefix", testDeletePrefix},
		{"NotFound", testNotFound},
		{"InvalidURI", testInvalidURI},
		{"FailedPut", testFailedPut},
		{"CancelledPut", testCancelledPut},
		{"ReadDuringPut", testReadDuringPut},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentPutsSameURI", testConcurrentPutsSameURI},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.test(t, open(t))
		})
	}
}

// Bench measures a Put then a whole Get of a 64 MiB object; the bytes per
// second it reports are of the object, each moved twice.
func Bench(b *testing.B, open func(tb testing.TB) storage.Storage) {
	const size = 64 << 20
	s := open(b)
	uri := file(b, "bench.bin")
	b.SetBytes(size)
	for b.Loop() {
		if _, err := s.Put(b.Context(), uri, generate(1, size)); err != nil {
			b.Fatalf("Put: %v", err)
		}
		r, err := s.Get(b.Context(), uri, storage.Whole)
		if err != nil {
			b.Fatalf("Get: %v", err)
		}
		n, err := io.Copy(io.Discard, r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil || n != size {
			b.Fatalf("Get read %d bytes of %d: %v", n, size, err)
		}
	}
}

const (
	namespace = "company.team"
	flowID    = "nightly"
	execution = "abc"
)

// file is the URI of a task run's file of the test execution.
func file(tb testing.TB, name string) string {
	tb.Helper()
	return fileOf(tb, execution, name)
}

func fileOf(tb testing.TB, executionID, name string) string {
	tb.Helper()
	uri, err := storage.TaskFile(namespace, flowID, executionID, "task", "run1", name)
	if err != nil {
		tb.Fatalf("TaskFile(%q): %v", name, err)
	}
	return uri
}

func put(tb testing.TB, s storage.Storage, uri string, data []byte) {
	tb.Helper()
	n, err := s.Put(tb.Context(), uri, bytes.NewReader(data))
	if err != nil {
		tb.Fatalf("Put(%s): %v", uri, err)
	}
	if n != int64(len(data)) {
		tb.Fatalf("Put(%s) = %d bytes, want %d", uri, n, len(data))
	}
}

// get reads the bytes of rng of the object at uri and closes the reader.
func get(tb testing.TB, s storage.Storage, uri string, rng storage.Range) []byte {
	tb.Helper()
	r, err := s.Get(tb.Context(), uri, rng)
	if err != nil {
		tb.Fatalf("Get(%s, %+v): %v", uri, rng, err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		tb.Fatalf("reading Get(%s, %+v): %v", uri, rng, err)
	}
	if err := r.Close(); err != nil {
		tb.Fatalf("closing Get(%s, %+v): %v", uri, rng, err)
	}
	return data
}

// getSum is the size and SHA-256 of the bytes of rng of the object at uri.
func getSum(tb testing.TB, s storage.Storage, uri string, rng storage.Range) (int64, [sha256.Size]byte) {
	tb.Helper()
	r, err := s.Get(tb.Context(), uri, rng)
	if err != nil {
		tb.Fatalf("Get(%s, %+v): %v", uri, rng, err)
	}
	n, sum := sumOf(tb, r)
	if err := r.Close(); err != nil {
		tb.Fatalf("closing Get(%s, %+v): %v", uri, rng, err)
	}
	return n, sum
}

func sumOf(tb testing.TB, r io.Reader) (int64, [sha256.Size]byte) {
	tb.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		tb.Fatalf("reading: %v", err)
	}
	return n, [sha256.Size]byte(h.Sum(nil))
}

func stat(tb testing.TB, s storage.Storage, uri string) storage.Info {
	tb.Helper()
	info, err := s.Stat(tb.Context(), uri)
	if err != nil {
		tb.Fatalf("Stat(%s): %v", uri, err)
	}
	return info
}

func list(tb testing.TB, s storage.Storage, prefix string) []string {
	tb.Helper()
	infos, err := s.List(tb.Context(), prefix)
	if err != nil {
		tb.Fatalf("List(%s): %v", prefix, err)
	}
	uris := make([]string, len(infos))
	for i, info := range infos {
		uris[i] = info.URI
	}
	return uris
}

func wantNotFound(tb testing.TB, what string, err error) {
	tb.Helper()
	if !errors.Is(err, storage.ErrNotFound) {
		tb.Errorf("%s: error %v, want one wrapping storage.ErrNotFound", what, err)
	}
}

// wantAbsent checks that uri names no object, by Get, Stat and List.
func wantAbsent(tb testing.TB, s storage.Storage, uri string) {
	tb.Helper()
	r, err := s.Get(tb.Context(), uri, storage.Whole)
	if err == nil {
		_ = r.Close()
	}
	wantNotFound(tb, "Get "+uri, err)
	_, err = s.Stat(tb.Context(), uri)
	wantNotFound(tb, "Stat "+uri, err)
	if uris := list(tb, s, storage.ExecutionPrefix(namespace, flowID, execution)); len(uris) != 0 {
		tb.Errorf("List of the execution = %q, want nothing", uris)
	}
}

// generate is a reproducible stream of n pseudo-random bytes.
func generate(seed uint64, n int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), n)
}

func generateSum(tb testing.TB, seed uint64, n int64) [sha256.Size]byte {
	tb.Helper()
	_, sum := sumOf(tb, generate(seed, n))
	return sum
}

// binaryBytes holds every byte value, NUL and invalid UTF-8 included.
func binaryBytes() []byte {
	b := make([]byte, 3*256)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func testPutGet(t *testing.T, s storage.Storage) {
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", []byte{}},
		{"text", []byte("id,name\n1,kite\n")},
		{"binary", binaryBytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uri := file(t, tt.name+".bin")
			put(t, s, uri, tt.data)
			if got := get(t, s, uri, storage.Whole); !bytes.Equal(got, tt.data) {
				t.Errorf("Get = %q, want %q", got, tt.data)
			}
			if got := stat(t, s, uri).Size; got != int64(len(tt.data)) {
				t.Errorf("Stat size = %d, want %d", got, len(tt.data))
			}
		})
	}
}

// testPutGetLarge streams an object of several MiB, not a multiple of any
// buffer size, from a reader that never holds it whole.
func testPutGetLarge(t *testing.T, s storage.Storage) {
	const size = 9<<20 + 123
	uri := file(t, "large.bin")
	n, err := s.Put(t.Context(), uri, generate(7, size))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if n != size {
		t.Errorf("Put = %d bytes, want %d", n, size)
	}
	gotN, gotSum := getSum(t, s, uri, storage.Whole)
	if gotN != size || gotSum != generateSum(t, 7, size) {
		t.Errorf("Get read %d bytes, want %d, or not the bytes put", gotN, size)
	}
	if got := stat(t, s, uri).Size; got != size {
		t.Errorf("Stat size = %d, want %d", got, size)
	}
}

func testRanges(t *testing.T, s storage.Storage) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i)
	}
	uri := file(t, "ranged.bin")
	put(t, s, uri, data)
	empty := file(t, "empty.bin")
	put(t, s, empty, nil)

	tests := []struct {
		name string
		uri  string
		rng  storage.Range
		want []byte
	}{
		{"whole", uri, storage.Whole, data},
		{"zero range", uri, storage.Range{}, data},
		{"from an offset", uri, storage.Range{Offset: 10, Length: -1}, data[10:]},
		{"offset and length", uri, storage.Range{Offset: 10, Length: 20}, data[10:30]},
		{"length only", uri, storage.Range{Length: 5}, data[:5]},
		{"zero length is to the end", uri, storage.Range{Offset: 995}, data[995:]},
		{"exactly all", uri, storage.Range{Offset: 0, Length: 1000}, data},
		{"last byte", uri, storage.Range{Offset: 999, Length: 1}, data[999:]},
		{"length past the end", uri, storage.Range{Offset: 990, Length: 20}, data[990:]},
		{"offset at the end", uri, storage.Range{Offset: 1000, Length: -1}, nil},
		{"offset past the end", uri, storage.Range{Offset: 5000, Length: 10}, nil},
		{"empty object whole", empty, storage.Whole, nil},
		{"empty object past the end", empty, storage.Range{Offset: 3, Length: 2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(t, s, tt.uri, tt.rng); !bytes.Equal(got, tt.want) {
				t.Errorf("Get(%+v) = %d bytes %v, want %d bytes %v", tt.rng, len(got), got, len(tt.want), tt.want)
			}
		})
	}
	t.Run("negative offset", func(t *testing.T) {
		r, err := s.Get(t.Context(), uri, storage.Range{Offset: -1, Length: -1})
		if err == nil {
			_ = r.Close()
			t.Errorf("Get with a negative offset: no error")
		}
	})
}

// testRangesLarge reads a range in the middle of a large object.
func testRangesLarge(t *testing.T, s storage.Storage) {
	const size, offset, length = 5 << 20, 3<<20 + 17, 1<<20 + 5
	uri := file(t, "large.bin")
	if _, err := s.Put(t.Context(), uri, generate(3, size)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	want := generate(3, offset+length)
	if _, err := io.CopyN(io.Discard, want, offset); err != nil {
		t.Fatal(err)
	}
	_, wantSum := sumOf(t, want)
	n, sum := getSum(t, s, uri, storage.Range{Offset: offset, Length: length})
	if n != length || sum != wantSum {
		t.Errorf("Get of %d bytes from %d read %d bytes, or not those put", length, offset, n)
	}
}

func testStat(t *testing.T, s storage.Storage) {
	uri := file(t, "out.csv")
	put(t, s, uri, []byte("a,b\n"))
	info := stat(t, s, uri)
	if info.URI != uri {
		t.Errorf("Stat URI = %q, want %q", info.URI, uri)
	}
	if info.Size != 4 {
		t.Errorf("Stat size = %d, want 4", info.Size)
	}
	if info.Updated.IsZero() {
		t.Errorf("Stat updated is zero")
	}
}

func testPutReplaces(t *testing.T, s storage.Storage) {
	uri := file(t, "out.json")
	put(t, s, uri, []byte(`{"first": "a longer value"}`))
	put(t, s, uri, []byte(`{"b": 2}`))
	put(t, s, uri, []byte(`{"b": 2}`)) // a retried Put
	if got := string(get(t, s, uri, storage.Whole)); got != `{"b": 2}` {
		t.Errorf("Get = %q, want the last object put", got)
	}
	if got := stat(t, s, uri).Size; got != 8 {
		t.Errorf("Stat size = %d, want 8", got)
	}
	if got := list(t, s, storage.ExecutionPrefix(namespace, flowID, execution)); len(got) != 1 || got[0] != uri {
		t.Errorf("List = %q, want only %s", got, uri)
	}
}

func testList(t *testing.T, s storage.Storage) {
	prefix := storage.ExecutionPrefix(namespace, flowID, execution)
	input, err := storage.InputFile(namespace, flowID, execution, "data", `C:\Users\me\data.csv`)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by URI: "a-c" before "a/b" ('-' < '/'), which a walk of
	// folders by name would not give.
	want := []string{input, file(t, "a-c"), file(t, "a/b"), file(t, "reports/2024/deep/summary.json")}
	for i, uri := range []string{want[3], want[1], want[0], want[2]} {
		put(t, s, uri, bytes.Repeat([]byte{'x'}, i))
	}
	// Neighbours the prefix must not reach, and a prefix of it must not
	// list.
	abcd, ab := fileOf(t, execution+"d", "a/b"), fileOf(t, "ab", "a/b")
	put(t, s, abcd, []byte("abcd"))
	put(t, s, ab, []byte("ab"))
	teamx, err := storage.TaskFile("company.teamx", flowID, execution, "task", "run1", "a/b")
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, teamx, []byte("teamx"))

	tests := []struct {
		name   string
		prefix string
		want   []string
	}{
		{"execution", prefix, want},
		{"trailing slash", prefix + "/", want},
		{"subfolder", prefix + "/tasks/task/run1/reports", want[3:]},
		{"namespace", storage.URI("company/team"), slices.Sorted(slices.Values(append([]string{abcd, ab}, want...)))},
		{"root", storage.Root, slices.Sorted(slices.Values(append([]string{abcd, ab, teamx}, want...)))},
		{"part of a segment", strings.TrimSuffix(prefix, "c"), []string{ab}},
		{"nothing there", storage.ExecutionPrefix(namespace, flowID, "none"), nil},
		{"an object is not a folder", want[0], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			infos, err := s.List(t.Context(), tt.prefix)
			if err != nil {
				t.Fatalf("List(%s): %v", tt.prefix, err)
			}
			got := make([]string, len(infos))
			for i, info := range infos {
				got[i] = info.URI
				if info.Updated.IsZero() {
					t.Errorf("List: %s updated is zero", info.URI)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("List(%s) =\n%s\nwant\n%s", tt.prefix, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	t.Run("sizes", func(t *testing.T) {
		for _, info := range mustList(t, s, prefix) {
			if want := stat(t, s, info.URI).Size; info.Size != want {
				t.Errorf("List: %s size %d, Stat says %d", info.URI, info.Size, want)
			}
		}
	})
}

func mustList(tb testing.TB, s storage.Storage, prefix string) []storage.Info {
	tb.Helper()
	infos, err := s.List(tb.Context(), prefix)
	if err != nil {
		tb.Fatalf("List(%s): %v", prefix, err)
	}
	return infos
}

func testDelete(t *testing.T, s storage.Storage) {
	keep, gone := file(t, "keep.txt"), file(t, "dir/gone.txt")
	put(t, s, keep, []byte("keep"))
	put(t, s, gone, []byte("gone"))
	if err := s.Delete(t.Context(), gone); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Stat(t.Context(), gone)
	wantNotFound(t, "Stat after Delete", err)
	if got := list(t, s, storage.ExecutionPrefix(namespace, flowID, execution)); len(got) != 1 || got[0] != keep {
		t.Errorf("List after Delete = %q, want only %s", got, keep)
	}
	wantNotFound(t, "Delete again", s.Delete(t.Context(), gone))
	wantNotFound(t, "Delete of what never was", s.Delete(t.Context(), file(t, "never.txt")))
	// A folder is not an object.
	put(t, s, file(t, "dir/inner.txt"), []byte("inner"))
	wantNotFound(t, "Delete of a folder", s.Delete(t.Context(), file(t, "dir")))
	if got := string(get(t, s, file(t, "dir/inner.txt"), storage.Whole)); got != "inner" {
		t.Errorf("after Delete of its folder, Get = %q, want inner", got)
	}
	// Deleted folders can be written again.
	put(t, s, gone, []byte("back"))
	if got := string(get(t, s, gone, storage.Whole)); got != "back" {
		t.Errorf("Get after Put again = %q, want back", got)
	}
}

func testDeletePrefix(t *testing.T, s storage.Storage) {
	prefix := storage.ExecutionPrefix(namespace, flowID, execution)
	for _, name := range []string{"a", "b/c", "b/d/e/f"} {
		put(t, s, file(t, name), []byte(name))
	}
	neighbour := fileOf(t, execution+"d", "a")
	put(t, s, neighbour, []byte("neighbour"))

	n, err := s.DeletePrefix(t.Context(), prefix+"/")
	if err != nil || n != 3 {
		t.Fatalf("DeletePrefix = %d, %v, want 3, nil", n, err)
	}
	if got := list(t, s, prefix); len(got) != 0 {
		t.Errorf("List after DeletePrefix = %q, want nothing", got)
	}
	_, err = s.Stat(t.Context(), file(t, "b/d/e/f"))
	wantNotFound(t, "Stat after DeletePrefix", err)
	if got := string(get(t, s, neighbour, storage.Whole)); got != "neighbour" {
		t.Errorf("DeletePrefix(%s) reached %s", prefix, neighbour)
	}

	n, err = s.DeletePrefix(t.Context(), prefix)
	if err != nil || n != 0 {
		t.Errorf("DeletePrefix of nothing = %d, %v, want 0, nil", n, err)
	}
	n, err = s.DeletePrefix(t.Context(), storage.ExecutionPrefix(namespace, "never", execution))
	if err != nil || n != 0 {
		t.Errorf("DeletePrefix of what never was = %d, %v, want 0, nil", n, err)
	}
	// The prefix can be written again.
	put(t, s, file(t, "b/c"), []byte("again"))
	if got := list(t, s, prefix); len(got) != 1 {
		t.Errorf("List after Put again = %q, want one object", got)
	}

	n, err = s.DeletePrefix(t.Context(), storage.Root)
	if err != nil || n != 2 {
		t.Errorf("DeletePrefix(Root) = %d, %v, want 2, nil", n, err)
	}
	if got := list(t, s, storage.Root); len(got) != 0 {
		t.Errorf("List(Root) after DeletePrefix(Root) = %q, want nothing", got)
	}
	put(t, s, neighbour, []byte("again"))
	if got := list(t, s, storage.Root); len(got) != 1 {
		t.Errorf("List(Root) after Put again = %q, want one object", got)
	}
}

func testNotFound(t *testing.T, s storage.Storage) {
	put(t, s, file(t, "dir/there.txt"), []byte("there"))
	for _, uri := range []string{
		file(t, "missing.txt"),
		file(t, "dir/missing.txt"),
		file(t, "dir"),                      // a folder
		file(t, "dir/there.txt/under"),      // under an object
		storage.URI("nowhere/at/all/x.txt"), // no folder
	} {
		for _, rng := range []storage.Range{storage.Whole, {Offset: 2, Length: 1}} {
			r, err := s.Get(t.Context(), uri, rng)
			if err == nil {
				_ = r.Close()
			}
			wantNotFound(t, fmt.Sprintf("Get(%s, %+v)", uri, rng), err)
		}
		_, err := s.Stat(t.Context(), uri)
		wantNotFound(t, "Stat "+uri, err)
	}
}

func testInvalidURI(t *testing.T, s storage.Storage) {
	put(t, s, file(t, "b"), []byte("b"))
	bad := []string{
		"",
		"s3:///company/team/x",
		"file:///etc/passwd",
		"/etc/passwd",
		"kite://host/company/x",
		"kite://",
		"kite:////etc/passwd",
		"kite:///company/../x",
		"kite:///company/team/nightly/executions/abc/tasks/task/run1/../../../../../../../x",
		"kite:///company/./x",
		"kite:///..",
		"kite:///company//x",
		`kite:///company\..\x`,
		"kite:///company/x\x00",
	}
	badURIs := slices.Concat(bad, []string{storage.Root, file(t, "dir") + "/"}) // folders
	for _, uri := range badURIs {
		want := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, storage.ErrInvalidURI) {
				t.Errorf("%s(%q): error %v, want one wrapping storage.ErrInvalidURI", what, uri, err)
			}
		}
		_, err := s.Put(t.Context(), uri, strings.NewReader("x"))
		want("Put", err)
		r, err := s.Get(t.Context(), uri, storage.Whole)
		if err == nil {
			_ = r.Close()
		}
		want("Get", err)
		_, err = s.Stat(t.Context(), uri)
		want("Stat", err)
		want("Delete", s.Delete(t.Context(), uri))
	}
	for _, prefix := range slices.Concat(bad, []string{storage.ExecutionPrefix(namespace, flowID, execution) + "//"}) {
		want := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, storage.ErrInvalidURI) {
				t.Errorf("%s(%q): error %v, want one wrapping storage.ErrInvalidURI", what, prefix, err)
			}
		}
		_, err := s.List(t.Context(), prefix)
		want("List", err)
		_, err = s.DeletePrefix(t.Context(), prefix)
		want("DeletePrefix", err)
	}
	if got := string(get(t, s, file(t, "b"), storage.Whole)); got != "b" {
		t.Errorf("after invalid URIs, Get = %q, want b", got)
	}
}

var errReader = errors.New("the source broke")

// failingReader gives n bytes of data, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func failAfter(n int64, err error) io.Reader {
	return &failingReader{r: generate(11, n), err: err}
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, f.err
	}
	return n, err
}

// testFailedPut: a Put whose reader fails midway returns an error and
// changes nothing.
func testFailedPut(t *testing.T, s storage.Storage) {
	t.Run("new object", func(t *testing.T) {
		uri := file(t, "new.bin")
		if _, err := s.Put(t.Context(), uri, failAfter(1<<20+1, errReader)); err == nil {
			t.Fatalf("Put from a failing reader: no error")
		}
		wantAbsent(t, s, uri)
	})
	t.Run("replacing one", func(t *testing.T) {
		uri := file(t, "old.bin")
		put(t, s, uri, []byte("old"))
		if _, err := s.Put(t.Context(), uri, failAfter(1<<20+1, errReader)); err == nil {
			t.Fatalf("Put from a failing reader: no error")
		}
		if got := string(get(t, s, uri, storage.Whole)); got != "old" {
			t.Errorf("after a failed Put, Get = %d bytes, want the old object", len(got))
		}
		if got := stat(t, s, uri).Size; got != 3 {
			t.Errorf("after a failed Put, Stat size = %d, want 3", got)
		}
		if err := s.Delete(t.Context(), uri); err != nil {
			t.Fatal(err)
		}
	})
}

var errIgnoredCtx = errors.New("the Put read on long after its ctx was cancelled")

// cancellingReader gives bytes without end; after 1 MiB it cancels the
// Put's ctx, and 64 MiB later it fails, to end a Put that ignores it.
type cancellingReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.n >= 1<<20 {
		c.cancel()
	}
	if c.n >= 65<<20 {
		return 0, errIgnoredCtx
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// testCancelledPut: a Put whose ctx ends midway, or has ended, returns an
// error and changes nothing.
func testCancelledPut(t *testing.T, s storage.Storage) {
	check := func(t *testing.T, uri string, old []byte) {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		_, err := s.Put(ctx, uri, &cancellingReader{r: generate(5, 1<<40), cancel: cancel})
		if err == nil || errors.Is(err, errIgnoredCtx) {
			t.Fatalf("Put whose ctx was cancelled: error %v, want one soon after the cancel", err)
		}
		if old == nil {
			wantAbsent(t, s, uri)
			return
		}
		if got := get(t, s, uri, storage.Whole); !bytes.Equal(got, old) {
			t.Errorf("after a cancelled Put, Get = %d bytes, want the old object", len(got))
		}
	}
	t.Run("new object", func(t *testing.T) { check(t, file(t, "new.bin"), nil) })
	t.Run("replacing one", func(t *testing.T) {
		uri := file(t, "old.bin")
		put(t, s, uri, []byte("old"))
		check(t, uri, []byte("old"))
		if err := s.Delete(t.Context(), uri); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		uri := file(t, "late.bin")
		if _, err := s.Put(ctx, uri, strings.NewReader("late")); err == nil {
			t.Fatalf("Put with a cancelled ctx: no error")
		}
		wantAbsent(t, s, uri)
	})
}

// pausingReader gives half its bytes, closes paused, waits for resume,
// then gives the rest.
type pausingReader struct {
	first, rest io.Reader
	paused      chan struct{}
	resume      <-chan struct{}
	ctx         context.Context
	once        sync.Once
}

func (p *pausingReader) Read(b []byte) (int, error) {
	n, err := p.first.Read(b)
	if !errors.Is(err, io.EOF) {
		return n, err
	}
	if n > 0 {
		return n, nil
	}
	p.once.Do(func() { close(p.paused) })
	select {
	case <-p.resume:
	case <-p.ctx.Done():
		return 0, p.ctx.Err()
	}
	return p.rest.Read(b)
}

// testReadDuringPut: while a Put is under way, readers see the old object
// or none, never part of the new one.
func testReadDuringPut(t *testing.T, s storage.Storage) {
	const half = 2 << 20
	check := func(t *testing.T, uri string, old []byte) {
		t.Helper()
		paused, resume := make(chan struct{}), make(chan struct{})
		r := &pausingReader{
			first:  bytes.NewReader(bytes.Repeat([]byte{'1'}, half)),
			rest:   bytes.NewReader(bytes.Repeat([]byte{'2'}, half)),
			paused: paused, resume: resume, ctx: t.Context(),
		}
		var wg sync.WaitGroup
		var putErr error
		wg.Go(func() { _, putErr = s.Put(t.Context(), uri, r) })
		released := false
		defer func() {
			if !released {
				close(resume)
			}
			wg.Wait()
		}()
		select {
		case <-paused:
		case <-t.Context().Done():
			t.Fatal("the Put never read half its reader")
		}
		if old == nil {
			wantAbsent(t, s, uri)
		} else {
			if got := get(t, s, uri, storage.Whole); !bytes.Equal(got, old) {
				t.Errorf("during a Put, Get = %d bytes, want the old object", len(got))
			}
			if got := stat(t, s, uri).Size; got != int64(len(old)) {
				t.Errorf("during a Put, Stat size = %d, want %d", got, len(old))
			}
			if got := list(t, s, storage.ExecutionPrefix(namespace, flowID, execution)); len(got) != 1 {
				t.Errorf("during a Put, List = %q, want the old object only", got)
			}
		}
		close(resume)
		released = true
		wg.Wait()
		if putErr != nil {
			t.Fatalf("Put: %v", putErr)
		}
		n, sum := getSum(t, s, uri, storage.Whole)
		_, want := sumOf(t, io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{'1'}, half)), bytes.NewReader(bytes.Repeat([]byte{'2'}, half))))
		if n != 2*half || sum != want {
			t.Errorf("after the Put, Get = %d bytes, want the %d put", n, 2*half)
		}
	}
	t.Run("new object", func(t *testing.T) { check(t, file(t, "new.bin"), nil) })
	t.Run("replacing one", func(t *testing.T) {
		uri := file(t, "old.bin")
		if err := s.Delete(t.Context(), file(t, "new.bin")); err != nil {
			t.Fatal(err)
		}
		put(t, s, uri, []byte("old"))
		check(t, uri, []byte("old"))
	})
}

func testConcurrentPuts(t *testing.T, s storage.Storage) {
	const writers, each = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		uris := make([]string, each)
		for i := range each {
			uris[i] = file(t, fmt.Sprintf("w%02d/o%02d", w, i))
		}
		wg.Go(func() {
			for _, uri := range uris {
				if _, err := s.Put(t.Context(), uri, strings.NewReader(uri)); err != nil {
					errs <- fmt.Errorf("putting %s: %w", uri, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := list(t, s, storage.ExecutionPrefix(namespace, flowID, execution)); len(got) != writers*each {
		t.Errorf("List = %d objects, want %d", len(got), writers*each)
	}
	for w := range writers {
		for i := range each {
			uri := file(t, fmt.Sprintf("w%02d/o%02d", w, i))
			if got := string(get(t, s, uri, storage.Whole)); got != uri {
				t.Errorf("Get %s = %q", uri, got)
			}
		}
	}
}

// testConcurrentPutsSameURI: concurrent Puts to one URI, with readers
// meanwhile; every read sees one object whole, and one of them wins.
func testConcurrentPutsSameURI(t *testing.T, s storage.Storage) {
	const writers = 8
	uri := file(t, "contended.bin")
	content := func(w int) []byte { return bytes.Repeat([]byte{byte('a' + w)}, (w+1)*64<<10) }
	// valid reports whether b is one of the contents put.
	valid := func(b []byte) bool {
		return len(b) > 0 && b[0] >= 'a' && int(b[0]-'a') < writers && bytes.Equal(b, content(int(b[0]-'a')))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for w := range writers {
		wg.Go(func() {
			if _, err := s.Put(t.Context(), uri, bytes.NewReader(content(w))); err != nil {
				errs <- fmt.Errorf("putting content %d: %w", w, err)
			}
		})
		wg.Go(func() {
			r, err := s.Get(t.Context(), uri, storage.Whole)
			if errors.Is(err, storage.ErrNotFound) {
				return
			}
			if err != nil {
				errs <- fmt.Errorf("getting during Puts: %w", err)
				return
			}
			defer func() { _ = r.Close() }()
			b, err := io.ReadAll(r)
			if err != nil {
				errs <- fmt.Errorf("reading Get: %w", err)
				return
			}
			if !valid(b) {
				errs <- fmt.Errorf("during Puts, Get read %d bytes of no object put", len(b))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := get(t, s, uri, storage.Whole)
	if !valid(got) {
		t.Errorf("after concurrent Puts, Get = %d bytes of no object put", len(got))
	}
	if size := stat(t, s, uri).Size; size != int64(len(got)) {
		t.Errorf("Stat size = %d, Get read %d", size, len(got))
	}
}

func testClose(t *testing.T, s storage.Storage) {
	uri := file(t, "x")
	put(t, s, uri, []byte("x"))
	r, err := s.Get(t.Context(), uri, storage.Whole)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("closing a reader of Get: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
}
