package streams

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// overlay holds state changes not yet committed: key → value, nil value
// for a deletion.
type overlay map[string][]byte

// txn is the work of one batch: per-partition overlays of state changes,
// applied to the stores once the transaction commits.
type txn struct {
	app     *App
	ctx     context.Context
	pending map[int32]*overlay
	err     error
}

func (t *txn) overlayOf(p int32) *overlay {
	ov, ok := t.pending[p]
	if !ok {
		m := overlay{}
		ov = &m
		t.pending[p] = ov
	}
	return ov
}

func (t *txn) partition(p int32) *partition {
	t.app.mu.Lock()
	defer t.app.mu.Unlock()
	return t.app.parts[p]
}

// record processes one input record; a processing error sends it to the
// dead-letter topic and drops its changes.
func (t *txn) record(rec *kgo.Record) {
	if t.err != nil {
		return
	}
	part := t.partition(rec.Partition)
	if part == nil {
		// Revoked since the poll: the session aborts this transaction.
		return
	}
	pc := t.newContext(part)
	err := safely(func() error { return t.app.proc.Process(pc, rec) })
	if err != nil {
		t.deadLetter(rec, err)
		return
	}
	t.commitRecord(pc)
}

// timers fires the due timers of every owned partition.
func (t *txn) timers() {
	now := t.app.cfg.Now()
	t.app.mu.Lock()
	parts := make([]*partition, 0, len(t.app.parts))
	for _, p := range t.app.parts {
		parts = append(parts, p)
	}
	t.app.mu.Unlock()
	sort.Slice(parts, func(i, j int) bool { return parts[i].id < parts[j].id })
	for _, part := range parts {
		if t.err != nil {
			return
		}
		pc := t.newContext(part)
		var due [][]byte
		err := pc.Range(timerPrefix, func(k, _ []byte) bool {
			at, _, ok := parseTimerKey(k)
			if !ok || at.After(now) {
				return false // keys are in due order
			}
			due = append(due, append([]byte(nil), k...))
			return true
		})
		if err != nil {
			t.err = err
			return
		}
		for _, k := range due {
			at, key, _ := parseTimerKey(k)
			pc := t.newContext(part)
			pc.Delete(k)
			pc.Delete(timerIndexKey(key))
			if err := safely(func() error { return t.app.proc.Timer(pc, key, at) }); err != nil {
				t.app.log.Error("timer failed; it is dropped", zap.Int32("partition", part.id), zap.ByteString("key", key), zap.Error(err))
				pc = t.newContext(part)
				pc.Delete(k)
				pc.Delete(timerIndexKey(key))
			}
			t.commitRecord(pc)
		}
	}
}

func safely(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn()
}

// commitRecord moves a record's changes into the batch: its changelog
// records and outputs are produced in the transaction, its state changes
// join the partition's overlay.
func (t *txn) commitRecord(pc *PartitionContext) {
	ov := t.overlayOf(pc.Partition)
	for _, k := range sortedOverlayKeys(pc.changes) {
		v := pc.changes[k]
		(*ov)[k] = v
		t.produce(&kgo.Record{Topic: t.app.cfg.Changelog, Partition: pc.Partition, Key: []byte(k), Value: encodeChangelogValue(v)})
	}
	for _, r := range pc.out {
		t.produce(r)
	}
}

func sortedOverlayKeys(m overlay) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (t *txn) produce(r *kgo.Record) {
	t.app.sess.Produce(t.ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			t.app.log.Warn("produce failed; the transaction aborts", zap.String("topic", r.Topic), zap.Error(err))
		}
	})
}

// Headers of dead-letter records.
const (
	HeaderError     = "kite.error"
	HeaderTopic     = "kite.origin.topic"
	HeaderPartition = "kite.origin.partition"
	HeaderOffset    = "kite.origin.offset"
)

func (t *txn) deadLetter(rec *kgo.Record, err error) {
	t.app.metrics.deadLetters.Inc()
	t.app.log.Warn("record sent to the dead-letter topic", zap.String("topic", rec.Topic),
		zap.Int32("partition", rec.Partition), zap.Int64("offset", rec.Offset), zap.Error(err))
	headers := append([]kgo.RecordHeader(nil), rec.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(err.Error())},
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(rec.Partition)))},
		kgo.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
	)
	t.produce(&kgo.Record{Topic: t.app.cfg.DeadLetter, Key: rec.Key, Value: rec.Value, Headers: headers})
}

// apply writes the committed overlays to the stores.
func (t *txn) apply() error {
	for p, ov := range t.pending {
		part := t.partition(p)
		if part == nil {
			continue // revoked after the commit: the next owner restores it
		}
		for _, k := range sortedOverlayKeys(*ov) {
			v := (*ov)[k]
			var err error
			if v == nil {
				err = part.store.Delete([]byte(k))
			} else {
				err = part.store.Put([]byte(k), v)
			}
			if err != nil {
				return fmt.Errorf("streams app %s: applying committed state of partition %d: %w", t.app.cfg.Group, p, err)
			}
		}
	}
	return nil
}

// PartitionContext is what a Processor sees while it handles one record or
// timer: the partition's state (with the batch's uncommitted changes) and
// the outputs to produce.
type PartitionContext struct {
	Partition int32
	// Now is when the batch is processed.
	Now time.Time

	t       *txn
	part    *partition
	batch   overlay // the batch's changes so far for this partition
	changes overlay // this record's changes
	out     []*kgo.Record
}

func (t *txn) newContext(part *partition) *PartitionContext {
	return &PartitionContext{Partition: part.id, Now: t.app.cfg.Now(), t: t, part: part,
		batch: *t.overlayOf(part.id), changes: overlay{}}
}

// Context is the app's context, done when it stops.
func (pc *PartitionContext) Context() context.Context { return pc.t.ctx }

// Get reads a key, seeing this record's and the batch's changes first.
func (pc *PartitionContext) Get(key []byte) ([]byte, bool, error) {
	for _, ov := range []overlay{pc.changes, pc.batch} {
		if v, ok := ov[string(key)]; ok {
			return v, v != nil, nil
		}
	}
	return pc.part.store.Get(key)
}

// Put writes a key. The value must not be modified afterwards.
func (pc *PartitionContext) Put(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	pc.changes[string(key)] = value
}

// Delete removes a key.
func (pc *PartitionContext) Delete(key []byte) { pc.changes[string(key)] = nil }

// Range calls fn for each key with the prefix, in key order, with the
// uncommitted changes applied, until fn returns false.
func (pc *PartitionContext) Range(prefix []byte, fn func(k, v []byte) bool) error {
	// A nil value in an overlay is a deletion; values from the store are
	// never deletions, even empty ones.
	type entry struct {
		v       []byte
		deleted bool
	}
	merged := map[string]entry{}
	if err := pc.part.store.Range(prefix, func(k, v []byte) bool {
		merged[string(k)] = entry{v: append([]byte{}, v...)}
		return true
	}); err != nil {
		return err
	}
	for _, ov := range []overlay{pc.batch, pc.changes} {
		for k, v := range ov {
			if len(k) >= len(prefix) && k[:len(prefix)] == string(prefix) {
				merged[k] = entry{v: v, deleted: v == nil}
			}
		}
	}
	keys := make([]string, 0, len(merged))
	for k, e := range merged {
		if !e.deleted {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fn([]byte(k), merged[k].v) {
			break
		}
	}
	return nil
}

// Produce adds an output record to the transaction.
func (pc *PartitionContext) Produce(r *kgo.Record) { pc.out = append(pc.out, r) }

// SetTimer schedules Processor.Timer for key at due, replacing the key's
// previous timer. Timers live in the state, so they survive restarts and
// move with the partition, and fire once, from its owner.
func (pc *PartitionContext) SetTimer(key []byte, due time.Time) error {
	if err := pc.CancelTimer(key); err != nil {
		return err
	}
	pc.Put(timerKey(due, key), []byte{})
	pc.Put(timerIndexKey(key), binary.BigEndian.AppendUint64(nil, uint64(due.UnixNano())))
	return nil
}

// CancelTimer drops the key's timer, if any.
func (pc *PartitionContext) CancelTimer(key []byte) error {
	v, ok, err := pc.Get(timerIndexKey(key))
	if err != nil || !ok || len(v) != 8 {
		return err
	}
	pc.Delete(timerKey(time.Unix(0, int64(binary.BigEndian.Uint64(v))), key))
	pc.Delete(timerIndexKey(key))
	return nil
}

var timerIndexPrefix = []byte{0, 't', 'i', 'd', 'x', 0}

func timerIndexKey(key []byte) []byte {
	return append(append([]byte(nil), timerIndexPrefix...), key...)
}

// restoreProgressEvery is how often a long restore says how far it got.
const restoreProgressEvery = 5 * time.Second

// restoreChangelog reads a changelog partition from its start to its last
// committed record into the store. It returns the number of records read.
// progress (may be nil) is told, every few seconds, how many records were
// read of about how many.
func restoreChangelog(ctx context.Context, cl *kgo.Client, topic string, p int32, st Store, progress func(n int, of int64)) (int, error) {
	adm := kadm.NewClient(cl)
	end, err := stableEnd(ctx, adm, topic, p)
	if err != nil {
		return 0, err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("listing the start of %s: %w", topic, err)
	}
	start, _ := starts.Lookup(topic, p)
	if end.Offset <= start.Offset {
		return 0, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(start.Offset)}})
	defer cl.RemoveConsumePartitions(map[string][]int32{topic: {p}})
	n := 0
	lastReport := time.Now()
	for {
		if progress != nil && time.Since(lastReport) >= restoreProgressEvery {
			progress(n, end.Offset-start.Offset)
			lastReport = time.Now()
		}
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return n, ferr
		}
		done := false
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Topic != topic || r.Partition != p || done {
				return
			}
			if r.Offset >= end.Offset-1 {
				done = true
			}
			if r.Attrs.IsControl() || r.Offset >= end.Offset {
				return
			}
			n++
			if v, ok := decodeChangelogValue(r.Value); !ok {
				ferr = st.Delete(r.Key)
			} else {
				ferr = st.Put(r.Key, v)
			}
		})
		if ferr != nil {
			return n, ferr
		}
		if done {
			return n, nil
		}
	}
}

// Changelog values carry a version byte before the state value, so that an
// empty value (one byte) differs from a deletion (a tombstone, no value),
// which Kafka clients cannot tell apart from an empty value.
const changelogV1 = 1

func encodeChangelogValue(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append([]byte{changelogV1}, v...)
}

func decodeChangelogValue(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	return b[1:], true
}

// stableWaitMax bounds how long a restore waits for a transaction open on
// the changelog partition to end. A transaction that has committed gets
// its markers within milliseconds; one still open after this is a dead
// instance's, which the broker aborts at its timeout: restoring up to the
// stable offset is then right.
const stableWaitMax = 10 * time.Second

// stableEnd returns the end of the changelog partition to restore up to:
// its last stable offset, once no transaction is open on it, or after
// stableWaitMax. The previous owner's last transaction may have committed
// without its commit marker on the changelog yet: its input offsets are
// then already committed, and a restore that stopped at the last stable
// offset would miss its state changes and apply the following inputs to a
// stale state (TestCoPartitionedInputsStayTogether found it on Kafka).
func stableEnd(ctx context.Context, adm *kadm.Client, topic string, p int32) (kadm.ListedOffset, error) {
	deadline := time.Now().Add(stableWaitMax)
	for {
		lso, err := listedOffset(ctx, adm.ListCommittedOffsets, topic, p)
		if err != nil {
			return lso, err
		}
		hwm, err := listedOffset(ctx, adm.ListEndOffsets, topic, p)
		if err != nil {
			return lso, err
		}
		if lso.Offset >= hwm.Offset || time.Now().After(deadline) {
			return lso, nil
		}
		select {
		case <-ctx.Done():
			return lso, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func listedOffset(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string, p int32) (kadm.ListedOffset, error) {
	offs, err := list(ctx, topic)
	if err != nil {
		return kadm.ListedOffset{}, fmt.Errorf("listing the end of %s: %w", topic, err)
	}
	o, ok := offs.Lookup(topic, p)
	if !ok || o.Err != nil {
		if ok {
			err = o.Err
		}
		return o, fmt.Errorf("listing the end of %s[%d]: %w", topic, p, errors.Join(err, errors.New("no offset")))
	}
	return o, nil
}
