package api

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/services/rpcstatus"
)

// status turns an error of a request into the gRPC status the client gets.
// Errors that are statuses already pass through; then, in order: the end of
// the request's own context (or of the server), Kafka failures
// (UNAVAILABLE), the domain's sentinels, and anything else as INTERNAL,
// logged.
func (s *Server) status(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	if errors.Is(err, errBusy) {
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), errShuttingDown) {
			return status.Error(codes.Unavailable, "the API server is shutting down; retry against another one (Watch: resume with from_sequence one past the last seq received)")
		}
		return status.FromContextError(ctx.Err()).Err()
	}
	var be *brokerError
	var ie *execution.InputError
	switch {
	case errors.As(err, &be):
		return status.Errorf(codes.Unavailable, "Kafka is unreachable: %v; retry once the brokers answer", err)
	case errors.Is(err, flow.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, flow.ErrInvalidFlow):
		return status.Errorf(codes.FailedPrecondition, "%v; apply a fixed revision of the flow", err)
	case errors.As(err, &ie):
		return inputsStatus(ie)
	case errors.Is(err, storage.ErrUnavailable):
		return status.Errorf(codes.Unavailable, "internal storage is unavailable: %v; retry later", err)
	case errors.Is(err, storage.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	}
	s.logger.Error("request failed unexpectedly", zap.Error(err))
	return status.Errorf(codes.Internal, "internal error: %v", err)
}

// inputsStatus is INVALID_ARGUMENT for inputs that do not validate, with a
// google.rpc.BadRequest that has one field violation per input (field: the
// input's id).
func inputsStatus(ie *execution.InputError) error {
	vs := make([]*errdetails.BadRequest_FieldViolation, len(ie.Problems))
	for i, p := range ie.Problems {
		vs[i] = rpcstatus.Violation(p.Input, p.Message)
	}
	return rpcstatus.BadRequest(ie.Error(), vs...)
}

// invalidArgument is INVALID_ARGUMENT for one field of a request.
func invalidArgument(field, description string) error {
	return rpcstatus.BadRequest(field+": "+description, rpcstatus.Violation(field, description))
}
