package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// diagnoseKafka describes what may hold Kite back when executions stop
// ending: the transactions that are not complete (an open one holds back
// read-committed readers; one whose offsets are pending makes its group's
// offset fetches fail with UNSTABLE_OFFSET_COMMIT), and, per consumer group
// of the run, the partitions whose committed offset cannot be read stably.
func diagnoseKafka(ctx context.Context, brokers []string, prefix string) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("kite-chaos-diagnose"))
	if err != nil {
		return err.Error()
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var b strings.Builder
	b.WriteString("Kafka diagnosis:\n")
	listed, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		fmt.Fprintf(&b, "  listing transactions: %v\n", err)
	}
	var ids []string
	for _, t := range listed.Sorted() {
		if strings.HasPrefix(t.TxnID, prefix) {
			ids = append(ids, t.TxnID)
		}
	}
	described, err := adm.DescribeTransactions(ctx, ids...)
	if err != nil {
		fmt.Fprintf(&b, "  describing transactions: %v\n", err)
	}
	for _, t := range described.Sorted() {
		switch t.State {
		case "Empty", "CompleteCommit", "CompleteAbort":
			continue
		}
		age := "?"
		if t.StartTimestamp > 0 {
			age = time.Since(time.UnixMilli(t.StartTimestamp)).Round(time.Second).String()
		}
		var parts []string
		for topic, ps := range t.Topics {
			parts = append(parts, fmt.Sprintf("%s%v", topic, slices.Sorted(maps.Keys(ps))))
		}
		slices.Sort(parts)
		fmt.Fprintf(&b, "  transaction %s: %s for %s (producer %d epoch %d), partitions %s\n",
			t.TxnID, t.State, age, t.ProducerID, t.ProducerEpoch, strings.Join(parts, " "))
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		fmt.Fprintf(&b, "  listing groups: %v\n", err)
	}
	for _, g := range groups.Groups() {
		if !strings.HasPrefix(g, prefix) {
			continue
		}
		offs, err := adm.FetchOffsets(kadm.RequireStable(ctx), g)
		if err != nil {
			fmt.Fprintf(&b, "  group %s: fetching offsets: %v\n", g, err)
			continue
		}
		var bad []string
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil {
				bad = append(bad, fmt.Sprintf("%s[%d]: %v", o.Topic, o.Partition, o.Err))
			}
		})
		slices.Sort(bad)
		if len(bad) > 0 {
			fmt.Fprintf(&b, "  group %s: %s\n", g, strings.Join(bad, "; "))
		}
	}
	return b.String()
}
