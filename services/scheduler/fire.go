package scheduler

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/proto/codec"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// definition returns the state of a trigger as a flow revision declares it,
// without what happened to it (fires, Disable, backfills).
func (p *processor) definition(f *kitev1.Flow, parsed *flow.Flow, tr *flow.Trigger) (*eventv1.TriggerState, error) {
	st := &eventv1.TriggerState{
		Namespace:      f.GetNamespace(),
		FlowId:         f.GetId(),
		TriggerId:      tr.ID,
		Type:           tr.Type,
		TypeName:       tr.TypeName,
		FlowRevision:   f.GetRevision(),
		FlowSource:     f.GetSource(),
		SourceDisabled: tr.Disabled || parsed.Disabled || f.GetDisabled(),
		Labels:         codec.Labels(parsed.Labels),
	}
	if v, ok := tr.Props["inputs"]; ok && v != nil {
		in, err := codec.ToValue(v)
		if err != nil {
			return nil, fmt.Errorf("inputs: %w", err)
		}
		st.Inputs = in
	}
	switch v := tr.Props["labels"].(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			st.Labels = append(st.Labels, &kitev1.Label{Key: k, Value: fmt.Sprint(v[k])})
		}
	case []any:
		for _, l := range v {
			if m, ok := l.(map[string]any); ok {
				st.Labels = append(st.Labels, &kitev1.Label{Key: fmt.Sprint(m["key"]), Value: fmt.Sprint(m["value"])})
			}
		}
	case string:
		p.log.Warn("trigger labels written as one expression are not supported; the trigger's labels are ignored",
			zap.String("namespace", f.GetNamespace()), zap.String("flow_id", f.GetId()), zap.String("trigger_id", tr.ID))
	}
	if tr.Type == "schedule" {
		s, err := scheduleOf(tr)
		if err != nil {
			return nil, err
		}
		st.Schedule = s
	}
	return st, nil
}

// sourceBackfill returns the backfill that the deprecated backfill property
// of a new Schedule trigger asks for, or nil.
func sourceBackfill(tr *flow.Trigger, st *eventv1.TriggerState, now time.Time) (*eventv1.BackfillState, error) {
	m, _ := tr.Props["backfill"].(map[string]any)
	startStr, _ := m["start"].(string)
	if startStr == "" {
		return nil, nil
	}
	s, err := parseSchedule(st.GetSchedule())
	if err != nil {
		return nil, err
	}
	start, err := parseDateTime(startStr, s.loc)
	if err != nil {
		return nil, fmt.Errorf("backfill.start: %w", err)
	}
	end := now
	if e, _ := m["end"].(string); e != "" {
		if end, err = parseDateTime(e, s.loc); err != nil {
			return nil, fmt.Errorf("backfill.end: %w", err)
		}
		end = minTime(end, now) // the schedule itself fires the later ticks
	}
	first := s.atOrAfter(start)
	if first.IsZero() || !first.Before(end) {
		return nil, nil
	}
	bf := &eventv1.BackfillState{
		// One per revision that creates the trigger.
		Id:    fmt.Sprintf("source-r%d", st.GetFlowRevision()),
		Start: ts(start), End: ts(end), Current: ts(first),
	}
	if in, ok := m["inputs"].(map[string]any); ok {
		if bf.Inputs, err = codec.ToStruct(in); err != nil {
			return nil, fmt.Errorf("backfill.inputs: %w", err)
		}
	}
	switch v := m["labels"].(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			bf.Labels = append(bf.Labels, &kitev1.Label{Key: k, Value: fmt.Sprint(v[k])})
		}
	case []any:
		for _, l := range v {
			if lm, ok := l.(map[string]any); ok {
				bf.Labels = append(bf.Labels, &kitev1.Label{Key: fmt.Sprint(lm["key"]), Value: fmt.Sprint(lm["value"])})
			}
		}
	}
	return bf, nil
}

// parseDateTime reads an ISO-8601 date-time, with an offset or in loc.
func parseDateTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an ISO-8601 date-time like 2024-01-31T09:00:00Z", s)
	}
	return t, nil
}

// startBackfill starts the backfill a command asks for, unless one runs.
func (p *processor) startBackfill(pc *streams.PartitionContext, st *eventv1.TriggerState, id string,
	c *eventv1.BackfillTriggerCommand, log *zap.Logger) error {
	if st.GetSchedule() == nil {
		log.Warn("backfill of a trigger that is not a schedule is dropped", zap.String("type", st.GetType()))
		return nil
	}
	if st.GetBackfill() != nil {
		log.Warn("backfill dropped: another backfill of the trigger is in progress", zap.String("running", st.GetBackfill().GetId()))
		return nil
	}
	s, err := parseSchedule(st.GetSchedule())
	if err != nil {
		return err
	}
	start, end := c.GetStart().AsTime(), c.GetEnd().AsTime()
	first := s.atOrAfter(start)
	if first.IsZero() || !first.Before(end) {
		log.Warn("backfill without any tick is dropped", zap.Time("start", start), zap.Time("end", end))
		return nil
	}
	st.Backfill = &eventv1.BackfillState{Id: id, Start: c.GetStart(), End: c.GetEnd(), Current: ts(first),
		Inputs: c.GetInputs(), Labels: c.GetLabels()}
	log.Info("backfill started", zap.Time("start", start), zap.Time("end", end))
	if enabled(st) {
		if err := pc.SetTimer([]byte(stateKey(st)+backfillTimer), pc.Now); err != nil {
			return err
		}
	}
	return put(pc, st)
}

// backfillStep fires the next ticks of a trigger's backfill, at most
// BackfillBatch of them, and sets the timer of the next step.
func (p *processor) backfillStep(pc *streams.PartitionContext, key string) error {
	st, ok, err := load(pc, key)
	if err != nil || !ok || st.GetBackfill() == nil || st.GetSchedule() == nil || !enabled(st) {
		return err // paused while disabled: enabling sets the timer again
	}
	s, err := parseSchedule(st.GetSchedule())
	if err != nil {
		return err
	}
	bf := st.GetBackfill()
	now := pc.Now
	cur, end := bf.GetCurrent().AsTime(), bf.GetEnd().AsTime()
	prev := s.prev(cur)
	for n := 0; n < p.cfg.BackfillBatch && !cur.IsZero() && cur.Before(end) && !cur.After(now); n++ {
		if err := p.fire(pc, st, s, tick{date: cur, previous: prev}, bf); err != nil {
			return err
		}
		prev, cur = cur, s.next(cur)
	}
	if cur.IsZero() || !cur.Before(end) {
		st.Backfill = nil
		p.log.Info("backfill done", zap.String("namespace", st.GetNamespace()), zap.String("flow_id", st.GetFlowId()),
			zap.String("trigger_id", st.GetTriggerId()), zap.String("command_id", bf.GetId()))
		return put(pc, st)
	}
	bf.Current = ts(cur)
	if err := pc.SetTimer([]byte(key+backfillTimer), maxTime(cur, now.Add(p.cfg.BackfillInterval))); err != nil {
		return err
	}
	return put(pc, st)
}

// fire produces the Create command of the execution of one tick of a
// Schedule trigger (of its backfill bf, when not nil).
func (p *processor) fire(pc *streams.PartitionContext, st *eventv1.TriggerState, s schedule, t tick, bf *eventv1.BackfillState) error {
	key := stateKey(st)
	vars := map[string]any{"date": formatTime(t.date, s.loc)}
	if next := s.next(t.date); !next.IsZero() {
		vars["next"] = formatTime(next, s.loc)
	}
	if !t.previous.IsZero() {
		vars["previous"] = formatTime(t.previous, s.loc)
	}
	triggerVars, err := codec.ToStruct(vars)
	if err != nil {
		return err
	}
	id := executionID(key, t.date, bf.GetId())
	log := p.log.With(zap.String("namespace", st.GetNamespace()), zap.String("flow_id", st.GetFlowId()),
		zap.String("trigger_id", st.GetTriggerId()), zap.String("execution_id", id))
	renderVars := map[string]any{
		"flow":    map[string]any{"id": st.GetFlowId(), "namespace": st.GetNamespace(), "revision": st.GetFlowRevision()},
		"trigger": vars,
	}
	inputs := renderInputs(pc.Context(), st.GetInputs(), renderVars, log)
	for k, v := range codec.FromStruct(bf.GetInputs()) {
		inputs[k] = v
	}
	in, err := codec.ToStruct(inputs)
	if err != nil {
		return fmt.Errorf("inputs of trigger %s: %w", key, err)
	}
	labels := make([]*kitev1.Label, 0, len(st.GetLabels())+len(bf.GetLabels()))
	for _, l := range st.GetLabels() {
		v, err := expr.Default.Render(pc.Context(), l.GetValue(), renderVars)
		if err != nil {
			log.Warn("label not rendered; it is kept as written", zap.String("label", l.GetKey()), zap.Error(err))
			v = l.GetValue()
		}
		labels = append(labels, &kitev1.Label{Key: l.GetKey(), Value: v})
	}
	labels = append(labels, bf.GetLabels()...)

	cmd := &eventv1.Command{
		ExecutionId: id,
		CommandId:   id,
		Time:        ts(pc.Now),
		Kind: &eventv1.Command_Create{Create: &eventv1.CreateCommand{
			Namespace:  st.GetNamespace(),
			FlowId:     st.GetFlowId(),
			Revision:   st.GetFlowRevision(),
			Inputs:     in,
			Labels:     labels,
			Trigger:    triggerVars,
			FlowSource: st.GetFlowSource(),
		}},
	}
	b, err := proto.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("encoding the create command of trigger %s: %w", key, err)
	}
	pc.Produce(&kgo.Record{Topic: p.commands, Key: []byte(id), Value: b})
	st.LastTime = ts(pc.Now)
	log.Info("trigger fired", zap.Time("date", t.date), zap.Bool("backfill", bf != nil))
	return nil
}

// renderInputs renders the expressions of a trigger's inputs. What does not
// render is passed as written, with a warning: the tick still creates its
// execution, whose inputs the executor validates.
func renderInputs(ctx context.Context, v *structpb.Value, vars map[string]any, log *zap.Logger) map[string]any {
	raw := codec.FromValue(v)
	if raw == nil {
		return map[string]any{}
	}
	out, err := expr.Default.RenderAll(ctx, raw, vars)
	if err != nil {
		log.Warn("trigger inputs not rendered; they are passed as written", zap.Error(err))
		out = raw
	}
	m, ok := out.(map[string]any)
	if !ok {
		log.Warn("trigger inputs are not a mapping of input ids to values; they are ignored")
		return map[string]any{}
	}
	return m
}

// executionID is the id of the execution of a tick of a trigger (of one of
// its backfills): the same tick always gives the same id, so a fire written
// twice still creates one execution. The id's time is the tick's.
func executionID(triggerKey string, date time.Time, backfillID string) string {
	h := fnv.New64a()
	h.Write([]byte(triggerKey))
	h.Write([]byte{0})
	h.Write([]byte(backfillID))
	h.Write(binary.BigEndian.AppendUint64([]byte{0}, uint64(date.UnixNano())))
	return execution.NewExecutionID(date, h.Sum64())
}

// formatTime writes a tick as RFC 3339 in the trigger's time zone, as
// Kestra's trigger.date.
func formatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format(time.RFC3339Nano)
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
