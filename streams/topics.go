package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Base names of Kite's topics (DESIGN.md, "Topics"); the full name is
// Config.TopicPrefix + base, see Config.Topic.
const (
	TopicFlows           = "flows"            // key tenant/namespace/flow-id: flow revisions
	TopicCommands        = "commands"         // key execution id: create, kill, resume …
	TopicWorkerResults   = "worker-results"   // key execution id: task run started/progress/finished
	TopicExecutionEvents = "execution-events" // key execution id: the event history
	TopicExecutorState   = "executor-state-changelog"
	TopicWorkerJobs      = "worker-jobs"       // key task run id
	TopicWorkerKills     = "worker-kills"      // key task run id: attempts to stop, read by every worker
	TopicWorkerHeartbeat = "worker-heartbeats" // key worker id
	TopicLogs            = "logs"              // key execution id
	TopicTriggers        = "triggers"          // key trigger id
	TopicDeadLetter      = "dead-letter"       // key: the original record's key
)

// Cleanup policies.
const (
	CleanupCompact = "compact"
	CleanupDelete  = "delete"
)

// TopicSpec describes one of Kite's topics.
type TopicSpec struct {
	Base    string // name without the prefix
	Key     string // what the record key is
	Cleanup string // CleanupCompact or CleanupDelete
	// CoPartitioned topics are keyed by execution id and read or written
	// together by the executor's partition owner: they must all have the
	// same partition count (and the same key hash, franz-go's default
	// murmur2 partitioner), so partition p of each holds the same executions.
	CoPartitioned bool
	// Configs are extra topic configs beyond cleanup.policy.
	Configs map[string]string
}

// eventsRetentionMs keeps execution events for 90 days: long, but bounded.
// The executor state changelog (compacted) is what the executor restores
// from; events are history for watch, replay and the indexer.
const eventsRetentionMs = "7776000000"

var topicSpecs = []TopicSpec{
	{Base: TopicFlows, Key: "tenant/namespace/flow-id", Cleanup: CleanupCompact},
	{Base: TopicCommands, Key: "execution id", Cleanup: CleanupDelete, CoPartitioned: true},
	{Base: TopicWorkerResults, Key: "execution id", Cleanup: CleanupDelete, CoPartitioned: true},
	{Base: TopicExecutionEvents, Key: "execution id", Cleanup: CleanupDelete, CoPartitioned: true,
		Configs: map[string]string{"retention.ms": eventsRetentionMs}},
	{Base: TopicExecutorState, Key: "execution id (+ sub-key)", Cleanup: CleanupCompact, CoPartitioned: true},
	{Base: TopicWorkerJobs, Key: "task run id", Cleanup: CleanupDelete},
	// Kills are only useful while the attempt runs: a day is plenty.
	{Base: TopicWorkerKills, Key: "task run id", Cleanup: CleanupDelete,
		Configs: map[string]string{"retention.ms": "86400000"}},
	{Base: TopicWorkerHeartbeat, Key: "worker id", Cleanup: CleanupCompact},
	{Base: TopicLogs, Key: "execution id", Cleanup: CleanupDelete},
	{Base: TopicTriggers, Key: "trigger id", Cleanup: CleanupCompact},
	{Base: TopicDeadLetter, Key: "original key", Cleanup: CleanupDelete,
		Configs: map[string]string{"retention.ms": eventsRetentionMs}},
}

var maxTopicBaseLen = func() int {
	n := 0
	for _, s := range topicSpecs {
		n = max(n, len(s.Base))
	}
	return n
}()

// TopicSpecs returns the specs of all of Kite's topics, in DESIGN.md's order.
func TopicSpecs() []TopicSpec {
	out := slices.Clone(topicSpecs)
	for i := range out {
		out[i].Configs = out[i].configs()
	}
	return out
}

// configs returns all topic configs, cleanup.policy included.
func (s TopicSpec) configs() map[string]string {
	m := map[string]string{"cleanup.policy": s.Cleanup}
	for k, v := range s.Configs {
		m[k] = v
	}
	return m
}

// Topic returns the full name of the topic with the given base name.
func (c Config) Topic(base string) string { return c.TopicPrefix + base }

// EnsureTopics creates Kite's missing topics with their cleanup policy and
// configs, using the broker's default replication factor. New topics get
// cfg.Partitions partitions, except that a missing co-partitioned topic gets
// the count that the existing co-partitioned topics already have. It fails,
// naming the topics and their counts, when existing co-partitioned topics
// disagree. Existing topics are never altered. It is safe to call
// concurrently from several processes.
func EnsureTopics(ctx context.Context, adm *kadm.Client, cfg Config) error {
	names := make([]string, len(topicSpecs))
	for i, s := range topicSpecs {
		names[i] = cfg.Topic(s.Base)
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("listing kafka topics: %w", err)
	}

	counts := func() map[string]int {
		m := map[string]int{}
		for _, s := range topicSpecs {
			if !s.CoPartitioned {
				continue
			}
			if d, ok := details[cfg.Topic(s.Base)]; ok && d.Err == nil {
				m[d.Topic] = len(d.Partitions)
			}
		}
		return m
	}
	existing := counts()
	if err := checkCoPartitioned(existing); err != nil {
		return err
	}
	coParts := cfg.Partitions
	for _, n := range existing {
		coParts = int32(n) // all equal, checked above
	}

	var errs []error
	for _, s := range topicSpecs {
		name := cfg.Topic(s.Base)
		if d, ok := details[name]; ok && d.Err == nil {
			continue
		} else if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("describing topic %s: %w", name, d.Err))
			continue
		}
		parts := cfg.Partitions
		if s.CoPartitioned {
			parts = coParts
		}
		configs := map[string]*string{}
		for k, v := range s.configs() {
			configs[k] = &v
		}
		resp, err := adm.CreateTopic(ctx, parts, -1, configs, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("creating topic %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	// Another process may have created topics concurrently with other
	// counts: check again what is now there.
	details, err = adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("listing kafka topics: %w", err)
	}
	return checkCoPartitioned(counts())
}

func checkCoPartitioned(counts map[string]int) error {
	distinct := map[int]bool{}
	for _, n := range counts {
		distinct[n] = true
	}
	if len(distinct) <= 1 {
		return nil
	}
	var parts []string
	for name, n := range counts {
		parts = append(parts, fmt.Sprintf("%s=%d", name, n))
	}
	slices.Sort(parts)
	return fmt.Errorf("co-partitioned topics have different partition counts (%s): "+
		"they must all have the same count so that one partition owner sees everything about an execution; "+
		"add partitions to the smaller ones (kafka-topics --alter --partitions) only on an empty cluster, "+
		"since adding partitions moves keys", strings.Join(parts, ", "))
}
