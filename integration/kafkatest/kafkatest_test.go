package kafkatest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kiteflow/kite/integration/kafkatest"
)

// TestRealBroker checks the broker that `make test` starts does what Kite relies on:
// transactional produce, and read_committed consumers that see committed records in order
// and never an aborted transaction's.
func TestRealBroker(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.NewTopic(t, brokers, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	producer, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("kite-test-"+topic),
	)
	if err != nil {
		t.Fatalf("creating producer: %v", err)
	}
	defer producer.Close()

	inTxn := func(commit kgo.TransactionEndTry, values ...string) {
		t.Helper()
		if err := producer.BeginTransaction(); err != nil {
			t.Fatalf("beginning transaction: %v", err)
		}
		for _, v := range values {
			if err := producer.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatalf("producing %q: %v", v, err)
			}
		}
		if err := producer.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("ending transaction (commit=%v): %v", commit, err)
		}
	}
	inTxn(kgo.TryCommit, "committed-1", "committed-2")
	inTxn(kgo.TryAbort, "aborted-1", "aborted-2")
	inTxn(kgo.TryCommit, "committed-3")

	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		t.Fatalf("creating consumer: %v", err)
	}
	defer consumer.Close()

	want := []string{"committed-1", "committed-2", "committed-3"}
	var got []string
	// committed-3 comes after the aborted records, so once it is read they would have been.
	for len(got) < len(want) {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %q before the deadline, want %q", got, want)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Fatalf("fetching %s/%d: %v", topic, partition, err)
		})
		fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if !slices.Equal(got, want) {
		t.Errorf("read_committed consumer read %q, want %q", got, want)
	}
}

func TestBrokersSkipsWithoutRealKafka(t *testing.T) {
	t.Setenv(kafkatest.EnvReal, "")
	t.Setenv(kafkatest.EnvBrokers, "")
	var skipped bool
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		kafkatest.Brokers(t)
		t.Error("Brokers returned without the broker's address")
	})
	if !skipped {
		t.Error("Brokers did not skip with KITE_REAL_KAFKA and KITE_KAFKA_BROKERS unset")
	}
}
