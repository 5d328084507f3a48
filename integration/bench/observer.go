// Package bench measures a running Kite end to end; it is the library of
// `kite bench` (cmd/kite/bench.go, `make bench`). An open-loop load generator
// creates executions through the gRPC API at fixed rates, and one consumer of
// the execution-events topic sees each of them end: the latency of an
// execution is the time from its Create call's scheduled start to its
// terminal event observed. A probe samples the processes' CPU and memory and
// the indexer's projection lag meanwhile, and the brokers' log dirs give the
// bytes a run wrote to Kafka. The file benchmark (`make bench-files`) is
// files_test.go.
package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// Milestones of an execution of the two-task flow, in the order they
// happen: the first time the observer saw each.
const (
	msCreated       = iota // its CREATED event
	msFirstRunning         // the first task run took RUNNING
	msFirstEnded           // the first task run ended
	msSecondRunning        // the second task run took RUNNING
	msSecondEnded          // the second task run ended
	msEnded                // the execution ended (terminal STATE event)
	numMilestones
)

// trace is what the generator and the observer know of one execution.
type trace struct {
	registered bool
	start      time.Time // the Create call's scheduled start
	returned   time.Time // Create returned

	seen    [numMilestones]time.Time
	written time.Time // the terminal event's record timestamp (its producer's clock)
	state   kitev1.State

	first, second string // task run ids, in creation order
	taskRuns      int    // TASK_RUN_CREATED events seen
}

func (t *trace) ended() bool { return !t.seen[msEnded].IsZero() }

// Observer follows the execution events of every execution: the generator
// registers each execution it created, and the observer records when each
// of its milestones was seen. Events may come before their execution is
// registered (Create answers once the CREATED event is recorded, and a fast
// execution may end before the answer arrives): the observer keeps them.
type Observer struct {
	mu     sync.Mutex
	traces map[string]*trace
	last   time.Time // when the last event was seen
	// wake receives (without blocking) when a registered execution ends.
	wake chan struct{}
}

// NewObserver returns an observer with nothing seen.
func NewObserver() *Observer {
	return &Observer{traces: map[string]*trace{}, wake: make(chan struct{}, 1)}
}

func (o *Observer) get(id string) *trace {
	t, ok := o.traces[id]
	if !ok {
		t = &trace{}
		o.traces[id] = t
	}
	return t
}

// register records an execution the generator created.
func (o *Observer) register(id string, start, returned time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.get(id)
	t.registered, t.start, t.returned = true, start, returned
	if t.ended() {
		o.notify()
	}
}

func (o *Observer) notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// observe records an event of an execution, seen at now; written is when its
// record was produced (zero when unknown).
func (o *Observer) observe(now time.Time, ev *kitev1.ExecutionEvent, written time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last = now
	t := o.get(ev.GetExecutionId())
	mark := func(ms int) {
		if t.seen[ms].IsZero() {
			t.seen[ms] = now
		}
	}
	switch ev.GetType() {
	case kitev1.EventType_EVENT_TYPE_CREATED:
		mark(msCreated)
	case kitev1.EventType_EVENT_TYPE_TASK_RUN_CREATED:
		t.taskRuns++
		switch id := ev.GetTaskRun().GetId(); {
		case t.first == "":
			t.first = id
		case t.second == "" && id != t.first:
			t.second = id
		}
	case kitev1.EventType_EVENT_TYPE_TASK_RUN_STATE:
		running, ended := msFirstRunning, msFirstEnded
		switch ev.GetTaskRunId() {
		case t.first:
		case t.second:
			running, ended = msSecondRunning, msSecondEnded
		default:
			return
		}
		switch st := ev.GetState(); {
		case st == kitev1.State_STATE_RUNNING:
			mark(running)
		case codec.FromState(st).Terminal():
			mark(ended)
		}
	case kitev1.EventType_EVENT_TYPE_STATE:
		if codec.FromState(ev.GetState()).Terminal() && !t.ended() {
			t.seen[msEnded], t.written, t.state = now, written, ev.GetState()
			if t.registered {
				o.notify()
			}
		}
	}
}

// wait waits until every execution of ids has ended, or until deadline or
// ctx ends; it returns how many had not ended.
func (o *Observer) wait(ctx context.Context, ids []string, deadline time.Time) int {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		o.mu.Lock()
		left := 0
		for _, id := range ids {
			if !o.get(id).ended() {
				left++
			}
		}
		o.mu.Unlock()
		if left == 0 {
			return 0
		}
		select {
		case <-o.wake:
		case <-timer.C:
			return left
		case <-ctx.Done():
			return left
		}
	}
}

// waitQuiet waits until no event has been seen for quiet, for at most limit;
// it reports whether that happened. After an overloaded step it tells when
// every execution has ended, those whose Create failed (so unknown here)
// included.
func (o *Observer) waitQuiet(ctx context.Context, quiet, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		o.mu.Lock()
		idle := time.Since(o.last)
		o.mu.Unlock()
		if idle >= quiet {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		timer.Reset(quiet - idle)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return false
		}
	}
}

// running returns the ids of the executions registered that have not
// ended.
func (o *Observer) running() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ids []string
	for id, t := range o.traces {
		if t.registered && !t.ended() {
			ids = append(ids, id)
		}
	}
	return ids
}

// snapshot returns a copy of the traces of ids.
func (o *Observer) snapshot(ids []string) []trace {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]trace, len(ids))
	for i, id := range ids {
		out[i] = *o.get(id)
	}
	return out
}

// EventsReader is the observer's one consumer of the execution-events topic:
// read committed (as every reader of Kite's events), every partition, from
// the end offsets listed when it is made, so that it sees every event
// written after that.
type EventsReader struct {
	cl *kgo.Client
}

// NewEventsReader starts a reader of topic on brokers at its current end.
func NewEventsReader(ctx context.Context, brokers []string, topic string) (*EventsReader, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	at := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { at[o.Partition] = kgo.NewOffset().At(o.Offset) })
	if len(at) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions", topic)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("kite-bench-observer"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: at}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return nil, err
	}
	return &EventsReader{cl: cl}, nil
}

// Run feeds every event read to o until ctx ends; it returns a fetch error
// or an event that does not decode.
func (r *EventsReader) Run(ctx context.Context, o *Observer) error {
	for {
		fetches := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		var errs []error
		fetches.EachError(func(topic string, p int32, err error) {
			errs = append(errs, fmt.Errorf("reading %s[%d]: %w", topic, p, err))
		})
		fetches.EachRecord(func(rec *kgo.Record) {
			ev := &kitev1.ExecutionEvent{}
			if err := proto.Unmarshal(rec.Value, ev); err != nil {
				errs = append(errs, fmt.Errorf("decoding the event at %s[%d]@%d: %w", rec.Topic, rec.Partition, rec.Offset, err))
				return
			}
			o.observe(now, ev, rec.Timestamp)
		})
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
}

// Close ends the reader's client.
func (r *EventsReader) Close() { r.cl.Close() }
