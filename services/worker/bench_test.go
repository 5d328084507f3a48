package worker

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	"github.com/kiteflow/kite/streams"
)

// BenchmarkLogJobs measures jobs through one worker (Concurrency 8), from
// job records already in the topic to their finished results:
// acknowledgement transaction, attempt (a log task), log line, result.
func BenchmarkLogJobs(b *testing.B) {
	b.Run("kfake", func(b *testing.B) { benchmarkLogJobs(b, fakeEnv(b)) })
	b.Run("kafka", func(b *testing.B) { benchmarkLogJobs(b, realEnv(b)) })
}

func benchmarkLogJobs(b *testing.B, e *env) {
	res := e.tail(b, streams.TopicWorkerResults)
	js := newJobs()
	recs := make([]*kgo.Record, b.N)
	for i := range recs {
		recs[i] = e.jobRecord(b, js.job(b, "say"))
	}
	e.produce(b, recs...)
	w, err := New(testConfig("bench"), e.kafka, Files{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)

	b.ResetTimer()
	go func() { done <- w.Run(ctx) }()
	seen, finished := 0, 0
	res.waitFor(b, "every finished result", func(recs []*kgo.Record) bool {
		for _, r := range recs[seen:] {
			var wr eventv1.WorkerResult
			if proto.Unmarshal(r.Value, &wr) == nil && wr.GetFinished() != nil {
				finished++
			}
		}
		seen = len(recs)
		return finished == b.N
	})
	b.StopTimer()

	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
