package flows

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kiteflow/kite/services/rpcstatus"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kiteflow/kite/core/flow"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// Page sizes of List and ListRevisions.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// Server is the FlowService of the public API, backed by a Store. Register it
// with kitev1.RegisterFlowServiceServer; the Store must be running.
type Server struct {
	kitev1.UnimplementedFlowServiceServer
	store *Store
	log   *zap.Logger
}

var _ kitev1.FlowServiceServer = (*Server)(nil)

// NewServer returns the FlowService on store.
func NewServer(store *Store, logger *zap.Logger) *Server {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Server{store: store, log: logger.Named("flow_service")}
}

// Apply stores a flow's source as a new revision. A source that does not
// validate gets INVALID_ARGUMENT with a google.rpc.BadRequest holding one
// field violation per error.
func (s *Server) Apply(ctx context.Context, req *kitev1.FlowServiceApplyRequest) (*kitev1.FlowServiceApplyResponse, error) {
	pb, _, warnings, err := s.store.Apply(ctx, req.GetSource())
	if err != nil {
		return nil, s.status(err)
	}
	return &kitev1.FlowServiceApplyResponse{Flow: pb, Warnings: problems(warnings)}, nil
}

// Validate returns every problem of a source, storing nothing.
func (s *Server) Validate(_ context.Context, req *kitev1.FlowServiceValidateRequest) (*kitev1.FlowServiceValidateResponse, error) {
	return &kitev1.FlowServiceValidateResponse{Problems: problems(s.store.Validate(req.GetSource()))}, nil
}

// Get returns the latest revision of a flow, or the one asked for.
func (s *Server) Get(_ context.Context, req *kitev1.FlowServiceGetRequest) (*kitev1.FlowServiceGetResponse, error) {
	var vs []*errdetails.BadRequest_FieldViolation
	vs = append(vs, rpcstatus.Required("namespace", req.GetNamespace())...)
	vs = append(vs, rpcstatus.Required("id", req.GetId())...)
	if req.Revision != nil && req.GetRevision() < 1 {
		vs = append(vs, rpcstatus.Violation("revision", fmt.Sprintf("revisions count from 1, got %d; leave it unset for the latest", req.GetRevision())))
	}
	if len(vs) > 0 {
		return nil, rpcstatus.BadRequest("invalid request", vs...)
	}
	pb, err := s.store.Get(req.GetNamespace(), req.GetId(), int(req.GetRevision()))
	if err != nil {
		return nil, s.status(err)
	}
	return &kitev1.FlowServiceGetResponse{Flow: pb}, nil
}

// List returns a page of the latest revisions of the flows under a namespace
// prefix. The page token is the key of the last flow of the previous page,
// so that a flow applied or deleted between pages neither repeats nor hides
// another one.
func (s *Server) List(_ context.Context, req *kitev1.FlowServiceListRequest) (*kitev1.FlowServiceListResponse, error) {
	size, vs := pageSize(req.GetPageSize())
	after, err := decodeToken(req.GetPageToken())
	if err != nil {
		vs = append(vs, rpcstatus.Violation("page_token", err.Error()))
	}
	if len(vs) > 0 {
		return nil, rpcstatus.BadRequest("invalid request", vs...)
	}
	all := s.store.List(req.GetNamespacePrefix())
	start := 0
	if after != "" {
		ns, id, _ := strings.Cut(after, "/")
		for start < len(all) && compareFlow(all[start], ns, id) <= 0 {
			start++
		}
	}
	end := min(start+size, len(all))
	resp := &kitev1.FlowServiceListResponse{Flows: all[start:end]}
	if end < len(all) {
		last := all[end-1]
		resp.NextPageToken = encodeToken(key(last.GetNamespace(), last.GetId()))
	}
	return resp, nil
}

// compareFlow orders a flow against a namespace and id.
func compareFlow(f *kitev1.Flow, namespace, id string) int {
	if c := strings.Compare(f.GetNamespace(), namespace); c != 0 {
		return c
	}
	return strings.Compare(f.GetId(), id)
}

// Delete deletes a flow.
func (s *Server) Delete(ctx context.Context, req *kitev1.FlowServiceDeleteRequest) (*kitev1.FlowServiceDeleteResponse, error) {
	vs := append(rpcstatus.Required("namespace", req.GetNamespace()), rpcstatus.Required("id", req.GetId())...)
	if len(vs) > 0 {
		return nil, rpcstatus.BadRequest("invalid request", vs...)
	}
	if err := s.store.Delete(ctx, req.GetNamespace(), req.GetId()); err != nil {
		return nil, s.status(err)
	}
	return &kitev1.FlowServiceDeleteResponse{}, nil
}

// ListRevisions returns a page of the revisions of a flow still held by the
// flows topic, oldest first: the topic is compacted, so older revisions go
// away in time. The page token is the last revision of the previous page.
func (s *Server) ListRevisions(_ context.Context, req *kitev1.FlowServiceListRevisionsRequest) (*kitev1.FlowServiceListRevisionsResponse, error) {
	vs := append(rpcstatus.Required("namespace", req.GetNamespace()), rpcstatus.Required("id", req.GetId())...)
	size, sizeVs := pageSize(req.GetPageSize())
	vs = append(vs, sizeVs...)
	after := 0
	if tok, err := decodeToken(req.GetPageToken()); err != nil {
		vs = append(vs, rpcstatus.Violation("page_token", err.Error()))
	} else if tok != "" {
		if after, err = strconv.Atoi(tok); err != nil {
			vs = append(vs, rpcstatus.Violation("page_token", "not a page token of ListRevisions"))
		}
	}
	if len(vs) > 0 {
		return nil, rpcstatus.BadRequest("invalid request", vs...)
	}
	all, err := s.store.Revisions(req.GetNamespace(), req.GetId())
	if err != nil {
		return nil, s.status(err)
	}
	start := 0
	for start < len(all) && int(all[start].GetRevision()) <= after {
		start++
	}
	end := min(start+size, len(all))
	resp := &kitev1.FlowServiceListRevisionsResponse{Revisions: all[start:end]}
	if end < len(all) {
		resp.NextPageToken = encodeToken(strconv.Itoa(int(all[end-1].GetRevision())))
	}
	return resp, nil
}

// status turns a Store error into a gRPC status.
func (s *Server) status(err error) error {
	var diags flow.Diagnostics
	var unavailable *unavailableError
	switch {
	case errors.As(err, &diags):
		return invalidFlow(diags)
	case errors.Is(err, flow.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, flow.ErrInvalidFlow):
		// A stored revision that no longer parses.
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.As(err, &unavailable):
		s.log.Warn("flows store unavailable", zap.Error(err))
		return status.Error(codes.Unavailable, err.Error())
	}
	s.log.Error("flow service", zap.Error(err))
	return status.Error(codes.Internal, err.Error())
}

// invalidFlow is the INVALID_ARGUMENT of a flow that does not validate: one
// field violation per error (field: the path in the flow, empty for the flow
// itself; description: "line:column: message"). Warnings are left out: they
// do not prevent applying.
func invalidFlow(diags flow.Diagnostics) error {
	errs := diags.Errors()
	vs := make([]*errdetails.BadRequest_FieldViolation, len(errs))
	for i, d := range errs {
		desc := d.Message
		if d.Line > 0 {
			desc = fmt.Sprintf("%d:%d: %s", d.Line, d.Column, d.Message)
		}
		vs[i] = rpcstatus.Violation(d.Path, desc)
	}
	what := "errors"
	if len(errs) == 1 {
		what = "error"
	}
	return rpcstatus.BadRequest(fmt.Sprintf("invalid flow, nothing stored: %d %s", len(errs), what), vs...)
}

// pageSize applies the default and the cap to a requested page size.
func pageSize(n int32) (int, []*errdetails.BadRequest_FieldViolation) {
	switch {
	case n < 0:
		return 0, []*errdetails.BadRequest_FieldViolation{rpcstatus.Violation("page_size", fmt.Sprintf("must not be negative, got %d", n))}
	case n == 0:
		return defaultPageSize, nil
	}
	return min(int(n), maxPageSize), nil
}

// Page tokens are opaque to clients: the position, base64url-encoded.
func encodeToken(pos string) string { return base64.RawURLEncoding.EncodeToString([]byte(pos)) }

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", errors.New("not a page token this server gave; pass next_page_token as it was returned")
	}
	return string(b), nil
}

// problems converts diagnostics to the API's problems, in order.
func problems(diags flow.Diagnostics) []*kitev1.Problem {
	if len(diags) == 0 {
		return nil
	}
	out := make([]*kitev1.Problem, len(diags))
	for i, d := range diags {
		sev := kitev1.Severity_SEVERITY_ERROR
		if d.Warning {
			sev = kitev1.Severity_SEVERITY_WARNING
		}
		out[i] = &kitev1.Problem{
			Line:        int32(d.Line),
			Column:      int32(d.Column),
			Path:        d.Path,
			Message:     d.Message,
			Severity:    sev,
			Unsupported: d.Unsupported,
		}
	}
	return out
}
