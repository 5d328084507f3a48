package api

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the API role's configuration. Start from Defaults(), decode YAML
// over it, then call Validate.
type Config struct {
	// GRPCAddr is where the gRPC API listens, as host:port. Default
	// "localhost:7777" (the CLI's default server); ":7777" listens on every
	// interface.
	GRPCAddr string `yaml:"grpc_addr"`
	// HTTPAddr is where /metrics, /healthz and the webhooks listen, as
	// host:port. Default "localhost:8080".
	HTTPAddr string `yaml:"http_addr"`
	// MaxKafkaReaders bounds the Get, Watch and Tail requests reading Kafka
	// at once (each holds a Kafka client and its connections); more wait.
	// Default 512.
	MaxKafkaReaders int `yaml:"max_kafka_readers"`
	// MaxRecvBytes caps one received gRPC message. Default 4 MiB, which
	// holds a CreateWithFiles chunk of 1 MiB with room to spare.
	MaxRecvBytes int `yaml:"max_recv_bytes"`
	// CreateWait bounds how long Create waits for the executor to record the
	// new execution when the request carries no deadline of its own.
	// Default 30s.
	CreateWait time.Duration `yaml:"create_wait"`
	// WatchNotFoundWait is how long Watch waits for an execution that has no
	// event yet before it answers NOT_FOUND. Default 10s.
	WatchNotFoundWait time.Duration `yaml:"watch_not_found_wait"`
	// TailGrace is how long Tail keeps reading after the execution ended, for
	// lines that reach the logs topic late. Workers produce a task's lines
	// before its result, and the executor's lines commit with its events, so
	// the lines of an ended execution are all there already: the grace only
	// covers other writers. Default 250ms.
	TailGrace time.Duration `yaml:"tail_grace"`
	// KafkaTimeout bounds one exchange with Kafka (producing a command,
	// listing offsets); past it the call fails with UNAVAILABLE. Default 10s.
	KafkaTimeout time.Duration `yaml:"kafka_timeout"`
	// ExecutionCacheSize is how many folded executions Get keeps to
	// continue from (see executionCache). Default 1024; 0 disables the cache.
	ExecutionCacheSize int `yaml:"execution_cache_size"`
	// WebhookMaxBodyBytes caps a webhook request's body; a larger one gets
	// 413. Default 1 MiB.
	WebhookMaxBodyBytes int64 `yaml:"webhook_max_body_bytes"`
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// once Run's context ends. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Defaults returns a Config with every default set.
func Defaults() Config {
	return Config{
		GRPCAddr:            "localhost:7777",
		HTTPAddr:            "localhost:8080",
		MaxRecvBytes:        4 << 20,
		MaxKafkaReaders:     512,
		CreateWait:          30 * time.Second,
		WatchNotFoundWait:   10 * time.Second,
		TailGrace:           250 * time.Millisecond,
		KafkaTimeout:        10 * time.Second,
		ExecutionCacheSize:  1024,
		WebhookMaxBodyBytes: 1 << 20,
		ShutdownTimeout:     10 * time.Second,
	}
}

// Validate returns every problem in c at once, each naming the YAML field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for _, a := range []struct{ field, addr string }{{"grpc_addr", c.GRPCAddr}, {"http_addr", c.HTTPAddr}} {
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			bad(a.field, "%q is not host:port (e.g. localhost:7777, or :7777 for every interface)", a.addr)
		}
	}
	if c.MaxKafkaReaders < 1 {
		bad("max_kafka_readers", "must be at least 1, got %d", c.MaxKafkaReaders)
	}
	if c.MaxRecvBytes < 1<<20+1024 {
		bad("max_recv_bytes", "must be at least 1049600 (a 1 MiB file chunk and its envelope), got %d", c.MaxRecvBytes)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"create_wait", c.CreateWait}, {"watch_not_found_wait", c.WatchNotFoundWait},
		{"kafka_timeout", c.KafkaTimeout}, {"shutdown_timeout", c.ShutdownTimeout},
	} {
		if d.v <= 0 {
			bad(d.field, "must be positive, got %s", d.v)
		}
	}
	if c.TailGrace < 0 {
		bad("tail_grace", "must not be negative, got %s", c.TailGrace)
	}
	if c.ExecutionCacheSize < 0 {
		bad("execution_cache_size", "must not be negative, got %d", c.ExecutionCacheSize)
	}
	if c.WebhookMaxBodyBytes < 1 {
		bad("webhook_max_body_bytes", "must be positive, got %d", c.WebhookMaxBodyBytes)
	}
	return errors.Join(errs...)
}
