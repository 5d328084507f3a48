package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	"github.com/kiteflow/kite/streams"
)

// Errors of the TriggerService's reads and commands, translated to gRPC
// status codes by the service.
var (
	// ErrNotFound: the trigger does not exist.
	ErrNotFound = errors.New("trigger not found")
	// ErrInvalid: the request is wrong (e.g. a backfill of a trigger that
	// is not a schedule, or a range without ticks).
	ErrInvalid = errors.New("invalid trigger request")
	// ErrBackfillRunning: a backfill of the trigger is in progress.
	ErrBackfillRunning = errors.New("a backfill of the trigger is in progress")
	// ErrUnavailable: the triggers could not be read or the command
	// written in time.
	ErrUnavailable = errors.New("triggers unavailable")
)

// syncTimeout bounds how long a request waits for the view to catch up
// with the triggers topic.
const syncTimeout = 10 * time.Second

// stateView holds the triggers topic in memory: the latest state of every
// trigger, read with a read_committed consumer (no group) from the start of
// the topic.
type stateView struct {
	topic  string
	client *kgo.Client
	log    *zap.Logger

	mu      sync.Mutex
	states  map[string]*eventv1.TriggerState // by streams.TriggerKey
	next    map[int32]int64                  // the next offset to read, by partition
	changed chan struct{}                    // closed and replaced when next moves
}

func newStateView(topic string, client *kgo.Client, log *zap.Logger) *stateView {
	return &stateView{topic: topic, client: client, log: log,
		states: map[string]*eventv1.TriggerState{}, next: map[int32]int64{}, changed: make(chan struct{})}
}

// run reads the topic until ctx ends.
func (v *stateView) run(ctx context.Context) error {
	for {
		fetches := v.client.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("trigger states: kafka client closed")
		}
		fetches.EachError(func(topic string, p int32, err error) {
			v.log.Warn("fetching trigger states", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
		})
		v.mu.Lock()
		fetches.EachRecord(v.install)
		close(v.changed)
		v.changed = make(chan struct{})
		v.mu.Unlock()
	}
}

// install applies one record; v.mu is held.
func (v *stateView) install(r *kgo.Record) {
	v.next[r.Partition] = r.Offset + 1
	if r.Attrs.IsControl() {
		return
	}
	key, value, ok := streams.DecodeChangelog(r)
	if !ok {
		return // a timer of the scheduler
	}
	if value == nil {
		delete(v.states, string(key))
		return
	}
	st := &eventv1.TriggerState{}
	if err := proto.Unmarshal(value, st); err != nil {
		v.log.Warn("skipping a triggers record that is not a kite.event.v1.TriggerState", zap.ByteString("key", key),
			zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset), zap.Error(err))
		return
	}
	v.states[string(key)] = st
}

// sync waits until the view has read every record committed to the topic
// before the call, so that a request sees the states the scheduler wrote
// before it.
func (v *stateView) sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	target, err := v.endOffsets(ctx)
	for err != nil {
		// A topic just created may not have its partition leaders yet.
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
		target, err = v.endOffsets(ctx)
	}
	for {
		v.mu.Lock()
		caughtUp := true
		for p, end := range target {
			if v.next[p] < end {
				caughtUp = false
				break
			}
		}
		changed := v.changed
		v.mu.Unlock()
		if caughtUp {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: reading topic %s: %w", ErrUnavailable, v.topic, ctx.Err())
		}
	}
}

// endOffsets returns, by partition, the offset to read up to: the
// read_committed end offset, or 0 for a partition that holds no record.
func (v *stateView) endOffsets(ctx context.Context) (map[int32]int64, error) {
	adm := kadm.NewClient(v.client)
	ends, err := adm.ListCommittedOffsets(ctx, v.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: listing the end offsets of topic %s: %w", ErrUnavailable, v.topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, v.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: listing the start offsets of topic %s: %w", ErrUnavailable, v.topic, err)
	}
	target := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if st, ok := starts.Lookup(o.Topic, o.Partition); ok && st.Offset >= o.Offset {
			return // nothing to read
		}
		target[o.Partition] = o.Offset
	})
	return target, nil
}

// get returns a copy of a trigger's state.
func (v *stateView) get(namespace, flowID, triggerID string) (*eventv1.TriggerState, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	st, ok := v.states[streams.TriggerKey(namespace, flowID, triggerID)]
	if !ok {
		return nil, fmt.Errorf("trigger %s of flow %s.%s: %w", triggerID, namespace, flowID, ErrNotFound)
	}
	return proto.CloneOf(st), nil
}

// list returns copies of the states of the triggers of the flows of the
// namespaces under a prefix (of the one flow, when flowID is set), ordered
// by namespace, flow id and trigger id.
func (v *stateView) list(namespacePrefix, flowID string) []*eventv1.TriggerState {
	v.mu.Lock()
	var out []*eventv1.TriggerState
	for _, st := range v.states {
		ns := st.GetNamespace()
		switch {
		case flowID != "" && (ns != namespacePrefix || st.GetFlowId() != flowID):
			continue
		case namespacePrefix != "" && ns != namespacePrefix && !strings.HasPrefix(ns, namespacePrefix+"."):
			continue
		}
		out = append(out, proto.CloneOf(st))
	}
	v.mu.Unlock()
	slices.SortFunc(out, func(a, b *eventv1.TriggerState) int {
		return compareTrigger(a, b.GetNamespace(), b.GetFlowId(), b.GetTriggerId())
	})
	return out
}

// compareTrigger orders a trigger against a namespace, flow id and trigger id.
func compareTrigger(st *eventv1.TriggerState, namespace, flowID, triggerID string) int {
	if c := strings.Compare(st.GetNamespace(), namespace); c != 0 {
		return c
	}
	if c := strings.Compare(st.GetFlowId(), flowID); c != 0 {
		return c
	}
	return strings.Compare(st.GetTriggerId(), triggerID)
}
