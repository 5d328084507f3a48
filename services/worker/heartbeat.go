package worker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/proto/codec"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
)

// heartbeats produces a heartbeat now and every interval until ctx ends.
// A heartbeat that fails is not retried: the next one supersedes it. They
// are produced without a context: a cancelled record fails every record
// buffered for its partition, the stopping heartbeat included.
func (w *Worker) heartbeats(ctx context.Context) {
	t := time.NewTicker(w.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		w.out.TryProduce(context.Background(), w.heartbeat(false), func(_ *kgo.Record, err error) {
			if err != nil && !errors.Is(err, kgo.ErrClientClosed) {
				w.log.Warn("producing a heartbeat failed", zap.Error(err))
			}
		})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sayStopping produces the last heartbeat, with stopping set.
func (w *Worker) sayStopping() {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := w.produce(ctx, w.heartbeat(true)); err != nil {
		w.log.Warn("the stopping heartbeat was not delivered; the executor will notice the silence instead", zap.Error(err))
	}
}

// heartbeat is a worker-heartbeats record, keyed by worker id.
func (w *Worker) heartbeat(stopping bool) *kgo.Record {
	hb := &eventv1.Heartbeat{
		WorkerId: w.cfg.ID, Time: codec.Time(time.Now()), IntervalMillis: w.cfg.HeartbeatInterval.Milliseconds(),
		Stopping: stopping, Running: w.runningList(),
	}
	b, _ := proto.Marshal(hb) // ids are valid UTF-8: they were decoded from records or validated
	return &kgo.Record{Topic: w.topics.heartbeats, Key: []byte(w.cfg.ID), Value: b}
}
