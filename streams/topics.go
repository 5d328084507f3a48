package streams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Base names of Kite's topics (DESIGN.md, "Topics"); the full name is
// Config.TopicPrefix + base, see Config.Topic.
const (
	TopicFlows           = "flows"            // key namespace/flow-id (FlowKey): flow revisions
	TopicCommands        = "commands"         // key execution id: create, kill, resume …
	TopicWorkerResults   = "worker-results"   // key execution id: task run started/progress/finished
	TopicExecutionEvents = "execution-events" // key execution id: the event history
	TopicExecutorState   = "executor-state-changelog"
	TopicWorkerJobs      = "worker-jobs"       // key task run id
	TopicWorkerKills     = "worker-kills"      // key task run id: attempts to stop, read by every worker
	TopicWorkerHeartbeat = "worker-heartbeats" // key worker id
	TopicLogs            = "logs"              // key execution id
	TopicTriggers        = "triggers"          // key namespace/flow-id/trigger-id (TriggerKey): the scheduler's state
	TopicTriggerCommands = "trigger-commands"  // key namespace/flow-id (FlowKey): enable, disable, backfill
	TopicDeadLetter      = "dead-letter"       // key: the original record's key
)

// Co-partition groups: the topics of a group are read or written together by
// one processor's partition owner (TopicSpec.CoPartition).
const (
	// CoPartitionExecutions are the executor's topics, keyed by execution id.
	CoPartitionExecutions = "executions"
	// CoPartitionFlows are the scheduler's topics, keyed by flow
	// (FlowKey): the flows it reads, the trigger commands it reads, and
	// the triggers topic, its changelog.
	CoPartitionFlows = "flows"
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
	// CoPartition names the group of co-partitioned topics the topic
	// belongs to (CoPartitionExecutions, CoPartitionFlows), empty for none.
	// The topics of a group are read or written together by one partition
	// owner: they must all have the same partition count (and the same key
	// hash, franz-go's default murmur2 partitioner), so that partition p of
	// each holds the same executions (or flows).
	CoPartition string
	// Configs are extra topic configs beyond cleanup.policy.
	Configs map[string]string
}

// eventsRetentionMs keeps execution events for 90 days: long, but bounded.
// The executor state changelog (compacted) is what the executor restores
// from; events are history for watch, replay and the indexer.
const eventsRetentionMs = "7776000000"

var topicSpecs = []TopicSpec{
	{Base: TopicFlows, Key: "namespace/flow-id", Cleanup: CleanupCompact, CoPartition: CoPartitionFlows},
	{Base: TopicCommands, Key: "execution id", Cleanup: CleanupDelete, CoPartition: CoPartitionExecutions},
	{Base: TopicWorkerResults, Key: "execution id", Cleanup: CleanupDelete, CoPartition: CoPartitionExecutions},
	{Base: TopicExecutionEvents, Key: "execution id", Cleanup: CleanupDelete, CoPartition: CoPartitionExecutions,
		Configs: map[string]string{"retention.ms": eventsRetentionMs}},
	{Base: TopicExecutorState, Key: "execution id (+ sub-key)", Cleanup: CleanupCompact, CoPartition: CoPartitionExecutions},
	{Base: TopicWorkerJobs, Key: "task run id", Cleanup: CleanupDelete},
	// Kills are only useful while the attempt runs: a day is plenty.
	{Base: TopicWorkerKills, Key: "task run id", Cleanup: CleanupDelete,
		Configs: map[string]string{"retention.ms": "86400000"}},
	{Base: TopicWorkerHeartbeat, Key: "worker id", Cleanup: CleanupCompact},
	{Base: TopicLogs, Key: "execution id", Cleanup: CleanupDelete},
	// The scheduler's changelog: trigger states, and the scheduler's timers
	// (DecodeChangelog tells them apart).
	{Base: TopicTriggers, Key: "namespace/flow-id/trigger-id", Cleanup: CleanupCompact, CoPartition: CoPartitionFlows},
	{Base: TopicTriggerCommands, Key: "namespace/flow-id", Cleanup: CleanupDelete, CoPartition: CoPartitionFlows},
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
// cfg.Partitions partitions, except that a missing topic of a co-partition
// group gets the count that the existing topics of its group already have.
// It fails, naming the topics and their counts, when the existing topics of
// a group disagree. Existing topics are never altered. It is safe to call
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

	// counts returns, per co-partition group, the partition count of each
	// existing topic of the group.
	counts := func() map[string]map[string]int {
		m := map[string]map[string]int{}
		for _, s := range topicSpecs {
			if s.CoPartition == "" {
				continue
			}
			if d, ok := details[cfg.Topic(s.Base)]; ok && d.Err == nil {
				if m[s.CoPartition] == nil {
					m[s.CoPartition] = map[string]int{}
				}
				m[s.CoPartition][d.Topic] = len(d.Partitions)
			}
		}
		return m
	}
	existing := counts()
	if err := checkCoPartitioned(existing); err != nil {
		return err
	}
	groupParts := map[string]int32{}
	for group, topics := range existing {
		for _, n := range topics {
			groupParts[group] = int32(n) // all equal, checked above
		}
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
		if n, ok := groupParts[s.CoPartition]; ok && s.CoPartition != "" {
			parts = n
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

// ErrNotCoPartitioned is the error of EnsureTopics when the existing topics
// of a co-partition group have different partition counts: retrying does
// not help, an operator must act.
var ErrNotCoPartitioned = errors.New("co-partitioned topics have different partition counts")

// checkCoPartitioned fails when the topics of a co-partition group (group →
// topic → partition count) have different partition counts.
func checkCoPartitioned(groups map[string]map[string]int) error {
	var errs []error
	for _, group := range slices.Sorted(maps.Keys(groups)) {
		counts := groups[group]
		distinct := map[int]bool{}
		for _, n := range counts {
			distinct[n] = true
		}
		if len(distinct) <= 1 {
			continue
		}
		var parts []string
		for name, n := range counts {
			parts = append(parts, fmt.Sprintf("%s=%d", name, n))
		}
		slices.Sort(parts)
		errs = append(errs, fmt.Errorf("%w: group %q (%s): "+
			"they must all have the same count so that one partition owner sees everything about an execution or a flow; "+
			"add partitions to the smaller ones (kafka-topics --alter --partitions) only on an empty cluster, "+
			"since adding partitions moves keys", ErrNotCoPartitioned, group, strings.Join(parts, ", ")))
	}
	return errors.Join(errs...)
}

// FlowKey is the record key of a flow in the flows and trigger-commands
// topics: the same key for the same flow, so that both topics put a flow's
// records in the same partition.
func FlowKey(namespace, flowID string) string { return namespace + "/" + flowID }

// TriggerKey is the key of a trigger's state in the triggers topic.
func TriggerKey(namespace, flowID, triggerID string) string {
	return FlowKey(namespace, flowID) + "/" + triggerID
}

// DecodeChangelog decodes a record of an App's changelog topic, such as the
// triggers topic (the scheduler's changelog), for a reader of the topic: the
// state key and value, value nil when the key was deleted. ok is false for
// the App's own entries (its timers), which a reader skips.
func DecodeChangelog(r *kgo.Record) (key, value []byte, ok bool) {
	if bytes.HasPrefix(r.Key, timerPrefix) || bytes.HasPrefix(r.Key, timerIndexPrefix) {
		return nil, nil, false
	}
	value, _ = decodeChangelogValue(r.Value)
	return r.Key, value, true
}
