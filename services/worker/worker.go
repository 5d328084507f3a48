// Package worker is the worker role (DESIGN.md, Workers): it takes jobs from
// the worker-jobs topic in a consumer group, runs each attempt of a runnable
// task with the built-in runners, streams the task's log lines to the logs
// topic and reports the attempt to worker-results, started and finished.
//
// A job is acknowledged by producing "started" and committing the job's
// offset in one Kafka transaction, and only then run; the worker takes a job
// only when one of its Concurrency slots is free. Kills, read by every
// worker from worker-kills, cancel the attempt they name. Heartbeats on
// worker-heartbeats tell the executor that the worker, and the attempts it
// lists, are alive.
package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
	"github.com/kiteflow/kite/streams"
)

// Time limits of the worker's own Kafka work.
const (
	// ackTimeout bounds the transaction that acknowledges a batch of jobs.
	ackTimeout = time.Minute
	// resultFlushTimeout is how long, after the shutdown grace period, the
	// results of the attempts cancelled then may take to be delivered.
	resultFlushTimeout = 15 * time.Second
	// stopTimeout bounds the last heartbeat and the final flush of logs.
	stopTimeout = 5 * time.Second
	// jobsFetchMaxWait is how long the brokers hold an empty fetch of jobs.
	// After a rebalance, a partition whose offset loads while a fetch is in
	// flight waits for that fetch to return: kgo's 5s default would delay
	// its jobs that long.
	jobsFetchMaxWait = time.Second
)

// errShutdown is the cause of the attempts cancelled when the shutdown grace
// period is over; errKilled that of the attempts a WorkerKill stops.
var (
	errShutdown = errors.New("the worker stopped before the attempt finished")
	errKilled   = errors.New("killed")
)

// Worker runs task attempts from the worker-jobs topic. Build it with New,
// run it with Run.
type Worker struct {
	cfg    Config
	log    *zap.Logger
	topics topicNames
	group  string

	// sess consumes worker-jobs in the workers' group and acknowledges jobs
	// in transactions.
	sess *kgo.GroupTransactSession
	// out produces what is not acknowledged in a transaction: finished
	// results, log lines and heartbeats (idempotent, acks=all).
	out *kgo.Client
	// kills reads worker-kills, every partition, no group.
	kills *kgo.Client

	runners map[string]tasks.Runner
	engine  *expr.Engine
	files   Files
	flows   *flowCache

	mu      sync.Mutex
	running map[attemptKey]context.CancelCauseFunc // the slots taken
	killed  *recentKills                           // the last kills read
	// slotFreed receives (without blocking: capacity 1) when an attempt ends.
	slotFreed chan struct{}
	// attempts are the attempt goroutines.
	attempts sync.WaitGroup

	leaveOnce, closeOnce sync.Once
}

type topicNames struct {
	jobs, kills, results, logs, heartbeats, deadLetter string
}

// attemptKey names one attempt of one task run.
type attemptKey struct {
	taskRunID string
	attempt   int32
}

// String is the form heartbeats list running attempts in: "task_run_id/attempt".
func (k attemptKey) String() string { return fmt.Sprintf("%s/%d", k.taskRunID, k.attempt) }

// New builds a worker: cfg is validated, kafka gives the connection and topic
// names (its ClientOpts are the start of every client's options). The
// workers' consumer group is kafka.TransactionalID("workers") and this
// worker's transactional id kafka.TransactionalID("worker-" + cfg.ID). opts
// are appended to the options of each of the worker's three Kafka clients
// (jobs, results and logs, kills); a metrics hook belongs to one client, so
// pass none here.
func New(cfg Config, kafka streams.Config, files Files, logger *zap.Logger, opts ...kgo.Opt) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid worker config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	log := logger.Named("worker").With(fWorkerID(cfg.ID))
	w := &Worker{
		cfg: cfg, log: log, files: files.withDefaults(),
		topics: topicNames{
			jobs: kafka.Topic(streams.TopicWorkerJobs), kills: kafka.Topic(streams.TopicWorkerKills),
			results: kafka.Topic(streams.TopicWorkerResults), logs: kafka.Topic(streams.TopicLogs),
			heartbeats: kafka.Topic(streams.TopicWorkerHeartbeat), deadLetter: kafka.Topic(streams.TopicDeadLetter),
		},
		group:     kafka.TransactionalID("workers"),
		runners:   tasks.Runners(),
		running:   map[attemptKey]context.CancelCauseFunc{},
		killed:    newRecentKills(recentKillsSize),
		slotFreed: make(chan struct{}, 1),
	}
	w.engine = expr.New(expr.WithFunc("errorLogs", errorLogs),
		expr.WithFunc("read", tasks.ReadFunc), expr.WithFunc("fileExists", tasks.FileExistsFunc),
		expr.WithFunc("fileSize", tasks.FileSizeFunc), expr.WithFunc("isFileEmpty", tasks.IsFileEmptyFunc))
	// Expressions are checked by the same engine that renders them, which
	// also warms its template cache.
	w.flows = newFlowCache(&flow.Parser{Registry: tasks.Registry(), CheckExpr: w.engine.Check}, flowCacheSize)

	client := func(name string, own ...kgo.Opt) ([]kgo.Opt, error) {
		extra := append([]kgo.Opt{kgo.ClientID(kafka.ClientID + "-worker-" + name)}, own...)
		return kafka.ClientOpts(log, append(extra, opts...)...)
	}
	sessOpts, err := client("jobs",
		kgo.ConsumerGroup(w.group),
		kgo.ConsumeTopics(w.topics.jobs),
		kgo.TransactionalID(kafka.TransactionalID("worker-"+cfg.ID)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(jobsFetchMaxWait),
	)
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", cfg.ID, err)
	}
	// No linger for results: each one is on its execution's critical path
	// (the executor dispatches the next task when it reads it), and records
	// produced while a request is in flight are batched anyway.
	outOpts, err := client("out", kgo.ProducerLinger(0))
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", cfg.ID, err)
	}
	killOpts, err := client("kills", kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", cfg.ID, err)
	}

	if w.sess, err = kgo.NewGroupTransactSession(sessOpts...); err != nil {
		return nil, fmt.Errorf("worker %s: creating the jobs consumer: %w", cfg.ID, err)
	}
	if w.out, err = kgo.NewClient(outOpts...); err != nil {
		w.sess.Close()
		return nil, fmt.Errorf("worker %s: creating the producer: %w", cfg.ID, err)
	}
	if w.kills, err = kgo.NewClient(killOpts...); err != nil {
		w.sess.Close()
		w.out.Close()
		return nil, fmt.Errorf("worker %s: creating the kills consumer: %w", cfg.ID, err)
	}
	return w, nil
}

// Run takes and runs jobs until ctx ends, then stops: it takes no more jobs
// and leaves the group at once, lets the running attempts finish for
// ShutdownGrace, cancels those still running (reported KILLED), sends a
// last heartbeat with stopping set and closes the worker. It returns nil
// when ctx ended it, or the error that stopped it (after the same shutdown).
// A worker runs once.
func (w *Worker) Run(ctx context.Context) error {
	defer func() { _ = w.Close() }()
	w.log.Info("worker starting", zap.String("group", w.group), zap.Int("concurrency", w.cfg.Concurrency))

	// Kills are read from the end of the topic as it is now, before any
	// job is taken, so that no kill of an attempt started here is missed.
	if err := w.positionKills(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("worker %s: %w", w.cfg.ID, err)
	}

	// Kills and heartbeats go on through the grace period: a user may still
	// kill, and the executor must still see the worker alive.
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	bg.Go(func() { w.consumeKills(bgCtx) })
	bg.Go(func() { w.heartbeats(bgCtx) })

	// Attempts outlive ctx by the grace period; their results by
	// resultFlushTimeout more (the hard stop).
	attemptsCtx, cancelAttempts := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelAttempts(nil)
	deliverCtx, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()

	err := w.consumeJobs(ctx, attemptsCtx, deliverCtx)
	if err != nil {
		err = fmt.Errorf("worker %s: %w", w.cfg.ID, err)
		w.log.Error("taking jobs failed; the worker stops", zap.Error(err))
	}
	w.leaveGroup()
	w.drain(cancelAttempts, hardStop)
	stopBG()
	bg.Wait()
	w.sayStopping()
	w.flushOut()
	w.log.Info("worker stopped")
	return err
}

// drain waits for the running attempts: for the grace period, then, once
// the ones left are cancelled, for resultFlushTimeout, after which their
// results are given up on.
func (w *Worker) drain(cancelAttempts context.CancelCauseFunc, hardStop context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		w.attempts.Wait()
		close(done)
	}()
	defer func() { <-done }()

	if n := w.runningCount(); n > 0 {
		w.log.Info("waiting for the running attempts to finish", zap.Int("running", n), zap.Duration("grace", w.cfg.ShutdownGrace))
	}
	grace := time.NewTimer(w.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	w.log.Warn("shutdown grace period over; killing the attempts still running", zap.Int("running", w.runningCount()))
	cancelAttempts(errShutdown)

	flush := time.NewTimer(resultFlushTimeout)
	defer flush.Stop()
	select {
	case <-done:
		return
	case <-flush.C:
	}
	w.log.Error("results still undelivered after the grace period; giving up on them",
		zap.Int("running", w.runningCount()), zap.Duration("waited", resultFlushTimeout))
	hardStop()
}

// flushOut waits a little for buffered log lines and heartbeats.
func (w *Worker) flushOut() {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := w.out.Flush(ctx); err != nil {
		w.log.Warn("log lines still buffered at shutdown are lost", zap.Error(err))
	}
}

// leaveGroup closes the jobs consumer, leaving the group, so that other
// workers take the jobs this one has not acknowledged.
func (w *Worker) leaveGroup() {
	w.leaveOnce.Do(w.sess.Close)
}

// Close closes the worker's Kafka clients. Run calls it when it returns;
// call it only for a worker that is never run. It is idempotent.
func (w *Worker) Close() error {
	w.closeOnce.Do(func() {
		w.leaveGroup()
		w.kills.Close()
		w.out.Close()
	})
	return nil
}

// take registers an attempt in a free slot; false when it already runs here.
func (w *Worker) take(key attemptKey, cancel context.CancelCauseFunc) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.running[key]; dup {
		return false
	}
	w.running[key] = cancel
	return true
}

// release frees the attempt's slot.
func (w *Worker) release(key attemptKey) {
	w.mu.Lock()
	delete(w.running, key)
	w.mu.Unlock()
	select {
	case w.slotFreed <- struct{}{}:
	default:
	}
}

// waitForSlot returns the number of free slots once there is one, or ctx's
// error.
func (w *Worker) waitForSlot(ctx context.Context) (int, error) {
	for {
		if free := w.cfg.Concurrency - w.runningCount(); free > 0 {
			return free, nil
		}
		select {
		case <-w.slotFreed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (w *Worker) runningCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running)
}

// runningList is the running attempts as heartbeats list them, sorted.
func (w *Worker) runningList() []string {
	w.mu.Lock()
	out := make([]string, 0, len(w.running))
	for k := range w.running {
		out = append(out, k.String())
	}
	w.mu.Unlock()
	sort.Strings(out)
	return out
}
