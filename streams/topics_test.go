package streams

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
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
		wantCo   int              // expected partitions of co-partitioned topics
	}{
		{name: "empty cluster", wantCo: 6},
		{name: "idempotent on a complete cluster", existing: map[string]int32{
			TopicCommands: 6, TopicWorkerResults: 6, TopicExecutionEvents: 6, TopicExecutorState: 6, TopicFlows: 3,
			TopicWorkerJobs: 6, TopicWorkerHeartbeat: 6, TopicLogs: 6, TopicTriggers: 6, TopicDeadLetter: 6,
		}, wantCo: 6},
		{name: "missing co-partitioned topic follows existing count", existing: map[string]int32{
			TopicCommands: 12, TopicWorkerResults: 12,
		}, wantCo: 12},
		{name: "co-partitioned counts disagree", existing: map[string]int32{
			TopicCommands: 6, TopicWorkerResults: 12,
		}, wantErr: []string{"kite.commands=6", "kite.worker-results=12", "different partition counts"}},
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
				if err == nil {
					t.Fatalf("EnsureTopics() = nil, want %q", tt.wantErr)
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
				if s.CoPartitioned && len(d.Partitions) != tt.wantCo {
					t.Errorf("%s has %d partitions, want %d", d.Topic, len(d.Partitions), tt.wantCo)
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
		TopicDeadLetter: CleanupDelete,
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
