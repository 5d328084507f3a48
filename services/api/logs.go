package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// logService is kite.v1.LogService (proto/kite/v1/log_service.proto).
type logService struct {
	kitev1.UnimplementedLogServiceServer
	s *Server
}

var _ kitev1.LogServiceServer = (*logService)(nil)

// logBatch is what the poller of a Tail hands to the sender.
type logBatch struct {
	recs []*kgo.Record
	next int64 // the reader's offset after recs
	err  error
}

// Tail reads the execution's partition of the logs topic from the
// execution's creation time (less a minute) and sends its lines that match
// the filters. At the same time it follows the execution's events; once the
// execution is terminal it keeps reading for Config.TailGrace after the end
// (lines logged just before the end may reach the topic late), then up to
// the partition's high watermark at that moment, and ends.
func (l *logService) Tail(req *kitev1.LogServiceTailRequest, stream grpc.ServerStreamingServer[kitev1.LogServiceTailResponse]) error {
	s := l.s
	id := req.GetExecutionId()
	if id == "" {
		return invalidArgument("execution_id", "must be set")
	}
	ctx, done := s.streamContext(stream.Context())
	defer done()
	err := s.tail(ctx, req, func(entry *kitev1.LogEntry) error {
		return stream.Send(&kitev1.LogServiceTailResponse{Entry: entry})
	})
	return s.status(ctx, err)
}

func (s *Server) tail(ctx context.Context, req *kitev1.LogServiceTailRequest, send func(*kitev1.LogEntry) error) error {
	id := req.GetExecutionId()
	loaded, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	topic := s.topics.cfg.Topic(streams.TopicLogs)
	p, err := s.topics.partitionOf(ctx, topic, id)
	if err != nil {
		return err
	}
	from, err := s.topics.startOf(ctx, topic, p, id)
	if err != nil {
		return err
	}
	rd, err := s.topics.newReader(ctx, topic, p, from)
	if err != nil {
		return err
	}
	defer rd.close()

	var wg sync.WaitGroup
	defer wg.Wait() // after cancel below: the goroutines end with ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// ended receives when the execution ended, once it has: the time of its
	// last state when it had ended already, else the time Tail saw it end
	// (the API's clock, not the executor's).
	ended := make(chan time.Time, 1)
	followErr := make(chan error, 1)
	if codec.FromState(loaded.exec.GetState()).Terminal() {
		ended <- endTime(loaded.exec)
	} else {
		wg.Go(func() {
			err := s.follow(ctx, id, loaded.exec.GetSeq()+1, s.cfg.WatchNotFoundWait, func(*kitev1.ExecutionEvent) error { return nil })
			if err != nil {
				followErr <- err
				return
			}
			ended <- time.Now()
		})
	}
	batches := make(chan logBatch)
	wg.Go(func() {
		for {
			recs, err := rd.poll(ctx)
			select {
			case batches <- logBatch{recs: recs, next: rd.next, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	})

	next := from
	end := int64(-1) // the offset to read to once the grace is over
	var grace <-chan time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for end < 0 || next < end {
		select {
		case b := <-batches:
			if b.err != nil {
				return b.err
			}
			next = b.next
			for _, rec := range b.recs {
				if string(rec.Key) != id {
					continue
				}
				entry := &kitev1.LogEntry{}
				if err := proto.Unmarshal(rec.Value, entry); err != nil {
					return fmt.Errorf("reading a log line of execution %s at %s[%d]@%d: %w", id, rec.Topic, rec.Partition, rec.Offset, err)
				}
				if !matches(req, entry) {
					continue
				}
				if err := send(entry); err != nil {
					return err
				}
			}
		case at := <-ended:
			timer = time.NewTimer(time.Until(at.Add(s.cfg.TailGrace)))
			grace = timer.C
		case <-grace:
			// Up to the high watermark, not the stable end: the execution's last
			// lines may sit in a transaction committed with its end whose markers
			// have not reached this partition yet; the reader passes them once
			// they have.
			grace = nil
			if end, err = s.topics.highWatermark(ctx, topic, p); err != nil {
				return err
			}
		case err := <-followErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// matches reports whether a log line passes the filters of a Tail.
func matches(req *kitev1.LogServiceTailRequest, e *kitev1.LogEntry) bool {
	if req.GetTaskId() != "" && e.GetTaskId() != req.GetTaskId() {
		return false
	}
	return req.GetMinLevel() == kitev1.LogLevel_LOG_LEVEL_UNSPECIFIED || e.GetLevel() >= req.GetMinLevel()
}

// endTime is when an ended execution took its last state.
func endTime(e *kitev1.Execution) time.Time {
	if h := e.GetHistory(); len(h) > 0 {
		return h[len(h)-1].GetTime().AsTime()
	}
	return time.Now()
}
