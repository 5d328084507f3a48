package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
	"github.com/kiteflow/kite/proto/codec"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// Retry delays of a finished result that could not be produced.
const (
	deliverBackoffFirst = 100 * time.Millisecond
	deliverBackoffCap   = 5 * time.Second
)

// timeoutError is the cause of an attempt stopped by its job's timeout.
type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string { return "timed out after " + flow.FormatDuration(e.d) }

// runAttempt runs one acknowledged job and reports how it finished. ctx is
// the attempt's (cancelled by a kill or at the end of the grace period);
// deliverCtx bounds the delivery of its log lines and result.
func (w *Worker) runAttempt(ctx, deliverCtx context.Context, job *eventv1.WorkerJob) {
	log := w.log.With(attemptFields(job.GetExecutionId(), job.GetTaskRunId(), job.GetTaskId(), job.GetAttempt())...)
	tl := &taskLogger{w: w, log: log, job: job}
	log.Debug("attempt started")
	start := time.Now()
	fin := w.execute(ctx, job, tl)
	if fin.State == "" {
		fin.State = execution.Success
	}
	if fin.State == execution.Killed && errors.Is(context.Cause(ctx), errShutdown) {
		// Handed back, not killed: no result, and the stopping heartbeat
		// that follows makes the executor run the task run again, as a new
		// attempt on another worker.
		tl.Log(tasks.LevelWarn, fmt.Sprintf("the worker stopped before the attempt finished (shutdown grace %s over); the task run will run again as a new attempt", w.cfg.ShutdownGrace))
		if err := tl.pending.wait(deliverCtx); err != nil {
			log.Warn("log lines of the attempt not confirmed", zap.Error(err))
		}
		attemptsHandedBack.Inc()
		log.Warn("attempt handed back at shutdown", zap.Duration("ran", time.Since(start)))
		return
	}

	// The attempt's log lines are written before its result, so that a
	// reader who sees the result finds them.
	if err := tl.pending.wait(deliverCtx); err != nil {
		log.Warn("log lines of the attempt not confirmed before its result", zap.Error(err))
	}
	if out, err := w.offloadOutputs(deliverCtx, job, fin.Outputs); err != nil {
		msg := fmt.Sprintf("the outputs of task %s are too large for a Kafka record and could not be stored: %v", job.GetTaskId(), err)
		tl.Log(tasks.LevelError, msg)
		fin = execution.TaskFinished{State: execution.Failed, Error: msg}
	} else {
		fin.Outputs = out
	}
	rec := w.finishedRecord(job, fin, time.Now())
	if err := w.deliver(deliverCtx, rec); err != nil {
		resultsUndelivered.Inc()
		log.Error("the attempt's result could not be delivered; the executor will re-dispatch the task run",
			zap.String("state", string(fin.State)), zap.Error(err))
		return
	}
	jobsFinished.WithLabelValues(string(fin.State)).Inc()
	log.Debug("attempt finished", zap.String("state", string(fin.State)), zap.Duration("took", time.Since(start)))
}

// execute finds the job's task and runs it, as core/local runs an attempt.
func (w *Worker) execute(ctx context.Context, job *eventv1.WorkerJob, tl *taskLogger) execution.TaskFinished {
	if ctx.Err() != nil {
		// Killed between its acknowledgement and now.
		return execution.TaskFinished{State: execution.Killed, Error: fmt.Sprintf("%v before it started", context.Cause(ctx))}
	}
	fail := func(msg string) execution.TaskFinished {
		tl.Log(tasks.LevelError, msg)
		return execution.TaskFinished{State: execution.Failed, Error: msg}
	}
	key := flowKey{namespace: job.GetNamespace(), id: job.GetFlowId(), revision: job.GetFlowRevision()}
	f, err := w.flows.get(key, job.GetFlowSource())
	if err != nil {
		return fail(err.Error())
	}
	t, ok := f.FindTask(job.GetTaskId())
	if !ok {
		return fail(fmt.Sprintf("task %q is not in flow %s", job.GetTaskId(), key))
	}

	if ms := job.GetTimeoutMillis(); ms > 0 {
		d := time.Duration(ms) * time.Millisecond
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, timeoutError{d})
		defer cancel()
	}
	ctx = context.WithValue(ctx, errorLogsKey{}, job.GetErrorLogs())
	vars := codec.FromStruct(job.GetVars())
	if vars == nil {
		vars = map[string]any{}
	}
	if vars, err = w.resolveVars(ctx, vars); err != nil {
		return fail(err.Error())
	}
	rc := &tasks.RunContext{
		Task: t, Vars: vars, Engine: w.engine, Logger: tl,
		ExecutionID: job.GetExecutionId(), TaskRunID: job.GetTaskRunId(), Attempt: int(job.GetAttempt()),
		Files: w.taskFiles(job),
	}
	fin := tasks.RunAttempt(ctx, w.runners, rc)
	if fin.State == execution.Killed {
		var te timeoutError
		switch cause := context.Cause(ctx); {
		case errors.As(cause, &te):
			// A timeout fails the attempt (it may be retried), as the
			// executor's own timeout timer does.
			fin.State, fin.Error = execution.Failed, fmt.Sprintf("task %s %v", t.ID, te)
		case errors.Is(cause, errShutdown):
			fin.Error = fmt.Sprintf("%v: %s", errShutdown, fin.Error)
		}
	}
	return fin
}

// newResult is the envelope of a result about the job's attempt.
func (w *Worker) newResult(job *eventv1.WorkerJob, at time.Time) *eventv1.WorkerResult {
	return &eventv1.WorkerResult{
		ExecutionId: job.GetExecutionId(), TaskRunId: job.GetTaskRunId(), Attempt: job.GetAttempt(),
		Time: codec.Time(at), WorkerId: w.cfg.ID,
	}
}

// startedRecord is the "started" result of the job's attempt.
func (w *Worker) startedRecord(job *eventv1.WorkerJob, at time.Time) *kgo.Record {
	r := w.newResult(job, at)
	r.Result = &eventv1.WorkerResult_Started{Started: &eventv1.TaskStarted{}}
	return w.resultRecord(r)
}

// finishedRecord is the "finished" result of the job's attempt.
func (w *Worker) finishedRecord(job *eventv1.WorkerJob, fin execution.TaskFinished, at time.Time) *kgo.Record {
	p := &eventv1.TaskFinished{
		State:  codec.State(fin.State),
		Error:  strings.ToValidUTF8(fin.Error, "\uFFFD"),
		Labels: codec.Labels(fin.Labels),
	}
	var err error
	if p.Outputs, err = codec.ToStruct(fin.Outputs); err != nil {
		p = &eventv1.TaskFinished{State: kitev1.State_STATE_FAILED,
			Error: fmt.Sprintf("the outputs of task %s cannot be recorded: %v", job.GetTaskId(), err)}
	}
	r := w.newResult(job, at)
	r.Result = &eventv1.WorkerResult_Finished{Finished: p}
	return w.resultRecord(r)
}

// resultRecord encodes a result, keyed by execution id. Encoding fails only
// on invalid UTF-8 in a string, which here can only be a task's own text
// (an output): the attempt is then reported FAILED, saying why.
func (w *Worker) resultRecord(r *eventv1.WorkerResult) *kgo.Record {
	b, err := proto.Marshal(r)
	if err != nil {
		r.Result = &eventv1.WorkerResult_Finished{Finished: &eventv1.TaskFinished{State: kitev1.State_STATE_FAILED,
			Error: "the attempt's result cannot be encoded: " + strings.ToValidUTF8(err.Error(), "\uFFFD")}}
		b, _ = proto.Marshal(r)
	}
	return &kgo.Record{Topic: w.topics.results, Key: []byte(r.GetExecutionId()), Value: b}
}

// deliver produces rec until the brokers acknowledge it (acks=all), retrying
// with a backoff, or until ctx ends or the client is closed.
func (w *Worker) deliver(ctx context.Context, rec *kgo.Record) error {
	backoff := deliverBackoffFirst
	for {
		// A fresh record each try: the client owns the one it failed.
		err := w.produce(ctx, &kgo.Record{Topic: rec.Topic, Key: rec.Key, Value: rec.Value})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, kgo.ErrClientClosed) {
			return err
		}
		w.log.Warn("producing a result failed; retrying", fTopic(rec.Topic), zap.Duration("retry_in", backoff), zap.Error(err))
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		}
		backoff = min(2*backoff, deliverBackoffCap)
	}
}

// produce produces one record and waits for its acknowledgement or ctx.
func (w *Worker) produce(ctx context.Context, rec *kgo.Record) error {
	done := make(chan error, 1)
	w.out.Produce(ctx, rec, func(_ *kgo.Record, err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// taskLogger sends a task's log lines to the logs topic, keyed by execution
// id. It never blocks the task: with the client's buffer full (the brokers
// unreachable) lines are dropped, and said so once per attempt.
type taskLogger struct {
	w       *Worker
	log     *zap.Logger
	job     *eventv1.WorkerJob
	pending inflight
	dropped atomic.Bool
}

var _ tasks.Logger = (*taskLogger)(nil)

func (t *taskLogger) Log(level tasks.Level, msg string) {
	j := t.job
	e := &kitev1.LogEntry{
		Namespace: j.GetNamespace(), FlowId: j.GetFlowId(), ExecutionId: j.GetExecutionId(),
		TaskRunId: j.GetTaskRunId(), TaskId: j.GetTaskId(), Attempt: j.GetAttempt(),
		Level:   kitev1.LogLevel(kitev1.LogLevel_value["LOG_LEVEL_"+string(level)]),
		Message: strings.ToValidUTF8(msg, "\uFFFD"), Time: codec.Time(time.Now()),
	}
	b, err := proto.Marshal(e)
	if err != nil {
		t.log.Warn("log line cannot be encoded; dropped", zap.Error(err))
		return
	}
	t.pending.add()
	t.w.out.TryProduce(context.Background(), &kgo.Record{Topic: t.w.topics.logs, Key: []byte(j.GetExecutionId()), Value: b},
		func(_ *kgo.Record, err error) {
			defer t.pending.done()
			if err != nil && t.dropped.CompareAndSwap(false, true) {
				t.log.Warn("log lines of the task are lost", zap.Error(err))
			}
		})
}

// inflight counts records not yet acknowledged.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (p *inflight) add() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 {
		p.idle = make(chan struct{})
	}
	p.n++
}

func (p *inflight) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n--
	if p.n == 0 {
		close(p.idle)
	}
}

// wait returns once every record added is acknowledged or failed, or ctx's
// error.
func (p *inflight) wait(ctx context.Context) error {
	p.mu.Lock()
	if p.n == 0 {
		p.mu.Unlock()
		return nil
	}
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errorLogsKey carries a job's error logs in the attempt's context, for
// errorLogs().
type errorLogsKey struct{}

// errorLogs is Kestra's errorLogs() for the worker's engine: the ERROR lines
// of the execution the job carries, in the shape core/local gives them.
func errorLogs(ctx context.Context, _ []any) (any, error) {
	entries, _ := ctx.Value(errorLogsKey{}).([]*kitev1.LogEntry)
	out := make([]any, 0, len(entries))
	for _, e := range entries {
		level := "ERROR" // what the lines are, when a writer left it unset
		if e.GetLevel() != kitev1.LogLevel_LOG_LEVEL_UNSPECIFIED {
			level = strings.TrimPrefix(e.GetLevel().String(), "LOG_LEVEL_")
		}
		out = append(out, map[string]any{
			"taskId": e.GetTaskId(), "taskRunId": e.GetTaskRunId(),
			"level": level, "message": e.GetMessage(),
			"timestamp": codec.FromTime(e.GetTime()).UTC().Format(time.RFC3339Nano),
		})
	}
	return out, nil
}
