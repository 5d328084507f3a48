// Package kafkatest gives integration tests a real Apache Kafka broker: the one that
// `make test` starts with integration/kafka/kafka.sh (KRaft, 127.0.0.1, one node).
//
// Tests call Brokers to get its address and NewTopic for a topic of their own. Under
// plain `go test` no broker runs and those tests skip with a reason; under `make test`
// (KITE_REAL_KAFKA=1) a missing broker fails them instead, so CI never passes by skipping.
// The broker's auto.create.topics.enable is false: a test creates every topic it uses.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The environment that `make test` (integration/kafka/with-kafka.sh) and `make kafka-up`
// (bin/kafka.env) set.
const (
	EnvReal    = "KITE_REAL_KAFKA"    // "1": the real broker must be there
	EnvBrokers = "KITE_KAFKA_BROKERS" // comma-separated bootstrap addresses
)

// Brokers returns the real broker's bootstrap addresses from KITE_KAFKA_BROKERS. When the
// variable is empty it skips the test, unless KITE_REAL_KAFKA=1 says the broker was
// started, in which case it fails it.
func Brokers(tb testing.TB) []string {
	tb.Helper()
	var brokers []string
	for b := range strings.SplitSeq(os.Getenv(EnvBrokers), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	switch {
	case len(brokers) > 0:
		return brokers
	case os.Getenv(EnvReal) == "1":
		tb.Fatalf("%s=1 but %s is empty: the real Kafka was not started (integration/kafka/kafka.sh start)", EnvReal, EnvBrokers)
	default:
		tb.Skip("real Kafka not started: run make test")
	}
	return nil
}

// NewTopic creates a topic with a unique name derived from the test's, with the given
// number of partitions and replication factor 1, and deletes it when the test ends.
func NewTopic(tb testing.TB, brokers []string, partitions int32) string {
	tb.Helper()
	topic := topicName(tb.Name())
	adm := newAdmin(tb, brokers)
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		tb.Fatalf("creating topic %s with %d partitions: %v", topic, partitions, err)
	}
	tb.Cleanup(func() {
		// tb.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.DeleteTopic(ctx, topic); err != nil {
			tb.Errorf("deleting topic %s: %v", topic, err)
		}
	})
	return topic
}

// newAdmin returns an admin client closed when the test ends.
func newAdmin(tb testing.TB, brokers []string) *kadm.Client {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		tb.Fatalf("creating Kafka client for %v: %v", brokers, err)
	}
	tb.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

var notTopicChar = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// topicName is "kite-test-" + the test name in the characters Kafka allows + a random
// suffix, within Kafka's 249-character limit.
func topicName(testName string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := notTopicChar.ReplaceAllString(testName, "_")
	if len(name) > 200 {
		name = name[:200]
	}
	return "kite-test-" + name + "-" + hex.EncodeToString(b[:])
}
