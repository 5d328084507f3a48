package executor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/tasks"
	"github.com/kiteflow/kite/proto/codec"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	"github.com/kiteflow/kite/streams"
)

// processor is the executor's streams.Processor.
type processor struct {
	cfg     Config
	topics  topics
	source  FlowSource
	hb      *heartbeats
	log     *zap.Logger
	machine *execution.Machine
	engine  *expr.Engine
	parser  *flow.Parser
	cache   *cache
	// store keeps job variables too large for a record (nil: none).
	store     storage.Storage
	maxInline int

	flowsMu sync.Mutex
	flows   map[string]*flow.Flow // parsed revisions by state key
}

// topics are the full names of the topics the executor writes.
type topics struct {
	commands, events, jobs, kills, logs string
}

func newProcessor(cfg Config, kafka streams.Config, source FlowSource, hb *heartbeats, logger *zap.Logger, store storage.Storage, maxInline int) *processor {
	engine := expr.Default
	if store != nil {
		// Expressions the executor evaluates read claim-checked values
		// (large outputs and inputs) back from storage.
		engine = expr.New(expr.WithResolver(storage.RefResolver(store)))
	}
	return &processor{
		store: store, maxInline: maxInline,
		cfg: cfg,
		topics: topics{
			commands: kafka.Topic(streams.TopicCommands), events: kafka.Topic(streams.TopicExecutionEvents),
			jobs: kafka.Topic(streams.TopicWorkerJobs), kills: kafka.Topic(streams.TopicWorkerKills),
			logs: kafka.Topic(streams.TopicLogs),
		},
		source: source, hb: hb, log: logger,
		machine: &execution.Machine{Engine: engine, Env: execution.EnvVars(os.Environ())},
		engine:  engine,
		parser:  &flow.Parser{Registry: tasks.Registry(), CheckExpr: engine.Check},
		cache:   &cache{max: 10_000, m: map[string]*loaded{}},
		flows:   map[string]*flow.Flow{},
	}
}

// Process implements streams.Processor.
func (p *processor) Process(pc *streams.PartitionContext, rec *kgo.Record) error {
	switch rec.Topic {
	case p.topics.commands:
		var c eventv1.Command
		if err := proto.Unmarshal(rec.Value, &c); err != nil {
			return fmt.Errorf("decoding a command: %w", err)
		}
		return p.command(pc, &c)
	default:
		var r eventv1.WorkerResult
		if err := proto.Unmarshal(rec.Value, &r); err != nil {
			return fmt.Errorf("decoding a worker result: %w", err)
		}
		return p.result(pc, &r)
	}
}

func (p *processor) command(pc *streams.PartitionContext, c *eventv1.Command) error {
	id := c.GetExecutionId()
	if id == "" {
		return errors.New("command without an execution id")
	}
	switch k := c.GetKind().(type) {
	case *eventv1.Command_Create:
		return p.create(pc, id, k.Create)
	case *eventv1.Command_Kill:
		return p.stepID(pc, id, execution.Kill{})
	case *eventv1.Command_Resume:
		return p.stepID(pc, id, execution.Resume{Inputs: codec.FromStruct(k.Resume.GetInputs())})
	case *eventv1.Command_Restart:
		return p.stepID(pc, id, execution.Restart{})
	case *eventv1.Command_Replay:
		return p.replay(pc, id, k.Replay)
	case *eventv1.Command_Timer:
		return p.stepID(pc, id, execution.TimerFired{TimerID: k.Timer.GetTimerId()})
	case *eventv1.Command_ChildEnded:
		ce := k.ChildEnded
		return p.stepID(pc, id, execution.ChildEnded{TaskRunID: ce.GetTaskRunId(), ChildID: ce.GetChildExecutionId(),
			State: codec.FromState(ce.GetState()), Outputs: codec.FromStruct(ce.GetOutputs()), Error: ce.GetError()})
	}
	return fmt.Errorf("command %s for execution %s: unknown kind (written by a newer Kite?)", c.GetCommandId(), id)
}

func (p *processor) create(pc *streams.PartitionContext, id string, c *eventv1.CreateCommand) error {
	l, err := p.load(pc, id)
	if err != nil {
		return err
	}
	if l != nil {
		p.log.Debug("create ignored: the execution exists", zap.String("execution_id", id))
		ignoredRecords.WithLabelValues("create_exists").Inc()
		return nil
	}
	src := c.GetFlowSource()
	if src == "" {
		f, err := p.source.Flow(c.GetNamespace(), c.GetFlowId(), int(c.GetRevision()))
		if err != nil {
			return fmt.Errorf("creating execution %s: %w", id, err)
		}
		src = f.Source
	}
	f, err := p.storeFlow(pc, c.GetNamespace(), c.GetFlowId(), int(c.GetRevision()), src)
	if err != nil {
		return fmt.Errorf("creating execution %s: %w", id, err)
	}
	given := codec.FromStruct(c.GetInputs())
	create := execution.Create{ID: id, Labels: codec.FromLabels(c.GetLabels()), Trigger: codec.FromStruct(c.GetTrigger()),
		Parent: codec.FromParentLink(c.GetParent()), RetryOf: codec.FromRetryLink(c.GetRetryOf())}
	typed, err := execution.ResolveInputs(f, given, p.engine)
	if err != nil {
		create.Inputs, create.Error = given, err.Error()
	} else {
		create.Inputs = typed
	}
	l = &loaded{e: &execution.Execution{}, f: f, keys: map[string]string{}}
	if orig := c.GetReplayOf(); orig != nil {
		return p.replayCopy(pc, l, id, codec.FromExecution(orig), c.GetReplayTaskRunId())
	}
	return p.step(pc, l, create)
}

// replay answers a replay command of an ended execution: the new execution
// (on its own partition) is created as a copy of this one, which stays as it
// was, and runs again from the task run.
func (p *processor) replay(pc *streams.PartitionContext, id string, r *eventv1.ReplayCommand) error {
	newID := r.GetNewExecutionId()
	if newID == "" || newID == id {
		return p.stepID(pc, id, execution.Replay{TaskRunID: r.GetTaskRunId()})
	}
	l, err := p.load(pc, id)
	if err != nil || l == nil {
		if l == nil && err == nil {
			p.log.Warn("replay of an unknown execution recorded and ignored", zap.String("execution_id", id))
			ignoredRecords.WithLabelValues("unknown_execution").Inc()
		}
		return err
	}
	if !l.e.Terminal() {
		p.log.Warn("replay of a running execution ignored", zap.String("execution_id", id), zap.String("state", string(l.e.State)))
		return nil
	}
	src, rev := l.f.Source, l.e.FlowRevision
	if r.Revision != nil && int(r.GetRevision()) != rev {
		f, err := p.source.Flow(l.e.Namespace, l.e.FlowID, int(r.GetRevision()))
		if err != nil {
			return fmt.Errorf("replaying execution %s: %w", id, err)
		}
		src, rev = f.Source, int(r.GetRevision())
	}
	create := &eventv1.CreateCommand{Namespace: l.e.Namespace, FlowId: l.e.FlowID, Revision: int32(rev), FlowSource: src,
		ReplayTaskRunId: r.GetTaskRunId()}
	if r.GetTaskRunId() == "" {
		// From the start: a new execution with the same inputs, labels and trigger.
		if create.Inputs, err = codec.ToStruct(l.e.Inputs); err != nil {
			return err
		}
		if create.Trigger, err = codec.ToStruct(l.e.Trigger); err != nil {
			return err
		}
		create.Labels = codec.Labels(l.e.Labels)
	} else if create.ReplayOf, err = codec.Execution(l.e); err != nil {
		return err
	}
	return p.sendCommand(pc, newID, &eventv1.Command{Kind: &eventv1.Command_Create{Create: create}})
}

// replayCopy starts l's execution as a copy of orig and replays it from a
// task run.
func (p *processor) replayCopy(pc *streams.PartitionContext, l *loaded, id string, orig *execution.Execution, taskRunID string) error {
	events := execution.ReplayCopy(orig, id, pc.Now)
	for _, ev := range events {
		if err := execution.Apply(l.e, ev); err != nil {
			return fmt.Errorf("execution %s: copying %s for a replay: %w", id, orig.ID, err)
		}
	}
	if err := p.save(pc, l, events); err != nil {
		return err
	}
	for _, ev := range events {
		if err := p.event(pc, l, ev); err != nil {
			return err
		}
	}
	return p.step(pc, l, execution.Replay{TaskRunID: taskRunID})
}

// stepID steps an existing execution; an input for an execution this
// partition does not have is recorded and ignored.
func (p *processor) stepID(pc *streams.PartitionContext, id string, in execution.Input) error {
	l, err := p.load(pc, id)
	if err != nil {
		return err
	}
	if l == nil {
		p.log.Warn("input for an unknown execution recorded and ignored", zap.String("execution_id", id), zap.String("input", fmt.Sprintf("%T", in)))
		ignoredRecords.WithLabelValues("unknown_execution").Inc()
		return nil
	}
	return p.step(pc, l, in)
}

func (p *processor) result(pc *streams.PartitionContext, r *eventv1.WorkerResult) error {
	id, trID, attempt := r.GetExecutionId(), r.GetTaskRunId(), int(r.GetAttempt())
	if id == "" || trID == "" {
		return errors.New("worker result without an execution or task run id")
	}
	liveness := []byte(fmt.Sprintf("l/%s/%s/%d/%s", id, trID, attempt, r.GetWorkerId()))
	switch k := r.GetResult().(type) {
	case *eventv1.WorkerResult_Started:
		if err := p.stepID(pc, id, execution.TaskStarted{TaskRunID: trID, Attempt: attempt}); err != nil {
			return err
		}
		if r.GetWorkerId() != "" {
			return pc.SetTimer(liveness, pc.Now.Add(p.cfg.WorkerTimeout))
		}
		return nil
	case *eventv1.WorkerResult_Finished:
		fin := k.Finished
		if err := pc.CancelTimer(liveness); err != nil {
			return err
		}
		return p.stepID(pc, id, execution.TaskFinished{TaskRunID: trID, Attempt: attempt, State: codec.FromState(fin.GetState()),
			Outputs: codec.FromStruct(fin.GetOutputs()), Labels: codec.FromLabels(fin.GetLabels()), Error: fin.GetError()})
	}
	return fmt.Errorf("worker result for task run %s: unknown kind (written by a newer Kite?)", trID)
}

// Timer implements streams.Processor.
func (p *processor) Timer(pc *streams.PartitionContext, key []byte, _ time.Time) error {
	k := string(key)
	switch {
	case strings.HasPrefix(k, "t/"):
		id, timerID, ok := strings.Cut(k[2:], "/")
		if !ok {
			return fmt.Errorf("malformed timer key %q", k)
		}
		return p.stepID(pc, id, execution.TimerFired{TimerID: timerID})
	case strings.HasPrefix(k, "l/"):
		parts := strings.SplitN(k[2:], "/", 4)
		if len(parts) != 4 {
			return fmt.Errorf("malformed liveness timer key %q", k)
		}
		attempt, err := strconv.Atoi(parts[2])
		if err != nil {
			return fmt.Errorf("malformed liveness timer key %q", k)
		}
		if p.hb.alive(parts[3]) {
			return pc.SetTimer(key, pc.Now.Add(p.cfg.WorkerTimeout/3))
		}
		p.log.Warn("worker lost: running its attempt again", zap.String("worker_id", parts[3]),
			zap.String("execution_id", parts[0]), zap.String("task_run_id", parts[1]), zap.Int("attempt", attempt))
		return p.stepID(pc, parts[0], execution.WorkerLost{TaskRunID: parts[1], Attempt: attempt, WorkerID: parts[3]})
	case strings.HasPrefix(k, "p/"):
		return p.retryDue(pc, k[2:])
	}
	return fmt.Errorf("unknown timer key %q", k)
}

// step runs the machine on an execution and writes what it produced.
func (p *processor) step(pc *streams.PartitionContext, l *loaded, in execution.Input) (err error) {
	defer func() {
		if err != nil {
			// The execution may be half-stepped in memory: forget it.
			p.cache.drop(l.e.ID)
		}
	}()
	res, err := p.machine.Step(l.f, l.e, in, pc.Now)
	if err != nil {
		return fmt.Errorf("execution %s: %w", l.e.ID, err)
	}
	steps.Inc()
	if len(res.Events) == 0 && len(res.Effects) == 0 {
		return nil
	}
	if err := p.save(pc, l, res.Events); err != nil {
		return err
	}
	for _, ev := range res.Events {
		if err := p.event(pc, l, ev); err != nil {
			return err
		}
	}
	for _, ef := range res.Effects {
		if err := p.effect(pc, l, ef); err != nil {
			return err
		}
	}
	p.cache.put(l)
	return nil
}

// event appends an event to execution-events and keeps the timers.
func (p *processor) event(pc *streams.PartitionContext, l *loaded, ev *execution.Event) error {
	pe, err := codec.Event(ev)
	if err != nil {
		return err
	}
	b, err := proto.Marshal(pe)
	if err != nil {
		return fmt.Errorf("encoding event %d of execution %s: %w", ev.Seq, ev.ExecutionID, err)
	}
	pc.Produce(&kgo.Record{Topic: p.topics.events, Key: []byte(ev.ExecutionID), Value: b})
	switch ev.Type {
	case execution.EvTimerSet:
		return pc.SetTimer([]byte("t/"+l.e.ID+"/"+ev.Timer.ID), ev.Timer.Due)
	case execution.EvTimerCancelled:
		return pc.CancelTimer([]byte("t/" + l.e.ID + "/" + ev.Timer.ID))
	case execution.EvState:
		if ev.State.Terminal() {
			executionsEnded.WithLabelValues(string(ev.State)).Inc()
		}
	}
	return nil
}
