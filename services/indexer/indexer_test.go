package indexer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
	"github.com/kiteflow/kite/indexer/embedded"
	"github.com/kiteflow/kite/integration/clustertest"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/indexer"
	"github.com/kiteflow/kite/streams"
)

// TestBadRecordsGoToDeadLetters: a record that is not what its topic holds
// goes to the dead-letter topic with the reason and where it came from;
// the records around it are indexed; a flow deleted removes its document.
func TestBadRecordsGoToDeadLetters(t *testing.T) {
	clustertest.Each(t, func(t *testing.T, kafka streams.Config) {
		store, err := embedded.Open(t.Context(), embedded.Config{Dir: t.TempDir()}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		cl := clustertest.Client(t, kafka)
		logRec := func(msg string) *kgo.Record {
			b, err := proto.Marshal(&kitev1.LogEntry{ExecutionId: "x1", Namespace: "ns", FlowId: "f", Level: kitev1.LogLevel_LOG_LEVEL_WARN,
				Message: msg, Time: timestamppb.Now()})
			if err != nil {
				t.Fatal(err)
			}
			return &kgo.Record{Topic: kafka.Topic(streams.TopicLogs), Key: []byte("x1"), Value: b}
		}
		flowRec := func(rev int32, deleted bool) *kgo.Record {
			b, err := proto.Marshal(&kitev1.Flow{Namespace: "ns", Id: "f", Revision: rev, Source: "id: f\nnamespace: ns\n", Deleted: deleted})
			if err != nil {
				t.Fatal(err)
			}
			return &kgo.Record{Topic: kafka.Topic(streams.TopicFlows), Key: []byte(streams.FlowKey("ns", "f")), Value: b}
		}
		garbage := &kgo.Record{Topic: kafka.Topic(streams.TopicLogs), Key: []byte("x1"), Value: []byte("\xff not a log entry")}
		if err := cl.ProduceSync(t.Context(), logRec("before"), garbage, logRec("after"), flowRec(1, false)).FirstErr(); err != nil {
			t.Fatal(err)
		}

		x, err := indexer.New(indexer.Defaults(), kafka, store, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- x.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})

		count := func(kind repository.Kind, q string) int64 {
			n, err := query.Parse(q, repository.Schema(kind), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			res, err := store.Search(t.Context(), repository.SearchRequest{Kind: kind, Query: n})
			if err != nil {
				t.Fatal(err)
			}
			return res.Total
		}
		waitFor(t, "both good log lines and the flow indexed", func() bool {
			return count(repository.Logs, "level:WARN and (before or after)") == 2 && count(repository.Flows, "id:f") == 1
		})

		dl := clustertest.Client(t, kafka, kgo.ConsumeTopics(kafka.Topic(streams.TopicDeadLetter)),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		fctx, fcancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer fcancel()
		var got *kgo.Record
		for got == nil && fctx.Err() == nil {
			dl.PollFetches(fctx).EachRecord(func(r *kgo.Record) { got = r })
		}
		if got == nil {
			t.Fatal("nothing in the dead-letter topic")
		}
		headers := map[string]string{}
		for _, h := range got.Headers {
			headers[h.Key] = string(h.Value)
		}
		if string(got.Value) != string(garbage.Value) || headers["kite.topic"] != garbage.Topic || headers["kite.role"] != "indexer" ||
			!strings.Contains(headers["kite.reason"], "not a LogEntry") {
			t.Errorf("dead letter %q with headers %v", got.Value, headers)
		}

		// The flow deleted: its document goes.
		if err := cl.ProduceSync(t.Context(), flowRec(1, true)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the deleted flow's document removed", func() bool { return count(repository.Flows, "id:f") == 0 })
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
