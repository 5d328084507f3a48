package chaos

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// check is one verification: how many things it looked at and the ones that
// are wrong.
type check struct {
	name    string
	checked int
	bad     []string
	note    string // what else to know (not a failure)
}

func (c *check) fail(format string, args ...any) { c.bad = append(c.bad, fmt.Sprintf(format, args...)) }

// folded is one execution as its events on Kafka make it.
type folded struct {
	e      *execution.Execution
	events int   // records read, refused ones included
	err    error // the first event refused: a gap, a duplicate, a bad transition
	// terminal counts the terminal TASK_RUN_STATE events of each task run.
	terminal map[string]int
}

// kafkaView is the execution-events topic read from its start to its stable end.
type kafkaView struct {
	execs   map[string]*folded
	records int
	took    time.Duration
}

// readEvents reads the whole execution-events topic, read committed, and
// folds each execution with execution.Apply, which refuses an event whose
// seq is not the next one (a gap or a duplicate) and a transition the state
// table does not allow.
func readEvents(ctx context.Context, brokers []string, topic string) (*kafkaView, error) {
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("kite-chaos-verify"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := stableEnds(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the start offsets of %s: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	for p, end := range ends {
		if s, ok := starts.Lookup(topic, p); ok && s.Offset < end {
			from[p] = kgo.NewOffset().At(s.Offset)
		}
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("kite-chaos-verify"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	v := &kafkaView{execs: map[string]*folded{}}
	for len(from) > 0 {
		fetches := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading %s: %d partitions not read to their end: %w", topic, len(from), ctx.Err())
		}
		var ferr error
		fetches.EachError(func(_ string, p int32, err error) { ferr = fmt.Errorf("reading %s[%d]: %w", topic, p, err) })
		if ferr != nil {
			return nil, ferr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end := ends[r.Partition]
			if r.Offset >= end-1 {
				delete(from, r.Partition)
			}
			if r.Attrs.IsControl() || r.Offset >= end || ferr != nil {
				return
			}
			var pe kitev1.ExecutionEvent
			if err := proto.Unmarshal(r.Value, &pe); err != nil {
				ferr = fmt.Errorf("decoding the event at %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
				return
			}
			v.records++
			v.apply(codec.FromEvent(&pe))
		})
		if ferr != nil {
			return nil, ferr
		}
	}
	v.took = time.Since(start)
	return v, nil
}

// stableEnds returns the end of each partition once no transaction is open
// on it (the last stable offset caught up with the high watermark), or the
// last stable offsets after a minute.
func stableEnds(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		lso, err := adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = lso.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("listing the stable offsets of %s: %w", topic, err)
		}
		hwm, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = hwm.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("listing the end offsets of %s: %w", topic, err)
		}
		ends, stable := map[int32]int64{}, true
		lso.Each(func(o kadm.ListedOffset) {
			ends[o.Partition] = o.Offset
			if h, ok := hwm.Lookup(topic, o.Partition); ok && h.Offset > o.Offset {
				stable = false
			}
		})
		if stable || time.Now().After(deadline) {
			return ends, nil
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// apply folds one event into its execution; the first event refused stops
// the execution's fold.
func (v *kafkaView) apply(ev *execution.Event) {
	f := v.execs[ev.ExecutionID]
	if f == nil {
		f = &folded{e: &execution.Execution{ID: ev.ExecutionID}, terminal: map[string]int{}}
		v.execs[ev.ExecutionID] = f
	}
	f.events++
	if f.err != nil {
		return
	}
	if f.events == 1 && ev.Type != execution.EvCreated {
		f.err = fmt.Errorf("its first event is %s seq %d, not CREATED", ev.Type, ev.Seq)
		return
	}
	if err := execution.Apply(f.e, ev); err != nil {
		f.err = fmt.Errorf("event seq %d (%s) refused: %w", ev.Seq, ev.Type, err)
		return
	}
	if ev.Type == execution.EvTaskRunState && ev.State.Terminal() {
		f.terminal[ev.TaskRunID]++
	}
}

// sortedIDs returns the executions' ids, sorted, so reports are stable.
func (v *kafkaView) sortedIDs() []string {
	ids := make([]string, 0, len(v.execs))
	for id := range v.execs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// checkCreated: every execution Create answered with is on Kafka.
func checkCreated(v *kafkaView, created map[string]string) check {
	c := check{name: "executions created through the API are on Kafka", checked: len(created)}
	ids := make([]string, 0, len(created))
	for id := range created {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if _, ok := v.execs[id]; !ok {
			c.fail("%s (%s): Create answered, no event on Kafka", id, created[id])
		}
	}
	return c
}

// checkEnded: every execution found reached a terminal state.
func checkEnded(v *kafkaView) check {
	c := check{name: "every execution reached a terminal state", checked: len(v.execs)}
	for _, id := range v.sortedIDs() {
		if f := v.execs[id]; !f.e.Terminal() {
			c.fail("%s (%s): %s after %d events", id, f.e.FlowID, f.e.State, f.e.Seq)
		}
	}
	return c
}

// checkSequences: no gap, no duplicate, no transition refused.
func checkSequences(v *kafkaView) check {
	c := check{name: "event sequences have no gap or duplicate", checked: v.records}
	for _, id := range v.sortedIDs() {
		if f := v.execs[id]; f.err != nil {
			c.fail("%s (%s): %v", id, f.e.FlowID, f.err)
		}
	}
	return c
}

// checkResults: every task run has exactly one terminal task-run state event.
func checkResults(v *kafkaView) check {
	c := check{name: "every task run has exactly one terminal result"}
	for _, id := range v.sortedIDs() {
		f := v.execs[id]
		for _, tr := range f.e.TaskRuns {
			c.checked++
			if n := f.terminal[tr.ID]; n != 1 {
				c.fail("%s/%s (%s.%s): %d terminal results, state %s, attempts %s", id, tr.ID, f.e.FlowID, tr.TaskID, n, tr.State, attemptStates(tr))
			}
		}
	}
	return c
}

// checkSucceeded: the flows of the mix cannot fail, so every execution that
// ended must have succeeded; another end means a step went wrong.
func checkSucceeded(v *kafkaView) check {
	c := check{name: "every execution ended SUCCESS (no flow of the mix can fail)"}
	for _, id := range v.sortedIDs() {
		f := v.execs[id]
		if !f.e.Terminal() {
			continue
		}
		c.checked++
		if f.e.State != execution.Success {
			why := f.e.Error
			for _, tr := range f.e.TaskRuns {
				if tr.State != execution.Success && why == "" {
					why = fmt.Sprintf("task %s %s: %s", tr.TaskID, tr.State, tr.Error)
				}
			}
			c.fail("%s (%s): %s (%s)", id, f.e.FlowID, f.e.State, why)
		}
	}
	return c
}

// effectKey names one attempt's side effect as the file has it.
func effectKey(execID, taskRunID string, attempt int) string {
	return execID + " " + taskRunID + " " + strconv.Itoa(attempt)
}

// readEffects counts the lines of the side-effect file; malformed lines are
// returned apart.
func readEffects(path string) (map[string]int, []string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]int{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = f.Close() }()
	lines, bad := map[string]int{}, []string(nil)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			bad = append(bad, strconv.Quote(sc.Text()))
			continue
		}
		if n, err := strconv.Atoi(fields[2]); err != nil || n < 1 {
			bad = append(bad, strconv.Quote(sc.Text()))
			continue
		}
		lines[sc.Text()]++
	}
	return lines, bad, sc.Err()
}

// effectStats are the side effects' numbers for the summary.
type effectStats struct {
	lines, attempts, started, killed, killedRan int
}

// checkEffects: each attempt of an effect task that the events say started
// on a worker appended its line exactly once; an attempt the executor gave
// up on (KILLED: its worker stopped heartbeating) appended at most once,
// since its worker may have died before or after the append; no line is
// there for an attempt the events do not know or never started.
func checkEffects(v *kafkaView, lines map[string]int, malformed []string) (check, effectStats) {
	c := check{name: "side effects: one line per attempt started, none twice, none unknown"}
	var st effectStats
	for _, n := range lines {
		st.lines += n
	}
	for _, m := range malformed {
		c.fail("malformed line %s", m)
	}
	left := maps.Clone(lines)
	for _, id := range v.sortedIDs() {
		f := v.execs[id]
		for _, tr := range f.e.TaskRuns {
			if !strings.HasPrefix(tr.TaskID, effectPrefix) {
				continue
			}
			for i, at := range tr.Attempts {
				n := i + 1
				key := effectKey(id, tr.ID, n)
				got := lines[key]
				delete(left, key)
				c.checked++
				st.attempts++
				started := slices.ContainsFunc(at.History, func(h execution.StateTime) bool { return h.State == execution.Running })
				if started {
					st.started++
				}
				switch {
				case got > 1:
					c.fail("%s: appended %d times (attempt %s, %s.%s)", key, got, at.State, f.e.FlowID, tr.TaskID)
				case got == 1 && !started:
					c.fail("%s: appended, but the attempt never started (attempt %s, %s.%s)", key, at.State, f.e.FlowID, tr.TaskID)
				case at.State == execution.Killed:
					st.killed++
					st.killedRan += got
				case got == 0 && started && at.State.Terminal():
					c.fail("%s: attempt ended %s on a worker but never appended (%s.%s)", key, at.State, f.e.FlowID, tr.TaskID)
				}
			}
		}
	}
	unknown := make([]string, 0, len(left))
	for key := range left {
		unknown = append(unknown, key)
	}
	slices.Sort(unknown)
	for _, key := range unknown {
		c.fail("%s: appended %d times, the events know no such attempt", key, left[key])
	}
	return c, st
}
