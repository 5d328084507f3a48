// Package app wires Kite's roles into one process. Every role is listed
// here with what it needs (the modules table), in the manner of Grafana
// Tempo's modules.go: a reader finds every role, its dependencies and its
// start order in this one file. Only this package (and cmd/kite) chooses
// concrete backends.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/repository"
	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/tasks"
	"github.com/kiteflow/kite/indexer/elasticsearch"
	"github.com/kiteflow/kite/indexer/embedded"
	"github.com/kiteflow/kite/services/api"
	"github.com/kiteflow/kite/services/executor"
	"github.com/kiteflow/kite/services/flows"
	"github.com/kiteflow/kite/services/indexer"
	"github.com/kiteflow/kite/services/scheduler"
	"github.com/kiteflow/kite/services/search"
	"github.com/kiteflow/kite/services/worker"
	"github.com/kiteflow/kite/streams"
)

// service is what a module runs: Run blocks until ctx ends (nil) or the
// service fails.
type service interface {
	Run(ctx context.Context) error
}

// Module names: the roles, and the parts they share.
const (
	modBroker    = "broker"     // the embedded broker (standalone)
	modTopics    = "topics"     // Kite's topics exist
	modFlows     = "flows"      // the flows topic held in memory
	modTriggers  = "triggers"   // the trigger state, for the TriggerService
	modExecutor  = RoleExecutor // the executor role
	modWorker    = RoleWorker
	modScheduler = RoleScheduler
	modAPI       = RoleAPI
	modIndexer   = RoleIndexer
	modRepo      = "repository"        // the search repository (embedded index or Elasticsearch)
	modStorage   = "storage"           // internal storage (local folder or GCS)
	modRetention = "storage-retention" // deletes files older than storage.retention
	modMetrics   = "metrics"           // /metrics when no API serves it
)

// module is one part of the process: what it needs started before it, and
// how it is built. A restart module that fails (its Kafka session fenced
// after a broker outage, its topics just created and not yet led) is built
// again and restarted with backoff instead of stopping the process: its
// state is in Kafka, so a new instance resumes where the last commit left.
type module struct {
	deps    []string
	init    func(a *App, ctx context.Context) (service, error)
	restart bool
}

// modules is the dependency map of every part of a process.
var modules = map[string]module{
	modBroker:    {init: (*App).initBroker},
	modTopics:    {deps: []string{modBroker}, init: (*App).initTopics},
	modFlows:     {deps: []string{modTopics}, init: (*App).initFlows},
	modTriggers:  {deps: []string{modTopics}, init: (*App).initTriggers},
	modExecutor:  {deps: []string{modFlows, modStorage}, init: (*App).initExecutor, restart: true},
	modWorker:    {deps: []string{modTopics, modStorage}, init: (*App).initWorker, restart: true},
	modScheduler: {deps: []string{modTopics, modRetention}, init: (*App).initScheduler, restart: true},
	modStorage:   {init: (*App).initStorage},
	modRetention: {deps: []string{modStorage}, init: (*App).initStorageRetention},
	modRepo:      {init: (*App).initRepository},
	modIndexer:   {deps: []string{modTopics, modRepo}, init: (*App).initIndexer, restart: true},
	modAPI:       {deps: []string{modFlows, modTriggers, modRepo, modStorage}, init: (*App).initAPI},
	modMetrics:   {init: (*App).initMetrics},
}

// App is one Kite process: a set of roles and what they share.
type App struct {
	cfg    Config
	roles  Roles
	log    *zap.Logger
	reg    *prometheus.Registry
	parser *flow.Parser

	// Set by the modules as they start.
	broker *streams.Broker
	flows  *flows.Store
	trig   *scheduler.TriggerService
	api    *api.Server
	repo   repoStore // nil when no repository is configured
	store  storage.Storage
	health *healthServer // nil without health_addr

	// started is closed once every module has started.
	started chan struct{}
}

// New checks the configuration for the roles and prepares the process.
func New(cfg Config, roles Roles, logger *zap.Logger) (*App, error) {
	if err := cfg.Validate(roles); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if roles.Standalone && cfg.Executor.StateDir == "" {
		cfg.Executor.StateDir = filepath.Join(cfg.DataDir, "executor")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(restarts)
	for _, register := range []func(prometheus.Registerer) error{streams.RegisterMetrics, executor.RegisterMetrics, worker.RegisterMetrics, indexer.RegisterMetrics} {
		if err := register(reg); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return &App{cfg: cfg, roles: roles, log: logger, reg: reg, started: make(chan struct{}),
		parser: &flow.Parser{Registry: tasks.Registry(), CheckExpr: expr.Default.Check}}, nil
}

// plan returns the modules to start, dependencies first.
func (a *App) plan() []string {
	var order []string
	var visit func(string)
	visit = func(name string) {
		if slices.Contains(order, name) {
			return
		}
		if name == modBroker && !a.embedded() {
			return
		}
		if name == modRepo && !a.searchConfigured() {
			return
		}
		if name == modRetention && a.cfg.Storage.Retention <= 0 {
			return
		}
		for _, d := range modules[name].deps {
			visit(d)
		}
		order = append(order, name)
	}
	for _, r := range a.roles.List() {
		visit(r)
	}
	if !a.roles.Has(RoleAPI) && a.cfg.MetricsAddr != "" {
		visit(modMetrics)
	}
	return order
}

// embedded says whether this process runs the embedded broker: standalone
// without brokers configured.
func (a *App) embedded() bool { return a.roles.Standalone && len(a.cfg.Kafka.Brokers) == 0 }

// Run starts the modules in dependency order and runs them until ctx ends
// or one fails; then it stops them in reverse order, each finishing its
// in-flight work.
func (a *App) Run(ctx context.Context) error {
	type running struct {
		name   string
		cancel context.CancelFunc
		done   chan error
	}
	var runs []running
	failed := make(chan error, len(modules))
	if a.cfg.HealthAddr != "" {
		hs, err := startHealth(a.cfg.HealthAddr, a.roles.List(), a.log)
		if err != nil {
			return err
		}
		a.health = hs
		defer hs.stop()
	}
	stopAll := func() error {
		if a.health != nil {
			a.health.set(false) // not ready from the first moment of the stop
		}
		var errs []error
		for i := len(runs) - 1; i >= 0; i-- {
			r := runs[i]
			r.cancel()
			if err := <-r.done; err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
			}
			a.log.Info("stopped", zap.String("module", r.name))
		}
		return errors.Join(errs...)
	}
	for _, name := range a.plan() {
		if ctx.Err() != nil {
			return stopAll()
		}
		svc, err := modules[name].init(a, ctx)
		if err != nil {
			return errors.Join(fmt.Errorf("starting %s: %w", name, err), stopAll())
		}
		mctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			var err error
			if modules[name].restart {
				err = a.supervise(mctx, name, svc)
			} else {
				err = svc.Run(mctx)
			}
			if err != nil && mctx.Err() == nil {
				failed <- fmt.Errorf("%s: %w", name, err)
			}
			done <- err
		}()
		runs = append(runs, running{name: name, cancel: cancel, done: done})
		if name == modFlows {
			if err := a.waitReady(ctx, a.flows.Ready, failed); err != nil {
				return errors.Join(err, stopAll())
			}
		}
		a.log.Info("started", zap.String("module", name))
	}
	close(a.started)
	if a.health != nil {
		a.health.set(true)
	}
	a.log.Info("kite is running", zap.String("roles", a.roles.String()))
	select {
	case <-ctx.Done():
		return stopAll()
	case err := <-failed:
		a.log.Error("a module failed; stopping", zap.Error(err))
		return errors.Join(err, stopAll())
	}
}

// supervise runs a restart module until ctx ends, building it again after
// each failure, with backoff from 1s to 30s (reset after a minute of
// running well).
func (a *App) supervise(ctx context.Context, name string, svc service) error {
	backoff := time.Second
	for {
		began := time.Now()
		err := svc.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > time.Minute {
			backoff = time.Second
		}
		restarts.WithLabelValues(name).Inc()
		a.log.Error("role failed; restarting it", zap.String("role", name), zap.Duration("backoff", backoff), zap.Error(err))
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
			if svc, err = modules[name].init(a, ctx); err == nil {
				break
			}
			a.log.Error("rebuilding the role failed; retrying", zap.String("role", name), zap.Duration("backoff", backoff), zap.Error(err))
		}
	}
}

var restarts = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "kite", Name: "role_restarts_total",
	Help: "Roles that failed and were built and started again, by role.",
}, []string{"role"})

func (a *App) waitReady(ctx context.Context, ready func(context.Context) error, failed <-chan error) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-rctx.Done():
		case err := <-failed:
			a.log.Error("failed while starting", zap.Error(err))
			cancel()
		}
	}()
	if err := ready(rctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("reading the flows topic: %w", err)
	}
	return nil
}

// Started is closed once every module has started.
func (a *App) Started() <-chan struct{} { return a.started }

// APIAddrs returns the gRPC and HTTP addresses of the API role, once Started.
func (a *App) APIAddrs() (grpcAddr, httpAddr string) {
	if a.api == nil {
		return "", ""
	}
	return a.api.GRPCAddr(), a.api.HTTPAddr()
}

// HealthAddr returns the address of the gRPC health server ("" without
// health_addr).
func (a *App) HealthAddr() string {
	if a.health == nil {
		return ""
	}
	return a.health.Addr()
}

// BrokerAddr returns the Kafka bootstrap address the process uses.
func (a *App) BrokerAddr() string {
	if a.broker != nil {
		return a.broker.Addr()
	}
	if len(a.cfg.Kafka.Brokers) > 0 {
		return a.cfg.Kafka.Brokers[0]
	}
	return ""
}

// runFunc adapts a function to service.
type runFunc func(ctx context.Context) error

func (f runFunc) Run(ctx context.Context) error { return f(ctx) }

func (a *App) initBroker(ctx context.Context) (service, error) {
	dir := filepath.Join(a.cfg.DataDir, "kafka")
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, err := streams.StartBroker(ctx, streams.BrokerConfig{DataDir: dir, Port: a.cfg.BrokerPort,
		Partitions: a.cfg.Kafka.Partitions, Logger: a.log.Named("broker")})
	if err != nil {
		return nil, fmt.Errorf("embedded broker in %s: %w", dir, err)
	}
	a.broker = b
	a.cfg.Kafka.Brokers = []string{b.Addr()}
	a.log.Info("embedded broker listening", zap.String("addr", b.Addr()), zap.String("data_dir", dir))
	return runFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return b.Close()
	}), nil
}

// initTopics creates Kite's missing topics, retrying while the brokers
// cannot be reached.
func (a *App) initTopics(ctx context.Context) (service, error) {
	opts, err := a.cfg.Kafka.ClientOpts(a.log, kgo.ClientID(a.cfg.Kafka.ClientID+"-admin"))
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := streams.EnsureTopics(actx, kadm.NewClient(cl), a.cfg.Kafka)
		cancel()
		if err == nil {
			return runFunc(func(ctx context.Context) error { <-ctx.Done(); return nil }), nil
		}
		if errors.Is(err, streams.ErrNotCoPartitioned) || attempt >= 20 {
			return nil, err
		}
		a.log.Warn("creating Kite's topics; retrying", zap.Strings("brokers", a.cfg.Kafka.Brokers),
			zap.Int("attempt", attempt), zap.Duration("backoff", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 15*time.Second)
	}
}

func (a *App) initFlows(ctx context.Context) (service, error) {
	s, err := flows.NewStore(a.cfg.Kafka, a.parser, a.log)
	if err != nil {
		return nil, err
	}
	a.flows = s
	return s, nil
}

func (a *App) initTriggers(ctx context.Context) (service, error) {
	t, err := scheduler.NewTriggerService(a.cfg.Scheduler, a.cfg.Kafka, a.log)
	if err != nil {
		return nil, err
	}
	a.trig = t
	return t, nil
}

func (a *App) initExecutor(ctx context.Context) (service, error) {
	return executor.New(a.cfg.Executor, a.cfg.Kafka, a.flows, a.log, executor.WithStorage(a.store, a.cfg.Storage.MaxInlineBytes))
}

func (a *App) initWorker(ctx context.Context) (service, error) {
	return worker.New(a.cfg.Worker, a.cfg.Kafka, worker.Files{Store: a.store, MaxInlineBytes: a.cfg.Storage.MaxInlineBytes}, a.log)
}

func (a *App) initScheduler(ctx context.Context) (service, error) {
	return scheduler.New(a.cfg.Scheduler, a.cfg.Kafka, a.log)
}

// searchConfigured says whether this process has a repository: the
// embedded one, or an Elasticsearch cluster's URLs. Without one, the API
// serves no SearchService.
func (a *App) searchConfigured() bool {
	return a.cfg.repositoryType(a.roles) == RepositoryEmbedded || len(a.cfg.Repository.Elasticsearch.URLs) > 0
}

// repoStore is what the repository module opens: both sides, and Close.
type repoStore interface {
	indexer.Store
	Close() error
}

// initRepository opens the repository: the embedded index in the data dir,
// or the Elasticsearch cluster (its index templates created or updated).
func (a *App) initRepository(ctx context.Context) (service, error) {
	rc := a.cfg.Repository
	var (
		store repoStore
		err   error
	)
	if a.cfg.repositoryType(a.roles) == RepositoryEmbedded {
		dir := filepath.Join(a.cfg.DataDir, "index")
		store, err = embedded.Open(ctx, embedded.Config{Dir: dir, Retention: rc.Retention}, a.log)
		if err != nil {
			return nil, fmt.Errorf("embedded index in %s: %w", dir, err)
		}
	} else {
		es := rc.Elasticsearch
		cfg := elasticsearch.Config{
			URLs: es.URLs, Flavor: es.Flavor, Username: es.Username, Password: es.Password, APIKey: es.APIKey,
			CACertFile: es.CACertFile, InsecureSkipVerify: es.InsecureSkipVerify, IndexPrefix: es.IndexPrefix,
			Retention: rc.Retention, Shards: es.Shards, Replicas: es.Replicas,
		}
		// A search cluster still starting (or restarting with Kite) is
		// waited for, as the brokers are; a wrong configuration is not.
		backoff := time.Second
		for attempt := 1; ; attempt++ {
			if store, err = elasticsearch.New(ctx, cfg, a.log); err == nil {
				break
			}
			if !errors.Is(err, repository.ErrUnavailable) || attempt >= 20 {
				return nil, fmt.Errorf("search repository at %s: %w", strings.Join(es.URLs, ","), err)
			}
			a.log.Warn("search repository unavailable; retrying", zap.Strings("urls", es.URLs),
				zap.Int("attempt", attempt), zap.Duration("backoff", backoff), zap.Error(err))
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 15*time.Second)
		}
	}
	a.repo = store
	return runFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return store.Close()
	}), nil
}

func (a *App) initIndexer(ctx context.Context) (service, error) {
	return indexer.New(a.cfg.Indexer, a.cfg.Kafka, a.repo, a.log)
}

func (a *App) initAPI(ctx context.Context) (service, error) {
	deps := api.Deps{
		Flows: a.flows, Kafka: a.cfg.Kafka, Registry: a.reg,
		FlowService: flows.NewServer(a.flows, a.log), TriggerService: a.trig,
		Storage: a.store, MaxInlineBytes: a.cfg.Storage.MaxInlineBytes,
	}
	if a.cfg.Pprof {
		deps.Debug = pprofHandler()
	}
	if a.repo != nil {
		deps.SearchService = search.New(a.repo, a.log)
	} else {
		a.log.Warn("no repository configured (repository.elasticsearch.urls): the API serves no SearchService")
	}
	s, err := api.New(a.cfg.API, deps, a.log)
	if err != nil {
		return nil, err
	}
	a.api = s
	return s, nil
}

// pprofHandler serves net/http/pprof's profiles under /debug/pprof/.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// initMetrics serves /metrics and /healthz for processes without the API role.
func (a *App) initMetrics(ctx context.Context) (service, error) {
	lis, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if a.cfg.Pprof {
		mux.Handle("/debug/", pprofHandler())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return runFunc(func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(lis) }()
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		case err := <-errc:
			return err
		}
	}), nil
}

// ApplyDir applies every .yaml/.yml flow file of dir through the flows
// store (a new revision when the source changed), once the app has started
// with a role that holds the store (api or executor). It returns one line
// per file, and the files that failed, each with every problem located.
func (a *App) ApplyDir(ctx context.Context, dir string) ([]string, error) {
	if a.flows == nil {
		return nil, errors.New("no flows store in this process: applying flows needs the api or executor role")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var lines []string
	var errs []error
	for _, e := range entries {
		if e.IsDir() || (!strings.HasSuffix(e.Name(), ".yaml") && !strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		src, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		stored, changed, _, err := a.flows.Apply(ctx, string(src))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		what := "unchanged"
		if changed {
			what = "applied"
		}
		lines = append(lines, fmt.Sprintf("%s.%s revision %d (%s)", stored.GetNamespace(), stored.GetId(), stored.GetRevision(), what))
	}
	return lines, errors.Join(errs...)
}
