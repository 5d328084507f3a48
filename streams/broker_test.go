package streams

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"
)

func startBroker(t testing.TB, dir string) *Broker {
	t.Helper()
	b, err := StartBroker(t.Context(), BrokerConfig{DataDir: dir, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestBrokerSurvivesRestart(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	const n = 10
	cfg := Defaults()
	topic := cfg.Topic(TopicExecutionEvents)

	// First life: create Kite's topics, produce, consume half in a group
	// and commit that position.
	b1 := startBroker(t, dir)
	cfg.Brokers = []string{b1.Addr()}
	if err := EnsureTopics(ctx, kadm.NewClient(newClient(t, cfg)), cfg); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, cfg)
	var partition int32 // all records share a key, so a partition
	for i := range n {
		r := &kgo.Record{Topic: topic, Key: []byte("exec-1"), Value: fmt.Appendf(nil, "event-%d", i)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		partition = r.Partition
	}
	prod.Close()
	group := newClient(t, cfg, kgo.ConsumerGroup("indexer"), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
	var committed int64
	for committed < n/2 {
		fs := group.PollRecords(ctx, n/2-int(committed))
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		committed += int64(len(fs.Records()))
		if err := group.CommitRecords(ctx, fs.Records()...); err != nil {
			t.Fatal(err)
		}
	}
	group.Close()
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b1.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}

	// Second life on the same dir: the records, the topic configs and the
	// group's committed offset are back.
	b2 := startBroker(t, dir)
	cfg.Brokers = []string{b2.Addr()}
	adm := kadm.NewClient(newClient(t, cfg))
	offs, err := adm.FetchOffsets(ctx, "indexer")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, partition); !ok || o.At != committed {
		t.Errorf("committed offset after restart = %+v (found %v), want %d", o, ok, committed)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, cfg.Topic(TopicExecutorState))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(cfg.Topic(TopicExecutorState), nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != CleanupCompact {
		t.Errorf("changelog cleanup.policy after restart = %q, want %q", policy, CleanupCompact)
	}

	cons := newClient(t, cfg, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		for _, r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	for i, v := range got {
		if want := fmt.Sprintf("event-%d", i); v != want {
			t.Errorf("record %d = %q, want %q", i, v, want)
		}
	}
}

func TestBrokerDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	startBroker(t, dir)
	_, err := StartBroker(t.Context(), BrokerConfig{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second StartBroker on %s = %v, want an in-use error", dir, err)
	}
}

func TestBrokerInMemory(t *testing.T) {
	b := startBroker(t, "")
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:PORT", b.Addr())
	}
	cfg := Defaults()
	cfg.Brokers = []string{b.Addr()}
	if err := newClient(t, cfg).Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}
