package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/kiteflow/kite/streams"
)

// createdTail is the API's one reader of execution-events for Create: a
// Create registers the id of its new execution, writes the create command,
// and waits here for the first event of that id, the executor's CREATED.
//
// Each Create used to open a Kafka client of its own to read that event: a
// connection, metadata and fetches per call, plus a listing of the stable
// end offsets. Under `make bench` that was a fifth of the API's CPU and
// made the broker set up a connection per execution.
type createdTail struct {
	topics *topics
	topic  string
	log    *zap.Logger

	// ready is closed once the tail reads from the end offsets it listed:
	// from then on it sees every record written.
	ready chan struct{}

	mu      sync.Mutex
	waiters map[string]chan []*kgo.Record // by execution id; buffered, one send
}

func newCreatedTail(t *topics, log *zap.Logger) *createdTail {
	return &createdTail{topics: t, topic: t.cfg.Topic(streams.TopicExecutionEvents), log: log.Named("created"),
		ready: make(chan struct{}), waiters: map[string]chan []*kgo.Record{}}
}

// expect registers id before its command is written; the channel receives
// the records of id in the first fetch that has any (what the executor's
// first transaction wrote of it, CREATED first). The caller calls forget
// when it stops waiting.
func (c *createdTail) expect(id string) <-chan []*kgo.Record {
	ch := make(chan []*kgo.Record, 1)
	c.mu.Lock()
	c.waiters[id] = ch
	c.mu.Unlock()
	return ch
}

func (c *createdTail) forget(id string) {
	c.mu.Lock()
	delete(c.waiters, id)
	c.mu.Unlock()
}

// waitReady waits until the tail reads, or ctx ends.
func (c *createdTail) waitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the API is not reading %s yet (is Kafka reachable?): %w", c.topic, ctx.Err())
	}
}

// run reads the topic from its end offsets until ctx ends, handing each
// record whose id is expected to its waiter. It retries the listing while
// the brokers cannot answer.
func (c *createdTail) run(ctx context.Context) error {
	var ends kadm.ListedOffsets
	for {
		lctx, cancel := context.WithTimeout(ctx, c.topics.timeout)
		listed, err := c.topics.admin.ListEndOffsets(lctx, c.topic)
		cancel()
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			ends = listed
			break
		}
		c.log.Warn("listing the end offsets to read new executions from; retrying", zap.String("topic", c.topic), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { from[o.Partition] = kgo.NewOffset().At(o.Offset) })
	opts := append([]kgo.Opt{}, c.topics.opts...)
	opts = append(opts,
		kgo.ClientID(c.topics.cfg.ClientID+"-api-created"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	opts, err := c.topics.cfg.ClientOpts(c.log, opts...)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("starting the reader of %s: %w", c.topic, err)
	}
	defer cl.Close()
	close(c.ready)
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			var loss *kgo.ErrDataLoss
			if !errors.As(err, &loss) && !errors.Is(err, context.Canceled) {
				c.log.Warn("reading new executions' events", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
			}
		})
		c.mu.Lock()
		if len(c.waiters) > 0 {
			found := map[string][]*kgo.Record{}
			fetches.EachRecord(func(rec *kgo.Record) {
				if _, ok := c.waiters[string(rec.Key)]; ok {
					found[string(rec.Key)] = append(found[string(rec.Key)], rec)
				}
			})
			for id, recs := range found {
				c.waiters[id] <- recs
				delete(c.waiters, id)
			}
		}
		c.mu.Unlock()
	}
}
