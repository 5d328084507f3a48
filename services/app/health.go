package app

import (
	"fmt"
	"net"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Health services every process serves on health_addr (the standard
// grpc.health.v1 protocol, which Kubernetes' grpc probes speak):
//   - "" (the process as a whole): SERVING once every module started, NOT_SERVING
//     while starting and from the moment it begins to stop: readiness and startup;
//   - "liveness": SERVING while the process runs: liveness (a process still
//     waiting for Kafka is starting, not dead);
//   - "kite.<role>" for each role it runs, as "".
const HealthLiveness = "liveness"

// healthServer is the gRPC health server of a process.
type healthServer struct {
	srv   *grpc.Server
	h     *health.Server
	lis   net.Listener
	roles []string
	log   *zap.Logger
}

// startHealth listens on addr and serves the health services, NOT_SERVING
// but for liveness until ready is called.
func startHealth(addr string, roles []string, log *zap.Logger) (*healthServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health_addr %s: %w", addr, err)
	}
	h := health.NewServer()
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, h)
	s := &healthServer{srv: srv, h: h, lis: lis, roles: roles, log: log}
	s.set(false)
	h.SetServingStatus(HealthLiveness, healthpb.HealthCheckResponse_SERVING)
	go func() {
		if err := srv.Serve(lis); err != nil {
			log.Error("health server stopped", zap.Error(err))
		}
	}()
	log.Info("gRPC health listening", zap.String("addr", lis.Addr().String()))
	return s, nil
}

// Addr is the address the health server listens on.
func (s *healthServer) Addr() string { return s.lis.Addr().String() }

// set turns readiness on or off.
func (s *healthServer) set(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.h.SetServingStatus("", st)
	for _, r := range s.roles {
		s.h.SetServingStatus("kite."+r, st)
	}
}

// stop ends the server; checks then fail to connect.
func (s *healthServer) stop() {
	s.h.Shutdown()
	s.srv.Stop()
}
