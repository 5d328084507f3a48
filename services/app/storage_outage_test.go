package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/app"
	"github.com/kiteflow/kite/storage-gcs/gcstest"
)

// flakyGCS is fake-gcs-server in-process behind a switch: while down, every
// request is answered 503, as by a GCS front end that is failing.
type flakyGCS struct {
	*gcstest.Server
	down atomic.Bool
}

func startFlakyGCS(tb testing.TB, bucket string) *flakyGCS {
	tb.Helper()
	f := &flakyGCS{}
	f.Server = gcstest.Start(tb, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if f.down.Load() {
				_, _ = io.Copy(io.Discard, r.Body)
				http.Error(w, "storage outage (test)", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	f.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	return f
}

const outageFlow = `id: outage
namespace: kite.test.outage
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "written after the outage"
    extension: .txt
    retry:
      type: constant
      interval: PT0.2S
      maxAttempt: 30
`

// A storage outage during a task fails the attempt with a retryable error;
// the task's retry policy runs it again, and once storage is back the
// execution succeeds with the file stored.
func TestStorageOutageRetriesTheTask(t *testing.T) {
	gcs := startFlakyGCS(t, "kite-test")
	a := startApp(t, "standalone", nil, func(c *app.Config) {
		c.Storage.Type = app.StorageGCS
		c.Storage.GCS.Bucket = "kite-test"
		c.Storage.GCS.Endpoint = gcs.URL
		c.Storage.GCS.ChunkSize = 256 << 10
		c.Storage.GCS.RetryFor = 300 * time.Millisecond
	})
	conn := dial(t, a)
	if _, err := kitev1.NewFlowServiceClient(conn).Apply(t.Context(), &kitev1.FlowServiceApplyRequest{Source: outageFlow}); err != nil {
		t.Fatal(err)
	}
	execs := kitev1.NewExecutionServiceClient(conn)

	gcs.down.Store(true)
	created, err := execs.Create(t.Context(), &kitev1.ExecutionServiceCreateRequest{Namespace: "kite.test.outage", FlowId: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetExecution().GetId()
	get := func() *kitev1.Execution {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		r, err := execs.Get(ctx, &kitev1.ExecutionServiceGetRequest{ExecutionId: id})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetExecution()
	}
	// Two attempts failed on the outage: the policy is retrying.
	waitFor(t, "two failed attempts", func() bool {
		failed := 0
		for _, tr := range get().GetTaskRuns() {
			for _, at := range tr.GetAttempts() {
				if codec.FromState(at.GetState()) == "FAILED" {
					failed++
				}
			}
		}
		return failed >= 2
	})
	gcs.down.Store(false)
	watch(t, conn, id, nil)

	e := get()
	if st := codec.FromState(e.GetState()); st != "SUCCESS" {
		t.Fatalf("execution ended %s, want SUCCESS once storage is back: %v", st, e)
	}
	tr := e.GetTaskRuns()[0]
	if first := codec.FromState(tr.GetAttempts()[0].GetState()); first != "FAILED" || len(tr.GetAttempts()) < 3 {
		t.Errorf("attempts: first %s of %d; want a FAILED first attempt and a later one that succeeded", first, len(tr.GetAttempts()))
	}
	uri := codec.FromStruct(tr.GetOutputs())["uri"].(string)
	name := "kite/test/outage/outage/executions/" + id + "/tasks/write/" + tr.GetId() + "/write.txt"
	if !strings.HasSuffix(uri, name) {
		t.Errorf("uri = %s, want one ending in %s", uri, name)
	}
	obj, err := gcs.GetObject("kite-test", name)
	if err != nil || string(obj.Content) != "written after the outage" {
		t.Errorf("object %s = %q, %v; want the content written", name, obj.Content, err)
	}
}
