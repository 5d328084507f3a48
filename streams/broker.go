package streams

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
)

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	// DataDir holds the broker's state; it is created if needed. Empty
	// means in memory only (tests).
	DataDir string
	// Port to listen on at 127.0.0.1; 0 picks a free port.
	Port int
	// Partitions is the default partition count of auto-created topics;
	// 0 means kfake's default. Kite creates its topics with EnsureTopics.
	Partitions int32
	// SyncWrites fsyncs every produced batch and group/producer state entry.
	// Without it, writes go to the OS page cache as they happen (so a
	// crashed or killed process loses nothing) and are fsynced on segment
	// roll and Close; only an OS crash or power loss can lose the tail.
	// That matches Kafka's own default (log.flush.interval.messages=MAX).
	SyncWrites bool
	Logger     *zap.Logger
}

// Broker is an embedded single-node Kafka-protocol broker (franz-go's kfake)
// for `kite server standalone` and `kite dev broker`. It is not a production
// broker: one node, no replication.
//
// With a DataDir it persists, and restores on the next start: topics and
// their configs, partition logs (segments), committed consumer-group
// offsets and group metadata, producer IDs, epochs and sequence windows
// (idempotence and transactions survive a restart; transactions open at a
// crash are aborted on load), ACLs, SASL users, quotas and broker configs.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	lock    *os.File

	closeOnce sync.Once
}

// StartBroker starts an embedded broker listening on 127.0.0.1. ctx bounds
// the start only; stop the broker with Close.
func StartBroker(ctx context.Context, cfg BrokerConfig) (*Broker, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	b := &Broker{}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.WithLogger(kfakeLogger{logger.Named("broker")}),
	}
	if cfg.Port != 0 {
		opts = append(opts, kfake.Ports(cfg.Port))
	}
	if cfg.Partitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(int(cfg.Partitions)))
	}
	if cfg.DataDir != "" {
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		b.lock = lock
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		b.unlock()
		return nil, fmt.Errorf("starting embedded kafka broker (data dir %q): %w", cfg.DataDir, err)
	}
	b.cluster = c
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		_ = b.Close()
		return nil, fmt.Errorf("embedded kafka broker listens on %d addresses, want 1", len(addrs))
	}
	b.addr = addrs[0]
	logger.Info("embedded kafka broker started", zap.String("addr", b.addr), zap.String("data_dir", cfg.DataDir))
	return b, nil
}

// Addr is the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker and, with a DataDir, writes its state to disk.
// It is idempotent and safe to call concurrently.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if b.cluster != nil {
			b.cluster.Close()
		}
		b.unlock()
	})
	return nil
}

func (b *Broker) unlock() {
	if b.lock != nil {
		_ = b.lock.Close() // releases the flock
		b.lock = nil
	}
}

// kfakeLogger adapts zap to kfake's logger (kzap is for kgo clients only).
type kfakeLogger struct{ l *zap.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	zl := zap.DebugLevel
	switch level {
	case kfake.LogLevelError:
		zl = zap.ErrorLevel
	case kfake.LogLevelWarn:
		zl = zap.WarnLevel
	case kfake.LogLevelInfo:
		zl = zap.InfoLevel
	}
	if ce := k.l.Check(zl, ""); ce != nil {
		ce.Message = fmt.Sprintf(format, args...)
		ce.Write()
	}
}
