// Package scheduler is Kite's scheduler role: it fires the Schedule triggers
// of flows exactly once, and serves the TriggerService API.
//
// The scheduler is a streams.App on the co-partitioned flows and
// trigger-commands topics (both keyed by flow, streams.FlowKey); its
// changelog is the triggers topic, whose records are the trigger states
// (eventv1.TriggerState, keyed by streams.TriggerKey). For each flow revision
// it computes the state of each trigger and sets a timer at the next tick of
// each enabled schedule. When the timer fires, the Create command of the
// tick's execution, the trigger's new state and the next timer are written in
// one transaction: a tick creates one execution, whatever crashes or
// rebalances happen. The execution id derives from the trigger and the tick,
// so even a fire written twice creates one execution.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// Scheduler is the scheduler role.
type Scheduler struct {
	app *streams.App
}

// New builds a scheduler. kafka says where the topics are; clientOpts are
// extra options of its Kafka clients (e.g. streams.WithMetrics). The topics
// must exist (streams.EnsureTopics).
func New(cfg Config, kafka streams.Config, logger *zap.Logger, clientOpts ...kgo.Opt) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid scheduler config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("scheduler")
	opts, err := kafka.ClientOpts(logger, clientOpts...)
	if err != nil {
		return nil, err
	}
	p := &processor{
		cfg:             cfg,
		log:             logger,
		parser:          &flow.Parser{Registry: tasks.Registry(), CheckExpr: expr.Default.Check},
		flows:           kafka.Topic(streams.TopicFlows),
		triggerCommands: kafka.Topic(streams.TopicTriggerCommands),
		commands:        kafka.Topic(streams.TopicCommands),
	}
	app, err := streams.NewApp(streams.AppConfig{
		Group:         kafka.TransactionalID("scheduler"),
		Inputs:        []string{p.flows, p.triggerCommands},
		Changelog:     kafka.Topic(streams.TopicTriggers),
		DeadLetter:    kafka.Topic(streams.TopicDeadLetter),
		InstanceID:    cfg.InstanceID,
		TimerInterval: cfg.TimerInterval,
		Now:           cfg.now,
	}, p, logger, opts)
	if err != nil {
		return nil, fmt.Errorf("creating the scheduler: %w", err)
	}
	return &Scheduler{app: app}, nil
}

// Run schedules until ctx ends, then closes the scheduler.
func (s *Scheduler) Run(ctx context.Context) error {
	// A stop that interrupts a transaction makes the app return the
	// cancellation: the transaction aborts and its batch is processed again
	// by the next owner, so it is a stop like any other.
	if err := s.app.Run(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

// Close stops the scheduler; Run returns. It is idempotent.
func (s *Scheduler) Close() { s.app.Close() }

// processor is the scheduler's streams.Processor.
type processor struct {
	cfg    Config
	log    *zap.Logger
	parser *flow.Parser

	flows, triggerCommands, commands string // topics
}

var _ streams.Processor = (*processor)(nil)

// backfillTimer suffixes a trigger's key in the key of its backfill's
// timer; a trigger's own timer has the trigger's key. No id holds a zero
// byte.
const backfillTimer = "\x00backfill"

func (p *processor) Process(pc *streams.PartitionContext, rec *kgo.Record) error {
	switch rec.Topic {
	case p.flows:
		return p.flow(pc, rec)
	case p.triggerCommands:
		return p.command(pc, rec)
	}
	return fmt.Errorf("record of topic %s, which the scheduler does not read", rec.Topic)
}

func (p *processor) Timer(pc *streams.PartitionContext, key []byte, _ time.Time) error {
	if k, ok := strings.CutSuffix(string(key), backfillTimer); ok {
		return p.backfillStep(pc, k)
	}
	return p.tick(pc, string(key))
}

// flow (re)computes the states of the triggers of a flow revision.
func (p *processor) flow(pc *streams.PartitionContext, rec *kgo.Record) error {
	flowKey := string(rec.Key)
	old, err := loadFlow(pc, flowKey)
	if err != nil {
		return err
	}
	var f kitev1.Flow
	if err := proto.Unmarshal(rec.Value, &f); err != nil {
		return fmt.Errorf("decoding flow %s: %w", flowKey, err)
	}
	if rec.Value == nil || f.GetDeleted() {
		for id, st := range old {
			if err := p.remove(pc, st); err != nil {
				return err
			}
			p.log.Info("trigger removed with its flow", zap.String("namespace", st.GetNamespace()),
				zap.String("flow_id", st.GetFlowId()), zap.String("trigger_id", id))
		}
		return nil
	}
	if k := streams.FlowKey(f.GetNamespace(), f.GetId()); k != flowKey {
		return fmt.Errorf("flow %s has key %q, want %q: its records and its trigger commands would be in different partitions", k, flowKey, k)
	}
	for _, st := range old {
		if st.GetFlowRevision() > f.GetRevision() {
			p.log.Warn("flow revision older than the triggers' is ignored", zap.String("namespace", f.GetNamespace()),
				zap.String("flow_id", f.GetId()), zap.Int32("revision", f.GetRevision()), zap.Int32("trigger_revision", st.GetFlowRevision()))
			return nil
		}
	}
	parsed, err := p.parser.Parse(flowKey, []byte(f.GetSource()))
	if err != nil {
		return fmt.Errorf("parsing flow %s revision %d: %w", flowKey, f.GetRevision(), err)
	}

	for _, tr := range parsed.Triggers {
		st, err := p.definition(&f, parsed, tr)
		if err != nil {
			return fmt.Errorf("flow %s revision %d: trigger %s: %w", flowKey, f.GetRevision(), tr.ID, err)
		}
		prev := old[tr.ID]
		delete(old, tr.ID)
		if err := p.update(pc, prev, st, tr); err != nil {
			return fmt.Errorf("flow %s revision %d: trigger %s: %w", flowKey, f.GetRevision(), tr.ID, err)
		}
	}
	for id, st := range old {
		if err := p.remove(pc, st); err != nil {
			return err
		}
		p.log.Info("trigger removed from its flow", zap.String("namespace", f.GetNamespace()),
			zap.String("flow_id", f.GetId()), zap.String("trigger_id", id), zap.Int32("revision", f.GetRevision()))
	}
	return nil
}

// update stores st, the state of a trigger as its flow's new revision
// declares it, over prev, its state before (nil for a new trigger), and
// sets or cancels its timers.
func (p *processor) update(pc *streams.PartitionContext, prev, st *eventv1.TriggerState, tr *flow.Trigger) error {
	now := pc.Now
	key := stateKey(st)
	wasRunning := prev != nil && enabled(prev) && prev.GetSchedule() != nil
	if prev != nil {
		st.Disabled = prev.GetDisabled()
		st.LastTime, st.LastTick = prev.GetLastTime(), prev.GetLastTick()
		if st.GetSchedule() != nil {
			st.Backfill = prev.GetBackfill()
		}
	} else if st.GetSchedule() != nil {
		bf, err := sourceBackfill(tr, st, now)
		if err != nil {
			return err
		}
		st.Backfill = bf
	}
	if !enabled(st) || st.GetSchedule() == nil {
		st.NextTime = nil
		if err := cancelTimers(pc, key); err != nil {
			return err
		}
		return put(pc, st)
	}
	s, err := parseSchedule(st.GetSchedule())
	if err != nil {
		return err
	}
	next := s.next(now)
	if wasRunning && prev.GetNextTime() != nil && sameSchedule(prev.GetSchedule(), st.GetSchedule()) {
		// The pending tick stays, even when it is due: the timer fires it.
		next = prev.GetNextTime().AsTime()
	}
	if next.IsZero() {
		return fmt.Errorf("cron %q never fires", st.GetSchedule().GetCron())
	}
	st.NextTime = ts(next)
	if err := pc.SetTimer([]byte(key), next); err != nil {
		return err
	}
	if st.GetBackfill() != nil && !wasRunning {
		if err := pc.SetTimer([]byte(key+backfillTimer), now); err != nil {
			return err
		}
	}
	return put(pc, st)
}

// remove deletes a trigger's state and timers.
func (p *processor) remove(pc *streams.PartitionContext, st *eventv1.TriggerState) error {
	key := stateKey(st)
	if err := cancelTimers(pc, key); err != nil {
		return err
	}
	pc.Delete([]byte(key))
	return nil
}

// command applies a TriggerCommand. A command for a trigger that does not
// exist (any more) is logged and dropped.
func (p *processor) command(pc *streams.PartitionContext, rec *kgo.Record) error {
	var c eventv1.TriggerCommand
	if err := proto.Unmarshal(rec.Value, &c); err != nil {
		return fmt.Errorf("decoding trigger command of %s: %w", rec.Key, err)
	}
	if k := streams.FlowKey(c.GetNamespace(), c.GetFlowId()); k != string(rec.Key) {
		return fmt.Errorf("trigger command for flow %s has key %q: it must be the flow's", k, rec.Key)
	}
	key := streams.TriggerKey(c.GetNamespace(), c.GetFlowId(), c.GetTriggerId())
	log := p.log.With(zap.String("namespace", c.GetNamespace()), zap.String("flow_id", c.GetFlowId()),
		zap.String("trigger_id", c.GetTriggerId()), zap.String("command_id", c.GetCommandId()))
	st, ok, err := load(pc, key)
	if err != nil {
		return err
	}
	if !ok {
		log.Warn("command for a trigger that does not exist is dropped")
		return nil
	}
	switch k := c.GetKind().(type) {
	case *eventv1.TriggerCommand_Enable:
		if !st.GetDisabled() {
			return nil
		}
		st.Disabled = false
		log.Info("trigger enabled")
		return p.resume(pc, st)
	case *eventv1.TriggerCommand_Disable:
		if st.GetDisabled() {
			return nil
		}
		st.Disabled, st.NextTime = true, nil
		log.Info("trigger disabled")
		if err := cancelTimers(pc, key); err != nil {
			return err
		}
		return put(pc, st)
	case *eventv1.TriggerCommand_Backfill:
		return p.startBackfill(pc, st, c.GetCommandId(), k.Backfill, log)
	default:
		return fmt.Errorf("trigger command %s of an unknown kind (written by a newer Kite?)", c.GetCommandId())
	}
}

// resume sets the timers of a trigger that was just enabled, from now: the
// ticks it missed while disabled do not fire.
func (p *processor) resume(pc *streams.PartitionContext, st *eventv1.TriggerState) error {
	key := stateKey(st)
	if enabled(st) && st.GetSchedule() != nil {
		s, err := parseSchedule(st.GetSchedule())
		if err != nil {
			return err
		}
		next := s.next(pc.Now)
		st.NextTime = ts(next)
		if err := pc.SetTimer([]byte(key), next); err != nil {
			return err
		}
		if st.GetBackfill() != nil {
			if err := pc.SetTimer([]byte(key+backfillTimer), pc.Now); err != nil {
				return err
			}
		}
	}
	return put(pc, st)
}

// tick fires the due ticks of a Schedule trigger and sets its timer at the
// next one.
func (p *processor) tick(pc *streams.PartitionContext, key string) error {
	st, ok, err := load(pc, key)
	if err != nil || !ok || !enabled(st) || st.GetSchedule() == nil || st.GetNextTime() == nil {
		return err // a timer left by a trigger since removed or disabled
	}
	s, err := parseSchedule(st.GetSchedule())
	if err != nil {
		return err
	}
	now := pc.Now
	first := st.GetNextTime().AsTime()
	if first.After(now) {
		return pc.SetTimer([]byte(key), first)
	}
	fire, latest, skipped := dueTicks(s, first, now, policy{
		recover:     st.GetSchedule().GetRecoverMissedSchedules(),
		lateMax:     st.GetSchedule().GetLateMaximumDelay().AsDuration(),
		missedAfter: p.cfg.MissedAfter,
		maxFires:    p.cfg.MaxMissedFires,
	})
	if skipped > 0 {
		p.log.Warn("missed ticks skipped", zap.String("namespace", st.GetNamespace()), zap.String("flow_id", st.GetFlowId()),
			zap.String("trigger_id", st.GetTriggerId()), zap.Int("skipped", skipped), zap.Int("fired", len(fire)),
			zap.Time("from", first), zap.Time("to", latest), zap.Stringer("recover_missed_schedules", st.GetSchedule().GetRecoverMissedSchedules()))
	}
	for _, t := range fire {
		if err := p.fire(pc, st, s, t, nil); err != nil {
			return err
		}
		st.LastTick = ts(t.date)
	}
	next := s.next(latest)
	if next.IsZero() {
		st.NextTime = nil
		return put(pc, st)
	}
	st.NextTime = ts(next)
	if err := pc.SetTimer([]byte(key), next); err != nil {
		return err
	}
	return put(pc, st)
}

func enabled(st *eventv1.TriggerState) bool { return !st.GetSourceDisabled() && !st.GetDisabled() }

func sameSchedule(a, b *eventv1.Schedule) bool {
	return a.GetCron() == b.GetCron() && a.GetTimezone() == b.GetTimezone()
}

func stateKey(st *eventv1.TriggerState) string {
	return streams.TriggerKey(st.GetNamespace(), st.GetFlowId(), st.GetTriggerId())
}

func cancelTimers(pc *streams.PartitionContext, key string) error {
	return errors.Join(pc.CancelTimer([]byte(key)), pc.CancelTimer([]byte(key+backfillTimer)))
}

// load reads the state of a trigger.
func load(pc *streams.PartitionContext, key string) (*eventv1.TriggerState, bool, error) {
	v, ok, err := pc.Get([]byte(key))
	if err != nil || !ok {
		return nil, false, err
	}
	st := &eventv1.TriggerState{}
	if err := proto.Unmarshal(v, st); err != nil {
		return nil, false, fmt.Errorf("decoding the state of trigger %s: %w", key, err)
	}
	return st, true, nil
}

// loadFlow reads the states of the triggers of a flow, by trigger id.
func loadFlow(pc *streams.PartitionContext, flowKey string) (map[string]*eventv1.TriggerState, error) {
	out := map[string]*eventv1.TriggerState{}
	var derr error
	err := pc.Range([]byte(flowKey+"/"), func(k, v []byte) bool {
		st := &eventv1.TriggerState{}
		if derr = proto.Unmarshal(v, st); derr != nil {
			derr = fmt.Errorf("decoding the state of trigger %s: %w", k, derr)
			return false
		}
		out[st.GetTriggerId()] = st
		return true
	})
	return out, errors.Join(err, derr)
}

func put(pc *streams.PartitionContext, st *eventv1.TriggerState) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding the state of trigger %s: %w", stateKey(st), err)
	}
	pc.Put([]byte(stateKey(st)), b)
	return nil
}
