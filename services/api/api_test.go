package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kiteflow/kite/core/execution"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// testCtx returns a context for one step of a test.
func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	c, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	tb.Cleanup(cancel)
	return c
}

func inputs(tb testing.TB, m map[string]any) *structpb.Struct {
	tb.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func wantCode(tb testing.TB, what string, err error, want codes.Code) *status.Status {
	tb.Helper()
	st := status.Convert(err)
	if st.Code() != want {
		tb.Fatalf("%s: code %s (%v), want %s", what, st.Code(), err, want)
	}
	return st
}

// create creates an execution of flow hello; hold keeps it running.
func (h *harness) create(tb testing.TB, hold bool) *kitev1.Execution {
	tb.Helper()
	if hold {
		return h.createLabelled(tb, holdLabel)
	}
	return h.createLabelled(tb)
}

// createLabelled creates an execution of flow hello with the given labels
// (holdLabel, pauseLabel) set to "true".
func (h *harness) createLabelled(tb testing.TB, labels ...string) *kitev1.Execution {
	tb.Helper()
	req := &kitev1.ExecutionServiceCreateRequest{Namespace: testNamespace, FlowId: "hello", Inputs: inputs(tb, map[string]any{"name": "kite"})}
	for _, l := range labels {
		req.Labels = append(req.Labels, &kitev1.Label{Key: l, Value: "true"})
	}
	resp, err := h.executions.Create(testCtx(tb), req)
	if err != nil {
		tb.Fatalf("Create() = %v", err)
	}
	return resp.GetExecution()
}

// watch returns every event Watch sends until the stream ends.
func (h *harness) watch(tb testing.TB, stream grpc.ServerStreamingClient[kitev1.ExecutionServiceWatchResponse]) []*kitev1.ExecutionEvent {
	tb.Helper()
	var out []*kitev1.ExecutionEvent
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("Watch: Recv() = %v after %d events", err, len(out))
		}
		out = append(out, resp.GetEvent())
	}
}

// describe lists events as "seq:TYPE:STATE" for comparisons.
func describe(evs []*kitev1.ExecutionEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%d:%s:%s", ev.GetSeq(),
			strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"), strings.TrimPrefix(ev.GetState().String(), "STATE_")))
	}
	return out
}

var allEvents = []string{"1:CREATED:UNSPECIFIED", "2:STATE:RUNNING", "3:STATE:SUCCESS"}

func TestCreateGetWatch(t *testing.T) { eachBroker(t, testCreateGetWatch) }

func testCreateGetWatch(t *testing.T, e *env) {
	ex := startStandIn(t, e)
	h := startServer(t, e, testConfig(), Deps{})

	created := h.create(t, true)
	if _, ok := execution.ExecutionIDTime(created.GetId()); !ok {
		t.Errorf("Create(): id %q carries no creation time", created.GetId())
	}
	if st := created.GetState(); st != kitev1.State_STATE_CREATED && st != kitev1.State_STATE_RUNNING {
		t.Errorf("Create(): state %s, want CREATED or RUNNING", st)
	}
	if created.GetNamespace() != testNamespace || created.GetFlowId() != "hello" || created.GetFlowRevision() != 1 {
		t.Errorf("Create(): %s.%s revision %d, want %s.hello revision 1", created.GetNamespace(), created.GetFlowId(), created.GetFlowRevision(), testNamespace)
	}
	cmd := ex.waitCommand(t, func(c *eventv1.Command) bool { return c.GetExecutionId() == created.GetId() })
	if c := cmd.GetCreate(); c.GetFlowSource() != flowHello || c.GetInputs().GetFields()["name"].GetStringValue() != "kite" || c.GetRevision() != 1 {
		t.Errorf("create command = %v, want flow hello revision 1 with its source and input name=kite", c)
	}

	// Read your writes: Get right after Create finds it.
	got, err := h.executions.Get(testCtx(t), &kitev1.ExecutionServiceGetRequest{ExecutionId: created.GetId()})
	if err != nil {
		t.Fatalf("Get() right after Create() = %v", err)
	}
	if got.GetExecution().GetId() != created.GetId() || got.GetExecution().GetState() != kitev1.State_STATE_RUNNING {
		t.Errorf("Get() = %s in %s, want %s RUNNING", got.GetExecution().GetId(), got.GetExecution().GetState(), created.GetId())
	}

	// Watch from the start while it runs: every event, in order, ending at
	// the terminal one.
	stream, err := h.executions.Watch(testCtx(t), &kitev1.ExecutionServiceWatchRequest{ExecutionId: created.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetEvent().GetSeq() != 1 {
		t.Fatalf("Watch: first Recv() = %v, %v; want event 1", first, err)
	}
	ex.finish(created.GetId())
	evs := append([]*kitev1.ExecutionEvent{first.GetEvent()}, h.watch(t, stream)...)
	if d := describe(evs); !slices.Equal(d, allEvents) {
		t.Errorf("Watch() from 0 = %v, want %v", d, allEvents)
	}

	// Watch after the end: the recorded events, then the stream ends.
	stream, err = h.executions.Watch(testCtx(t), &kitev1.ExecutionServiceWatchRequest{ExecutionId: created.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if d := describe(h.watch(t, stream)); !slices.Equal(d, allEvents) {
		t.Errorf("Watch() after the end = %v, want %v", d, allEvents)
	}
	stream, err = h.executions.Watch(testCtx(t), &kitev1.ExecutionServiceWatchRequest{ExecutionId: created.GetId(), FromSequence: 3})
	if err != nil {
		t.Fatal(err)
	}
	if d := describe(h.watch(t, stream)); !slices.Equal(d, allEvents[2:]) {
		t.Errorf("Watch(from_sequence 3) = %v, want %v", d, allEvents[2:])
	}

	got, err = h.executions.Get(testCtx(t), &kitev1.ExecutionServiceGetRequest{ExecutionId: created.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if g := got.GetExecution(); g.GetState() != kitev1.State_STATE_SUCCESS || g.GetSeq() != 3 || len(g.GetHistory()) != 3 {
		t.Errorf("Get() after the end = %s seq %d with %d states, want SUCCESS seq 3 with 3", g.GetState(), g.GetSeq(), len(g.GetHistory()))
	}
}

func TestNotFound(t *testing.T) {
	e := fakeEnv(t)
	h := startServer(t, e, testConfig(), Deps{})
	for _, id := range []string{execution.RandomExecutionID(time.Now()), execution.RandomExecutionID(time.Now().Add(-time.Hour)), "not-an-id"} {
		_, err := h.executions.Get(testCtx(t), &kitev1.ExecutionServiceGetRequest{ExecutionId: id})
		wantCode(t, "Get("+id+")", err, codes.NotFound)
		_, err = h.executions.Kill(testCtx(t), &kitev1.ExecutionServiceKillRequest{ExecutionId: id})
		wantCode(t, "Kill("+id+")", err, codes.NotFound)
		tail, err := h.logs.Tail(testCtx(t), &kitev1.LogServiceTailRequest{ExecutionId: id})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tail.Recv()
		wantCode(t, "Tail("+id+")", err, codes.NotFound)
		stream, err := h.executions.Watch(testCtx(t), &kitev1.ExecutionServiceWatchRequest{ExecutionId: id})
		if err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		wantCode(t, "Watch("+id+")", err, codes.NotFound)
	}
	_, err := h.executions.Get(testCtx(t), &kitev1.ExecutionServiceGetRequest{})
	wantCode(t, "Get() without id", err, codes.InvalidArgument)
}

func TestCreateRefusals(t *testing.T) {
	e := fakeEnv(t)
	h := startServer(t, e, testConfig(), Deps{})
	tests := []struct {
		name   string
		req    *kitev1.ExecutionServiceCreateRequest
		code   codes.Code
		fields []string // the field violations, for INVALID_ARGUMENT
	}{
		{"bad inputs", &kitev1.ExecutionServiceCreateRequest{Namespace: testNamespace, FlowId: "hello",
			Inputs: inputs(t, map[string]any{"count": "many", "extra": 1, "more": true})},
			codes.InvalidArgument, []string{"count", "extra", "more", "name"}},
		{"unknown flow", &kitev1.ExecutionServiceCreateRequest{Namespace: testNamespace, FlowId: "nope"}, codes.NotFound, nil},
		{"unknown revision", &kitev1.ExecutionServiceCreateRequest{Namespace: testNamespace, FlowId: "hello", Revision: new(int32(7))}, codes.NotFound, nil},
		{"disabled flow", &kitev1.ExecutionServiceCreateRequest{Namespace: testNamespace, FlowId: "off"}, codes.FailedPrecondition, nil},
		{"no namespace", &kitev1.ExecutionServiceCreateRequest{FlowId: "hello"}, codes.InvalidArgument, []string{"namespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.executions.Create(testCtx(t), tt.req)
			st := wantCode(t, "Create()", err, tt.code)
			if tt.fields == nil {
				return
			}
			var fields []string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						fields = append(fields, v.GetField())
						if v.GetDescription() == "" {
							t.Errorf("violation of %s has no description", v.GetField())
						}
					}
				}
			}
			slices.Sort(fields)
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("field violations = %v, want %v (%v)", fields, tt.fields, err)
			}
		})
	}
}

func TestCreateWithFiles(t *testing.T) {
	e := fakeEnv(t)
	startStandIn(t, e)
	h := startServer(t, e, testConfig(), Deps{})
	req := &kitev1.ExecutionServiceCreateRequest{Namespace: testNamespace, FlowId: "hello", Inputs: inputs(t, map[string]any{"name": "files"})}

	stream, err := h.executions.CreateWithFiles(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*kitev1.ExecutionServiceCreateWithFilesRequest{
		{Part: &kitev1.ExecutionServiceCreateWithFilesRequest_Request{Request: req}},
		{Part: &kitev1.ExecutionServiceCreateWithFilesRequest_Chunk{Chunk: &kitev1.FileChunk{Input: "data", FileName: "a.csv", Data: []byte("a,b\n")}}},
	} {
		if err := stream.Send(m); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}
	_, err = stream.CloseAndRecv()
	if st := wantCode(t, "CreateWithFiles() with a chunk, without storage", err, codes.FailedPrecondition); !strings.Contains(st.Message(), "no internal storage") {
		t.Errorf("message %q does not say the server has no internal storage", st.Message())
	}

	stream, err = h.executions.CreateWithFiles(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&kitev1.ExecutionServiceCreateWithFilesRequest{Part: &kitev1.ExecutionServiceCreateWithFilesRequest_Request{Request: req}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("CreateWithFiles() without chunks = %v", err)
	}
	if resp.GetExecution().GetId() == "" || resp.GetExecution().GetInputs().GetFields()["name"].GetStringValue() != "files" {
		t.Errorf("CreateWithFiles() = %v, want an execution with input name=files", resp.GetExecution())
	}
}

func TestCommands(t *testing.T) { eachBroker(t, testCommands) }

func testCommands(t *testing.T, e *env) {
	ex := startStandIn(t, e)
	h := startServer(t, e, testConfig(), Deps{})
	running := h.create(t, true)
	id := running.GetId()
	isFor := func(kind string) func(*eventv1.Command) bool {
		return func(c *eventv1.Command) bool {
			return c.GetExecutionId() == id && strings.Contains(c.String(), kind)
		}
	}

	_, err := h.executions.Resume(testCtx(t), &kitev1.ExecutionServiceResumeRequest{ExecutionId: id})
	wantCode(t, "Resume() of a running execution", err, codes.FailedPrecondition)
	_, err = h.executions.Restart(testCtx(t), &kitev1.ExecutionServiceRestartRequest{ExecutionId: id})
	wantCode(t, "Restart() of a running execution", err, codes.FailedPrecondition)
	_, err = h.executions.Replay(testCtx(t), &kitev1.ExecutionServiceReplayRequest{ExecutionId: id})
	wantCode(t, "Replay() of a running execution", err, codes.FailedPrecondition)

	if _, err := h.executions.Kill(testCtx(t), &kitev1.ExecutionServiceKillRequest{ExecutionId: id}); err != nil {
		t.Fatalf("Kill() = %v", err)
	}
	ex.waitCommand(t, func(c *eventv1.Command) bool { return c.GetExecutionId() == id && c.GetKill() != nil })
	stream, err := h.executions.Watch(testCtx(t), &kitev1.ExecutionServiceWatchRequest{ExecutionId: id})
	if err != nil {
		t.Fatal(err)
	}
	evs := h.watch(t, stream)
	if last := evs[len(evs)-1]; last.GetState() != kitev1.State_STATE_KILLED {
		t.Fatalf("Watch() after Kill() ends with %v, want KILLED", last)
	}
	_, err = h.executions.Kill(testCtx(t), &kitev1.ExecutionServiceKillRequest{ExecutionId: id})
	wantCode(t, "Kill() of a killed execution", err, codes.FailedPrecondition)

	// A KILLED execution restarts and replays.
	if _, err := h.executions.Restart(testCtx(t), &kitev1.ExecutionServiceRestartRequest{ExecutionId: id}); err != nil {
		t.Fatalf("Restart() of a killed execution = %v", err)
	}
	ex.waitCommand(t, isFor("restart"))
	_, err = h.executions.Restart(testCtx(t), &kitev1.ExecutionServiceRestartRequest{ExecutionId: id, Revision: new(int32(9))})
	wantCode(t, "Restart() with an unknown revision", err, codes.NotFound)
	_, err = h.executions.Replay(testCtx(t), &kitev1.ExecutionServiceReplayRequest{ExecutionId: id, TaskRunId: "no-such-task-run"})
	wantCode(t, "Replay() from an unknown task run", err, codes.NotFound)
	replay, err := h.executions.Replay(testCtx(t), &kitev1.ExecutionServiceReplayRequest{ExecutionId: id})
	if err != nil {
		t.Fatalf("Replay() of a killed execution = %v", err)
	}
	cmd := ex.waitCommand(t, isFor("replay"))
	if newID := replay.GetExecutionId(); newID == "" || newID == id || cmd.GetReplay().GetNewExecutionId() != newID {
		t.Errorf("Replay() = %q, command %v: want a new id, the one of the command", newID, cmd)
	}

	// A paused execution resumes, with the inputs its Pause task asks for.
	paused := h.createLabelled(t, pauseLabel)
	if paused.GetState() != kitev1.State_STATE_PAUSED {
		t.Fatalf("Create() of an execution the stand-in pauses = %s, want PAUSED", paused.GetState())
	}
	_, err = h.executions.Resume(testCtx(t), &kitev1.ExecutionServiceResumeRequest{ExecutionId: paused.GetId(), Inputs: inputs(t, map[string]any{"approved": "maybe"})})
	if st := wantCode(t, "Resume() with a bad input", err, codes.InvalidArgument); !strings.Contains(st.String(), "approved") {
		t.Errorf("Resume() with a bad input = %v, want a violation of input approved", st)
	}
	if _, err := h.executions.Resume(testCtx(t), &kitev1.ExecutionServiceResumeRequest{ExecutionId: paused.GetId(), Inputs: inputs(t, map[string]any{"approved": true})}); err != nil {
		t.Fatalf("Resume() = %v", err)
	}
	cmd = ex.waitCommand(t, func(c *eventv1.Command) bool { return c.GetExecutionId() == paused.GetId() && c.GetResume() != nil })
	if !cmd.GetResume().GetInputs().GetFields()["approved"].GetBoolValue() {
		t.Errorf("resume command = %v, want input approved=true", cmd)
	}
	// Get folds the events that came after those it has in its cache.
	stream, err = h.executions.Watch(testCtx(t), &kitev1.ExecutionServiceWatchRequest{ExecutionId: paused.GetId(), FromSequence: 6})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("Watch(from_sequence 6) of the resumed execution: %v", err)
		}
	}
	resumed, err := h.executions.Get(testCtx(t), &kitev1.ExecutionServiceGetRequest{ExecutionId: paused.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if e := resumed.GetExecution(); e.GetState() != kitev1.State_STATE_RUNNING || len(e.GetTaskRuns()) != 1 || e.GetTaskRuns()[0].GetState() != kitev1.State_STATE_SUCCESS {
		t.Errorf("Get() of the resumed execution = %v, want RUNNING with task run tr-wait SUCCESS", e)
	}

	// An execution that ended SUCCESS does not restart.
	done := h.create(t, false)
	stream, err = h.executions.Watch(testCtx(t), &kitev1.ExecutionServiceWatchRequest{ExecutionId: done.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	h.watch(t, stream)
	_, err = h.executions.Restart(testCtx(t), &kitev1.ExecutionServiceRestartRequest{ExecutionId: done.GetId()})
	wantCode(t, "Restart() of a successful execution", err, codes.FailedPrecondition)
}

func TestTail(t *testing.T) { eachBroker(t, testTail) }

func testTail(t *testing.T, e *env) {
	ex := startStandIn(t, e)
	h := startServer(t, e, testConfig(), Deps{})
	running := h.create(t, true)

	tail := func(req *kitev1.LogServiceTailRequest) grpc.ServerStreamingClient[kitev1.LogServiceTailResponse] {
		t.Helper()
		req.ExecutionId = running.GetId()
		stream, err := h.logs.Tail(testCtx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		return stream
	}
	lines := func(stream grpc.ServerStreamingClient[kitev1.LogServiceTailResponse]) []string {
		t.Helper()
		var out []string
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatalf("Tail: Recv() = %v after %v", err, out)
			}
			out = append(out, resp.GetEntry().GetMessage())
		}
	}

	// Started while the execution runs: the lines come as they are logged,
	// and the stream ends once the execution ended.
	live := tail(&kitev1.LogServiceTailRequest{MinLevel: kitev1.LogLevel_LOG_LEVEL_INFO})
	ex.finish(running.GetId())
	if got, want := lines(live), []string{"info line", "error line"}; !slices.Equal(got, want) {
		t.Errorf("Tail(min_level INFO) = %v, want %v", got, want)
	}
	// Started after the end: the recorded lines.
	if got, want := lines(tail(&kitev1.LogServiceTailRequest{})), []string{"debug line", "info line", "error line"}; !slices.Equal(got, want) {
		t.Errorf("Tail() after the end = %v, want %v", got, want)
	}
	if got := lines(tail(&kitev1.LogServiceTailRequest{TaskId: "other"})); len(got) != 0 {
		t.Errorf("Tail(task_id other) = %v, want nothing", got)
	}
}

func TestWebhook(t *testing.T) { eachBroker(t, testWebhook) }

func testWebhook(t *testing.T, e *env) {
	startStandIn(t, e)
	cfg := testConfig()
	cfg.WebhookMaxBodyBytes = 1024
	h := startServer(t, e, cfg, Deps{})

	post := func(path, contentType, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, h.httpURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("X-Trace", "abc")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("POST %s: %d, body not JSON: %v", path, resp.StatusCode, err)
		}
		return resp.StatusCode, out
	}

	code, out := post("/webhooks/test.api/hello/s3cret?x=1", "application/json", `{"who": "hook", "n": 2}`)
	if code != http.StatusOK || out["id"] == "" || out["namespace"] != testNamespace || out["flowId"] != "hello" || out["state"] == "" {
		t.Fatalf("webhook = %d %v, want 200 with the execution's id, namespace, flowId and state", code, out)
	}
	got, err := h.executions.Get(testCtx(t), &kitev1.ExecutionServiceGetRequest{ExecutionId: out["id"].(string)})
	if err != nil {
		t.Fatal(err)
	}
	trigger := got.GetExecution().GetTrigger().AsMap()
	body, _ := trigger["body"].(map[string]any)
	headers, _ := trigger["headers"].(map[string]any)
	params, _ := trigger["parameters"].(map[string]any)
	if body["who"] != "hook" || body["n"] != float64(2) {
		t.Errorf("trigger.body = %v, want the JSON body", trigger["body"])
	}
	if v, _ := headers["x-trace"].([]any); len(v) != 1 || v[0] != "abc" {
		t.Errorf("trigger.headers = %v, want x-trace [abc]", trigger["headers"])
	}
	if v, _ := params["x"].([]any); len(v) != 1 || v[0] != "1" {
		t.Errorf("trigger.parameters = %v, want x [1]", trigger["parameters"])
	}
	if name := got.GetExecution().GetInputs().GetFields()["name"].GetStringValue(); name != "hook" {
		t.Errorf("input name = %q, want %q (the trigger's inputs, rendered with the request)", name, "hook")
	}

	code, out = post("/webhooks/test.api/hello/s3cret", "text/plain", "who=text")
	if code != http.StatusBadRequest {
		t.Errorf("webhook whose body does not give the required input = %d %v, want 400", code, out)
	}
	for _, path := range []string{"/webhooks/test.api/hello/wrong", "/webhooks/test.api/hello/disabled-key", "/webhooks/test.api/off/s3cret", "/webhooks/test.api/nope/s3cret"} {
		if code, out := post(path, "application/json", `{}`); code != http.StatusNotFound || out["error"] == "" {
			t.Errorf("POST %s = %d %v, want 404 with an error", path, code, out)
		}
	}
	if code, out := post("/webhooks/test.api/hello/s3cret", "application/json", `{"who": "`+strings.Repeat("x", 2000)+`"}`); code != http.StatusRequestEntityTooLarge {
		t.Errorf("webhook with a 2 KB body (limit 1 KiB) = %d %v, want 413", code, out)
	}
}

// panicky is a FlowService whose Get panics.
type panicky struct {
	kitev1.UnimplementedFlowServiceServer
}

func (panicky) Get(context.Context, *kitev1.FlowServiceGetRequest) (*kitev1.FlowServiceGetResponse, error) {
	panic("boom")
}

func TestServer(t *testing.T) {
	e := fakeEnv(t)
	h := startServer(t, e, testConfig(), Deps{FlowService: panicky{}})

	hc := healthpb.NewHealthClient(h.conn)
	for _, svc := range []string{"", "kite.v1.ExecutionService", "kite.v1.LogService", "kite.v1.FlowService"} {
		resp, err := hc.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health Check(%q) = %v, %v; want SERVING", svc, resp, err)
		}
	}
	_, err := hc.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: "kite.v1.TriggerService"})
	wantCode(t, "health of a service not registered", err, codes.NotFound)
	h.srv.SetServingStatus("kite.v1.FlowService", false)
	if resp, err := hc.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: "kite.v1.FlowService"}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health after SetServingStatus(false) = %v, %v; want NOT_SERVING", resp, err)
	}

	// Reflection, as grpcurl uses it.
	rc, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	for _, want := range []string{"kite.v1.ExecutionService", "kite.v1.LogService", "kite.v1.FlowService", "grpc.health.v1.Health"} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection lists %v, missing %s", services, want)
		}
	}

	// A panic is INTERNAL, and the server goes on.
	_, err = kitev1.NewFlowServiceClient(h.conn).Get(testCtx(t), &kitev1.FlowServiceGetRequest{})
	wantCode(t, "a handler that panics", err, codes.Internal)
	_, err = h.executions.Get(testCtx(t), &kitev1.ExecutionServiceGetRequest{ExecutionId: "after-the-panic"})
	wantCode(t, "Get() after a panic", err, codes.NotFound)

	for path, want := range map[string]string{"/healthz": "ok", "/metrics": `grpc_server_handled_total{grpc_code="Internal",grpc_method="Get",grpc_service="kite.v1.FlowService",grpc_type="unary"} 1`} {
		req, _ := http.NewRequestWithContext(testCtx(t), http.MethodGet, h.httpURL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s = %d, want 200 with %q in:\n%s", path, resp.StatusCode, want, b)
		}
	}
}

func TestBrokerDown(t *testing.T) {
	e := fakeEnv(t)
	cfg := testConfig()
	cfg.KafkaTimeout = time.Second
	h := startServer(t, e, cfg, Deps{})
	e.cluster.Close()

	_, err := h.executions.Get(testCtx(t), &kitev1.ExecutionServiceGetRequest{ExecutionId: execution.RandomExecutionID(time.Now())})
	if st := wantCode(t, "Get() with the broker down", err, codes.Unavailable); !strings.Contains(st.Message(), "Kafka") {
		t.Errorf("message %q does not say Kafka is unreachable", st.Message())
	}
	_, err = h.executions.Create(testCtx(t), &kitev1.ExecutionServiceCreateRequest{Namespace: testNamespace, FlowId: "hello", Inputs: inputs(t, map[string]any{"name": "x"})})
	wantCode(t, "Create() with the broker down", err, codes.Unavailable)
}

func TestCreateWithoutExecutor(t *testing.T) {
	e := fakeEnv(t)
	cfg := testConfig()
	cfg.CreateWait = 300 * time.Millisecond
	h := startServer(t, e, cfg, Deps{})
	req := &kitev1.ExecutionServiceCreateRequest{Namespace: testNamespace, FlowId: "hello", Inputs: inputs(t, map[string]any{"name": "x"})}
	withDeadline, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	for name, ctx := range map[string]context.Context{"no deadline (create_wait)": t.Context(), "a deadline": withDeadline} {
		_, err := h.executions.Create(ctx, req)
		if st := wantCode(t, "Create() with "+name+" and no executor", err, codes.DeadlineExceeded); !strings.Contains(st.Message(), "executor") {
			t.Errorf("Create() with %s: message %q does not say no executor recorded the execution", name, st.Message())
		}
	}
}

// TestShutdownEndsStreams: Run returns when its context ends, ending the
// streams that are open with UNAVAILABLE.
func TestShutdownEndsStreams(t *testing.T) {
	e := fakeEnv(t)
	startStandIn(t, e)
	cfg := testConfig()
	deps := Deps{Flows: testFlows(t), Kafka: e.kafka}
	srv, err := New(cfg, deps, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// A service set not serving before Run stays so.
	srv.SetServingStatus("kite.v1.LogService", false)
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(runCtx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	h := &harness{srv: srv, conn: conn, executions: kitev1.NewExecutionServiceClient(conn)}

	for svc, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
		"kite.v1.LogService": healthpb.HealthCheckResponse_NOT_SERVING, "kite.v1.ExecutionService": healthpb.HealthCheckResponse_SERVING,
	} {
		resp, err := healthpb.NewHealthClient(conn).Check(testCtx(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != want {
			t.Errorf("health Check(%q) = %v, %v; want %s", svc, resp, err, want)
		}
	}

	running := h.create(t, true)
	stream, err := h.executions.Watch(testCtx(t), &kitev1.ExecutionServiceWatchRequest{ExecutionId: running.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	stop()
	for err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, "Watch() when the server stops", err, codes.Unavailable)
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run() = %v", err)
		}
	case <-time.After(cfg.ShutdownTimeout):
		t.Fatalf("Run() did not return within the shutdown timeout (%s)", cfg.ShutdownTimeout)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
	bad := Defaults()
	bad.GRPCAddr, bad.KafkaTimeout, bad.ExecutionCacheSize, bad.MaxRecvBytes = "7777", 0, -1, 10
	err := bad.Validate()
	for _, field := range []string{"grpc_addr", "kafka_timeout", "execution_cache_size", "max_recv_bytes"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want a problem with %s", err, field)
		}
	}
}

// TestReadersAreBounded: with one Kafka reader allowed, a Get waits while a
// Watch holds it, answers RESOURCE_EXHAUSTED at its deadline, and works
// once the Watch ended.
func TestReadersAreBounded(t *testing.T) {
	e := fakeEnv(t)
	ex := startStandIn(t, e)
	cfg := testConfig()
	cfg.MaxKafkaReaders, cfg.ExecutionCacheSize = 1, 0
	h := startServer(t, e, cfg, Deps{})
	running := h.create(t, true)

	watch, err := h.executions.Watch(testCtx(t), &kitev1.ExecutionServiceWatchRequest{ExecutionId: running.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil { // the Watch's reader is open
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = h.executions.Get(short, &kitev1.ExecutionServiceGetRequest{ExecutionId: running.GetId()})
	wantCode(t, "Get while the only reader is taken", err, codes.ResourceExhausted)

	ex.finish(running.GetId())
	for {
		if _, err := watch.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("Watch: %v", err)
		}
	}
	got, err := h.executions.Get(testCtx(t), &kitev1.ExecutionServiceGetRequest{ExecutionId: running.GetId()})
	if err != nil {
		t.Fatalf("Get once the Watch ended: %v", err)
	}
	if got.GetExecution().GetState() != kitev1.State_STATE_SUCCESS {
		t.Errorf("state %s, want SUCCESS", got.GetExecution().GetState())
	}
}
