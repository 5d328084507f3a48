// Package clustertest runs tests of Kite's roles against both brokers Kite
// is tested on: franz-go's kfake in-process, and the real Apache Kafka that
// `make test` starts (integration/kafkatest). Each test gets a streams.Config
// whose topics (all of Kite's, created by streams.EnsureTopics) are its own.
package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kiteflow/kite/integration/kafkatest"
	"github.com/kiteflow/kite/streams"
)

// Partitions is the partition count of the test topics.
const Partitions = 3

// Each runs fn as a subtest on kfake ("kfake") and on the real broker
// ("kafka"; skipped under plain go test, failed under make test when the
// broker is missing).
func Each(t *testing.T, fn func(t *testing.T, cfg streams.Config)) {
	t.Run("kfake", func(t *testing.T) { fn(t, Fake(t)) })
	t.Run("kafka", func(t *testing.T) { fn(t, Real(t)) })
}

// Fake starts a kfake cluster for the test and creates Kite's topics in it.
func Fake(tb testing.TB) streams.Config {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	cfg := streams.Defaults()
	cfg.Brokers = c.ListenAddrs()
	cfg.Partitions = Partitions
	cfg.ProducerLinger = time.Millisecond
	ensure(tb, cfg)
	return cfg
}

// Real creates Kite's topics under a prefix of the test's own on the real
// broker, and deletes them when the test ends.
func Real(tb testing.TB) streams.Config {
	tb.Helper()
	cfg := streams.Defaults()
	cfg.Brokers = kafkatest.Brokers(tb)
	var b [4]byte
	_, _ = rand.Read(b[:])
	cfg.TopicPrefix = "kite-test-" + hex.EncodeToString(b[:]) + "."
	cfg.TransactionalIDPrefix = strings.TrimSuffix(cfg.TopicPrefix, ".")
	cfg.Partitions = Partitions
	cfg.ProducerLinger = time.Millisecond
	ensure(tb, cfg)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		adm := admin(tb, cfg)
		var names []string
		for _, s := range streams.TopicSpecs() {
			names = append(names, cfg.Topic(s.Base))
		}
		if _, err := adm.DeleteTopics(ctx, names...); err != nil {
			tb.Errorf("deleting the test topics: %v", err)
		}
	})
	return cfg
}

func ensure(tb testing.TB, cfg streams.Config) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	defer cancel()
	adm := admin(tb, cfg)
	if err := streams.EnsureTopics(ctx, adm, cfg); err != nil {
		tb.Fatalf("creating Kite's topics: %v", err)
	}
	// Topics just created may not have partition leaders yet: a role whose
	// first offset listing fails would stop (in production it is restarted).
	var names []string
	for _, s := range streams.TopicSpecs() {
		names = append(names, cfg.Topic(s.Base))
	}
	for {
		ends, err := adm.ListCommittedOffsets(ctx, names...)
		if err == nil && ends.Error() == nil {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("the partitions of Kite's topics have no leader after 30s: %v", errors.Join(err, ends.Error()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func admin(tb testing.TB, cfg streams.Config) *kadm.Client {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// Client returns a plain client of the cluster, closed when the test ends.
func Client(tb testing.TB, cfg streams.Config, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}
