// Package indexer is the indexer role: it projects Kite's Kafka topics
// (execution events, the executor's state changelog, logs, flows and
// triggers) into the repository (core/repository), so that everything that
// happened can be searched.
//
// Contract:
//   - Instances share the work by partition through a consumer group named
//     after the repository's generation: a new, empty repository (deleted
//     indices, a new data dir) has a new generation, so it is rebuilt from
//     the topics' start.
//   - A poll's documents are written with Sink.Write, retried with backoff
//     while the search server is down or overloaded (never skipped); the
//     poll's offsets are committed only once the write returned. A crash
//     between the two writes the same documents again, which the documents'
//     versions make harmless.
//   - A record that cannot be projected, or a document the repository
//     rejects for good (a mapping error), goes to the dead-letter topic
//     with the reason and is counted; it never stops the indexer.
package indexer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
	"github.com/kiteflow/kite/streams"
)

// Store is what the indexer writes to, and reads task runs' executions
// from.
type Store interface {
	repository.Sink
	repository.Repository
}

// Config configures the indexer.
type Config struct {
	// MaxPollRecords bounds the records projected and written at once.
	MaxPollRecords int `yaml:"max_poll_records"`
	// RetryMin and RetryMax bound the backoff between failed writes.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{MaxPollRecords: 5000, RetryMin: 100 * time.Millisecond, RetryMax: 10 * time.Second}
}

type topicNames struct {
	events, state, logs, flows, triggers, deadLetter string
}

// Indexer is the indexer role.
type Indexer struct {
	cfg    Config
	kafka  streams.Config
	store  Store
	log    *zap.Logger
	opts   []kgo.Opt
	topics topicNames
	now    func() time.Time
}

// New returns an indexer writing to store. opts are extra Kafka client
// options (metrics).
func New(cfg Config, kafka streams.Config, store Store, logger *zap.Logger, opts ...kgo.Opt) (*Indexer, error) {
	if cfg.MaxPollRecords <= 0 || cfg.RetryMin <= 0 || cfg.RetryMax < cfg.RetryMin {
		return nil, fmt.Errorf("invalid indexer config: max_poll_records must be positive and 0 < retry_min <= retry_max")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Indexer{
		cfg: cfg, kafka: kafka, store: store, log: logger.Named("indexer"), opts: opts, now: time.Now,
		topics: topicNames{
			events: kafka.Topic(streams.TopicExecutionEvents), state: kafka.Topic(streams.TopicExecutorState),
			logs: kafka.Topic(streams.TopicLogs), flows: kafka.Topic(streams.TopicFlows),
			triggers: kafka.Topic(streams.TopicTriggers), deadLetter: kafka.Topic(streams.TopicDeadLetter),
		},
	}, nil
}

// Run indexes until ctx ends; it returns nil then.
func (x *Indexer) Run(ctx context.Context) error {
	gen, err := x.generation(ctx)
	if err != nil {
		return err
	}
	group := x.kafka.TransactionalID("indexer." + gen)
	opts, err := x.kafka.ClientOpts(x.log, append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(x.topics.events, x.topics.state, x.topics.logs, x.topics.flows, x.topics.triggers),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		// A poll is written and committed before the group may rebalance,
		// so no partition's offsets are committed by an instance that lost
		// it after another wrote newer documents.
		kgo.BlockRebalanceOnPoll(),
	}, x.opts...)...)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("indexer: creating the Kafka client: %w", err)
	}
	defer cl.Close()
	x.log.Info("indexing", zap.String("group", group), zap.String("generation", gen))

	p := &projector{topics: x.topics, refs: newRefCache(100_000), flowOf: func(id string) (flowRef, bool) { return x.flowOf(ctx, id) }}
	for {
		fetches := cl.PollRecords(ctx, x.cfg.MaxPollRecords)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, part int32, err error) {
			x.log.Warn("fetch failed", zap.String("topic", topic), zap.Int32("partition", part), zap.Error(err))
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			cl.AllowRebalance()
			continue
		}
		if err := x.index(ctx, cl, p, recs); err != nil {
			cl.AllowRebalance()
			if ctx.Err() != nil {
				return nil // stopped mid-write: the poll is indexed again by whoever owns it next
			}
			return err
		}
		if err := cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
			// The documents are written; the records are indexed again
			// after a restart, harmlessly.
			x.log.Warn("committing offsets failed", zap.Error(err))
		}
		cl.AllowRebalance()
	}
}

// generation waits for the repository's generation.
func (x *Indexer) generation(ctx context.Context) (string, error) {
	delay := x.cfg.RetryMin
	for {
		gen, err := x.store.Generation(ctx)
		if err == nil {
			return gen, nil
		}
		if !errors.Is(err, repository.ErrUnavailable) {
			return "", fmt.Errorf("indexer: reading the repository's generation: %w", err)
		}
		x.log.Warn("repository unavailable, retrying", zap.Error(err), zap.Duration("in", delay))
		if !sleep(ctx, delay) {
			return "", ctx.Err()
		}
		delay = min(2*delay, x.cfg.RetryMax)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// index projects and writes one poll's records; records that cannot be
// projected and documents rejected go to the dead-letter topic.
func (x *Indexer) index(ctx context.Context, cl *kgo.Client, p *projector, recs []*kgo.Record) error {
	var (
		docs   []repository.Doc
		origin []*kgo.Record // the record of each doc
		bad    []badRecord
	)
	for _, r := range recs {
		ds, err := p.project(r)
		if err != nil {
			bad = append(bad, badRecord{rec: r, reason: err.Error()})
			continue
		}
		for range ds {
			origin = append(origin, r)
		}
		docs = append(docs, ds...)
	}
	rejected, err := x.write(ctx, docs)
	if err != nil {
		return err
	}
	for _, rj := range rejected {
		for i := range docs {
			if docs[i].Kind == rj.Doc.Kind && docs[i].ID == rj.Doc.ID && docs[i].Version == rj.Doc.Version {
				bad = append(bad, badRecord{rec: origin[i], reason: fmt.Sprintf("%s document %s rejected: %s", rj.Doc.Kind, rj.Doc.ID, rj.Reason)})
				break
			}
		}
	}
	if len(bad) > 0 {
		if err := x.deadLetter(ctx, cl, bad); err != nil {
			return err
		}
	}
	now := x.now()
	for _, r := range recs {
		projectionLag.Observe(now.Sub(r.Timestamp).Seconds())
	}
	recordsIndexed.Add(float64(len(recs)))
	docsWritten.Add(float64(len(docs) - len(rejected)))
	return nil
}

// write writes docs, retrying with backoff while the repository is
// unavailable.
func (x *Indexer) write(ctx context.Context, docs []repository.Doc) ([]repository.Rejected, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	delay := x.cfg.RetryMin
	for {
		start := time.Now()
		rejected, err := x.store.Write(ctx, docs)
		if err == nil {
			writeSeconds.Observe(time.Since(start).Seconds())
			return rejected, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		writeRetries.Inc()
		x.log.Warn("writing to the repository failed, retrying", zap.Int("documents", len(docs)), zap.Duration("in", delay), zap.Error(err))
		if !sleep(ctx, delay) {
			return nil, ctx.Err()
		}
		delay = min(2*delay, x.cfg.RetryMax)
	}
}

// deadLetter produces the bad records to the dead-letter topic, with the
// reason and where they came from in headers, before the poll's offsets
// are committed.
func (x *Indexer) deadLetter(ctx context.Context, cl *kgo.Client, bad []badRecord) error {
	out := make([]*kgo.Record, len(bad))
	for i, b := range bad {
		x.log.Error("record sent to the dead-letter topic", zap.String("topic", b.rec.Topic),
			zap.Int32("partition", b.rec.Partition), zap.Int64("offset", b.rec.Offset), zap.String("reason", b.reason))
		out[i] = &kgo.Record{Topic: x.topics.deadLetter, Key: b.rec.Key, Value: b.rec.Value, Headers: []kgo.RecordHeader{
			{Key: "kite.reason", Value: []byte(b.reason)},
			{Key: "kite.role", Value: []byte("indexer")},
			{Key: "kite.topic", Value: []byte(b.rec.Topic)},
			{Key: "kite.partition", Value: []byte(strconv.Itoa(int(b.rec.Partition)))},
			{Key: "kite.offset", Value: []byte(strconv.FormatInt(b.rec.Offset, 10))},
		}}
	}
	if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
		return fmt.Errorf("indexer: producing to the dead-letter topic: %w", err)
	}
	deadLetters.Add(float64(len(bad)))
	return nil
}

// flowOf reads the namespace and flow of an execution from the repository,
// for a task run whose execution's header this process has not seen (it
// was indexed before a restart).
func (x *Indexer) flowOf(ctx context.Context, id string) (flowRef, bool) {
	q := &query.Match{Field: repository.Schema(repository.Executions).Field("id"), Kind: query.Exact, Text: id}
	res, err := x.store.Search(ctx, repository.SearchRequest{Kind: repository.Executions, Query: q, Size: 1})
	if err != nil || len(res.Hits) == 0 {
		x.log.Debug("task run of an execution not indexed yet", zap.String("execution", id), zap.Error(err))
		return flowRef{}, false
	}
	var e repository.Execution
	if err := json.Unmarshal(res.Hits[0], &e); err != nil {
		return flowRef{}, false
	}
	return flowRef{e.Namespace, e.FlowID}, true
}

// refCache maps execution ids to their flows, bounded: when full, it is
// emptied (executions are short-lived; a miss costs one search).
type refCache struct {
	mu  sync.Mutex
	max int
	m   map[string]flowRef
}

func newRefCache(size int) *refCache { return &refCache{max: size, m: map[string]flowRef{}} }

func (c *refCache) get(id string) (flowRef, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[id]
	return r, ok
}

func (c *refCache) put(id string, r flowRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[id] = r
}
