package streams

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newAdmin(t testing.TB, fake *kfake.Cluster, cfg *Config) *kadm.Client {
	t.Helper()
	cfg.Brokers = fake.ListenAddrs()
	return kadm.NewClient(newClient(t, *cfg))
}

func TestEnsureTopics(t *testing.T) {
	tests := []struct {
		name     string
		existing map[string]int32 // base name → partitions, created before
		wantErr  []string         // substrings; none: success
		wantCo   map[string]int   // co-partition group → expected partitions of its topics
	}{
		{name: "empty cluster", wantCo: map[string]int{CoPartitionExecutions: 6, CoPartitionFlows: 6}},
		{name: "idempotent on a complete cluster", existing: map[string]int32{
			TopicCommands: 6, TopicWorkerResults: 6, TopicExecutionEvents: 6, TopicExecutorState: 6, TopicFlows: 3,
			TopicWorkerJobs: 6, TopicWorkerHeartbeat: 6, TopicLogs: 6, TopicTriggers: 3, TopicTriggerCommands: 3, TopicDeadLetter: 6,
		}, wantCo: map[string]int{CoPartitionExecutions: 6, CoPartitionFlows: 3}},
		{name: "missing co-partitioned topic follows existing count", existing: map[string]int32{
			TopicCommands: 12, TopicWorkerResults: 12,
		}, wantCo: map[string]int{CoPartitionExecutions: 12, CoPartitionFlows: 6}},
		{name: "missing trigger-commands follows the flows and triggers", existing: map[string]int32{
			TopicFlows: 3, TopicTriggers: 3, TopicCommands: 12,
		}, wantCo: map[string]int{CoPartitionExecutions: 12, CoPartitionFlows: 3}},
		{name: "co-partitioned counts disagree", existing: map[string]int32{
			TopicCommands: 6, TopicWorkerResults: 12,
		}, wantErr: []string{"kite.commands=6", "kite.worker-results=12", "different partition counts"}},
		{name: "flow topics disagree", existing: map[string]int32{
			TopicFlows: 3, TopicTriggers: 6, TopicCommands: 6,
		}, wantErr: []string{`group "flows"`, "kite.flows=3", "kite.triggers=6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			fake := newFake(t)
			cfg := Defaults()
			adm := newAdmin(t, fake, &cfg)
			for base, n := range tt.existing {
				if _, err := adm.CreateTopic(ctx, n, 1, nil, cfg.Topic(base)); err != nil {
					t.Fatal(err)
				}
			}

			err := EnsureTopics(ctx, adm, cfg)
			if len(tt.wantErr) > 0 {
				if !errors.Is(err, ErrNotCoPartitioned) {
					t.Fatalf("EnsureTopics() = %v, want ErrNotCoPartitioned with %q", err, tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("EnsureTopics() = %q, missing %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("EnsureTopics() = %v", err)
			}
			if err := EnsureTopics(ctx, adm, cfg); err != nil {
				t.Fatalf("second EnsureTopics() = %v", err)
			}

			details, err := adm.ListTopics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range TopicSpecs() {
				names = append(names, cfg.Topic(s.Base))
				d, ok := details[cfg.Topic(s.Base)]
				if !ok {
					t.Errorf("topic %s missing", cfg.Topic(s.Base))
					continue
				}
				if want, ok := tt.wantCo[s.CoPartition]; ok && len(d.Partitions) != want {
					t.Errorf("%s has %d partitions, want %d", d.Topic, len(d.Partitions), want)
				}
			}
			if len(tt.existing) > 0 {
				return // pre-created topics have no configs
			}
			rcs, err := adm.DescribeTopicConfigs(ctx, names...)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range TopicSpecs() {
				rc, err := rcs.On(cfg.Topic(s.Base), nil)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, c := range rc.Configs {
					got[c.Key] = c.MaybeValue()
				}
				for k, v := range s.Configs {
					if got[k] != v {
						t.Errorf("%s: %s = %q, want %q", rc.Name, k, got[k], v)
					}
				}
			}
		})
	}
}

func TestTopicSpecs(t *testing.T) {
	want := map[string]string{
		TopicFlows: CleanupCompact, TopicCommands: CleanupDelete, TopicWorkerResults: CleanupDelete,
		TopicExecutionEvents: CleanupDelete, TopicExecutorState: CleanupCompact, TopicWorkerJobs: CleanupDelete, TopicWorkerKills: CleanupDelete,
		TopicWorkerHeartbeat: CleanupCompact, TopicLogs: CleanupDelete, TopicTriggers: CleanupCompact,
		TopicTriggerCommands: CleanupDelete, TopicDeadLetter: CleanupDelete,
	}
	specs := TopicSpecs()
	if len(specs) != len(want) {
		t.Fatalf("%d topics, want %d", len(specs), len(want))
	}
	for _, s := range specs {
		if s.Cleanup != want[s.Base] || s.Configs["cleanup.policy"] != want[s.Base] {
			t.Errorf("%s: cleanup %q (config %q), want %q", s.Base, s.Cleanup, s.Configs["cleanup.policy"], want[s.Base])
		}
	}
}

func TestCoPartitionGroups(t *testing.T) {
	want := map[string][]string{
		CoPartitionExecutions: {TopicCommands, TopicWorkerResults, TopicExecutionEvents, TopicExecutorState},
		CoPartitionFlows:      {TopicFlows, TopicTriggers, TopicTriggerCommands},
	}
	got := map[string][]string{}
	for _, s := range TopicSpecs() {
		if s.CoPartition != "" {
			got[s.CoPartition] = append(got[s.CoPartition], s.Base)
		}
	}
	for group, topics := range want {
		if !slices.Equal(got[group], topics) {
			t.Errorf("group %s = %v, want %v", group, got[group], topics)
		}
	}
	if len(got) != len(want) {
		t.Errorf("groups %v, want %v", got, want)
	}
	if FlowKey("company.team", "hello") != "company.team/hello" ||
		TriggerKey("company.team", "hello", "daily") != "company.team/hello/daily" {
		t.Errorf("FlowKey, TriggerKey = %q, %q", FlowKey("company.team", "hello"), TriggerKey("company.team", "hello", "daily"))
	}
}

func TestDecodeChangelog(t *testing.T) {
	tests := []struct {
		name      string
		rec       *kgo.Record
		wantKey   string
		wantValue []byte // nil: deleted
		wantOK    bool
	}{
		{name: "state", rec: &kgo.Record{Key: []byte("a/b/c"), Value: encodeChangelogValue([]byte("state"))},
			wantKey: "a/b/c", wantValue: []byte("state"), wantOK: true},
		{name: "empty state", rec: &kgo.Record{Key: []byte("a/b/c"), Value: encodeChangelogValue([]byte{})},
			wantKey: "a/b/c", wantValue: []byte{}, wantOK: true},
		{name: "deleted", rec: &kgo.Record{Key: []byte("a/b/c")}, wantKey: "a/b/c", wantOK: true},
		{name: "timer", rec: &kgo.Record{Key: timerKey(time.Unix(10, 0), []byte("a/b/c")), Value: encodeChangelogValue([]byte{})}},
		{name: "timer index", rec: &kgo.Record{Key: timerIndexKey([]byte("a/b/c")), Value: encodeChangelogValue([]byte{1})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, v, ok := DecodeChangelog(tt.rec)
			if ok != tt.wantOK || string(k) != tt.wantKey || !bytes.Equal(v, tt.wantValue) || (v == nil) != (tt.wantValue == nil) {
				t.Errorf("DecodeChangelog() = %q, %q, %v; want %q, %q, %v", k, v, ok, tt.wantKey, tt.wantValue, tt.wantOK)
			}
		})
	}
}
