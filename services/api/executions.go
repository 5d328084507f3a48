package api

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/proto/codec"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// executionService is kite.v1.ExecutionService (proto/kite/v1/execution_service.proto).
type executionService struct {
	kitev1.UnimplementedExecutionServiceServer
	s *Server
}

var _ kitev1.ExecutionServiceServer = (*executionService)(nil)

func (x *executionService) Create(ctx context.Context, req *kitev1.ExecutionServiceCreateRequest) (*kitev1.ExecutionServiceCreateResponse, error) {
	e, err := x.s.createFromRequest(ctx, req)
	if err != nil {
		return nil, x.s.status(ctx, err)
	}
	return &kitev1.ExecutionServiceCreateResponse{Execution: e}, nil
}

// CreateWithFiles creates an execution with FILE inputs sent as chunks: the
// files are stored first, then the execution is created with their URIs.
func (x *executionService) CreateWithFiles(stream grpc.ClientStreamingServer[kitev1.ExecutionServiceCreateWithFilesRequest, kitev1.ExecutionServiceCreateWithFilesResponse]) error {
	e, err := x.s.createWithFiles(stream)
	if err != nil {
		return x.s.status(stream.Context(), err)
	}
	return stream.SendAndClose(&kitev1.ExecutionServiceCreateWithFilesResponse{Execution: e})
}

func (x *executionService) Get(ctx context.Context, req *kitev1.ExecutionServiceGetRequest) (*kitev1.ExecutionServiceGetResponse, error) {
	if req.GetExecutionId() == "" {
		return nil, invalidArgument("execution_id", "must be set")
	}
	e, err := x.s.load(ctx, req.GetExecutionId())
	if err != nil {
		return nil, x.s.status(ctx, err)
	}
	exec, err := x.s.resolveExecution(ctx, e.exec)
	if err != nil {
		return nil, x.s.status(ctx, err)
	}
	return &kitev1.ExecutionServiceGetResponse{Execution: exec}, nil
}

func (x *executionService) Watch(req *kitev1.ExecutionServiceWatchRequest, stream grpc.ServerStreamingServer[kitev1.ExecutionServiceWatchResponse]) error {
	if req.GetExecutionId() == "" {
		return invalidArgument("execution_id", "must be set")
	}
	if req.GetFromSequence() < 0 {
		return invalidArgument("from_sequence", "must not be negative")
	}
	ctx, done := x.s.streamContext(stream.Context())
	defer done()
	err := x.s.follow(ctx, req.GetExecutionId(), max(req.GetFromSequence(), 1), x.s.cfg.WatchNotFoundWait, func(ev *kitev1.ExecutionEvent) error {
		o, changed, err := x.s.resolveStruct(ctx, ev.GetOutputs())
		if err != nil {
			return err
		}
		if changed {
			ev = proto.CloneOf(ev)
			ev.Outputs = o
		}
		return stream.Send(&kitev1.ExecutionServiceWatchResponse{Event: ev})
	})
	return x.s.status(ctx, err)
}

func (x *executionService) Kill(ctx context.Context, req *kitev1.ExecutionServiceKillRequest) (*kitev1.ExecutionServiceKillResponse, error) {
	err := x.s.command(ctx, req.GetExecutionId(), func(e *kitev1.Execution) (*eventv1.Command, error) {
		if st := codec.FromState(e.GetState()); st.Terminal() {
			return nil, status.Errorf(codes.FailedPrecondition, "execution %s has ended (%s): there is nothing to kill", e.GetId(), st)
		}
		return &eventv1.Command{Kind: &eventv1.Command_Kill{Kill: &eventv1.KillCommand{}}}, nil
	})
	if err != nil {
		return nil, x.s.status(ctx, err)
	}
	return &kitev1.ExecutionServiceKillResponse{}, nil
}

func (x *executionService) Resume(ctx context.Context, req *kitev1.ExecutionServiceResumeRequest) (*kitev1.ExecutionServiceResumeResponse, error) {
	err := x.s.command(ctx, req.GetExecutionId(), func(e *kitev1.Execution) (*eventv1.Command, error) {
		if st := codec.FromState(e.GetState()); st != execution.Paused {
			return nil, status.Errorf(codes.FailedPrecondition, "execution %s is %s, not PAUSED: only a paused execution resumes", e.GetId(), st)
		}
		if err := x.s.checkResumeInputs(e, req.GetInputs()); err != nil {
			return nil, err
		}
		return &eventv1.Command{Kind: &eventv1.Command_Resume{Resume: &eventv1.ResumeCommand{Inputs: req.GetInputs()}}}, nil
	})
	if err != nil {
		return nil, x.s.status(ctx, err)
	}
	return &kitev1.ExecutionServiceResumeResponse{}, nil
}

func (x *executionService) Restart(ctx context.Context, req *kitev1.ExecutionServiceRestartRequest) (*kitev1.ExecutionServiceRestartResponse, error) {
	err := x.s.command(ctx, req.GetExecutionId(), func(e *kitev1.Execution) (*eventv1.Command, error) {
		// The engine restarts the failed task runs of a FAILED or KILLED
		// execution (core/execution/control.go) and ignores other restarts.
		if st := codec.FromState(e.GetState()); st != execution.Failed && st != execution.Killed {
			return nil, status.Errorf(codes.FailedPrecondition, "execution %s is %s: only a FAILED or KILLED execution restarts (replay runs others again)", e.GetId(), st)
		}
		if err := x.s.checkRevision(e, req.Revision); err != nil {
			return nil, err
		}
		return &eventv1.Command{Kind: &eventv1.Command_Restart{Restart: &eventv1.RestartCommand{Revision: req.Revision}}}, nil
	})
	if err != nil {
		return nil, x.s.status(ctx, err)
	}
	return &kitev1.ExecutionServiceRestartResponse{}, nil
}

func (x *executionService) Replay(ctx context.Context, req *kitev1.ExecutionServiceReplayRequest) (*kitev1.ExecutionServiceReplayResponse, error) {
	newID := execution.RandomExecutionID(time.Now())
	err := x.s.command(ctx, req.GetExecutionId(), func(e *kitev1.Execution) (*eventv1.Command, error) {
		if st := codec.FromState(e.GetState()); !st.Terminal() {
			return nil, status.Errorf(codes.FailedPrecondition, "execution %s is still %s: only an ended execution replays (kill it first)", e.GetId(), st)
		}
		if tr := req.GetTaskRunId(); tr != "" && !hasTaskRun(e, tr) {
			return nil, status.Errorf(codes.NotFound, "execution %s has no task run %s", e.GetId(), tr)
		}
		if err := x.s.checkRevision(e, req.Revision); err != nil {
			return nil, err
		}
		return &eventv1.Command{Kind: &eventv1.Command_Replay{Replay: &eventv1.ReplayCommand{
			NewExecutionId: newID, TaskRunId: req.GetTaskRunId(), Revision: req.Revision,
		}}}, nil
	})
	if err != nil {
		return nil, x.s.status(ctx, err)
	}
	return &kitev1.ExecutionServiceReplayResponse{ExecutionId: newID}, nil
}

func hasTaskRun(e *kitev1.Execution, id string) bool {
	for _, tr := range e.GetTaskRuns() {
		if tr.GetId() == id {
			return true
		}
	}
	return false
}

// command loads execution id (NOT_FOUND when it does not exist), asks build
// for the command to send it (build refuses with a status when the
// execution's state does not allow it), and produces the command.
func (s *Server) command(ctx context.Context, id string, build func(*kitev1.Execution) (*eventv1.Command, error)) error {
	if id == "" {
		return invalidArgument("execution_id", "must be set")
	}
	e, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	cmd, err := build(e.exec)
	if err != nil {
		return err
	}
	cmd.ExecutionId = id
	if err := s.topics.produceCommand(ctx, cmd); err != nil {
		return err
	}
	s.logger.Info("command sent", fExecutionID(id), zap.String("command", fmt.Sprintf("%T", cmd.GetKind())))
	return nil
}

// checkRevision checks that a revision asked for a restart or a replay exists.
func (s *Server) checkRevision(e *kitev1.Execution, revision *int32) error {
	if revision == nil {
		return nil
	}
	if *revision < 1 {
		return invalidArgument("revision", fmt.Sprintf("must be at least 1, got %d", *revision))
	}
	_, err := s.flows.Flow(e.GetNamespace(), e.GetFlowId(), int(*revision))
	return err
}

// checkResumeInputs validates resume inputs against the onResume inputs of
// the paused Pause tasks, as the engine will. When the flow revision cannot
// be read here the engine alone checks them.
func (s *Server) checkResumeInputs(e *kitev1.Execution, given *structpb.Struct) error {
	f, err := s.flows.Flow(e.GetNamespace(), e.GetFlowId(), int(e.GetFlowRevision()))
	if err != nil {
		s.logger.Debug("resume inputs not checked: no flow revision", fExecutionID(e.GetId()), zap.Error(err))
		return nil
	}
	for _, tr := range e.GetTaskRuns() {
		if tr.GetState() != kitev1.State_STATE_PAUSED {
			continue
		}
		t, ok := f.FindTask(tr.GetTaskId())
		if !ok {
			continue
		}
		decls, _ := t.Props["onResume"].([]any)
		if len(decls) == 0 {
			continue
		}
		inputs, err := flow.DecodeInputs(decls)
		if err != nil {
			continue // the engine reports it on the task run
		}
		pause := &flow.Flow{ID: f.ID, Namespace: f.Namespace, Inputs: inputs}
		if _, err := execution.ResolveInputs(pause, codec.FromStruct(given), s.engine); err != nil {
			return err
		}
	}
	return nil
}

// newExecution is what an execution is created from.
type newExecution struct {
	flow    *flow.Flow
	inputs  *structpb.Struct // as given, not yet validated
	labels  []*kitev1.Label
	trigger *structpb.Struct
	// id is the execution's id, when chosen before (to store its files
	// first); empty for a new one.
	id string
}

// createFromRequest creates the execution a Create request asks for.
func (s *Server) createFromRequest(ctx context.Context, req *kitev1.ExecutionServiceCreateRequest) (*kitev1.Execution, error) {
	if err := checkCreateRequest(req); err != nil {
		return nil, err
	}
	f, err := s.flows.Flow(req.GetNamespace(), req.GetFlowId(), int(req.GetRevision()))
	if err != nil {
		return nil, err
	}
	return s.create(ctx, newExecution{flow: f, inputs: req.GetInputs(), labels: req.GetLabels()})
}

// checkCreateRequest checks the fields of a Create request.
func checkCreateRequest(req *kitev1.ExecutionServiceCreateRequest) error {
	switch {
	case req.GetNamespace() == "":
		return invalidArgument("namespace", "must be set")
	case req.GetFlowId() == "":
		return invalidArgument("flow_id", "must be set")
	case req.Revision != nil && req.GetRevision() < 1:
		return invalidArgument("revision", fmt.Sprintf("must be at least 1 (or unset for the latest), got %d", req.GetRevision()))
	}
	for i, l := range req.GetLabels() {
		if l.GetKey() == "" {
			return invalidArgument(fmt.Sprintf("labels[%d].key", i), "must not be empty")
		}
	}
	return nil
}

// create validates the inputs, writes the create command of a new execution
// and waits until the executor recorded it (its CREATED event), within the
// request's deadline or Config.CreateWait. The execution returned is its fold
// as read then, in state CREATED or later.
func (s *Server) create(ctx context.Context, n newExecution) (*kitev1.Execution, error) {
	f := n.flow
	if f.Disabled {
		return nil, status.Errorf(codes.FailedPrecondition, "flow %s.%s is disabled: enable it to create executions", f.Namespace, f.ID)
	}
	// The executor resolves the inputs again from the flow source; this
	// check refuses bad inputs before anything is written.
	typed, err := execution.ResolveInputs(f, codec.FromStruct(n.inputs), s.engine)
	if err != nil {
		return nil, err
	}
	id := n.id
	if id == "" {
		id = execution.RandomExecutionID(time.Now())
	}
	inputs, err := s.offloadInputs(ctx, f, id, n.inputs, typed)
	if err != nil {
		return nil, err
	}
	// The wait ends a little before the request's deadline, so that the
	// client gets the answer below rather than its own timeout.
	waitFor := s.cfg.CreateWait
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		waitFor = left - min(left/10, time.Second)
	}
	wait, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	// Registered before the command is written, so that the event that
	// answers it cannot pass unseen.
	if err := s.created.waitReady(wait); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	created := s.created.expect(id)
	defer s.created.forget(id)
	cmd := &eventv1.Command{ExecutionId: id, Kind: &eventv1.Command_Create{Create: &eventv1.CreateCommand{
		Namespace: f.Namespace, FlowId: f.ID, Revision: int32(f.Revision), Inputs: inputs,
		Labels: n.labels, Trigger: n.trigger, FlowSource: f.Source,
	}}}
	if err := s.topics.produceCommand(ctx, cmd); err != nil {
		return nil, err
	}
	s.logger.Info("execution asked for", fExecutionID(id), fNamespace(f.Namespace), fFlowID(f.ID), zap.Int("revision", f.Revision))

	entry, err := s.waitCreated(wait, id, created)
	if err != nil && ctx.Err() == nil && wait.Err() != nil {
		return nil, status.Errorf(codes.DeadlineExceeded,
			"execution %s was asked for, but no executor recorded it within %s: is an executor running? It starts once one is; look it up by its id",
			id, waitFor.Round(time.Millisecond))
	}
	if err != nil {
		return nil, err
	}
	return entry.exec, nil
}
