package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
)

// recentKillsSize bounds the kills a worker remembers.
const recentKillsSize = 4096

// positionKills starts the kills consumer at the end of worker-kills (its
// last committed record), before any job is taken: a kill produced from
// now on is seen.
func (w *Worker) positionKills(ctx context.Context) error {
	ends, err := kadm.NewClient(w.kills).ListCommittedOffsets(ctx, w.topics.kills)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the end of %s: %w", w.topics.kills, err)
	}
	w.kills.AddConsumePartitions(ends.KOffsets())
	return nil
}

// consumeKills reads worker-kills until ctx ends or the client is closed.
func (w *Worker) consumeKills(ctx context.Context) {
	for {
		fetches := w.kills.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				w.log.Warn("fetching kills failed", fTopic(t), fPartition(p), zap.Error(err))
			}
		})
		fetches.EachRecord(func(rec *kgo.Record) {
			k := &eventv1.WorkerKill{}
			if err := proto.Unmarshal(rec.Value, k); err != nil || k.GetTaskRunId() == "" {
				w.log.Warn("kill record ignored: not a kill", fTopic(rec.Topic), fPartition(rec.Partition), fOffset(rec.Offset), zap.Error(err))
				return
			}
			w.kill(k)
		})
	}
}

// kill cancels the attempt the kill names if it runs here (every attempt
// of the task run when the kill's attempt is 0), and remembers the kill:
// the job may still wait in the topic, or come again after an aborted
// acknowledgement.
func (w *Worker) kill(k *eventv1.WorkerKill) {
	key := attemptKey{k.GetTaskRunId(), k.GetAttempt()}
	log := w.log.With(fExecutionID(k.GetExecutionId()), fTaskRunID(key.taskRunID), fAttempt(key.attempt))
	w.mu.Lock()
	hit := false
	for rk, cancel := range w.running {
		if rk.taskRunID == key.taskRunID && (key.attempt == 0 || rk.attempt == key.attempt) {
			cancel(errKilled)
			hit = true
		}
	}
	w.mu.Unlock()
	w.killed.add(key)
	if hit {
		log.Info("attempt killed")
	}
}

// recentKills remembers the last kills, first in first out.
type recentKills struct {
	mu   sync.Mutex
	keys map[attemptKey]bool
	ring []attemptKey
	next int
}

func newRecentKills(size int) *recentKills {
	return &recentKills{keys: map[attemptKey]bool{}, ring: make([]attemptKey, size)}
}

func (r *recentKills) add(k attemptKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys[k] {
		return
	}
	if old := r.ring[r.next]; old != (attemptKey{}) {
		delete(r.keys, old)
	}
	r.ring[r.next] = k
	r.next = (r.next + 1) % len(r.ring)
	r.keys[k] = true
}

// has reports whether the attempt, or every attempt of its task run, was
// killed.
func (r *recentKills) has(k attemptKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys[k] || r.keys[attemptKey{taskRunID: k.taskRunID}]
}
