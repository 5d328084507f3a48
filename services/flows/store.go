// Package flows keeps Kite's flows: the flows topic read into memory as a
// store of every revision (Store), and the FlowService of the public gRPC API
// on top of it (Server).
package flows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// errStopped is returned by the methods that wait for the store's consumer
// once Run has returned.
var errStopped = errors.New("the flows store is stopped")

// unavailableError marks the failures of the queue (a produce that failed, a
// store that stopped): the caller may try again.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// Store is the flows topic read into memory: every revision of every flow
// that the topic still holds, parsed once, by namespace and id.
//
// Contract:
//   - Run consumes the whole topic (every partition, from the start,
//     read_committed, no consumer group) until ctx ends. Call it once; it
//     closes the store's Kafka client when it returns, after which Apply and
//     Delete fail.
//   - Ready blocks until the store has read the topic up to its end as of
//     the start of Run. Reads before that see a partial topic; Apply and
//     Delete wait for it themselves.
//   - Reads (Flow, Get, Source, Latest, List, Revisions) never block on
//     Kafka and see every record consumed so far. They return flows that the
//     caller must not modify: a *flow.Flow is shared by every reader, while
//     the *kitev1.Flow messages are copies.
//   - Apply and Delete return once the store itself has consumed the record
//     they wrote, so a read that follows them sees it (read your writes).
//     Within one process, Applies and Deletes of one flow run one at a time,
//     so each gets its own revision number. Two processes that change the
//     same flow at the same instant may both write the same revision number;
//     every reader then keeps the record written last, as compaction will.
//   - A delete is a record with deleted set, the last revision number and the
//     last revision's source: revisions keep counting when the flow is
//     applied again, and the last revision stays readable after compaction.
//   - The topic is compacted by flow: older revisions disappear once the
//     broker compacts it. Revisions and Flow(…, revision) return the
//     revisions still held, always including the latest one.
//   - A record that cannot be read (not a Flow message, a source that no
//     longer parses) is logged and kept as far as possible; it never stops
//     the store. A revision whose source does not parse is listed but Flow
//     returns its parse error, and Latest leaves it out.
//
// Every method is safe for concurrent use.
type Store struct {
	topic  string
	parser *flow.Parser
	log    *zap.Logger
	client *kgo.Client
	now    func() time.Time

	runOnce   sync.Once
	closeOnce sync.Once
	done      chan struct{} // closed when Run returns

	locksMu sync.Mutex
	locks   map[string]*sync.Mutex // by flow key: serializes Apply and Delete

	mu      sync.RWMutex
	flows   map[string]*entry // by flow key
	next    map[int32]int64   // the next offset to read, by partition
	target  map[int32]int64   // the end offsets as of start-up; nil until listed
	ready   bool
	changed chan struct{} // closed and replaced whenever next or ready change

	// latest caches Latest's answer until a record changes a flow: the
	// executor asks for it at the end of every execution (Flow triggers).
	// Written under mu's read lock (install, which clears it, holds the
	// write lock), read without a lock.
	latest atomic.Pointer[[]*flow.Flow]
}

// entry is one flow: the last record read for it and its revisions.
type entry struct {
	last *kitev1.Flow // the last record read: a revision or a delete
	revs map[int]*revision
}

// revision is one revision of a flow, parsed.
type revision struct {
	pb   *kitev1.Flow
	flow *flow.Flow // nil when err is set
	err  error      // the source does not parse (anymore)
}

// NewStore returns a store of the flows topic of kafka
// (kafka.Topic(streams.TopicFlows)), which must exist (streams.EnsureTopics).
// parser parses the sources. extra kgo options are passed on to
// kafka.ClientOpts (e.g. streams.WithMetrics). Start it with Run.
func NewStore(kafka streams.Config, parser *flow.Parser, logger *zap.Logger, extra ...kgo.Opt) (*Store, error) {
	if parser == nil {
		return nil, errors.New("flows store: a flow parser is required")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("flows")
	topic := kafka.Topic(streams.TopicFlows)
	opts, err := kafka.ClientOpts(logger, extra...)
	if err != nil {
		return nil, fmt.Errorf("flows store: %w", err)
	}
	opts = append(opts,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (transaction markers) are read too, so that the
		// read position passes them: see caughtUp.
		kgo.KeepControlRecords(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("flows store: creating kafka client: %w", err)
	}
	return &Store{
		topic:   topic,
		parser:  parser,
		log:     logger,
		client:  client,
		now:     time.Now,
		done:    make(chan struct{}),
		locks:   map[string]*sync.Mutex{},
		flows:   map[string]*entry{},
		next:    map[int32]int64{},
		changed: make(chan struct{}),
	}, nil
}

// key is the record key of a flow on the flows topic, "namespace/id" (the
// value is a kitev1.Flow). It belongs with the other topic layouts in
// streams, where it can move once streams names the flows key.
func key(namespace, id string) string { return namespace + "/" + id }

// Run reads the flows topic until ctx ends; it returns nil then, or the error
// that stopped it. It closes the store's client when it returns.
func (s *Store) Run(ctx context.Context) error {
	err := errors.New("flows store: Run called twice")
	s.runOnce.Do(func() {
		defer close(s.done)
		defer s.Close()
		err = s.run(ctx)
	})
	return err
}

func (s *Store) run(ctx context.Context) error {
	target, err := s.endOffsets(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.mu.Lock()
	s.target = target
	s.advanced()
	s.mu.Unlock()
	s.log.Info("reading flows", zap.String("topic", s.topic), zap.Int("partitions", len(target)))

	for {
		fetches := s.client.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("flows store: kafka client closed")
		}
		fetches.EachError(func(topic string, p int32, err error) {
			s.log.Warn("fetching flows", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
		})
		var batch []read
		fetches.EachRecord(func(r *kgo.Record) { batch = append(batch, s.read(r)) })
		if len(batch) == 0 {
			continue
		}
		s.mu.Lock()
		for _, r := range batch {
			s.install(r)
		}
		s.advanced()
		s.mu.Unlock()
	}
}

// endOffsets returns, by partition, the offset the store must read up to
// before it is ready: the read_committed end offset, or 0 for a partition
// that holds no record.
func (s *Store) endOffsets(ctx context.Context) (map[int32]int64, error) {
	adm := kadm.NewClient(s.client)
	ends, err := adm.ListCommittedOffsets(ctx, s.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("flows store: listing the end offsets of topic %s (does it exist? streams.EnsureTopics creates it): %w", s.topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, s.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("flows store: listing the start offsets of topic %s: %w", s.topic, err)
	}
	target := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if st, ok := starts.Lookup(o.Topic, o.Partition); ok && st.Offset >= o.Offset {
			target[o.Partition] = 0 // nothing to read
			return
		}
		target[o.Partition] = o.Offset
	})
	return target, nil
}

// read is one record decoded and parsed, outside the store's lock.
type read struct {
	partition int32
	offset    int64
	key       string
	control   bool
	pb        *kitev1.Flow // nil: a tombstone, or a record that could not be decoded
	rev       *revision    // the revision the record holds, if any
}

func (s *Store) read(r *kgo.Record) read {
	out := read{partition: r.Partition, offset: r.Offset, key: string(r.Key), control: r.Attrs.IsControl()}
	if out.control || r.Value == nil {
		return out
	}
	log := s.log.With(zap.String("key", out.key), zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset))
	var pb kitev1.Flow
	if err := proto.Unmarshal(r.Value, &pb); err != nil {
		log.Warn("skipping a flows record that is not a kite.v1.Flow", zap.Error(err))
		out.key = "" // not installed
		return out
	}
	if k := key(pb.GetNamespace(), pb.GetId()); k != out.key {
		log.Warn("skipping a flows record whose key is not its namespace/id", zap.String("flow_key", k))
		out.key = ""
		return out
	}
	out.pb = &pb
	if pb.GetSource() == "" {
		return out
	}
	rev := &revision{pb: proto.CloneOf(&pb)}
	rev.pb.Deleted = false
	f, err := s.parser.Parse("", []byte(pb.GetSource()))
	switch {
	case err != nil:
		rev.err = fmt.Errorf("flow %s revision %d: %w", out.key, pb.GetRevision(), err)
		log.Warn("a stored flow revision does not parse", zap.Int32("revision", pb.GetRevision()), zap.Error(err))
	case f.Namespace != pb.GetNamespace() || f.ID != pb.GetId():
		rev.err = fmt.Errorf("flow %s revision %d: its source names flow %s: %w", out.key, pb.GetRevision(), key(f.Namespace, f.ID), flow.ErrInvalidFlow)
		log.Warn("a stored flow revision names another flow", zap.Error(rev.err))
	default:
		f.Revision = int(pb.GetRevision())
		rev.flow = f
	}
	out.rev = rev
	return out
}

// install applies one read record to the store. s.mu is held.
func (s *Store) install(r read) {
	s.next[r.partition] = max(s.next[r.partition], r.offset+1)
	if !r.control && r.key != "" {
		s.latest.Store(nil)
	}
	switch {
	case r.control || r.key == "":
	case r.pb == nil:
		// Kite writes no tombstones; one written by hand forgets the flow, as
		// compaction will.
		delete(s.flows, r.key)
		s.log.Info("a tombstone removed a flow", zap.String("key", r.key))
	default:
		e := s.flows[r.key]
		if e == nil {
			e = &entry{revs: map[int]*revision{}}
			s.flows[r.key] = e
		}
		if e.last != nil && r.pb.GetRevision() < e.last.GetRevision() {
			s.log.Warn("a flow revision older than the latest was written",
				zap.String("key", r.key), zap.Int32("revision", r.pb.GetRevision()), zap.Int32("latest", e.last.GetRevision()))
		}
		e.last = r.pb
		n := int(r.pb.GetRevision())
		if _, held := e.revs[n]; r.rev != nil && (!r.pb.GetDeleted() || !held) {
			e.revs[n] = r.rev
		}
	}
}

// advanced recomputes ready and wakes the waiters. s.mu is held.
func (s *Store) advanced() {
	if !s.ready && s.target != nil {
		s.ready = s.caughtUp(s.target)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// caughtUp reports whether the store has read every partition up to the
// given offsets. Reading the record at end-1 is enough: the record before
// the end of a partition is never compacted away, since compaction keeps the
// latest record of each key and Kite writes no tombstones here, and control
// records are read too. s.mu is held.
func (s *Store) caughtUp(ends map[int32]int64) bool {
	for p, end := range ends {
		if s.next[p] < end {
			return false
		}
	}
	return true
}

// wait blocks until cond, called with s.mu held for reading, is true.
func (s *Store) wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.RLock()
		ok, changed := cond(), s.changed
		s.mu.RUnlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return &unavailableError{errStopped}
		}
	}
}

// Ready blocks until the store has read the flows topic up to its end as of
// the start of Run, ctx ends, or Run returns.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.wait(ctx, func() bool { return s.ready }); err != nil {
		return fmt.Errorf("waiting for the flows store to read the flows topic: %w", err)
	}
	return nil
}

// Close releases the store's Kafka client. Run calls it when it returns; it
// is idempotent.
func (s *Store) Close() {
	s.closeOnce.Do(s.client.Close)
}

// Validate parses source and returns every problem found in it, errors and
// warnings, in source order; none when the flow is valid.
func (s *Store) Validate(source string) flow.Diagnostics {
	f, err := s.parser.Parse("", []byte(source))
	if err == nil {
		return f.Warnings
	}
	var diags flow.Diagnostics
	if errors.As(err, &diags) {
		return diags
	}
	return flow.Diagnostics{{Message: err.Error()}}
}

// Flow returns the parsed flow at revision, or its latest revision when
// revision is 0. The latest revision of a deleted flow is not found; a given
// revision is, as long as the topic holds it (executions of a deleted flow
// still run). The error wraps flow.ErrNotFound when the flow or the revision
// is unknown, and flow.ErrInvalidFlow when the revision's source does not
// parse.
func (s *Store) Flow(namespace, id string, revision int) (*flow.Flow, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rev, err := s.revision(namespace, id, revision)
	if err != nil {
		return nil, err
	}
	if rev.err != nil {
		return nil, rev.err
	}
	return rev.flow, nil
}

// Get returns the stored record of a flow revision, as Flow does. Deleted
// is set on every revision of a deleted flow.
func (s *Store) Get(namespace, id string, revision int) (*kitev1.Flow, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rev, err := s.revision(namespace, id, revision)
	if err != nil {
		return nil, err
	}
	return s.message(s.flows[key(namespace, id)], rev), nil
}

// Source returns the YAML source of a flow revision, as Flow does.
func (s *Store) Source(namespace, id string, revision int) (string, error) {
	pb, err := s.Get(namespace, id, revision)
	if err != nil {
		return "", err
	}
	return pb.GetSource(), nil
}

// revision finds a revision; 0 is the latest of a flow not deleted. s.mu is
// held.
func (s *Store) revision(namespace, id string, n int) (*revision, error) {
	k := key(namespace, id)
	e := s.flows[k]
	if e == nil {
		return nil, fmt.Errorf("flow %s: %w", k, flow.ErrNotFound)
	}
	if n == 0 {
		if e.last.GetDeleted() {
			return nil, fmt.Errorf("flow %s: deleted: %w", k, flow.ErrNotFound)
		}
		n = int(e.last.GetRevision())
	}
	rev := e.revs[n]
	if rev == nil {
		return nil, fmt.Errorf("flow %s revision %d (the latest is %d): %w", k, n, e.last.GetRevision(), flow.ErrNotFound)
	}
	return rev, nil
}

// message returns a copy of a revision's record for a reader. s.mu is held.
func (s *Store) message(e *entry, rev *revision) *kitev1.Flow {
	pb := proto.CloneOf(rev.pb)
	pb.Deleted = e.last.GetDeleted()
	return pb
}

// Latest returns the latest revision of every flow that is not deleted and
// whose source parses, ordered by namespace then id. Disabled flows are
// included (Flow.Disabled says so). The answer is kept until a record
// changes a flow; callers must not modify the slice.
func (s *Store) Latest() []*flow.Flow {
	if cached := s.latest.Load(); cached != nil {
		return *cached
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*flow.Flow
	defer func() { s.latest.Store(&out) }()
	for _, k := range s.sortedKeys("") {
		if rev := s.flows[k].revs[int(s.flows[k].last.GetRevision())]; rev != nil && rev.flow != nil {
			out = append(out, rev.flow)
		}
	}
	return out
}

// List returns the latest revision of the flows that are not deleted in the
// namespace namespacePrefix and the namespaces under it ("company" lists
// "company" and "company.team", not "companyx"; "" lists every flow),
// ordered by namespace then id.
func (s *Store) List(namespacePrefix string) []*kitev1.Flow {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*kitev1.Flow
	for _, k := range s.sortedKeys(namespacePrefix) {
		e := s.flows[k]
		if rev := e.revs[int(e.last.GetRevision())]; rev != nil {
			out = append(out, s.message(e, rev))
		}
	}
	return out
}

// sortedKeys returns the keys of the flows not deleted under a namespace
// prefix, ordered by namespace then id. s.mu is held.
func (s *Store) sortedKeys(namespacePrefix string) []string {
	type nsID struct{ ns, id, key string }
	var found []nsID
	for k, e := range s.flows {
		ns := e.last.GetNamespace()
		if e.last.GetDeleted() || !inNamespace(ns, namespacePrefix) {
			continue
		}
		found = append(found, nsID{ns, e.last.GetId(), k})
	}
	slices.SortFunc(found, func(a, b nsID) int {
		if c := strings.Compare(a.ns, b.ns); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]string, len(found))
	for i, f := range found {
		out[i] = f.key
	}
	return out
}

// inNamespace reports whether namespace is prefix or under it: "company"
// holds "company" and "company.team", not "companyx". Every namespace is
// under "".
func inNamespace(namespace, prefix string) bool {
	return prefix == "" || namespace == prefix || strings.HasPrefix(namespace, prefix+".")
}

// Revisions returns the revisions of a flow that the topic still holds,
// oldest first; a deleted flow's too. The error wraps flow.ErrNotFound when
// the flow is unknown.
func (s *Store) Revisions(namespace, id string) ([]*kitev1.Flow, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := key(namespace, id)
	e := s.flows[k]
	if e == nil {
		return nil, fmt.Errorf("flow %s: %w", k, flow.ErrNotFound)
	}
	ns := make([]int, 0, len(e.revs))
	for n := range e.revs {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	out := make([]*kitev1.Flow, len(ns))
	for i, n := range ns {
		out[i] = s.message(e, e.revs[n])
	}
	return out, nil
}

// Apply stores source as a new revision of the flow it names: revision 1
// for a new flow, the latest + 1 otherwise (a deleted flow included). A
// source identical to the latest revision stores nothing: Apply returns that
// revision with changed false. warnings are the problems that do not prevent
// applying. A source that does not validate returns flow.Diagnostics (which
// wraps flow.ErrInvalidFlow) with every problem, and stores nothing.
func (s *Store) Apply(ctx context.Context, source string) (stored *kitev1.Flow, changed bool, warnings flow.Diagnostics, err error) {
	f, err := s.parser.Parse("", []byte(source))
	if err != nil {
		return nil, false, nil, err
	}
	k := key(f.Namespace, f.ID)
	unlock := s.lock(k)
	defer unlock()
	if err := s.Ready(ctx); err != nil {
		return nil, false, nil, fmt.Errorf("applying flow %s: %w", k, err)
	}

	s.mu.RLock()
	var last *kitev1.Flow
	if e := s.flows[k]; e != nil {
		last = e.last
		if rev := e.revs[int(last.GetRevision())]; !last.GetDeleted() && rev != nil && rev.pb.GetSource() == source {
			pb := s.message(e, rev)
			s.mu.RUnlock()
			return pb, false, f.Warnings, nil
		}
	}
	s.mu.RUnlock()

	pb := &kitev1.Flow{
		Namespace:   f.Namespace,
		Id:          f.ID,
		Revision:    last.GetRevision() + 1,
		Source:      source,
		Description: f.Description,
		Labels:      codec.Labels(f.Labels),
		Disabled:    f.Disabled,
		UpdateTime:  codec.Time(s.now()),
	}
	if err := s.write(ctx, k, pb); err != nil {
		return nil, false, nil, err
	}
	s.log.Info("flow applied", zap.String("namespace", pb.Namespace), zap.String("flow_id", pb.Id), zap.Int32("revision", pb.Revision))
	return pb, true, f.Warnings, nil
}

// Delete deletes a flow: its latest revision is no longer found nor listed,
// while its revisions stay readable. The error wraps flow.ErrNotFound when
// the flow is unknown or already deleted.
func (s *Store) Delete(ctx context.Context, namespace, id string) error {
	k := key(namespace, id)
	unlock := s.lock(k)
	defer unlock()
	if err := s.Ready(ctx); err != nil {
		return fmt.Errorf("deleting flow %s: %w", k, err)
	}

	s.mu.RLock()
	var pb *kitev1.Flow
	if e := s.flows[k]; e != nil && !e.last.GetDeleted() {
		pb = proto.CloneOf(e.last)
	}
	s.mu.RUnlock()
	if pb == nil {
		return fmt.Errorf("deleting flow %s: %w", k, flow.ErrNotFound)
	}
	pb.Deleted = true
	pb.UpdateTime = codec.Time(s.now())
	if err := s.write(ctx, k, pb); err != nil {
		return err
	}
	s.log.Info("flow deleted", zap.String("namespace", namespace), zap.String("flow_id", id), zap.Int32("revision", pb.Revision))
	return nil
}

// lock takes the lock of one flow and returns its unlock. The locks are kept
// for the life of the store: one small mutex per flow ever changed here.
func (s *Store) lock(k string) (unlock func()) {
	s.locksMu.Lock()
	l := s.locks[k]
	if l == nil {
		l = &sync.Mutex{}
		s.locks[k] = l
	}
	s.locksMu.Unlock()
	l.Lock()
	return l.Unlock
}

// write produces a record of the flows topic and waits until the store has
// read it.
func (s *Store) write(ctx context.Context, k string, pb *kitev1.Flow) error {
	value, err := proto.Marshal(pb)
	if err != nil {
		return fmt.Errorf("encoding flow %s revision %d: %w", k, pb.GetRevision(), err)
	}
	rec := &kgo.Record{Topic: s.topic, Key: []byte(k), Value: value}
	if err := s.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("writing flow %s revision %d: %w", k, pb.GetRevision(), ctx.Err())
		}
		return &unavailableError{fmt.Errorf("writing flow %s revision %d to topic %s: %w", k, pb.GetRevision(), s.topic, err)}
	}
	if err := s.wait(ctx, func() bool { return s.next[rec.Partition] > rec.Offset }); err != nil {
		return fmt.Errorf("flow %s revision %d was written; waiting to read it back: %w", k, pb.GetRevision(), err)
	}
	return nil
}
