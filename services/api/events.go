package api

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// The reads of the execution-events topic: an execution's records are those
// keyed by its id, in the one partition its id hashes to, each an
// ExecutionEvent with the execution's next seq, written in transactions by
// the executor (so read committed).

// notFound is NOT_FOUND for an execution.
func notFound(id string) error {
	return status.Errorf(codes.NotFound, "execution %s not found", id)
}

// decodeEvent reads an event record of execution id.
func decodeEvent(id string, rec *kgo.Record) (*kitev1.ExecutionEvent, error) {
	ev := &kitev1.ExecutionEvent{}
	if err := proto.Unmarshal(rec.Value, ev); err != nil {
		return nil, fmt.Errorf("reading an event of execution %s at %s[%d]@%d: %w", id, rec.Topic, rec.Partition, rec.Offset, err)
	}
	return ev, nil
}

// fold applies the event in rec to e, nil until the CREATED event. Events
// already applied (seq not past e's) are skipped.
func fold(e *execution.Execution, id string, rec *kgo.Record) (*execution.Execution, error) {
	ev, err := decodeEvent(id, rec)
	if err != nil {
		return nil, err
	}
	if e == nil {
		if ev.GetType() != kitev1.EventType_EVENT_TYPE_CREATED {
			return nil, fmt.Errorf("execution %s: event %d (%s) comes before its CREATED event", id, ev.GetSeq(), ev.GetType())
		}
		e = &execution.Execution{}
	} else if ev.GetSeq() <= e.Seq {
		return e, nil
	}
	if err := execution.Apply(e, codec.FromEvent(ev)); err != nil {
		return nil, fmt.Errorf("folding event %d of execution %s: %w", ev.GetSeq(), id, err)
	}
	return e, nil
}

// snapshot converts a folded execution for the cache and the client.
func snapshot(e *execution.Execution, next int64) (cacheEntry, error) {
	pb, err := codec.Execution(e)
	if err != nil {
		return cacheEntry{}, fmt.Errorf("converting execution %s: %w", e.ID, err)
	}
	return cacheEntry{exec: pb, next: next}, nil
}

// load returns execution id as its events recorded up to now (the last
// stable offset of its partition when load is called), continuing from the
// cache when it holds the execution (see executionCache for the cost), and
// puts the result in the cache. NOT_FOUND when it has no CREATED event.
func (s *Server) load(ctx context.Context, id string) (cacheEntry, error) {
	topic := s.topics.cfg.Topic(streams.TopicExecutionEvents)
	p, err := s.topics.partitionOf(ctx, topic, id)
	if err != nil {
		return cacheEntry{}, err
	}
	end, err := s.topics.stableEnd(ctx, topic, p)
	if err != nil {
		return cacheEntry{}, err
	}
	cached, hit := s.cache.get(id)
	if hit && cached.next >= end {
		return cached, nil
	}
	var e *execution.Execution
	var from int64
	if hit {
		e, from = codec.FromExecution(cached.exec), cached.next
	} else if from, err = s.topics.startOf(ctx, topic, p, id); err != nil {
		return cacheEntry{}, err
	}
	next := from
	if from < end {
		rd, err := s.topics.newReader(ctx, topic, p, from)
		if err != nil {
			return cacheEntry{}, err
		}
		defer rd.close()
		err = rd.readTo(ctx, end, func(rec *kgo.Record) error {
			if string(rec.Key) != id {
				return nil
			}
			e, err = fold(e, id, rec)
			return err
		})
		if err != nil {
			return cacheEntry{}, err
		}
		next = rd.next
	}
	if e == nil {
		return cacheEntry{}, notFound(id)
	}
	entry, err := snapshot(e, next)
	if err != nil {
		return cacheEntry{}, err
	}
	s.cache.put(entry)
	return entry, nil
}

// waitCreated waits for the first events of a new execution (its CREATED
// and what came with it), which the created tail hands over, and caches the
// execution.
func (s *Server) waitCreated(ctx context.Context, id string, created <-chan []*kgo.Record) (cacheEntry, error) {
	var recs []*kgo.Record
	select {
	case recs = <-created:
	case <-ctx.Done():
		return cacheEntry{}, ctx.Err()
	}
	var e *execution.Execution
	for _, rec := range recs {
		var err error
		if e, err = fold(e, id, rec); err != nil {
			return cacheEntry{}, err
		}
	}
	entry, err := snapshot(e, recs[len(recs)-1].Offset+1)
	if err != nil {
		return cacheEntry{}, err
	}
	s.cache.put(entry)
	return entry, nil
}

// follow calls send with every event of execution id whose seq is at least
// fromSeq, in order: first those recorded, then the new ones as they come. It
// returns nil after the event that makes the execution terminal, at once
// after the recorded events when it has ended already. When the execution
// has no event recorded and none comes within notFoundWait (counted from the
// call), it returns NOT_FOUND.
func (s *Server) follow(ctx context.Context, id string, fromSeq int64, notFoundWait time.Duration, send func(*kitev1.ExecutionEvent) error) error {
	deadline := time.Now().Add(notFoundWait)
	topic := s.topics.cfg.Topic(streams.TopicExecutionEvents)
	p, err := s.topics.partitionOf(ctx, topic, id)
	if err != nil {
		return err
	}
	end, err := s.topics.stableEnd(ctx, topic, p)
	if err != nil {
		return err
	}

	var (
		from  int64
		seen  bool // an event of the execution was read (or is in the cache)
		last  int64
		state kitev1.State
	)
	if c, ok := s.cache.get(id); ok && fromSeq > c.exec.GetSeq() {
		// Every event before fromSeq is folded in the cache: read on from
		// where it stopped.
		from, seen, last, state = c.next, true, c.exec.GetSeq(), c.exec.GetState()
	} else if from, err = s.topics.startOf(ctx, topic, p, id); err != nil {
		return err
	}
	ended := func() bool { return seen && codec.FromState(state).Terminal() }
	if from >= end && ended() {
		return nil
	}

	rd, err := s.topics.newReader(ctx, topic, p, from)
	if err != nil {
		return err
	}
	defer rd.close()
	for {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if rd.next >= end && !seen {
			pollCtx, cancel = context.WithDeadline(ctx, deadline)
		}
		recs, err := rd.poll(pollCtx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && pollCtx.Err() != nil {
				return status.Errorf(codes.NotFound, "execution %s not found: it has no event, and none came within %s", id, notFoundWait)
			}
			return err
		}
		for _, rec := range recs {
			if string(rec.Key) == id {
				ev, err := decodeEvent(id, rec)
				if err != nil {
					return err
				}
				if ev.GetSeq() <= last {
					continue
				}
				seen, last = true, ev.GetSeq()
				switch ev.GetType() {
				case kitev1.EventType_EVENT_TYPE_CREATED:
					state = ev.GetExecution().GetState()
				case kitev1.EventType_EVENT_TYPE_STATE:
					state = ev.GetState()
				}
				if ev.GetSeq() >= fromSeq {
					if err := send(ev); err != nil {
						return err
					}
				}
			}
			// Past the records recorded when follow began, the first
			// terminal state ends it; before, a later restart may follow.
			if rec.Offset+1 >= end && ended() {
				return nil
			}
		}
		if rd.next >= end && ended() {
			return nil
		}
	}
}
