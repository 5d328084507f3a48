// Package rpcstatus builds the gRPC errors the API services share: an
// INVALID_ARGUMENT that carries a google.rpc.BadRequest with one field
// violation per problem, as the kite.v1 protos promise.
package rpcstatus

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// BadRequest is INVALID_ARGUMENT with message msg and a google.rpc.BadRequest
// detail holding the violations.
func BadRequest(msg string, vs ...*errdetails.BadRequest_FieldViolation) error {
	st := status.New(codes.InvalidArgument, msg)
	if withDetails, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: vs}); err == nil {
		st = withDetails
	}
	return st.Err()
}

// Violation is one field's problem.
func Violation(field, desc string) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: desc}
}

// Required is a violation when a required field is empty, none otherwise.
func Required(field, value string) []*errdetails.BadRequest_FieldViolation {
	if value != "" {
		return nil
	}
	return []*errdetails.BadRequest_FieldViolation{Violation(field, "is required")}
}
