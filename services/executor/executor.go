// Package executor is the executor role: an exactly-once stream processor
// (streams.App) over the commands and worker-results topics that runs the
// state machine of core/execution for every execution of the partitions it
// owns.
//
// For each record it loads the execution from its partition's state store,
// steps the machine, writes the changed parts of the state (the execution's
// header and the task runs the step touched: never the whole execution),
// appends the events to execution-events, and turns the effects into records
// (worker jobs, kills, child commands, logs) and timers, all in the
// transaction that commits the record's offset.
package executor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/streams"
)

// FlowSource gives the latest flows, for subflows and flow triggers. The
// revision an execution runs is carried by its create command and kept in
// the executor's own state, so it is never looked up here.
type FlowSource interface {
	// Flow returns a revision of a flow (0: the latest); the error wraps
	// flow.ErrNotFound when there is none.
	Flow(namespace, id string, revision int) (*flow.Flow, error)
	// Latest returns the latest revision of every flow.
	Latest() []*flow.Flow
}

// Config of the executor role.
type Config struct {
	// InstanceID names this instance's transactional id; unique per
	// process. Default: the host name and process id.
	InstanceID string `yaml:"instance_id"`
	// StaticMembership makes InstanceID the executor's group instance id: an
	// instance that restarts under the same id (a StatefulSet pod) takes its
	// partitions back at once instead of after the session timeout. Only for
	// fixed sets of instances.
	StaticMembership bool `yaml:"static_membership"`
	// StateDir holds the partitions' state stores (bbolt files); empty keeps
	// them in memory, restored from the changelog at start-up.
	StateDir string `yaml:"state_dir"`
	// WorkerTimeout is how long a worker may stay silent (no heartbeat)
	// before the attempts it runs are run again elsewhere. Default 15s.
	WorkerTimeout time.Duration `yaml:"worker_timeout"`
	// MaxPollRecords bounds one transaction. Default 500.
	MaxPollRecords int `yaml:"max_poll_records"`
	// TimerInterval is how often due timers are looked for. Default 100ms.
	TimerInterval time.Duration `yaml:"timer_interval"`
}

// Defaults returns the default configuration.
func Defaults() Config {
	host, _ := os.Hostname()
	return Config{
		InstanceID:     fmt.Sprintf("%s-%d", host, os.Getpid()),
		WorkerTimeout:  15 * time.Second,
		MaxPollRecords: 500,
		TimerInterval:  100 * time.Millisecond,
	}
}

// Validate reports every problem at once, each naming its field.
func (c Config) Validate() error {
	var errs []error
	if c.InstanceID == "" {
		errs = append(errs, errors.New("instance_id: must not be empty"))
	}
	if c.WorkerTimeout < time.Second {
		errs = append(errs, fmt.Errorf("worker_timeout: %s is under the minimum 1s", c.WorkerTimeout))
	}
	if c.MaxPollRecords <= 0 {
		errs = append(errs, fmt.Errorf("max_poll_records: %d must be positive", c.MaxPollRecords))
	}
	if c.TimerInterval <= 0 {
		errs = append(errs, fmt.Errorf("timer_interval: %s must be positive", c.TimerInterval))
	}
	return errors.Join(errs...)
}

// Executor is the executor role.
type Executor struct {
	app *streams.App
	hb  *heartbeats
}

// Group is the executor's consumer group (and transactional id prefix),
// under the Kafka config's transactional id prefix.
const Group = "executor"

// New builds the executor. opts are extra client options (tests: a clock
// is set with Now).
func New(cfg Config, kafka streams.Config, flows FlowSource, logger *zap.Logger, opts ...Option) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("executor config: %w", err)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	logger = logger.Named("executor")
	clientOpts, err := kafka.ClientOpts(logger, o.clientOpts...)
	if err != nil {
		return nil, err
	}
	hb, err := newHeartbeats(kafka.Topic(streams.TopicWorkerHeartbeat), cfg.WorkerTimeout, clientOpts, logger, o.now)
	if err != nil {
		return nil, err
	}
	proc := newProcessor(cfg, kafka, flows, hb, logger, o.store, cmp.Or(o.maxInline, 256<<10))
	appCfg := streams.AppConfig{
		Group:            kafka.TransactionalID(Group),
		Inputs:           []string{kafka.Topic(streams.TopicCommands), kafka.Topic(streams.TopicWorkerResults)},
		Changelog:        kafka.Topic(streams.TopicExecutorState),
		DeadLetter:       kafka.Topic(streams.TopicDeadLetter),
		InstanceID:       cfg.InstanceID,
		StaticMembership: cfg.StaticMembership,
		MaxPollRecords:   cfg.MaxPollRecords,
		TimerInterval:    cfg.TimerInterval,
		Now:              o.now,
		OnCommit:         o.onCommit,
	}
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
			hb.close()
			return nil, fmt.Errorf("executor state dir: %w", err)
		}
		appCfg.NewStore = func(p int32) (streams.Store, error) {
			return streams.OpenBoltCache(filepath.Join(cfg.StateDir, fmt.Sprintf("partition-%d.db", p)))
		}
	}
	app, err := streams.NewApp(appCfg, proc, logger, clientOpts)
	if err != nil {
		hb.close()
		return nil, err
	}
	return &Executor{app: app, hb: hb}, nil
}

// Option tunes New.
type Option func(*options)

type options struct {
	now        func() time.Time
	clientOpts []kgo.Opt
	onCommit   func(time.Duration, int)
	store      storage.Storage
	maxInline  int
}

// WithStorage gives the executor internal storage, where it keeps the
// variables of a worker job too large for a Kafka record (more than
// maxInline bytes of JSON; claim-check). Without it such a job fails its
// task run, saying why.
func WithStorage(store storage.Storage, maxInline int) Option {
	return func(o *options) { o.store, o.maxInline = store, maxInline }
}

// WithClock sets the clock of the executor (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithClientOpts adds Kafka client options.
func WithClientOpts(opts ...kgo.Opt) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// WithOnCommit is told of each committed transaction (benchmarks).
func WithOnCommit(fn func(took time.Duration, records int)) Option {
	return func(o *options) { o.onCommit = fn }
}

// Run processes until ctx ends.
func (x *Executor) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return x.hb.run(ctx) })
	g.Go(func() error {
		err := x.app.Run(ctx)
		if err != nil {
			return fmt.Errorf("executor: %w", err)
		}
		return nil
	})
	return g.Wait()
}
