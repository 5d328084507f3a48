package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/execution"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	"github.com/kiteflow/kite/streams"
)

// abortBackoff is the pause after a transaction aborted because one of its
// records could not be produced, before the same jobs are polled again.
const abortBackoff = time.Second

// consumeJobs takes jobs while slots are free, until ctx ends (nil) or the
// jobs consumer fails (its error). Attempts run under attemptsCtx; their
// results are delivered under deliverCtx.
func (w *Worker) consumeJobs(ctx, attemptsCtx, deliverCtx context.Context) error {
	for {
		free, err := w.waitForSlot(ctx)
		if err != nil {
			return nil
		}
		// Never read a job that cannot start now: the records beyond the
		// free slots stay in the client's buffer, not acknowledged.
		fetches := w.sess.PollRecords(ctx, free)
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("polling worker jobs: the kafka client is closed")
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				w.log.Warn("fetching worker jobs failed", fTopic(t), fPartition(p), zap.Error(err))
			}
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		aborted, err := w.acknowledge(ctx, attemptsCtx, deliverCtx, recs)
		if err != nil {
			return err
		}
		if aborted {
			t := time.NewTimer(abortBackoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
		}
	}
}

// acknowledge takes a batch of job records in one transaction: "started"
// for each job, the dead-letter copy of each record that is not a job, and
// the batch's offsets. Only once it committed do the attempts start. A
// transaction aborted by a rebalance starts nothing: the jobs are polled
// again by whoever owns their partition. aborted reports that a record
// could not be produced.
func (w *Worker) acknowledge(ctx, attemptsCtx, deliverCtx context.Context, recs []*kgo.Record) (aborted bool, err error) {
	// Ending a transaction is not cancelled with ctx: that would leave the
	// client unusable and the jobs half acknowledged.
	txnCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	if err := w.sess.Begin(); err != nil {
		return false, fmt.Errorf("beginning the transaction that acknowledges %d jobs: %w", len(recs), err)
	}

	var (
		out        []*kgo.Record
		starts     []func()
		undo       []func()
		dead       int
		killedJobs int
	)
	now := time.Now()
	for _, rec := range recs {
		job, err := decodeJob(rec)
		if err != nil {
			dead++
			out = append(out, w.deadLetter(rec, err))
			continue
		}
		key := attemptKey{job.GetTaskRunId(), job.GetAttempt()}
		fields := attemptFields(job.GetExecutionId(), job.GetTaskRunId(), job.GetTaskId(), job.GetAttempt())
		if w.killed.has(key) {
			// Killed while it waited in the topic: it ends here, never run.
			w.log.Info("job killed before it started", fields...)
			killedJobs++
			out = append(out, w.finishedRecord(job, execution.TaskFinished{State: execution.Killed, Error: "killed before it started"}, now))
			continue
		}
		actx, cancelAttempt := context.WithCancelCause(attemptsCtx)
		if !w.take(key, cancelAttempt) {
			cancelAttempt(nil)
			w.log.Warn("job of an attempt already running here; ignored", fields...)
			continue
		}
		// A kill read from now on cancels actx, even before the attempt starts.
		undo = append(undo, func() {
			cancelAttempt(nil)
			w.release(key)
		})
		starts = append(starts, func() {
			jobsStarted.Inc()
			jobsRunning.Inc()
			w.attempts.Go(func() {
				defer jobsRunning.Dec()
				defer w.release(key)
				defer cancelAttempt(nil)
				w.runAttempt(actx, deliverCtx, job)
			})
		})
		out = append(out, w.startedRecord(job, now))
	}

	commit := kgo.TryCommit
	if err := w.sess.ProduceSync(txnCtx, out...).FirstErr(); err != nil {
		w.log.Warn("acknowledging jobs failed; the transaction aborts and the jobs are polled again",
			zap.Int("jobs", len(recs)), zap.Error(err))
		commit, aborted = kgo.TryAbort, true
	}
	committed, err := w.sess.End(txnCtx, commit)
	if err != nil || !committed {
		for _, u := range undo {
			u()
		}
	}
	if err != nil {
		return aborted, fmt.Errorf("ending the transaction that acknowledges %d jobs: %w", len(recs), err)
	}
	if !committed {
		if !aborted {
			w.log.Info("acknowledgement aborted by a rebalance; the jobs are polled again by their partition's owner", zap.Int("jobs", len(recs)))
		}
		return aborted, nil
	}
	deadLetters.Add(float64(dead))
	jobsFinished.WithLabelValues(string(execution.Killed)).Add(float64(killedJobs))
	for _, start := range starts {
		start()
	}
	return false, nil
}

// decodeJob decodes and checks a worker-jobs record.
func decodeJob(rec *kgo.Record) (*eventv1.WorkerJob, error) {
	job := &eventv1.WorkerJob{}
	if err := proto.Unmarshal(rec.Value, job); err != nil {
		return nil, fmt.Errorf("decoding worker job: %w", err)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"execution_id", job.GetExecutionId()}, {"task_run_id", job.GetTaskRunId()}, {"task_id", job.GetTaskId()},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("worker job without %s", strings.Join(missing, ", "))
	}
	if job.GetAttempt() < 1 {
		return nil, fmt.Errorf("worker job of task run %s: attempt must be at least 1, got %d", job.GetTaskRunId(), job.GetAttempt())
	}
	return job, nil
}

// deadLetter is the dead-letter copy of a record, with headers saying why
// and where it came from (as streams' processors write them).
func (w *Worker) deadLetter(rec *kgo.Record, reason error) *kgo.Record {
	w.log.Warn("job record sent to the dead-letter topic", fTopic(rec.Topic), fPartition(rec.Partition), fOffset(rec.Offset), zap.Error(reason))
	headers := append([]kgo.RecordHeader(nil), rec.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: streams.HeaderError, Value: []byte(reason.Error())},
		kgo.RecordHeader{Key: streams.HeaderTopic, Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: streams.HeaderPartition, Value: []byte(strconv.Itoa(int(rec.Partition)))},
		kgo.RecordHeader{Key: streams.HeaderOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
	)
	return &kgo.Record{Topic: w.topics.deadLetter, Key: rec.Key, Value: rec.Value, Headers: headers}
}
