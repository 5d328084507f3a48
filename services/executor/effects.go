package executor

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/proto/codec"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// effect turns one of the machine's effects into records of the transaction.
func (p *processor) effect(pc *streams.PartitionContext, l *loaded, ef execution.Effect) error {
	e := l.e
	switch ef := ef.(type) {
	case execution.Dispatch:
		return p.dispatch(pc, l, ef)
	case execution.CancelTask:
		return p.produce(pc, p.topics.kills, ef.TaskRunID, &eventv1.WorkerKill{
			ExecutionId: e.ID, TaskRunId: ef.TaskRunID, Attempt: int32(ef.Attempt), Time: codec.Time(pc.Now)})
	case execution.StartChild:
		return p.startChild(pc, l, ef)
	case execution.KillChild:
		return p.sendCommand(pc, ef.ChildID, &eventv1.Command{Kind: &eventv1.Command_Kill{Kill: &eventv1.KillCommand{}}})
	case execution.Log:
		entry := &kitev1.LogEntry{Namespace: e.Namespace, FlowId: e.FlowID, ExecutionId: e.ID, TaskRunId: ef.TaskRunID,
			Level: level(ef.Level), Message: ef.Message, Time: codec.Time(pc.Now)}
		if tr, ok := e.TaskRun(ef.TaskRunID); ok {
			entry.TaskId = tr.TaskID
		}
		return p.produce(pc, p.topics.logs, e.ID, entry)
	case execution.Ended:
		return p.ended(pc, l, ef)
	case execution.RetryExecution:
		return p.scheduleRetry(pc, l, ef)
	}
	return fmt.Errorf("execution %s: unknown effect %T", e.ID, ef)
}

// produce adds a protobuf record to the transaction.
func (p *processor) produce(pc *streams.PartitionContext, topic, key string, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding a record for %s: %w", topic, err)
	}
	pc.Produce(&kgo.Record{Topic: topic, Key: []byte(key), Value: b})
	return nil
}

// command produces a command for an execution (this one's partition or another's).
func (p *processor) sendCommand(pc *streams.PartitionContext, id string, c *eventv1.Command) error {
	c.ExecutionId, c.Time = id, codec.Time(pc.Now)
	if c.CommandId == "" {
		c.CommandId = execution.RandomExecutionID(pc.Now)
	}
	return p.produce(pc, p.topics.commands, id, c)
}

func level(l string) kitev1.LogLevel {
	if v, ok := kitev1.LogLevel_value["LOG_LEVEL_"+l]; ok {
		return kitev1.LogLevel(v)
	}
	return kitev1.LogLevel_LOG_LEVEL_INFO
}

// dispatch produces the job of an attempt: the task's flow revision and the
// variables it renders its properties with.
func (p *processor) dispatch(pc *streams.PartitionContext, l *loaded, d execution.Dispatch) error {
	e := l.e
	tr, ok := e.TaskRun(d.TaskRunID)
	if !ok {
		return fmt.Errorf("execution %s: dispatch of unknown task run %s", e.ID, d.TaskRunID)
	}
	vars := execution.Vars(l.f, e, tr)
	vars["envs"] = p.machine.Env
	pv, err := codec.ToStruct(vars)
	if err != nil {
		return fmt.Errorf("execution %s: variables of task run %s: %w", e.ID, tr.TaskID, err)
	}
	if proto.Size(pv) > p.maxInline {
		if pv, err = p.offloadVars(e, tr, d.Attempt, vars); err != nil {
			return fmt.Errorf("execution %s: variables of task run %s: %w", e.ID, tr.TaskID, err)
		}
	}
	job := &eventv1.WorkerJob{
		ExecutionId: e.ID, TaskRunId: tr.ID, Attempt: int32(d.Attempt), Time: codec.Time(pc.Now),
		Namespace: e.Namespace, FlowId: e.FlowID, FlowRevision: int32(e.FlowRevision), FlowSource: l.f.Source,
		TaskId: tr.TaskID, Vars: pv, ErrorLogs: errorLogs(e),
	}
	if t, ok := l.f.FindTask(tr.TaskID); ok && t.Timeout > 0 {
		job.TimeoutMillis = t.Timeout.Milliseconds()
	}
	return p.produce(pc, p.topics.jobs, tr.ID, job)
}

// errorLogs are what errorLogs() returns to a task: the failures of the
// execution's task runs so far.
func errorLogs(e *execution.Execution) []*kitev1.LogEntry {
	var out []*kitev1.LogEntry
	for _, tr := range e.TaskRuns {
		if tr.State != execution.Failed || tr.Error == "" {
			continue
		}
		entry := &kitev1.LogEntry{Namespace: e.Namespace, FlowId: e.FlowID, ExecutionId: e.ID, TaskRunId: tr.ID,
			TaskId: tr.TaskID, Attempt: int32(len(tr.Attempts)), Level: kitev1.LogLevel_LOG_LEVEL_ERROR, Message: tr.Error}
		if n := len(tr.History); n > 0 {
			entry.Time = codec.Time(tr.History[n-1].Date)
		}
		out = append(out, entry)
	}
	return out
}

// startChild produces the create command of a subflow execution, from the
// latest (or the asked) revision of its flow; a flow that does not exist
// fails the Subflow task at once.
func (p *processor) startChild(pc *streams.PartitionContext, l *loaded, sc execution.StartChild) error {
	e := l.e
	f, err := p.source.Flow(sc.Namespace, sc.FlowID, sc.Revision)
	if err != nil {
		msg := fmt.Sprintf("subflow %s.%s: %v", sc.Namespace, sc.FlowID, err)
		if err := p.produce(pc, p.topics.logs, e.ID, &kitev1.LogEntry{Namespace: e.Namespace, FlowId: e.FlowID,
			ExecutionId: e.ID, TaskRunId: sc.TaskRunID, Level: kitev1.LogLevel_LOG_LEVEL_ERROR, Message: msg, Time: codec.Time(pc.Now)}); err != nil {
			return err
		}
		if !sc.Wait {
			return nil
		}
		return p.sendCommand(pc, e.ID, &eventv1.Command{Kind: &eventv1.Command_ChildEnded{ChildEnded: &eventv1.ChildEndedCommand{
			TaskRunId: sc.TaskRunID, ChildExecutionId: sc.ChildID, State: kitev1.State_STATE_FAILED, Error: msg}}})
	}
	inputs, err := codec.ToStruct(sc.Inputs)
	if err != nil {
		return fmt.Errorf("execution %s: subflow inputs: %w", e.ID, err)
	}
	trigger, err := codec.ToStruct(map[string]any{
		"type": "io.kestra.plugin.core.flow.Subflow", "executionId": e.ID,
		"namespace": e.Namespace, "flowId": e.FlowID, "flowRevision": e.FlowRevision,
	})
	if err != nil {
		return err
	}
	create := &eventv1.CreateCommand{Namespace: f.Namespace, FlowId: f.ID, Revision: int32(f.Revision),
		Inputs: inputs, Labels: codec.Labels(sc.Labels), Trigger: trigger, FlowSource: f.Source}
	if sc.Wait {
		if create.Parent, err = codec.ParentLink(&execution.ParentLink{ExecutionID: e.ID, TaskRunID: sc.TaskRunID,
			Namespace: e.Namespace, FlowID: e.FlowID, Outputs: sc.Outputs}); err != nil {
			return err
		}
	}
	return p.sendCommand(pc, sc.ChildID, &eventv1.Command{Kind: &eventv1.Command_Create{Create: create}})
}

// ended tells a waiting parent that its subflow execution ended, and
// starts the executions of the Flow triggers the end matches.
func (p *processor) ended(pc *streams.PartitionContext, l *loaded, ef execution.Ended) error {
	e := l.e
	if err := p.flowTriggers(pc, e); err != nil {
		return err
	}
	if e.Parent == nil {
		return nil
	}
	outputs := map[string]any{}
	for k, v := range e.Outputs {
		outputs[k] = v
	}
	for k, v := range ef.ParentOutputs {
		outputs[k] = v
	}
	po, err := codec.ToStruct(outputs)
	if err != nil {
		return fmt.Errorf("execution %s: outputs for the parent: %w", e.ID, err)
	}
	return p.sendCommand(pc, e.Parent.ExecutionID, &eventv1.Command{Kind: &eventv1.Command_ChildEnded{ChildEnded: &eventv1.ChildEndedCommand{
		TaskRunId: e.Parent.TaskRunID, ChildExecutionId: e.ID, State: codec.State(ef.State), Outputs: po, Error: ef.ParentOutputsError}}})
}

// scheduleRetry keeps the create command of the execution that retries this
// one (retry behavior CREATE_NEW_EXECUTION) until it is due.
func (p *processor) scheduleRetry(pc *streams.PartitionContext, l *loaded, r execution.RetryExecution) error {
	e := l.e
	inputs, err := codec.ToStruct(e.Inputs)
	if err != nil {
		return err
	}
	trigger, err := codec.ToStruct(e.Trigger)
	if err != nil {
		return err
	}
	parent, err := codec.ParentLink(e.Parent)
	if err != nil {
		return err
	}
	link := r.RetryOf
	c := &eventv1.Command{ExecutionId: r.ID, Kind: &eventv1.Command_Create{Create: &eventv1.CreateCommand{
		Namespace: e.Namespace, FlowId: e.FlowID, Revision: int32(e.FlowRevision), Inputs: inputs,
		Labels: codec.Labels(e.Labels), Trigger: trigger, Parent: parent, RetryOf: codec.RetryLink(&link), FlowSource: l.f.Source}}}
	b, err := proto.Marshal(c)
	if err != nil {
		return err
	}
	key := []byte("p/" + r.ID)
	pc.Put(key, b)
	return pc.SetTimer(key, r.Due)
}

// retryDue produces the create command of a retry execution.
func (p *processor) retryDue(pc *streams.PartitionContext, id string) error {
	key := []byte("p/" + id)
	b, ok, err := pc.Get(key)
	if err != nil || !ok {
		return err
	}
	pc.Delete(key)
	var c eventv1.Command
	if err := proto.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("retry execution %s: %w", id, err)
	}
	return p.sendCommand(pc, id, &c)
}

// flowTriggers produces the create command of each flow whose Flow trigger
// matches the ended execution. The new execution's id is derived from the
// upstream execution and the trigger, so a redelivered end creates it once
// (the executor ignores a create for an execution that exists).
func (p *processor) flowTriggers(pc *streams.PartitionContext, up *execution.Execution) error {
	for _, f := range p.source.Latest() {
		for _, t := range f.Triggers {
			if t.Type != "flow" {
				continue
			}
			ok, err := execution.FlowTriggerMatches(pc.Context(), p.engine, f, t, up)
			if err != nil {
				p.log.Warn("flow trigger not evaluated", zap.String("namespace", f.Namespace), zap.String("flow_id", f.ID),
					zap.String("trigger_id", t.ID), zap.String("execution_id", up.ID), zap.Error(err))
				continue
			}
			if !ok {
				continue
			}
			vars := execution.FlowTriggerVars(up)
			inputs := map[string]any{}
			if raw, ok := t.Props["inputs"].(map[string]any); ok {
				rendered, err := p.engine.RenderAll(pc.Context(), raw, map[string]any{"trigger": vars})
				if err != nil {
					p.log.Warn("flow trigger inputs do not render", zap.String("flow_id", f.ID), zap.String("trigger_id", t.ID), zap.Error(err))
					continue
				}
				inputs, _ = rendered.(map[string]any)
			}
			pi, err := codec.ToStruct(inputs)
			if err != nil {
				return err
			}
			pt, err := codec.ToStruct(vars)
			if err != nil {
				return err
			}
			h := fnv.New64a()
			h.Write([]byte(up.ID + "/" + f.Namespace + "/" + f.ID + "/" + t.ID))
			id := execution.NewExecutionID(pc.Now, h.Sum64())
			if err := p.sendCommand(pc, id, &eventv1.Command{Kind: &eventv1.Command_Create{Create: &eventv1.CreateCommand{
				Namespace: f.Namespace, FlowId: f.ID, Revision: int32(f.Revision), Inputs: pi, Trigger: pt, FlowSource: f.Source}}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// offloadVarsTimeout bounds the storing of a job's variables.
const offloadVarsTimeout = time.Minute

// offloadVars keeps the largest variables of a job in internal storage
// (claim-check), so that the job fits in a Kafka record however many
// outputs the execution gathered; the worker reads them back. The URIs are
// per attempt and the puts idempotent, so a batch processed again after an
// aborted transaction writes the same files.
func (p *processor) offloadVars(e *execution.Execution, tr *execution.TaskRun, attempt int, vars map[string]any) (*structpb.Struct, error) {
	ctx, cancel := context.WithTimeout(context.Background(), offloadVarsTimeout)
	defer cancel()
	out, err := storage.Offload(ctx, p.store, vars, p.maxInline, func(key string) (string, error) {
		return storage.TaskFile(e.Namespace, e.FlowID, e.ID, tr.TaskID, tr.ID, fmt.Sprintf("job-%d/%s.json", attempt, key))
	})
	if err != nil {
		return nil, err
	}
	return codec.ToStruct(out)
}
