package executor

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
)

// heartbeats follows the worker-heartbeats topic (every partition, from
// the start: the topic is compacted, so the start holds each worker's last
// heartbeat) and says whether a worker is alive.
type heartbeats struct {
	cl      *kgo.Client
	topic   string
	timeout time.Duration
	now     func() time.Time
	log     *zap.Logger

	mu      sync.Mutex
	started time.Time
	ready   bool
	last    map[string]beat
}

type beat struct {
	at       time.Time
	stopping bool
}

func newHeartbeats(topic string, timeout time.Duration, clientOpts []kgo.Opt, logger *zap.Logger, now func() time.Time) (*heartbeats, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), clientOpts...),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return nil, err
	}
	return &heartbeats{cl: cl, topic: topic, timeout: timeout, now: now, log: logger.Named("heartbeats"),
		started: now(), last: map[string]beat{}}, nil
}

func (h *heartbeats) close() { h.cl.Close() }

// run consumes heartbeats until ctx ends.
func (h *heartbeats) run(ctx context.Context) error {
	defer h.close()
	ends, err := h.endOffsets(ctx)
	for err != nil {
		h.log.Warn("reading the end of the heartbeats topic; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		ends, err = h.endOffsets(ctx)
	}
	h.markReadyIf(ends)
	for {
		fetches := h.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				h.log.Warn("fetching heartbeats", zap.Int32("partition", p), zap.Error(err))
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			var hb eventv1.Heartbeat
			if err := proto.Unmarshal(r.Value, &hb); err != nil || hb.GetWorkerId() == "" {
				return
			}
			h.mu.Lock()
			h.last[hb.GetWorkerId()] = beat{at: r.Timestamp, stopping: hb.GetStopping()}
			h.mu.Unlock()
			if ends != nil {
				if end, ok := ends[r.Partition]; ok && r.Offset+1 >= end {
					delete(ends, r.Partition)
					h.markReadyIf(ends)
				}
			}
		})
	}
}

// endOffsets returns the end offset of each partition that has records.
func (h *heartbeats) endOffsets(ctx context.Context) (map[int32]int64, error) {
	listed, err := kadm.NewClient(h.cl).ListEndOffsets(ctx, h.topic)
	if err != nil {
		return nil, err
	}
	ends := map[int32]int64{}
	var errs []error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, o.Err)
			return
		}
		if o.Offset > 0 {
			ends[o.Partition] = o.Offset
		}
	})
	return ends, errors.Join(errs...)
}

func (h *heartbeats) markReadyIf(pending map[int32]int64) {
	if len(pending) > 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ready {
		h.ready, h.started = true, h.now()
	}
}

// alive reports whether a worker is alive: it sent a heartbeat within the
// timeout and did not say it was stopping. Until the topic has been read up
// to its end, and for one timeout after that (a worker's first heartbeat
// may still be on its way), a worker not heard of counts as alive.
func (h *heartbeats) alive(worker string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	b, ok := h.last[worker]
	if !ok {
		return !h.ready || now.Sub(h.started) < h.timeout
	}
	if b.stopping {
		return false
	}
	return now.Sub(b.at) < h.timeout
}
