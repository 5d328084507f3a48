package storagegcs

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gcs "cloud.google.com/go/storage"

	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/storage/storagetest"
)

// The environment that integration/gcs/with-gcs.sh sets.
const (
	envReal     = "KITE_REAL_GCS"          // "1": the fake-gcs-server binary must be there
	envEmulator = "KITE_TEST_GCS_EMULATOR" // its address, 127.0.0.1:PORT
	// envRequire, like CI, makes a missing server fail the tests too.
	envRequire = "KITE_REQUIRE_INTEGRATION"
)

// emulator returns the address of the fake-gcs-server binary and points
// the client library at it (STORAGE_EMULATOR_HOST, for this test only).
// When there is none it skips the test, unless with-gcs.sh said it started
// one, or CI or KITE_REQUIRE_INTEGRATION is set: then it fails it, so that
// CI never passes by skipping.
func emulator(t *testing.T) string {
	t.Helper()
	addr := strings.TrimSpace(os.Getenv(envEmulator))
	const how = "run under integration/gcs/with-gcs.sh (e.g. integration/gcs/with-gcs.sh go test -run Integration ./storage-gcs/)"
	switch {
	case addr != "":
	case os.Getenv(envReal) == "1" || os.Getenv("CI") != "" || os.Getenv(envRequire) != "":
		t.Fatalf("fake-gcs-server not started (%s is empty): %s", envEmulator, how)
	default:
		t.Skip("fake-gcs-server not started: " + how)
	}
	t.Setenv("STORAGE_EMULATOR_HOST", addr)
	return addr
}

// integrationBucket creates a bucket of the test's own on the emulator,
// with the client library as Kite's users would.
func integrationBucket(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	client, err := gcs.NewClient(ctx)
	if err != nil {
		t.Fatalf("GCS client: %v", err)
	}
	defer func() { _ = client.Close() }()
	name := fmt.Sprintf("kite-it-%d", time.Now().UnixNano())
	if err := client.Bucket(name).Create(ctx, "kite-test", nil); err != nil {
		t.Fatalf("creating bucket %s on the emulator: %v", name, err)
	}
	return name
}

// TestIntegration runs the acceptance suite against the fake-gcs-server
// binary (filesystem backend), found through STORAGE_EMULATOR_HOST as in a
// deployment: no endpoint in the config. Each store gets a prefix of its
// own in one bucket, so it starts empty.
func TestIntegration(t *testing.T) {
	for _, tt := range []struct {
		name  string
		chunk int
	}{
		{"DefaultChunks", 0},
		{"SmallChunks", chunkUnit}, // every object past 256 KiB is a multi-request resumable upload
	} {
		t.Run(tt.name, func(t *testing.T) {
			emulator(t)
			bucket := integrationBucket(t)
			var stores atomic.Int64
			storagetest.Run(t, func(tb testing.TB) storage.Storage {
				cfg := Config{Bucket: bucket, Prefix: fmt.Sprintf("store-%d", stores.Add(1)), ChunkSize: tt.chunk}
				s, err := New(tb.Context(), cfg)
				if err != nil {
					tb.Fatalf("New: %v", err)
				}
				tb.Cleanup(func() { _ = s.Close() })
				return s
			})
		})
	}
}

// zeros is a reader of n zero bytes that holds none of them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// TestIntegrationMemory: a Put holds one chunk, not the object, and a Get
// streams. Against the binary, so that the emulator's own memory (it keeps
// an upload in memory until it is finalized) is not this process's.
func TestIntegrationMemory(t *testing.T) {
	emulator(t)
	const size, chunk = 64 << 20, 1 << 20
	s, err := New(t.Context(), Config{Bucket: integrationBucket(t), ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	uri := storage.URI("ns/flow/executions/e/big.bin")
	allocated := func(do func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		do()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	put := allocated(func() {
		if n, err := s.Put(t.Context(), uri, &zeros{n: size}); err != nil || n != size {
			t.Fatalf("Put = %d, %v", n, err)
		}
	})
	var read int64
	get := allocated(func() {
		r, err := s.Get(t.Context(), uri, storage.Whole)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		defer func() { _ = r.Close() }()
		if read, err = io.Copy(io.Discard, r); err != nil {
			t.Fatalf("reading: %v", err)
		}
	})
	t.Logf("a %d MiB object: Put allocated %.1f MiB (chunks of %d MiB), Get %.1f MiB",
		size>>20, float64(put)/(1<<20), chunk>>20, float64(get)/(1<<20))
	if read != size {
		t.Errorf("Get read %d bytes, want %d", read, size)
	}
	// All allocations, not the peak: a bound on both. A few chunks' worth
	// of slack for the client's own buffers.
	if limit := uint64(size / 4); put > limit || get > limit {
		t.Errorf("Put allocated %d bytes, Get %d: want each under %d, a quarter of the object", put, get, limit)
	}
}
