package streams

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// Processor handles the records of one partition. It is called from one
// goroutine at a time for a given partition.
type Processor interface {
	// Process handles one input record. Its state changes and outputs take
	// effect only if the transaction that holds them commits; an error sends
	// the record to the dead-letter topic (its changes discarded) and the
	// partition moves on.
	Process(pc *PartitionContext, rec *kgo.Record) error
	// Timer handles a timer set with PartitionContext.SetTimer that is due.
	Timer(pc *PartitionContext, key []byte, due time.Time) error
}

// AppConfig says what an App consumes and where it keeps its state.
type AppConfig struct {
	// Group is the consumer group and the transactional id prefix of the app.
	Group string
	// Inputs are the co-partitioned input topics.
	Inputs []string
	// Changelog is the compacted topic holding the state, partitioned like
	// the inputs.
	Changelog string
	// DeadLetter receives the records that could not be processed.
	DeadLetter string
	// NewStore makes the store of a partition (nil: in memory).
	NewStore func(partition int32) (Store, error)
	// InstanceID tells instances of one group apart: it names the
	// transactional id.
	InstanceID string
	// StaticMembership makes InstanceID the group instance id: an instance
	// that restarts (a crashed pod coming back under its name) takes its
	// partitions back at once instead of waiting for its old session to time
	// out; but a stopped instance keeps its partitions until then, so it
	// suits fixed sets of instances (a StatefulSet), not scaling down.
	StaticMembership bool
	// MaxPollRecords bounds a batch (default 1000).
	MaxPollRecords int
	// TimerInterval is how often due timers are looked for (default 100ms).
	TimerInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnCommit, when set, is told of each committed transaction: how long
	// ending it took and how many input records it held (for metrics).
	OnCommit func(took time.Duration, records int)
}

// App is an exactly-once processor of co-partitioned topics: for each
// polled batch it processes the records in order, writes their state
// changes to the partition's store and to the changelog, produces their
// outputs, and commits the consumed offsets, all in one Kafka transaction.
// State changes reach the in-memory store only once the transaction has
// committed, so an aborted batch (a crash, a rebalance) replays against the
// state as of the last commit.
type App struct {
	cfg     AppConfig
	proc    Processor
	log     *zap.Logger
	metrics appMetrics
	sess    *kgo.GroupTransactSession
	restore *kgo.Client // reads changelogs on assignment

	closeOnce sync.Once

	mu    sync.Mutex
	parts map[int32]*partition // owned partitions
	// assigned and revoked are filled by the group callbacks and applied
	// by the poll loop.
	assigned map[int32]bool
}

type partition struct {
	id       int32
	store    Store
	restored bool
}

// NewApp builds an App from the client options of Config.ClientOpts.
func NewApp(cfg AppConfig, proc Processor, logger *zap.Logger, clientOpts []kgo.Opt) (*App, error) {
	if cfg.Group == "" || len(cfg.Inputs) == 0 || cfg.Changelog == "" || cfg.DeadLetter == "" {
		return nil, errors.New("streams app: group, inputs, changelog and dead-letter topics are required")
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 1000
	}
	if cfg.TimerInterval <= 0 {
		cfg.TimerInterval = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewStore == nil {
		cfg.NewStore = func(int32) (Store, error) { return NewMemoryStore(), nil }
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	a := &App{cfg: cfg, proc: proc, log: logger.Named("streams").With(zap.String("group", cfg.Group)),
		metrics: newAppMetrics(cfg.Group), parts: map[int32]*partition{}, assigned: map[int32]bool{}}
	txnID := cfg.Group + "-" + cfg.InstanceID
	opts := append([]kgo.Opt(nil), clientOpts...)
	if cfg.StaticMembership && cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Inputs...),
		// The inputs are co-partitioned and the state is per partition
		// number: partition p of every input must go to the same
		// instance. The range balancer assigns each topic's partitions
		// to the members sorted, in the same ranges for topics of the
		// same partition count; the default cooperative-sticky balancer
		// balances partitions across all topics and can split p
		// (TestCoPartitionedInputsStayTogether). Range is eager: a
		// rebalance revokes every partition, and their states are
		// restored again from the changelog.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.TransactionalID(txnID),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.OnPartitionsAssigned(a.onAssigned),
		kgo.OnPartitionsRevoked(a.onRevoked),
		kgo.OnPartitionsLost(a.onRevoked),
		kgo.RecordPartitioner(changelogPartitioner{changelog: cfg.Changelog}),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("streams app %s: %w", cfg.Group, err)
	}
	restore, err := kgo.NewClient(append(append([]kgo.Opt(nil), clientOpts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("streams app %s: restore client: %w", cfg.Group, err)
	}
	a.sess, a.restore = sess, restore
	return a, nil
}

// onAssigned records new partitions; the poll loop restores them before
// it processes their records.
func (a *App) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ps := range assigned {
		for _, p := range ps {
			a.assigned[p] = true
		}
	}
}

// onRevoked drops the state of partitions another instance now owns. The
// session aborts the transaction in flight.
func (a *App) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ps := range revoked {
		for _, p := range ps {
			delete(a.assigned, p)
			if part, ok := a.parts[p]; ok {
				_ = part.store.Close()
				delete(a.parts, p)
			}
		}
	}
}

// Run consumes until ctx ends, then closes the app.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	for {
		pollCtx, cancel := context.WithTimeout(ctx, a.cfg.TimerInterval)
		fetches := a.sess.PollRecords(pollCtx, a.cfg.MaxPollRecords)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("streams app: client closed")
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				a.log.Warn("fetch error", zap.String("topic", t), zap.Int32("partition", p), zap.Error(err))
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				lag := p.HighWatermark - (p.Records[n-1].Offset + 1)
				lagRecords.WithLabelValues(a.cfg.Group, p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(lag, 0)))
			}
		})
		if fetches.NumRecords() == 0 && !a.timersDue() && !a.restorePending() {
			continue
		}
		if err := a.batch(ctx, fetches); err != nil {
			if ctx.Err() != nil {
				return nil // stopped in the middle of a batch: it aborts
			}
			return err
		}
	}
}

// batch processes one poll's records and due timers in one transaction.
func (a *App) batch(ctx context.Context, fetches kgo.Fetches) error {
	if err := a.restoreAssigned(ctx); err != nil {
		return err
	}
	if err := a.sess.Begin(); err != nil {
		return fmt.Errorf("streams app %s: begin: %w", a.cfg.Group, err)
	}
	txn := &txn{app: a, ctx: ctx, pending: map[int32]*overlay{}}
	fetches.EachRecord(func(rec *kgo.Record) {
		txn.record(rec)
	})
	txn.timers()
	if txn.err != nil {
		_, _ = a.sess.End(ctx, kgo.TryAbort)
		return txn.err
	}
	start := time.Now()
	committed, err := a.sess.End(ctx, kgo.TryCommit)
	if committed {
		took := time.Since(start)
		a.metrics.observeCommit(took, fetches.NumRecords())
		if a.cfg.OnCommit != nil {
			a.cfg.OnCommit(took, fetches.NumRecords())
		}
	}
	if err != nil {
		return fmt.Errorf("streams app %s: ending the transaction: %w", a.cfg.Group, err)
	}
	if !committed {
		a.metrics.aborts.Inc()
		a.log.Info("transaction aborted; the batch will be processed again")
		return nil
	}
	return txn.apply()
}

// timersDue reports whether an owned partition has a timer due.
func (a *App) timersDue() bool {
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, part := range a.parts {
		due := false
		_ = part.store.Range(timerPrefix, func(k, _ []byte) bool {
			at, _, ok := parseTimerKey(k)
			due = ok && !at.After(now)
			return false
		})
		if due {
			return true
		}
	}
	return false
}

func (a *App) restorePending() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range a.assigned {
		if _, ok := a.parts[p]; !ok {
			return true
		}
	}
	return false
}

// changelogPartitioner writes changelog records to the partition they
// belong to (the input's) and partitions every other record by its key,
// as Kafka's default partitioner does.
type changelogPartitioner struct{ changelog string }

func (p changelogPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == p.changelog {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}

// restoreAssigned restores the stores of newly assigned partitions from the
// changelog, up to its last committed record.
func (a *App) restoreAssigned(ctx context.Context) error {
	a.mu.Lock()
	var todo []int32
	for p := range a.assigned {
		if _, ok := a.parts[p]; !ok {
			todo = append(todo, p)
		}
	}
	a.mu.Unlock()
	if len(todo) > 0 {
		// Loading the producer ID fences this instance's previous
		// incarnation and aborts its open transaction, so that the
		// restores below do not wait for it.
		if _, _, err := a.sess.Client().ProducerID(ctx); err != nil {
			return fmt.Errorf("streams app %s: initializing the transactional producer: %w", a.cfg.Group, err)
		}
	}
	for _, p := range todo {
		st, err := a.cfg.NewStore(p)
		if err != nil {
			return fmt.Errorf("streams app %s: store of partition %d: %w", a.cfg.Group, p, err)
		}
		start := time.Now()
		progress := func(n int, of int64) {
			a.log.Info("restoring partition", zap.Int32("partition", p), zap.Int("records", n), zap.Int64("of_about", of), zap.Duration("elapsed", time.Since(start)))
		}
		n, err := restoreChangelog(ctx, a.restore, a.cfg.Changelog, p, st, progress)
		if err != nil {
			_ = st.Close()
			return fmt.Errorf("streams app %s: restoring partition %d: %w", a.cfg.Group, p, err)
		}
		a.metrics.restore.Observe(time.Since(start).Seconds())
		a.metrics.restored.Add(float64(n))
		a.log.Info("partition restored", zap.Int32("partition", p), zap.Int("records", n), zap.Duration("took", time.Since(start)))
		a.mu.Lock()
		if a.assigned[p] {
			a.parts[p] = &partition{id: p, store: st, restored: true}
		} else {
			_ = st.Close()
		}
		a.mu.Unlock()
	}
	return nil
}

// Close leaves the group, ends the clients and closes the stores. It is
// idempotent.
func (a *App) Close() {
	a.closeOnce.Do(func() {
		// Closing the session calls onRevoked, which takes a.mu: the lock
		// is not held here.
		a.sess.Close()
		a.restore.Close()
		a.mu.Lock()
		defer a.mu.Unlock()
		for p, part := range a.parts {
			_ = part.store.Close()
			delete(a.parts, p)
		}
	})
}

// timer keys live in the store under a prefix no user key has: the due
// time in big-endian nanoseconds, then the key, so a prefix range lists
// timers in due order.
var timerPrefix = []byte{0, 't', 'i', 'm', 'e', 'r', 0}

func timerKey(due time.Time, key []byte) []byte {
	k := make([]byte, 0, len(timerPrefix)+8+len(key))
	k = append(k, timerPrefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(due.UnixNano()))
	return append(k, key...)
}

func parseTimerKey(k []byte) (time.Time, []byte, bool) {
	if !bytes.HasPrefix(k, timerPrefix) || len(k) < len(timerPrefix)+8 {
		return time.Time{}, nil, false
	}
	rest := k[len(timerPrefix):]
	return time.Unix(0, int64(binary.BigEndian.Uint64(rest[:8]))), rest[8:], true
}
