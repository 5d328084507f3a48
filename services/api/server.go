// Package api is the API role: Kite's public gRPC API (DESIGN.md, "API") and
// its HTTP side (/metrics, /healthz, webhooks).
//
// The ExecutionService and the LogService are implemented here, on the
// Kafka topics directly: a create, kill, resume, restart or replay is a
// record of the commands topic; an execution is the fold of its records on
// the execution-events topic, and its logs are the records of the logs
// topic, all keyed by execution id. Nothing here waits for the indexer. The
// FlowService and the TriggerService are written elsewhere (services/flows,
// services/scheduler) and only served here.
package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/storage"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// FlowSource gives the API the flows it creates executions of.
//
// Contract: Flow returns the parsed flow at revision, or its latest revision
// when revision is 0; its error wraps flow.ErrNotFound when the flow (or
// that revision) does not exist or the flow was deleted, and
// flow.ErrInvalidFlow when the revision's source does not parse. Latest
// returns the latest revision of every flow not deleted. The flows returned
// are shared: the API never modifies them. Both are safe for concurrent use
// and do not block on I/O. services/flows.Store implements it.
type FlowSource interface {
	Flow(namespace, id string, revision int) (*flow.Flow, error)
	Latest() []*flow.Flow
}

// Deps are what the API role is built from.
type Deps struct {
	// Flows is where Create and the webhooks find flows. Required.
	Flows FlowSource
	// Kafka is the connection and topic layout. Required.
	Kafka streams.Config
	// KafkaOpts are extra options for every Kafka client the API starts,
	// after streams.Config.ClientOpts' own (e.g. tuning in tests). The API
	// starts a client per Get, Watch and Tail, so they must not register
	// metrics (streams.WithMetrics): the API registers its shared client's
	// metrics itself, in Registry.
	KafkaOpts []kgo.Opt
	// FlowService, TriggerService and SearchService are served when set.
	FlowService    kitev1.FlowServiceServer
	TriggerService kitev1.TriggerServiceServer
	SearchService  kitev1.SearchServiceServer
	// Storage is the internal storage whose files of executions the
	// FileService serves. Nil: the FileService answers every call
	// FAILED_PRECONDITION, saying the server has no internal storage.
	Storage storage.Storage
	// MaxInlineBytes is the largest JSON size of an execution's inputs sent
	// inside its create command; larger inputs are stored in Storage and
	// sent as references (claim-check). Default 256 KiB.
	MaxInlineBytes int
	// Registry receives the gRPC and Kafka metrics and is what /metrics
	// serves. Nil: a registry of the API's own.
	Registry *prometheus.Registry
	// Debug, when set, is served under /debug/ on the HTTP address (the
	// app's pprof handlers when pprof is on).
	Debug http.Handler
}

// Server is the API role: a gRPC server and an HTTP server, bound by New and
// served by Run.
type Server struct {
	cfg    Config
	flows  FlowSource
	logger *zap.Logger
	topics *topics
	cache  *executionCache
	// created hands each Create the first event of its execution.
	created *createdTail
	engine  *expr.Engine
	// store is internal storage (nil: none); maxInline bounds the inputs
	// carried in a create command.
	store     storage.Storage
	maxInline int

	grpc     *grpc.Server
	health   *health.Server
	http     *http.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	services []string // registered service names, for health

	statusMu  sync.Mutex
	statusSet map[string]bool // services whose health SetServingStatus set

	ran       atomic.Bool
	stopping  chan struct{} // closed when shutdown begins: ends streams
	stopOnce  sync.Once
	closeOnce sync.Once
}

// errShuttingDown is the cause of the end of a stream that the server ends
// because it is stopping.
var errShuttingDown = errors.New("the API server is shutting down")

// New builds the API role and binds its gRPC and HTTP addresses (so a busy
// port fails here, and GRPCAddr and HTTPAddr are known before Run). Call Run
// to serve, or Close to release them without serving.
func New(cfg Config, deps Deps, logger *zap.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid api config: %w", err)
	}
	if deps.Flows == nil {
		return nil, errors.New("api: Deps.Flows is required")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("api")
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}

	clientOpts := append([]kgo.Opt{}, deps.KafkaOpts...)
	clientOpts = append(clientOpts, kgo.ClientID(deps.Kafka.ClientID+"-api"), streams.WithMetrics(reg))
	opts, err := deps.Kafka.ClientOpts(logger, clientOpts...)
	if err != nil {
		return nil, err
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting the api's kafka client: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		flows:  deps.Flows,
		logger: logger,
		store:  deps.Storage, maxInline: cmp.Or(deps.MaxInlineBytes, 256<<10),
		topics: &topics{
			cfg: deps.Kafka, opts: deps.KafkaOpts, client: client, admin: kadm.NewClient(client),
			timeout: cfg.KafkaTimeout, logger: logger, counts: map[string]int{},
			readers: make(chan struct{}, cfg.MaxKafkaReaders),
		},
		cache:     newExecutionCache(cfg.ExecutionCacheSize),
		engine:    expr.Default,
		health:    health.NewServer(),
		statusSet: map[string]bool{},
		stopping:  make(chan struct{}),
	}
	s.created = newCreatedTail(s.topics, logger)
	if err := s.buildGRPC(deps, reg); err != nil {
		client.Close()
		return nil, err
	}
	s.buildHTTP(reg, deps.Debug)

	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		client.Close()
		return nil, fmt.Errorf("listening for gRPC on %s: %w", cfg.GRPCAddr, err)
	}
	if s.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		_ = s.grpcLis.Close()
		client.Close()
		return nil, fmt.Errorf("listening for HTTP on %s: %w", cfg.HTTPAddr, err)
	}
	return s, nil
}

func (s *Server) buildGRPC(deps Deps, reg *prometheus.Registry) error {
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	if err := reg.Register(metrics); err != nil {
		return fmt.Errorf("registering the gRPC metrics: %w", err)
	}
	recoverOpt := recovery.WithRecoveryHandlerContext(s.recovered)
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(s.cfg.MaxRecvBytes),
		// Outermost first: metrics and the request log see the code the
		// client gets, a recovered panic included.
		grpc.ChainUnaryInterceptor(metrics.UnaryServerInterceptor(), s.logUnary, recovery.UnaryServerInterceptor(recoverOpt)),
		grpc.ChainStreamInterceptor(metrics.StreamServerInterceptor(), s.logStream, recovery.StreamServerInterceptor(recoverOpt)),
	)
	kitev1.RegisterExecutionServiceServer(s.grpc, &executionService{s: s})
	kitev1.RegisterLogServiceServer(s.grpc, &logService{s: s})
	kitev1.RegisterFileServiceServer(s.grpc, &fileService{s: s, store: deps.Storage})
	s.services = []string{kitev1.ExecutionService_ServiceDesc.ServiceName, kitev1.LogService_ServiceDesc.ServiceName,
		kitev1.FileService_ServiceDesc.ServiceName}
	if deps.FlowService != nil {
		kitev1.RegisterFlowServiceServer(s.grpc, deps.FlowService)
		s.services = append(s.services, kitev1.FlowService_ServiceDesc.ServiceName)
	}
	if deps.TriggerService != nil {
		kitev1.RegisterTriggerServiceServer(s.grpc, deps.TriggerService)
		s.services = append(s.services, kitev1.TriggerService_ServiceDesc.ServiceName)
	}
	if deps.SearchService != nil {
		kitev1.RegisterSearchServiceServer(s.grpc, deps.SearchService)
		s.services = append(s.services, kitev1.SearchService_ServiceDesc.ServiceName)
	}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	metrics.InitializeMetrics(s.grpc)
	// Not serving until Run serves.
	for _, name := range append([]string{""}, s.services...) {
		s.setServing(name, false)
	}
	return nil
}

func (s *Server) buildHTTP(reg *prometheus.Registry, debug http.Handler) {
	mux := http.NewServeMux()
	if debug != nil {
		mux.Handle("/debug/", debug)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("POST /webhooks/{namespace}/{flow}/{key}", s.webhook)
	mux.HandleFunc("GET /webhooks/{namespace}/{flow}/{key}", s.webhook)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(s.logger.Named("http")),
	}
}

// GRPCAddr is the address the gRPC server listens on (the port chosen when
// Config.GRPCAddr has port 0).
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the address the HTTP server listens on.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// SetServingStatus sets the health of one gRPC service (its full name, such
// as "kite.v1.FlowService"), or of the server as a whole with "". Every
// registered service and "" are not serving until Run starts, which turns
// to serving those whose status was not set here: a role that is not ready
// yet (a flow store still loading) sets its service to not serving before
// Run, then to serving once it is. Everything is not serving once Run
// stops; it has no effect then.
func (s *Server) SetServingStatus(service string, serving bool) {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	s.statusSet[service] = true
	s.setServing(service, serving)
}

func (s *Server) setServing(service string, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus(service, st)
}

// Run serves gRPC and HTTP until ctx ends, then stops: health turns to not
// serving, streams (Watch, Tail) end with UNAVAILABLE, requests in flight get
// Config.ShutdownTimeout to finish. It returns nil when ctx ended, or the
// error of a server that failed. Run may be called once; it releases
// everything New took when it returns.
func (s *Server) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("api: Run called twice")
	}
	defer s.Close()

	// Serving from the first request on: the listeners are bound already.
	s.statusMu.Lock()
	for _, name := range append([]string{""}, s.services...) {
		if !s.statusSet[name] {
			s.setServing(name, true)
		}
	}
	s.statusMu.Unlock()

	errc := make(chan error, 3)
	var wg sync.WaitGroup
	tailCtx, stopTail := context.WithCancel(ctx)
	defer stopTail()
	wg.Go(func() {
		if err := s.created.run(tailCtx); err != nil {
			errc <- err
		}
	})
	wg.Go(func() {
		if err := s.grpc.Serve(s.grpcLis); err != nil {
			errc <- fmt.Errorf("serving gRPC on %s: %w", s.GRPCAddr(), err)
		}
	})
	wg.Go(func() {
		if err := s.http.Serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving HTTP on %s: %w", s.HTTPAddr(), err)
		}
	})
	s.logger.Info("serving", zap.String("grpc_addr", s.GRPCAddr()), zap.String("http_addr", s.HTTPAddr()))

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.shutdown()
	stopTail()
	wg.Wait()
	s.logger.Info("stopped")
	return err
}

// shutdown stops both servers, within Config.ShutdownTimeout each.
func (s *Server) shutdown() {
	s.health.Shutdown()
	s.stopOnce.Do(func() { close(s.stopping) })

	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.logger.Warn("requests still running at the shutdown timeout; cancelling them", zap.Duration("timeout", s.cfg.ShutdownTimeout))
		s.grpc.Stop()
		<-stopped
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.logger.Warn("HTTP requests still running at the shutdown timeout; closing them", zap.Error(err))
		_ = s.http.Close()
	}
}

// Close releases the listeners and the Kafka client. Run calls it when it
// returns; call it yourself only when Run is never called. Idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if !s.ran.Load() {
			_ = s.grpcLis.Close()
			_ = s.httpLis.Close()
		}
		s.topics.client.Close()
	})
}

// streamContext returns the context of a stream (Watch, Tail): it ends with
// the client's, or with errShuttingDown as its cause when the server stops.
// The handler calls done when it returns.
func (s *Server) streamContext(ctx context.Context) (_ context.Context, done func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-s.stopping:
			cancel(errShuttingDown)
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-exited
	}
}

// logUnary and logStream log every request: method, code and duration.
func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	s.logRequest(info.FullMethod, err, time.Since(start))
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	s.logRequest(info.FullMethod, err, time.Since(start))
	return err
}

func (s *Server) logRequest(method string, err error, d time.Duration) {
	code := status.Code(err)
	fields := []zap.Field{fMethod(method), zap.Stringer("code", code), zap.Duration("duration", d)}
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		s.logger.Error("request failed", append(fields, zap.Error(err))...)
	case codes.Unavailable:
		s.logger.Warn("request failed", append(fields, zap.Error(err))...)
	default:
		if strings.HasPrefix(method, "/grpc.health.v1.") {
			s.logger.Debug("request", fields...) // probes, every few seconds
			return
		}
		s.logger.Info("request", fields...)
	}
}

// recovered turns a handler's panic into INTERNAL, logging it with its
// stack; the server goes on serving.
func (s *Server) recovered(ctx context.Context, p any) error {
	method, _ := grpc.Method(ctx)
	s.logger.Error("request handler panicked", fMethod(method), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
	return status.Error(codes.Internal, "internal error: the server failed on this request (logged with its stack)")
}

// healthz answers 200 while the server as a whole is serving, 503 otherwise.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		http.Error(w, "not serving", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
