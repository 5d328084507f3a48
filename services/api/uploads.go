package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// createWithFiles stores the FILE inputs a CreateWithFiles stream carries,
// each streamed to internal storage as its chunks arrive (one chunk in
// memory at a time), then creates the execution with their URIs. Files of
// an upload that fails (an interrupted stream, inputs that do not validate)
// are deleted: nothing of it stays visible.
func (s *Server) createWithFiles(stream grpc.ClientStreamingServer[kitev1.ExecutionServiceCreateWithFilesRequest, kitev1.ExecutionServiceCreateWithFilesResponse]) (*kitev1.Execution, error) {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, invalidArgument("request", "the stream is empty; its first message must hold the request")
	}
	if err != nil {
		return nil, err
	}
	req := first.GetRequest()
	if req == nil {
		return nil, invalidArgument("request", "the first message must hold the request, not a file chunk")
	}
	if err := checkCreateRequest(req); err != nil {
		return nil, err
	}
	f, err := s.flows.Flow(req.GetNamespace(), req.GetFlowId(), int(req.GetRevision()))
	if err != nil {
		return nil, err
	}
	id := execution.RandomExecutionID(time.Now())
	up := &upload{s: s, f: f, id: id, uris: map[string]string{}}
	e, err := up.run(ctx, stream, req)
	if err != nil && len(up.uris) > 0 {
		// Best effort, detached from the request that failed: the files
		// of an execution that was not created are of no use.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		prefix := storage.ExecutionPrefix(f.Namespace, f.ID, id)
		if _, derr := s.store.DeletePrefix(cleanup, prefix); derr != nil {
			s.logger.Warn("files of an upload that failed could not be deleted", fExecutionID(id), zap.String("prefix", prefix), zap.Error(derr))
		}
	}
	return e, err
}

// upload is one CreateWithFiles call.
type upload struct {
	s    *Server
	f    *flow.Flow
	id   string
	uris map[string]string // input id → URI of the file stored
}

func (u *upload) run(ctx context.Context, stream grpc.ClientStreamingServer[kitev1.ExecutionServiceCreateWithFilesRequest, kitev1.ExecutionServiceCreateWithFilesResponse], req *kitev1.ExecutionServiceCreateRequest) (*kitev1.Execution, error) {
	var cur *fileWriter
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if cur != nil {
				cur.abort(err)
			}
			return nil, err
		}
		c := msg.GetChunk()
		if c == nil {
			if cur != nil {
				cur.abort(errors.New("bad message"))
			}
			return nil, invalidArgument("chunk", "only the first message holds the request; the following ones must be file chunks")
		}
		if cur == nil || c.GetInput() != cur.input {
			if cur != nil {
				if err := u.finish(cur); err != nil {
					return nil, err
				}
			}
			if cur, err = u.open(ctx, c); err != nil {
				return nil, err
			}
		}
		if err := cur.write(c.GetData()); err != nil {
			return nil, u.finish(cur) // the storage's error, which ended the write
		}
	}
	if cur != nil {
		if err := u.finish(cur); err != nil {
			return nil, err
		}
	}
	inputs := req.GetInputs()
	if len(u.uris) > 0 {
		m := codec.FromStruct(inputs)
		if m == nil {
			m = map[string]any{}
		}
		for in, uri := range u.uris {
			m[in] = uri
		}
		var err error
		if inputs, err = structpb.NewStruct(m); err != nil {
			return nil, fmt.Errorf("inputs with the files' URIs: %w", err)
		}
	}
	return u.s.create(ctx, newExecution{flow: u.f, inputs: inputs, labels: req.GetLabels(), id: u.id})
}

// open starts storing the file whose first chunk is c.
func (u *upload) open(ctx context.Context, c *kitev1.FileChunk) (*fileWriter, error) {
	if u.s.store == nil {
		return nil, status.Errorf(codes.FailedPrecondition,
			"input %s: this server has no internal storage configured (storage.type), so it cannot take files", c.GetInput())
	}
	in := u.findInput(c.GetInput())
	field := "chunk.input"
	switch {
	case c.GetInput() == "":
		return nil, invalidArgument(field, "must name the FILE input the chunk belongs to")
	case in == nil:
		return nil, invalidArgument(field, fmt.Sprintf("%q is not an input of flow %s.%s", c.GetInput(), u.f.Namespace, u.f.ID))
	case in.Type != flow.InputFile:
		return nil, invalidArgument(field, fmt.Sprintf("input %s is of type %s, not FILE: give its value in the request", in.ID, in.Type))
	case u.uris[in.ID] != "":
		return nil, invalidArgument(field, fmt.Sprintf("input %s: its chunks must come one after another, once", in.ID))
	case c.GetFileName() == "":
		return nil, invalidArgument("chunk.file_name", fmt.Sprintf("input %s: the first chunk of a file must carry its name", in.ID))
	}
	uri, err := storage.InputFile(u.f.Namespace, u.f.ID, u.id, in.ID, c.GetFileName())
	if err != nil {
		return nil, invalidArgument("chunk.file_name", err.Error())
	}
	if in.Extension != "" && !strings.HasSuffix(uri, in.Extension) {
		return nil, invalidArgument("chunk.file_name", fmt.Sprintf("input %s: expected a file ending in %s, got %q", in.ID, in.Extension, c.GetFileName()))
	}
	u.uris[in.ID] = uri
	return startFileWriter(ctx, u.s.store, in.ID, uri), nil
}

func (u *upload) findInput(id string) *flow.Input {
	for _, in := range u.f.Inputs {
		if in.ID == id {
			return in
		}
	}
	return nil
}

// finish ends the file being written and waits until it is stored.
func (u *upload) finish(w *fileWriter) error {
	if err := w.close(); err != nil {
		return fmt.Errorf("input %s: storing the file: %w", w.input, err)
	}
	u.s.logger.Debug("input file stored", zap.String("input", w.input), zap.String("uri", w.uri), zap.Int64("bytes", w.n))
	return nil
}

// fileWriter streams one file to storage through a pipe: Put reads what
// write gives, so one chunk at a time is in memory.
type fileWriter struct {
	input, uri string
	pw         *io.PipeWriter
	done       chan error
	n          int64
	aborted    error // what the store said of an aborted file
}

func startFileWriter(ctx context.Context, store storage.Storage, input, uri string) *fileWriter {
	pr, pw := io.Pipe()
	w := &fileWriter{input: input, uri: uri, pw: pw, done: make(chan error, 1)}
	go func() {
		n, err := store.Put(ctx, uri, pr)
		w.n = n
		_ = pr.CloseWithError(err) // unblocks a write the store stopped reading
		w.done <- err
	}()
	return w
}

// write hands data to the store; it fails once the store stopped reading.
func (w *fileWriter) write(data []byte) error {
	_, err := w.pw.Write(data)
	return err
}

// close ends the file and returns the store's verdict.
func (w *fileWriter) close() error {
	_ = w.pw.Close()
	return <-w.done
}

// abort ends the file with err: the store discards what it had read.
func (w *fileWriter) abort(err error) {
	_ = w.pw.CloseWithError(err)
	w.aborted = <-w.done // the Put fails with err: nothing is stored
}

// offloadInputs returns the inputs of a create command: as given, unless
// they are too large for a Kafka record; then the largest typed values are
// stored in internal storage and the command carries references to them.
func (s *Server) offloadInputs(ctx context.Context, f *flow.Flow, id string, given *structpb.Struct, typed map[string]any) (*structpb.Struct, error) {
	if given == nil || proto.Size(given) <= s.maxInline {
		return given, nil
	}
	out, err := storage.Offload(ctx, s.store, typed, s.maxInline, func(key string) (string, error) {
		return storage.InputValue(f.Namespace, f.ID, id, key)
	})
	if err != nil {
		if errors.Is(err, storage.ErrUnavailable) {
			return nil, status.Errorf(codes.Unavailable, "the inputs are too large for a Kafka record and internal storage is unavailable: %v", err)
		}
		return nil, status.Errorf(codes.InvalidArgument, "the inputs are too large for a Kafka record: %v", err)
	}
	asGiven := codec.FromStruct(given)
	for k, v := range out {
		if storage.IsRef(v) {
			continue
		}
		if g, ok := asGiven[k]; ok {
			out[k] = g // as given; the executor checks it again
		} else {
			delete(out, k) // a default, which the executor computes again
		}
	}
	return codec.ToStruct(out)
}

// resolveExecution returns e with the values kept in internal storage
// (claim-check) put back, so that clients see the outputs and inputs as the
// tasks produced them. e is not changed; without references it is returned
// as is.
func (s *Server) resolveExecution(ctx context.Context, e *kitev1.Execution) (*kitev1.Execution, error) {
	var out *kitev1.Execution // a clone, made at the first reference
	resolve := func(get func(*kitev1.Execution) **structpb.Struct) error {
		st, changed, err := s.resolveStruct(ctx, *get(e))
		if err != nil || !changed {
			return err
		}
		if out == nil {
			out = proto.CloneOf(e)
		}
		*get(out) = st
		return nil
	}
	if err := resolve(func(x *kitev1.Execution) **structpb.Struct { return &x.Inputs }); err != nil {
		return nil, err
	}
	if err := resolve(func(x *kitev1.Execution) **structpb.Struct { return &x.Outputs }); err != nil {
		return nil, err
	}
	for i := range e.GetTaskRuns() {
		if err := resolve(func(x *kitev1.Execution) **structpb.Struct { return &x.TaskRuns[i].Outputs }); err != nil {
			return nil, err
		}
	}
	if out == nil {
		return e, nil
	}
	return out, nil
}

// resolveStruct puts back the claim-checked values of st; changed says
// whether it held any (st itself is returned when not).
func (s *Server) resolveStruct(ctx context.Context, st *structpb.Struct) (*structpb.Struct, bool, error) {
	if st == nil {
		return nil, false, nil
	}
	m, changed, err := storage.ResolveMap(ctx, s.store, codec.FromStruct(st))
	if err != nil || !changed {
		return st, false, err
	}
	out, err := codec.ToStruct(m)
	return out, true, err
}
