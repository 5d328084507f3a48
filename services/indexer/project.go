package indexer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/repository"
	"github.com/kiteflow/kite/proto/codec"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/executor"
	"github.com/kiteflow/kite/streams"
)

// The projection of records into documents. Every document's version is
// what orders its writes: the record's offset for topics whose records
// replace the document (the executor's state, flows, triggers, logs), the
// event's sequence number for events. A document's records are all in one
// partition (the key decides it), so offsets grow with each write of it,
// and replaying a topic writes the same documents with the same versions.

// flowRef is what a task run document takes from its execution's header.
type flowRef struct{ namespace, flowID string }

// projector turns records into documents. flowOf finds the namespace and
// flow of an execution whose header it has not seen in this process.
type projector struct {
	topics topicNames
	refs   *refCache
	flowOf func(executionID string) (flowRef, bool)
}

// badRecord is a record that cannot be projected: it goes to the dead
// letter topic with the reason.
type badRecord struct {
	rec    *kgo.Record
	reason string
}

// project returns the documents of one record; a nil slice for records
// that make none (timers, flow sources in the executor's state).
func (p *projector) project(r *kgo.Record) ([]repository.Doc, error) {
	switch r.Topic {
	case p.topics.events:
		return p.event(r)
	case p.topics.state:
		return p.state(r)
	case p.topics.logs:
		return p.log(r)
	case p.topics.flows:
		return p.flow(r)
	case p.topics.triggers:
		return p.trigger(r)
	}
	return nil, fmt.Errorf("record of unexpected topic %s", r.Topic)
}

func stateName(s kitev1.State) string { return string(codec.FromState(s)) }

func labels(ls []*kitev1.Label) ([]repository.Label, []string) {
	if len(ls) == 0 {
		return nil, nil
	}
	out := make([]repository.Label, len(ls))
	pairs := make([]string, len(ls))
	for i, l := range ls {
		out[i] = repository.Label{Key: l.GetKey(), Value: l.GetValue()}
		pairs[i] = l.GetKey() + "=" + l.GetValue()
	}
	return out, pairs
}

// span returns the first and, when the state is terminal, last times of a
// state history, with the duration between them in milliseconds.
func span(history []*kitev1.StateTime, state kitev1.State) (start time.Time, end *time.Time, ms *int64) {
	if len(history) == 0 {
		return time.Time{}, nil, nil
	}
	start = history[0].GetTime().AsTime()
	if codec.FromState(state).Terminal() {
		e := history[len(history)-1].GetTime().AsTime()
		d := e.Sub(start).Milliseconds()
		end, ms = &e, &d
	}
	return start, end, ms
}

func (p *projector) state(r *kgo.Record) ([]repository.Doc, error) {
	key, value, ok := streams.DecodeChangelog(r)
	if !ok {
		return nil, nil
	}
	entry, ok, err := executor.ParseStateEntry(key, value)
	if err != nil || !ok {
		return nil, err
	}
	if entry.TaskRunKey != "" {
		id := entry.ExecutionID + "/" + entry.TaskRunKey
		if entry.Deleted {
			return []repository.Doc{{Kind: repository.TaskRuns, ID: id, Version: r.Offset, Delete: true}}, nil
		}
		return []repository.Doc{{Kind: repository.TaskRuns, ID: id, Version: r.Offset, Source: p.taskRun(entry.ExecutionID, entry.TaskRun)}}, nil
	}
	if entry.Deleted {
		return []repository.Doc{{Kind: repository.Executions, ID: entry.ExecutionID, Version: r.Offset, Delete: true}}, nil
	}
	h := entry.Header
	p.refs.put(h.GetId(), flowRef{h.GetNamespace(), h.GetFlowId()})
	start, end, ms := span(h.GetHistory(), h.GetState())
	doc := repository.Execution{
		ID: h.GetId(), Namespace: h.GetNamespace(), FlowID: h.GetFlowId(), FlowRevision: h.GetFlowRevision(),
		State: stateName(h.GetState()), Start: start, End: end, Duration: ms,
		Inputs: codec.FromStruct(h.GetInputs()), Outputs: codec.FromStruct(h.GetOutputs()), Trigger: codec.FromStruct(h.GetTrigger()),
		ParentID: h.GetParent().GetExecutionId(), OriginalID: h.GetRetryOf().GetOriginalId(), Error: h.GetError(),
	}
	doc.Labels, doc.LabelPairs = labels(h.GetLabels())
	if hs := h.GetHistory(); len(hs) > 0 {
		doc.Updated = hs[len(hs)-1].GetTime().AsTime()
	}
	return []repository.Doc{{Kind: repository.Executions, ID: doc.ID, Version: r.Offset, Source: doc}}, nil
}

func (p *projector) taskRun(executionID string, tr *kitev1.TaskRun) repository.TaskRun {
	ref, ok := p.refs.get(executionID)
	if !ok && p.flowOf != nil {
		if ref, ok = p.flowOf(executionID); ok {
			p.refs.put(executionID, ref)
		}
	}
	start, end, ms := span(tr.GetHistory(), tr.GetState())
	return repository.TaskRun{
		ID: tr.GetId(), ExecutionID: executionID, Namespace: ref.namespace, FlowID: ref.flowID,
		TaskID: tr.GetTaskId(), ParentTaskRunID: tr.GetParentTaskRunId(), Value: tr.Value,
		State: stateName(tr.GetState()), Start: start, End: end, Duration: ms, Attempts: len(tr.GetAttempts()),
		Outputs: codec.FromStruct(tr.GetOutputs()), Error: tr.GetError(), ChildExecutionID: tr.GetChildExecutionId(),
	}
}

// eventDetail is how the rest of an event is stored: its protobuf JSON.
var eventDetail = protojson.MarshalOptions{UseProtoNames: true}

func (p *projector) event(r *kgo.Record) ([]repository.Doc, error) {
	ev := &kitev1.ExecutionEvent{}
	if err := proto.Unmarshal(r.Value, ev); err != nil {
		return nil, fmt.Errorf("not an ExecutionEvent: %w", err)
	}
	doc := repository.Event{
		ExecutionID: ev.GetExecutionId(), Seq: ev.GetSeq(), Type: ev.GetType().String()[len("EVENT_TYPE_"):],
		Time: ev.GetTime().AsTime(), TaskRunID: ev.GetTaskRunId(), Attempt: ev.GetAttempt(), Error: ev.GetError(),
	}
	if ev.GetState() != kitev1.State_STATE_UNSPECIFIED {
		doc.State = stateName(ev.GetState())
	}
	// What the indexed fields do not hold stays in detail, as stored JSON.
	rest := proto.Clone(ev).(*kitev1.ExecutionEvent)
	rest.Seq, rest.Type, rest.Time, rest.ExecutionId, rest.TaskRunId, rest.State, rest.Attempt, rest.Error = 0, 0, nil, "", "", 0, 0, ""
	if proto.Size(rest) > 0 {
		b, err := eventDetail.Marshal(rest)
		if err != nil {
			return nil, err
		}
		doc.Detail = map[string]any{}
		if err := json.Unmarshal(b, &doc.Detail); err != nil {
			return nil, err
		}
	}
	id := ev.GetExecutionId() + "/" + strconv.FormatInt(ev.GetSeq(), 10)
	return []repository.Doc{{Kind: repository.Events, ID: id, Version: ev.GetSeq(), Source: doc}}, nil
}

func (p *projector) log(r *kgo.Record) ([]repository.Doc, error) {
	l := &kitev1.LogEntry{}
	if err := proto.Unmarshal(r.Value, l); err != nil {
		return nil, fmt.Errorf("not a LogEntry: %w", err)
	}
	level := l.GetLevel().String()[len("LOG_LEVEL_"):]
	if l.GetLevel() == kitev1.LogLevel_LOG_LEVEL_UNSPECIFIED {
		level = "INFO"
	}
	doc := repository.Log{
		ExecutionID: l.GetExecutionId(), Namespace: l.GetNamespace(), FlowID: l.GetFlowId(), TaskID: l.GetTaskId(),
		TaskRunID: l.GetTaskRunId(), Attempt: l.GetAttempt(), Level: level, Message: l.GetMessage(), Time: l.GetTime().AsTime(),
	}
	id := fmt.Sprintf("%d-%d", r.Partition, r.Offset)
	return []repository.Doc{{Kind: repository.Logs, ID: id, Version: r.Offset, Source: doc}}, nil
}

func (p *projector) flow(r *kgo.Record) ([]repository.Doc, error) {
	if r.Value == nil {
		return nil, nil // compaction tombstones carry no flow
	}
	f := &kitev1.Flow{}
	if err := proto.Unmarshal(r.Value, f); err != nil {
		return nil, fmt.Errorf("not a Flow: %w", err)
	}
	id := f.GetNamespace() + "/" + f.GetId()
	if f.GetDeleted() {
		return []repository.Doc{{Kind: repository.Flows, ID: id, Version: r.Offset, Delete: true}}, nil
	}
	updated := f.GetUpdateTime().AsTime()
	if f.GetUpdateTime() == nil {
		updated = r.Timestamp.UTC()
	}
	doc := repository.Flow{Namespace: f.GetNamespace(), ID: f.GetId(), Revision: f.GetRevision(), Description: f.GetDescription(),
		Disabled: f.GetDisabled(), Source: f.GetSource(), Updated: updated}
	doc.Labels, doc.LabelPairs = labels(f.GetLabels())
	return []repository.Doc{{Kind: repository.Flows, ID: id, Version: r.Offset, Source: doc}}, nil
}

func (p *projector) trigger(r *kgo.Record) ([]repository.Doc, error) {
	key, value, ok := streams.DecodeChangelog(r)
	if !ok {
		return nil, nil
	}
	if value == nil {
		return []repository.Doc{{Kind: repository.Triggers, ID: string(key), Version: r.Offset, Delete: true}}, nil
	}
	ts := &eventv1.TriggerState{}
	if err := proto.Unmarshal(value, ts); err != nil {
		return nil, fmt.Errorf("not a TriggerState: %w", err)
	}
	doc := repository.Trigger{Namespace: ts.GetNamespace(), FlowID: ts.GetFlowId(), TriggerID: ts.GetTriggerId(), Type: ts.GetType(),
		FlowRevision: ts.GetFlowRevision(), Disabled: ts.GetDisabled() || ts.GetSourceDisabled(), Backfill: ts.GetBackfill() != nil,
		Updated: r.Timestamp.UTC()}
	if t := ts.GetNextTime(); t != nil {
		v := t.AsTime()
		doc.NextTime = &v
	}
	if t := ts.GetLastTime(); t != nil {
		v := t.AsTime()
		doc.LastTime = &v
	}
	return []repository.Doc{{Kind: repository.Triggers, ID: string(key), Version: r.Offset, Source: doc}}, nil
}
