package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/core/execution"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	"github.com/kiteflow/kite/streams"
)

// idTimeSlack is how far before an execution id's creation time its records
// are looked for: the clocks of the API, the executor and the brokers differ a
// little, and a record's timestamp is its producer's clock.
const idTimeSlack = time.Minute

// brokerError is a failed exchange with Kafka; the API answers UNAVAILABLE.
type brokerError struct {
	what string
	err  error
}

func (e *brokerError) Error() string { return e.what + ": " + e.err.Error() }
func (e *brokerError) Unwrap() error { return e.err }

func brokerErr(what string, err error) error { return &brokerError{what: what, err: err} }

// topics reads Kite's topics for the API: the partition of a key, offsets, and
// readers of one partition. It holds the shared client; readers have their own.
type topics struct {
	cfg     streams.Config
	opts    []kgo.Opt // Deps.KafkaOpts, given to every client
	client  *kgo.Client
	admin   *kadm.Client
	timeout time.Duration
	logger  *zap.Logger

	mu     sync.Mutex
	counts map[string]int // topic → partition count

	// readers bounds the readers open at once: each is a Kafka client with
	// its own connections, and without a bound a burst of requests ran the
	// process out of file descriptors (and the embedded broker's listener
	// with it). A request waits for a slot as long as its context allows.
	readers chan struct{}
}

// errBusy says every reader slot stayed taken until the request's deadline.
var errBusy = errors.New("too many Get, Watch and Tail requests are reading Kafka at once")

// partitionOf returns the partition of topic that holds key: franz-go's
// default partitioner (murmur2 of the key, as Kafka's), which every writer of
// Kite's execution-keyed topics uses.
func (t *topics) partitionOf(ctx context.Context, topic, key string) (int32, error) {
	n, err := t.partitionCount(ctx, topic)
	if err != nil {
		return 0, err
	}
	return int32(keyPartitioner.Partition(&kgo.Record{Key: []byte(key)}, n)), nil
}

// keyPartitioner places keyed records; it holds no state for them (the
// sticky state is for records without a key), so one serves every topic
// and call. ForTopic seeds a random source each time, which showed in the
// API's CPU profile when it was called per request.
var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// partitionCount returns the partition count of topic, asked once: Kite's
// topics never change their count, since that would move keys.
func (t *topics) partitionCount(ctx context.Context, topic string) (int, error) {
	t.mu.Lock()
	n, ok := t.counts[topic]
	t.mu.Unlock()
	if ok {
		return n, nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	details, err := t.admin.ListTopics(ctx, topic)
	if err != nil {
		return 0, brokerErr("describing topic "+topic, err)
	}
	d, ok := details[topic]
	switch {
	case !ok:
		return 0, brokerErr("describing topic "+topic, errors.New("the broker did not describe it"))
	case d.Err != nil:
		return 0, brokerErr("describing topic "+topic, d.Err)
	case len(d.Partitions) == 0:
		return 0, brokerErr("describing topic "+topic, errors.New("it has no partitions"))
	}
	n = len(d.Partitions)
	t.mu.Lock()
	t.counts[topic] = n
	t.mu.Unlock()
	return n, nil
}

// stableEnd returns the last stable offset of a partition: every record below
// it is committed or aborted, so a read-committed reader reaches it without
// waiting for an open transaction.
func (t *topics) stableEnd(ctx context.Context, topic string, p int32) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	listed, err := t.admin.ListCommittedOffsets(ctx, topic)
	return pickOffset(listed, err, topic, p, "listing the stable end offset")
}

// highWatermark returns the end of partition p, transactions still open
// included: a read_committed reader gets there once they have ended.
func (t *topics) highWatermark(ctx context.Context, topic string, p int32) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	listed, err := t.admin.ListEndOffsets(ctx, topic)
	return pickOffset(listed, err, topic, p, "listing the end offset")
}

// startOf returns the offset to read the records of execution id from: the
// first at or after its creation time (less idTimeSlack), or the partition's
// start when the id carries no time.
func (t *topics) startOf(ctx context.Context, topic string, p int32, id string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	created, ok := execution.ExecutionIDTime(id)
	if !ok {
		listed, err := t.admin.ListStartOffsets(ctx, topic)
		return pickOffset(listed, err, topic, p, "listing the start offset")
	}
	listed, err := t.admin.ListOffsetsAfterMilli(ctx, created.Add(-idTimeSlack).UnixMilli(), topic)
	return pickOffset(listed, err, topic, p, "listing offsets by time")
}

// pickOffset picks partition p out of a kadm listing.
func pickOffset(listed kadm.ListedOffsets, err error, topic string, p int32, what string) (int64, error) {
	what = fmt.Sprintf("%s of %s[%d]", what, topic, p)
	if err != nil {
		return 0, brokerErr(what, err)
	}
	o, ok := listed.Lookup(topic, p)
	switch {
	case !ok:
		return 0, brokerErr(what, errors.New("the broker did not list it"))
	case o.Err != nil:
		return 0, brokerErr(what, o.Err)
	case o.Offset < 0:
		return 0, brokerErr(what, fmt.Errorf("the broker answered offset %d", o.Offset))
	}
	return o.Offset, nil
}

// produceCommand writes a command to the commands topic, keyed by its
// execution id, and returns once the brokers acknowledged it (acks=all).
func (t *topics) produceCommand(ctx context.Context, cmd *eventv1.Command) error {
	var b [16]byte
	_, _ = rand.Read(b[:])
	cmd.CommandId = hex.EncodeToString(b[:])
	cmd.Time = timestamppb.Now()
	value, err := proto.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("encoding command for execution %s: %w", cmd.GetExecutionId(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	rec := &kgo.Record{Topic: t.cfg.Topic(streams.TopicCommands), Key: []byte(cmd.GetExecutionId()), Value: value}
	if err := t.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return brokerErr("producing a command for execution "+cmd.GetExecutionId(), err)
	}
	return nil
}

// reader reads one partition from an offset, read committed. It is a client
// of its own (direct partition consuming, no group): one per Get, Watch or
// Tail, closed by its user.
type reader struct {
	client    *kgo.Client
	topic     string
	partition int32
	logger    *zap.Logger
	// next is the offset after the last record read, control records
	// included: every record below it was seen.
	next int64
	// release gives the reader's slot back (topics.readers).
	release func()
}

// newReader starts a reader of topic[p] at offset from.
func (t *topics) newReader(ctx context.Context, topic string, p int32, from int64) (*reader, error) {
	// Give up a little before the request's deadline, so that the client
	// hears why rather than its own deadline.
	wait := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wait, cancel = context.WithDeadline(ctx, dl.Add(-100*time.Millisecond))
		defer cancel()
	}
	select {
	case t.readers <- struct{}{}:
	case <-wait.Done():
		if err := ctx.Err(); err != nil {
			return nil, err // the request itself ended (cancelled, shutting down)
		}
		return nil, fmt.Errorf("%w (%d); retry later", errBusy, cap(t.readers))
	}
	rd, err := t.openReader(topic, p, from)
	if err != nil {
		<-t.readers
		return nil, err
	}
	rd.release = func() { <-t.readers }
	return rd, nil
}

func (t *topics) openReader(topic string, p int32, from int64) (*reader, error) {
	opts := append([]kgo.Opt{}, t.opts...)
	opts = append(opts,
		kgo.ClientID(t.cfg.ClientID+"-api-reader"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers take offsets too: seeing them is how the reader
		// knows it reached an offset whose last record is a marker.
		kgo.KeepControlRecords(),
	)
	// A reader per request: its client's life (metadata, assignment) is no
	// news at the info level.
	quiet := t.logger.Named("reader").WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	opts, err := t.cfg.ClientOpts(quiet, opts...)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting a reader of %s[%d]: %w", topic, p, err)
	}
	return &reader{client: cl, topic: topic, partition: p, logger: t.logger, next: from}, nil
}

// poll waits for the next records and returns those that are data (not
// transaction markers), in offset order. It returns ctx's error when ctx ends.
func (r *reader) poll(ctx context.Context) ([]*kgo.Record, error) {
	fetches := r.client.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var errs []error
	fetches.EachError(func(topic string, p int32, err error) {
		var loss *kgo.ErrDataLoss
		if errors.As(err, &loss) {
			// Retention removed records before the reader got to them; it
			// goes on from the new start, which is all there is to read.
			r.logger.Warn("records were deleted before they were read", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
			return
		}
		errs = append(errs, err)
	})
	if len(errs) > 0 {
		return nil, brokerErr(fmt.Sprintf("reading %s[%d]", r.topic, r.partition), errors.Join(errs...))
	}
	var out []*kgo.Record
	fetches.EachRecord(func(rec *kgo.Record) {
		r.next = rec.Offset + 1
		if !rec.Attrs.IsControl() {
			out = append(out, rec)
		}
	})
	return out, nil
}

// readTo reads until every record below end was seen, calling fn for each
// data record.
func (r *reader) readTo(ctx context.Context, end int64, fn func(*kgo.Record) error) error {
	for r.next < end {
		recs, err := r.poll(ctx)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *reader) close() {
	r.client.Close()
	if r.release != nil {
		r.release()
	}
}
