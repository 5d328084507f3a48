package main

// A STAND-IN for the Kite API server, for the tests of the client commands
// (flowremote.go, execution.go, logs.go) while the real server is being
// written. It serves the kitev1 services over gRPC on a real loopback TCP
// listener, with canned behaviour:
//
//   - FlowService validates sources with the real flow parser and keeps the
//     revisions in memory; List pages two flows at a time.
//   - ExecutionService runs nothing: the flow id names how an execution ends
//     ("success", "failed", "paused"…, any state), and every execution gets
//     the same scripted events (scriptedRun). An input "name" of "bad" is
//     refused. CreateWithFiles records the chunks it receives.
//   - LogService sends two canned lines of the execution and ends.
//
// End-to-end tests against the real server (services/...) come later; they
// should not need these tests to change.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/core/flow"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// fakeAPI is the state of the stand-in server, shared by its three services.
type fakeAPI struct {
	mu       sync.Mutex
	flows    map[string][]*kitev1.Flow // "namespace/id" → revisions, oldest first
	runs     map[string]*fakeRun       // by execution id
	creates  []*kitev1.ExecutionServiceCreateRequest
	chunks   []*kitev1.FileChunk // received by CreateWithFiles, in order
	watches  []int64             // the from_sequence of each Watch
	tails    []*kitev1.LogServiceTailRequest
	commands []proto.Message // Kill, Resume, Restart and Replay requests

	// gate, when set, holds every Watch before event 5 (the task's outputs,
	// right after it started RUNNING) until it is closed.
	gate chan struct{}
	// dropAfter, when set, makes the next Watch fail UNAVAILABLE right after
	// sending event dropAfter, as a restarting server would.
	dropAfter int64
}

// startFakeAPI serves a fresh stand-in on 127.0.0.1 and returns it with its
// address; it stops when the test ends.
func startFakeAPI(t testing.TB) (*fakeAPI, string) {
	t.Helper()
	api := &fakeAPI{flows: map[string][]*kitev1.Flow{}, runs: map[string]*fakeRun{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	kitev1.RegisterFlowServiceServer(srv, &fakeFlows{api: api})
	kitev1.RegisterExecutionServiceServer(srv, &fakeExecutions{api: api})
	kitev1.RegisterLogServiceServer(srv, &fakeLogs{api: api})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("fake API server: %v", err)
		}
	})
	return api, lis.Addr().String()
}

type fakeFlows struct {
	kitev1.UnimplementedFlowServiceServer
	api *fakeAPI
}

func (s *fakeFlows) Apply(_ context.Context, req *kitev1.FlowServiceApplyRequest) (*kitev1.FlowServiceApplyResponse, error) {
	f, err := newParser().Parse("", []byte(req.GetSource()))
	var diags flow.Diagnostics
	if errors.As(err, &diags) {
		br := &errdetails.BadRequest{}
		for _, d := range diags {
			if !d.Warning {
				br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
					Field: d.Path, Description: fmt.Sprintf("%d:%d: %s", d.Line, d.Column, d.Message),
				})
			}
		}
		st, _ := status.New(codes.InvalidArgument, "the flow is invalid").WithDetails(br)
		return nil, st.Err()
	} else if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	res := &kitev1.FlowServiceApplyResponse{}
	for _, w := range f.Warnings {
		res.Warnings = append(res.Warnings, &kitev1.Problem{
			Line: int32(w.Line), Column: int32(w.Column), Path: w.Path, Message: w.Message, Severity: kitev1.Severity_SEVERITY_WARNING,
		})
	}
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	key := f.Namespace + "/" + f.ID
	revs := s.api.flows[key]
	if n := len(revs); n > 0 && revs[n-1].GetSource() == req.GetSource() && !revs[n-1].GetDeleted() {
		res.Flow = revs[n-1]
		return res, nil
	}
	res.Flow = &kitev1.Flow{
		Namespace: f.Namespace, Id: f.ID, Revision: int32(len(revs) + 1), Source: req.GetSource(),
		Description: f.Description, UpdateTime: timestamppb.New(time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)),
	}
	s.api.flows[key] = append(revs, res.Flow)
	return res, nil
}

func (s *fakeFlows) Get(_ context.Context, req *kitev1.FlowServiceGetRequest) (*kitev1.FlowServiceGetResponse, error) {
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	revs := s.api.flows[req.GetNamespace()+"/"+req.GetId()]
	if len(revs) == 0 || revs[len(revs)-1].GetDeleted() {
		return nil, status.Errorf(codes.NotFound, "flow %s.%s not found", req.GetNamespace(), req.GetId())
	}
	if req.Revision == nil {
		return &kitev1.FlowServiceGetResponse{Flow: revs[len(revs)-1]}, nil
	}
	if r := int(req.GetRevision()); r >= 1 && r <= len(revs) {
		return &kitev1.FlowServiceGetResponse{Flow: revs[r-1]}, nil
	}
	return nil, status.Errorf(codes.NotFound, "flow %s.%s has no revision %d", req.GetNamespace(), req.GetId(), req.GetRevision())
}

// fakePageSize is small so that the client must follow page tokens.
const fakePageSize = 2

func (s *fakeFlows) List(_ context.Context, req *kitev1.FlowServiceListRequest) (*kitev1.FlowServiceListResponse, error) {
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	var all []*kitev1.Flow
	for _, revs := range s.api.flows {
		f := revs[len(revs)-1]
		p := req.GetNamespacePrefix()
		if !f.GetDeleted() && (p == "" || f.GetNamespace() == p || strings.HasPrefix(f.GetNamespace(), p+".")) {
			all = append(all, f)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].GetNamespace() != all[j].GetNamespace() {
			return all[i].GetNamespace() < all[j].GetNamespace()
		}
		return all[i].GetId() < all[j].GetId()
	})
	from := 0
	if req.GetPageToken() != "" {
		from, _ = strconv.Atoi(req.GetPageToken())
	}
	res := &kitev1.FlowServiceListResponse{Flows: all[from:min(from+fakePageSize, len(all))]}
	if from+fakePageSize < len(all) {
		res.NextPageToken = strconv.Itoa(from + fakePageSize)
	}
	return res, nil
}

func (s *fakeFlows) Delete(_ context.Context, req *kitev1.FlowServiceDeleteRequest) (*kitev1.FlowServiceDeleteResponse, error) {
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	revs := s.api.flows[req.GetNamespace()+"/"+req.GetId()]
	if len(revs) == 0 || revs[len(revs)-1].GetDeleted() {
		return nil, status.Errorf(codes.NotFound, "flow %s.%s not found", req.GetNamespace(), req.GetId())
	}
	revs[len(revs)-1].Deleted = true
	return &kitev1.FlowServiceDeleteResponse{}, nil
}

// fakeRun is a scripted execution.
type fakeRun struct {
	final  *kitev1.Execution // what Get returns
	events []*kitev1.ExecutionEvent
	logs   []*kitev1.LogEntry
}

// fakeT0 is when every scripted execution is created.
var fakeT0 = time.Date(2026, 1, 2, 12, 0, 1, 0, time.UTC)

// fakeAt is the time of the scripted event seq: 100ms apart.
func fakeAt(seq int) *timestamppb.Timestamp {
	return timestamppb.New(fakeT0.Add(time.Duration(seq-1) * 100 * time.Millisecond))
}

// scriptedRun is an execution of one task t1 that ends in state end:
//
//	1 CREATED  2 STATE RUNNING  3 TASK_RUN_CREATED t1  4 TASK_RUN_STATE t1 RUNNING
//	5 OUTPUTS t1  6 TASK_RUN_STATE t1 <end>  7 STATE <end>
//
// t1 takes 0.3s from its creation (events 3 to 6). A PAUSED execution has not ended: Watch
// waits after its events until the client goes.
func scriptedRun(id string, req *kitev1.ExecutionServiceCreateRequest, end kitev1.State) *fakeRun {
	msg := ""
	if end == kitev1.State_STATE_FAILED || end == kitev1.State_STATE_RETRIED {
		msg = "boom"
	}
	out, _ := structpb.NewStruct(map[string]any{"value": "hi"})
	header := &kitev1.Execution{
		Id: id, Namespace: req.GetNamespace(), FlowId: req.GetFlowId(), FlowRevision: 1,
		Inputs: req.GetInputs(), Labels: req.GetLabels(), State: kitev1.State_STATE_CREATED,
	}
	run := &fakeRun{
		events: []*kitev1.ExecutionEvent{
			{Type: kitev1.EventType_EVENT_TYPE_CREATED, Execution: header},
			{Type: kitev1.EventType_EVENT_TYPE_STATE, State: kitev1.State_STATE_RUNNING},
			{Type: kitev1.EventType_EVENT_TYPE_TASK_RUN_CREATED, TaskRun: &kitev1.TaskRun{Id: "tr-1", TaskId: "t1", State: kitev1.State_STATE_CREATED}},
			{Type: kitev1.EventType_EVENT_TYPE_TASK_RUN_STATE, TaskRunId: "tr-1", State: kitev1.State_STATE_RUNNING},
			{Type: kitev1.EventType_EVENT_TYPE_OUTPUTS, TaskRunId: "tr-1", Outputs: out},
			{Type: kitev1.EventType_EVENT_TYPE_TASK_RUN_STATE, TaskRunId: "tr-1", State: end, Error: msg},
			{Type: kitev1.EventType_EVENT_TYPE_STATE, State: end, Error: msg},
		},
		logs: []*kitev1.LogEntry{
			{ExecutionId: id, TaskRunId: "tr-1", TaskId: "t1", Attempt: 1, Level: kitev1.LogLevel_LOG_LEVEL_INFO, Message: "hello from t1", Time: fakeAt(4)},
			{ExecutionId: id, Level: kitev1.LogLevel_LOG_LEVEL_WARN, Message: "careful", Time: fakeAt(5)},
		},
	}
	for i, ev := range run.events {
		ev.Seq, ev.ExecutionId, ev.Time = int64(i+1), id, fakeAt(i+1)
	}
	final := proto.Clone(header).(*kitev1.Execution)
	final.State, final.Error, final.Seq = end, msg, int64(len(run.events))
	final.History = []*kitev1.StateTime{
		{State: kitev1.State_STATE_CREATED, Time: fakeAt(1)},
		{State: kitev1.State_STATE_RUNNING, Time: fakeAt(2)},
		{State: end, Time: fakeAt(7)},
	}
	if end == kitev1.State_STATE_SUCCESS {
		final.Outputs, _ = structpb.NewStruct(map[string]any{"greeting": "hi"})
	}
	final.TaskRuns = []*kitev1.TaskRun{{
		Id: "tr-1", TaskId: "t1", State: end, Outputs: out, Error: msg,
		History:  []*kitev1.StateTime{{State: kitev1.State_STATE_CREATED, Time: fakeAt(3)}, {State: kitev1.State_STATE_RUNNING, Time: fakeAt(4)}, {State: end, Time: fakeAt(6)}},
		Attempts: []*kitev1.Attempt{{State: end}},
	}}
	run.final = final
	return run
}

type fakeExecutions struct {
	kitev1.UnimplementedExecutionServiceServer
	api *fakeAPI
}

// start checks a create request and scripts its execution, "ex-" + flow id.
func (s *fakeExecutions) start(req *kitev1.ExecutionServiceCreateRequest) (*kitev1.Execution, error) {
	end, ok := kitev1.State_value["STATE_"+strings.ToUpper(req.GetFlowId())]
	if !ok || end == 0 {
		return nil, status.Errorf(codes.NotFound, "flow %s.%s not found", req.GetNamespace(), req.GetFlowId())
	}
	if req.GetInputs().GetFields()["name"].GetStringValue() == "bad" {
		st, _ := status.New(codes.InvalidArgument, "the inputs are invalid").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "name", Description: `must match "^[A-Z]", got "bad"`}},
		})
		return nil, st.Err()
	}
	id := "ex-" + req.GetFlowId()
	run := scriptedRun(id, req, kitev1.State(end))
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	s.api.creates = append(s.api.creates, req)
	s.api.runs[id] = run
	return run.events[0].GetExecution(), nil
}

func (s *fakeExecutions) run(id string) (*fakeRun, error) {
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	if r, ok := s.api.runs[id]; ok {
		return r, nil
	}
	return nil, status.Errorf(codes.NotFound, "execution %s not found", id)
}

func (s *fakeExecutions) Create(_ context.Context, req *kitev1.ExecutionServiceCreateRequest) (*kitev1.ExecutionServiceCreateResponse, error) {
	e, err := s.start(req)
	if err != nil {
		return nil, err
	}
	return &kitev1.ExecutionServiceCreateResponse{Execution: e}, nil
}

func (s *fakeExecutions) CreateWithFiles(stream kitev1.ExecutionService_CreateWithFilesServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	req := first.GetRequest()
	if req == nil {
		return status.Error(codes.InvalidArgument, "the first message must be the request")
	}
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if m.GetChunk() == nil {
			return status.Error(codes.InvalidArgument, "only the first message may be the request")
		}
		s.api.mu.Lock()
		s.api.chunks = append(s.api.chunks, m.GetChunk())
		s.api.mu.Unlock()
	}
	e, err := s.start(req)
	if err != nil {
		return err
	}
	return stream.SendAndClose(&kitev1.ExecutionServiceCreateWithFilesResponse{Execution: e})
}

func (s *fakeExecutions) Get(_ context.Context, req *kitev1.ExecutionServiceGetRequest) (*kitev1.ExecutionServiceGetResponse, error) {
	r, err := s.run(req.GetExecutionId())
	if err != nil {
		return nil, err
	}
	return &kitev1.ExecutionServiceGetResponse{Execution: r.final}, nil
}

func (s *fakeExecutions) Watch(req *kitev1.ExecutionServiceWatchRequest, stream kitev1.ExecutionService_WatchServer) error {
	r, err := s.run(req.GetExecutionId())
	if err != nil {
		return err
	}
	s.api.mu.Lock()
	s.api.watches = append(s.api.watches, req.GetFromSequence())
	gate, drop := s.api.gate, s.api.dropAfter
	s.api.dropAfter = 0
	s.api.mu.Unlock()
	ctx := stream.Context()
	for _, ev := range r.events {
		if ev.GetSeq() < req.GetFromSequence() {
			continue
		}
		if gate != nil && ev.GetSeq() == 5 {
			select {
			case <-gate:
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			}
		}
		if err := stream.Send(&kitev1.ExecutionServiceWatchResponse{Event: ev}); err != nil {
			return err
		}
		if ev.GetSeq() == drop {
			return status.Error(codes.Unavailable, "the server is restarting")
		}
	}
	if r.final.GetState() == kitev1.State_STATE_PAUSED { // not ended: nothing more until a resume
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	return nil
}

func (s *fakeExecutions) command(id string, req proto.Message) error {
	if _, err := s.run(id); err != nil {
		return err
	}
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	s.api.commands = append(s.api.commands, req)
	return nil
}

func (s *fakeExecutions) Kill(_ context.Context, req *kitev1.ExecutionServiceKillRequest) (*kitev1.ExecutionServiceKillResponse, error) {
	return &kitev1.ExecutionServiceKillResponse{}, s.command(req.GetExecutionId(), req)
}

func (s *fakeExecutions) Resume(_ context.Context, req *kitev1.ExecutionServiceResumeRequest) (*kitev1.ExecutionServiceResumeResponse, error) {
	if v, ok := req.GetInputs().GetFields()["approved"]; ok && v.GetStringValue() != "true" && v.GetStringValue() != "false" {
		st, _ := status.New(codes.InvalidArgument, "the inputs are invalid").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "approved", Description: fmt.Sprintf("expected true or false, got %q", v.GetStringValue())}},
		})
		return nil, st.Err()
	}
	return &kitev1.ExecutionServiceResumeResponse{}, s.command(req.GetExecutionId(), req)
}

func (s *fakeExecutions) Restart(_ context.Context, req *kitev1.ExecutionServiceRestartRequest) (*kitev1.ExecutionServiceRestartResponse, error) {
	return &kitev1.ExecutionServiceRestartResponse{}, s.command(req.GetExecutionId(), req)
}

func (s *fakeExecutions) Replay(_ context.Context, req *kitev1.ExecutionServiceReplayRequest) (*kitev1.ExecutionServiceReplayResponse, error) {
	return &kitev1.ExecutionServiceReplayResponse{ExecutionId: "ex-replayed"}, s.command(req.GetExecutionId(), req)
}

type fakeLogs struct {
	kitev1.UnimplementedLogServiceServer
	api *fakeAPI
}

func (s *fakeLogs) Tail(req *kitev1.LogServiceTailRequest, stream kitev1.LogService_TailServer) error {
	s.api.mu.Lock()
	s.api.tails = append(s.api.tails, req)
	r, ok := s.api.runs[req.GetExecutionId()]
	s.api.mu.Unlock()
	if !ok {
		return status.Errorf(codes.NotFound, "execution %s not found", req.GetExecutionId())
	}
	for _, e := range r.logs {
		if (req.GetTaskId() != "" && e.GetTaskId() != req.GetTaskId()) || e.GetLevel() < req.GetMinLevel() {
			continue
		}
		if err := stream.Send(&kitev1.LogServiceTailResponse{Entry: e}); err != nil {
			return err
		}
	}
	return nil
}
