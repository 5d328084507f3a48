package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// session is phase 3's connection to the server, with the flows applied.
type session struct {
	dir     string        // the corpus
	timeout time.Duration // for one run, from Create until it settles
	flows   kitev1.FlowServiceClient
	execs   kitev1.ExecutionServiceClient
	applied map[string]appliedFlow // by flow file, "flows/x.yaml"
	refused map[string]string      // why Apply refused a flow file
}

// fileInputsSkip is why a run that needs a FILE input is not run.
const fileInputsSkip = "needs FILE input %s uploaded, which the server refuses until it has internal storage (issue 7)"

// runCase creates the execution of one case through the API, follows it
// until it settles and compares it, with its subflow executions, with the
// case's expect.
func (s *session) runCase(ctx context.Context, c execCase) execResult {
	r := newResult(c)
	if r.Skipped != "" {
		return r
	}
	f, ok := s.applied[c.Flow]
	if !ok {
		r.Reasons = []string{"the flow was not applied: " + s.refused[c.Flow]}
		return r
	}
	req, skip, err := createRequest(s.dir, c, f)
	switch {
	case err != nil:
		r.Reasons = []string{err.Error()}
		return r
	case skip != "":
		r.Skipped = skip
		return r
	}
	// Unlike `kite flow test`, the API can create the execution with the
	// labels the test starts it with: they are checked.
	r.NotChecked = slices.DeleteFunc(r.NotChecked, func(f string) bool { return f == "start_labels" })

	runCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	created, err := s.execs.Create(runCtx, req)
	if err != nil {
		msg := describe(err)
		switch code := status.Code(err); {
		case code == codes.InvalidArgument && c.InputsMode == "none":
			r.Skipped = "the API rejected the inputs, which Kestra's test does not validate (inputs_mode none): " + msg
		case code == codes.InvalidArgument && c.InputsMode == "raw":
			r.Reasons = []string{"the API rejected the inputs, which Kestra's test hands over unvalidated (inputs_mode raw): " + msg}
		default:
			r.Reasons = []string{"Create: " + msg}
		}
		return r
	}
	id := created.GetExecution().GetId()
	root, children, err := s.collect(runCtx, id)
	if err != nil {
		if runCtx.Err() == nil {
			r.Reasons = []string{err.Error()}
			return r
		}
		// As `kite flow test --timeout`: kill it, and compare what it did.
		r.Reasons = []string{fmt.Sprintf("did not settle within %s (killed)", s.timeout)}
		root, children = s.killAndRead(ctx, id)
		if root == nil {
			return r
		}
	}
	x := fromProto(root, children)
	r.State = x.State
	opts := c.Options
	opts.now = time.Now()
	opts.labelsNotPassed = ""
	v := check(c.Expect, scope{x: &x, top: &x}, opts, "")
	r.Reasons = append(r.Reasons, v.Reasons...)
	r.NotChecked = append(r.NotChecked, v.NotChecked...)
	slices.Sort(r.NotChecked)
	r.Passed = len(r.Reasons) == 0
	return r
}

// createRequest builds the Create request of a case: inputs as phase 2
// gives them on the command line (strings as they are, anything else as
// JSON), generated inputs written out in full, and the start labels. skip
// says why the case cannot run through the API.
func createRequest(dir string, c execCase, f appliedFlow) (_ *kitev1.ExecutionServiceCreateRequest, skip string, _ error) {
	files, err := fileInputs(filepath.Join(dir, c.Flow))
	if err != nil {
		return nil, "", err
	}
	inputs := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(c.Inputs)) {
		if files[k] {
			return nil, fmt.Sprintf(fileInputsSkip, k), nil
		}
		v, err := inputValue(c.Inputs[k])
		if err != nil {
			return nil, "", fmt.Errorf("input %s: %w", k, err)
		}
		inputs[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(c.Generated)) {
		if files[k] {
			return nil, fmt.Sprintf(fileInputsSkip, k), nil
		}
		// A generated input for a STRING needs no upload: it is the value.
		g := c.Generated[k]
		inputs[k] = strings.Repeat(g.Repeat, g.Times)
	}
	st, err := structpb.NewStruct(inputs)
	if err != nil {
		return nil, "", fmt.Errorf("inputs: %w", err)
	}
	req := &kitev1.ExecutionServiceCreateRequest{Namespace: f.Namespace, FlowId: f.ID, Revision: &f.Revision, Inputs: st}
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		req.Labels = append(req.Labels, &kitev1.Label{Key: k, Value: kestraString(normalise(c.Labels[k]))})
	}
	return req, "", nil
}

// fileInputs returns the ids of a flow's FILE inputs.
func fileInputs(file string) (map[string]bool, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading flow: %w", err)
	}
	var doc struct {
		Inputs []struct {
			ID   string `yaml:"id"`
			Name string `yaml:"name"` // Kestra's older spelling of id
			Type string `yaml:"type"`
		} `yaml:"inputs"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	ids := map[string]bool{}
	for _, in := range doc.Inputs {
		id := in.ID
		if id == "" {
			id = in.Name
		}
		if strings.EqualFold(in.Type, "FILE") {
			ids[id] = true
		}
	}
	return ids, nil
}

// collect waits until execution id settles and then each subflow execution
// it started, directly or not, and returns them, the subflow executions in
// creation order as `kite flow test` lists them.
func (s *session) collect(ctx context.Context, id string) (*kitev1.Execution, []*kitev1.Execution, error) {
	root, err := s.settle(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	children, err := s.descendants(ctx, root, s.settle)
	return root, children, err
}

// descendants reads, with read, the subflow executions started by root's
// task runs and by theirs, sorted by creation time.
func (s *session) descendants(ctx context.Context, root *kitev1.Execution, read func(context.Context, string) (*kitev1.Execution, error)) ([]*kitev1.Execution, error) {
	seen := map[string]bool{root.GetId(): true}
	queue := childIDs(root)
	var children []*kitev1.Execution
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		c, err := read(ctx, id)
		if status.Code(err) == codes.NotFound {
			// A Subflow task names its execution before the flow is looked
			// up: a flow that does not exist leaves an id no execution has.
			// `kite flow test` lists no execution for it either.
			continue
		}
		if err != nil {
			return children, fmt.Errorf("subflow execution %s: %w", id, err)
		}
		children = append(children, c)
		queue = append(queue, childIDs(c)...)
	}
	slices.SortStableFunc(children, func(a, b *kitev1.Execution) int {
		return created(a).Compare(created(b))
	})
	return children, nil
}

func childIDs(e *kitev1.Execution) []string {
	var ids []string
	for _, tr := range e.GetTaskRuns() {
		if id := tr.GetChildExecutionId(); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// created is when an execution was created: the time of its first state.
func created(e *kitev1.Execution) time.Time {
	if h := e.GetHistory(); len(h) > 0 {
		return h[0].GetTime().AsTime()
	}
	return time.Time{}
}

// settle follows execution id with Watch until it settles as `kite flow
// test` waits for it: it ends, or it is PAUSED with no timer left to resume
// it (a Pause with a delay resumes on its own; phase 2 then checks the
// expectation after the wait, see waitThen). It returns the execution as Get
// reads it then. A Watch cut by the server is resumed where it stopped.
func (s *session) settle(ctx context.Context, id string) (*kitev1.Execution, error) {
	next := int64(1)
	for cuts := 0; ; cuts++ {
		e, err := s.watch(ctx, id, &next)
		if err == nil {
			return e, nil
		}
		if status.Code(err) != codes.Unavailable || ctx.Err() != nil || cuts == 3 {
			return nil, fmt.Errorf("watching execution %s: %w", id, err)
		}
	}
}

// watch is one Watch of settle, from *next on; it advances *next past every
// event received.
func (s *session) watch(ctx context.Context, id string, next *int64) (*kitev1.Execution, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.execs.Watch(ctx, &kitev1.ExecutionServiceWatchRequest{ExecutionId: id, FromSequence: *next})
	if err != nil {
		return nil, err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return s.get(ctx, id) // the stream ends after the terminal state
		}
		if err != nil {
			return nil, err
		}
		ev := resp.GetEvent()
		*next = ev.GetSeq() + 1
		if ev.GetType() != kitev1.EventType_EVENT_TYPE_STATE || ev.GetState() != kitev1.State_STATE_PAUSED {
			continue
		}
		// The events of one step are written together: Get sees them all,
		// the timer a Pause's delay sets included.
		e, err := s.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if e.GetState() == kitev1.State_STATE_PAUSED && len(e.GetTimers()) == 0 {
			return e, nil
		}
	}
}

func (s *session) get(ctx context.Context, id string) (*kitev1.Execution, error) {
	callCtx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	resp, err := s.execs.Get(callCtx, &kitev1.ExecutionServiceGetRequest{ExecutionId: id})
	if err != nil {
		return nil, err
	}
	return resp.GetExecution(), nil
}

// killAndRead kills an execution that did not settle in time (its subflow
// executions end with it), waits a little for the kill to land, and reads
// it and its subflow executions as they are then; nil when it cannot be read.
func (s *session) killAndRead(ctx context.Context, id string) (*kitev1.Execution, []*kitev1.Execution) {
	ctx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	if _, err := s.execs.Kill(ctx, &kitev1.ExecutionServiceKillRequest{ExecutionId: id}); err == nil {
		// Best effort: the execution is read whether or not it ended.
		killCtx, killCancel := context.WithTimeout(ctx, 10*time.Second)
		_, _ = s.settle(killCtx, id)
		killCancel()
	}
	root, err := s.get(ctx, id)
	if err != nil {
		return nil, nil
	}
	children, _ := s.descendants(ctx, root, s.get)
	return root, children
}
