package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/core/storage"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// downloadChunkSize is the most content one Download message carries, as
// the proto promises.
const downloadChunkSize = 1 << 20

// fileService is kite.v1.FileService (proto/kite/v1/file_service.proto): the
// files of an execution in internal storage, found under the folder
// storage.ExecutionPrefix gives for the execution's namespace and flow,
// which the execution's events tell.
//
// It is registered even without storage (store nil), so that a client gets
// FAILED_PRECONDITION saying why rather than UNIMPLEMENTED, which reads as
// an outdated server.
type fileService struct {
	kitev1.UnimplementedFileServiceServer
	s     *Server
	store storage.Storage
}

var _ kitev1.FileServiceServer = (*fileService)(nil)

// errNoStorage is the answer of every call when the server has no storage.
var errNoStorage = status.Error(codes.FailedPrecondition,
	"this Kite server has no internal storage configured (storage.type): it keeps no files of executions")

func (f *fileService) List(ctx context.Context, req *kitev1.FileServiceListRequest) (*kitev1.FileServiceListResponse, error) {
	if f.store == nil {
		return nil, errNoStorage
	}
	if req.GetExecutionId() == "" {
		return nil, invalidArgument("execution_id", "must be set")
	}
	prefix, err := f.folder(ctx, req.GetExecutionId())
	if err != nil {
		return nil, err
	}
	infos, err := f.store.List(ctx, prefix)
	if err != nil {
		return nil, f.storageStatus(ctx, req.GetExecutionId(), prefix, err)
	}
	res := &kitev1.FileServiceListResponse{Files: make([]*kitev1.File, 0, len(infos))}
	for _, info := range infos {
		res.Files = append(res.Files, file(prefix, info))
	}
	return res, nil
}

// Download sends the file's description, then its content from the offset,
// read through one buffer of downloadChunkSize: a file is never held in
// memory whole.
func (f *fileService) Download(req *kitev1.FileServiceDownloadRequest, stream grpc.ServerStreamingServer[kitev1.FileServiceDownloadResponse]) error {
	if f.store == nil {
		return errNoStorage
	}
	id, uri, offset := req.GetExecutionId(), req.GetUri(), req.GetOffset()
	switch {
	case id == "":
		return invalidArgument("execution_id", "must be set")
	case uri == "":
		return invalidArgument("uri", "must be set: the uri of one of the execution's files, as List returns them")
	case offset < 0:
		return invalidArgument("offset", fmt.Sprintf("is %d: it must not be negative", offset))
	}
	if _, err := storage.Parse(uri); err != nil {
		return invalidArgument("uri", err.Error())
	}
	ctx, done := f.s.streamContext(stream.Context())
	defer done()
	prefix, err := f.folder(ctx, id)
	if err != nil {
		return err
	}
	if uri == prefix || !storage.Within(uri, prefix) {
		return invalidArgument("uri", fmt.Sprintf("%s is not a file of execution %s, whose files are under %s/", uri, id, prefix))
	}
	info, err := f.store.Stat(ctx, uri)
	if err != nil {
		return f.storageStatus(ctx, id, uri, err)
	}
	if offset > info.Size {
		return status.Errorf(codes.OutOfRange, "offset %d is past the end of %s, which has %d bytes", offset, uri, info.Size)
	}
	if err := stream.Send(&kitev1.FileServiceDownloadResponse{Part: &kitev1.FileServiceDownloadResponse_File{File: file(prefix, info)}}); err != nil {
		return err
	}
	if offset == info.Size {
		return nil
	}
	// Exactly the bytes Stat counted: a file replaced meanwhile by a longer
	// one is cut there, and by a shorter one is caught below.
	want := info.Size - offset
	rd, err := f.store.Get(ctx, uri, storage.Range{Offset: offset, Length: want})
	if err != nil {
		return f.storageStatus(ctx, id, uri, err)
	}
	defer func() { _ = rd.Close() }()
	sent, readErr, sendErr := sendChunks(ctx, rd, func(chunk []byte) error {
		return stream.Send(&kitev1.FileServiceDownloadResponse{Part: &kitev1.FileServiceDownloadResponse_Data{Data: chunk}})
	})
	switch {
	case ctx.Err() != nil:
		if errors.Is(context.Cause(ctx), errShuttingDown) {
			return status.Errorf(codes.Unavailable, "the API server is shutting down; download %s again from offset %d", uri, offset+sent)
		}
		return status.FromContextError(ctx.Err()).Err()
	case sendErr != nil:
		return status.Convert(sendErr).Err()
	case readErr != nil:
		return f.storageStatus(ctx, id, uri, fmt.Errorf("reading %s at offset %d: %w", uri, offset+sent, readErr))
	case sent != want:
		return status.Errorf(codes.Aborted, "%s was replaced during the download (%d bytes where %d were expected); download it again from the start", uri, offset+sent, info.Size)
	}
	return nil
}

// sendChunks reads rd to its end through one buffer, calling send with each
// chunk read, and returns how many bytes it sent and the error that stopped
// it: reading, or sending. Reusing the buffer is safe because gRPC marshals
// a message before Send returns (and no stats handler of the server keeps
// messages).
func sendChunks(ctx context.Context, rd io.Reader, send func([]byte) error) (sent int64, readErr, sendErr error) {
	buf := make([]byte, downloadChunkSize)
	for {
		if err := ctx.Err(); err != nil {
			return sent, err, nil
		}
		n, err := io.ReadFull(rd, buf)
		if n > 0 {
			if serr := send(buf[:n]); serr != nil {
				return sent, nil, serr
			}
			sent += int64(n)
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return sent, nil, nil
		case err != nil:
			return sent, err, nil
		}
	}
}

// folder loads the execution and returns the URI of its folder.
func (f *fileService) folder(ctx context.Context, id string) (string, error) {
	e, err := f.s.load(ctx, id)
	if err != nil {
		return "", f.s.status(ctx, err)
	}
	return storage.ExecutionPrefix(e.exec.GetNamespace(), e.exec.GetFlowId(), id), nil
}

// storageStatus turns an error of the storage about uri (a file or the
// execution's folder) into the status the client gets.
func (f *fileService) storageStatus(ctx context.Context, id, uri string, err error) error {
	switch {
	case ctx.Err() != nil:
		return f.s.status(ctx, err)
	case errors.Is(err, storage.ErrNotFound):
		return status.Errorf(codes.NotFound, "execution %s has no file %s (kite execution files %s lists its files)", id, uri, id)
	case errors.Is(err, storage.ErrInvalidURI):
		return invalidArgument("uri", err.Error())
	case errors.Is(err, storage.ErrUnavailable):
		f.s.logger.Warn("internal storage unavailable", fExecutionID(id), zap.String("uri", uri), zap.Error(err))
		return status.Errorf(codes.Unavailable, "%v; retry later", err)
	}
	return f.s.status(ctx, fmt.Errorf("internal storage, %s: %w", uri, err))
}

// file describes a stored object of the execution whose folder is prefix.
func file(prefix string, info storage.Info) *kitev1.File {
	pb := &kitev1.File{
		Uri:  info.URI,
		Name: strings.TrimPrefix(info.URI, strings.TrimSuffix(prefix, "/")+"/"),
		Size: info.Size,
	}
	if !info.Updated.IsZero() {
		pb.Updated = timestamppb.New(info.Updated)
	}
	return pb
}
