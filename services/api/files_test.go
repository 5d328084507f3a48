package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/storage/local"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// newStore is a local internal storage in a temporary folder.
func newStore(tb testing.TB) *local.Store {
	tb.Helper()
	st, err := local.New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// randomBytes is n bytes of a fixed pseudo-random sequence.
func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(tb testing.TB, st storage.Storage, uri string, data []byte) {
	tb.Helper()
	if _, err := st.Put(testCtx(tb), uri, bytes.NewReader(data)); err != nil {
		tb.Fatalf("Put(%s): %v", uri, err)
	}
}

// download is what a Download stream sends: its first message's file, the
// content of the others, and how many of them there were; err is the error
// that ended the stream (nil at io.EOF).
type download struct {
	file   *kitev1.File
	data   []byte
	chunks int
	err    error
}

func downloadFile(tb testing.TB, fc kitev1.FileServiceClient, req *kitev1.FileServiceDownloadRequest) download {
	tb.Helper()
	stream, err := fc.Download(testCtx(tb), req)
	if err != nil {
		tb.Fatal(err)
	}
	var d download
	for i := 0; ; i++ {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return d
		}
		if err != nil {
			d.err = err
			return d
		}
		switch part := msg.GetPart().(type) {
		case *kitev1.FileServiceDownloadResponse_File:
			if i != 0 {
				tb.Errorf("message %d holds a file; only the first one may", i)
			}
			d.file = part.File
		case *kitev1.FileServiceDownloadResponse_Data:
			if i == 0 {
				tb.Errorf("the first message holds data, not the file")
			}
			if len(part.Data) == 0 || len(part.Data) > downloadChunkSize {
				tb.Errorf("chunk %d has %d bytes, want 1 to %d", i, len(part.Data), downloadChunkSize)
			}
			d.data = append(d.data, part.Data...)
			d.chunks++
		default:
			tb.Fatalf("message %d holds nothing", i)
		}
	}
}

// violationFields are the fields of the BadRequest of an INVALID_ARGUMENT.
func violationFields(tb testing.TB, err error) []string {
	tb.Helper()
	st := wantCode(tb, "Download()", err, codes.InvalidArgument)
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

func TestFiles(t *testing.T) {
	e := fakeEnv(t)
	startStandIn(t, e)
	st := newStore(t)
	h := startServer(t, e, testConfig(), Deps{Storage: st})
	fc := kitev1.NewFileServiceClient(h.conn)

	ex, other := h.create(t, false), h.create(t, false)
	prefix := storage.ExecutionPrefix(testNamespace, "hello", ex.GetId())
	if want := "kite:///test/api/hello/executions/" + ex.GetId(); prefix != want {
		t.Fatalf("prefix %s, want %s", prefix, want)
	}
	before := time.Now().Add(-time.Minute)
	big := randomBytes(3<<20 + 12345) // 3 MiB and a bit: four chunks
	rows := []byte("a,b\n1,2\n")
	files := map[string][]byte{
		"inputs/data/rows.csv":      rows,
		"tasks/t1/tr-1/out.bin":     big,
		"tasks/t1/tr-1/empty.txt":   {},
		"tasks/t1/tr-1/deep/er.txt": []byte("deeper"),
	}
	for name, data := range files {
		put(t, st, prefix+"/"+name, data)
	}
	otherFile := storage.ExecutionPrefix(testNamespace, "hello", other.GetId()) + "/inputs/data/rows.csv"
	put(t, st, otherFile, []byte("not yours"))
	// A neighbour whose id starts with ex's: not in ex's folder.
	put(t, st, prefix+"x/inputs/data/rows.csv", []byte("neighbour"))

	t.Run("list", func(t *testing.T) {
		res, err := fc.List(testCtx(t), &kitev1.FileServiceListRequest{ExecutionId: ex.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range res.GetFiles() {
			got = append(got, f.GetName())
			if f.GetUri() != prefix+"/"+f.GetName() {
				t.Errorf("%s: uri %s, want %s/%s", f.GetName(), f.GetUri(), prefix, f.GetName())
			}
			if want := int64(len(files[f.GetName()])); f.GetSize() != want {
				t.Errorf("%s: size %d, want %d", f.GetName(), f.GetSize(), want)
			}
			if u := f.GetUpdated().AsTime(); u.Before(before) || u.After(time.Now().Add(time.Minute)) {
				t.Errorf("%s: updated %s, want about now", f.GetName(), u)
			}
		}
		want := []string{"inputs/data/rows.csv", "tasks/t1/tr-1/deep/er.txt", "tasks/t1/tr-1/empty.txt", "tasks/t1/tr-1/out.bin"}
		if !slices.Equal(got, want) {
			t.Errorf("List() names = %v, want %v (sorted by uri)", got, want)
		}

		res, err = fc.List(testCtx(t), &kitev1.FileServiceListRequest{ExecutionId: h.create(t, false).GetId()})
		if err != nil || len(res.GetFiles()) != 0 {
			t.Errorf("List() of an execution without files = %v, %v; want none", res.GetFiles(), err)
		}
	})

	t.Run("download", func(t *testing.T) {
		tests := []struct {
			name   string
			file   string
			offset int64
			want   []byte
		}{
			{"whole", "tasks/t1/tr-1/out.bin", 0, big},
			{"resumed", "tasks/t1/tr-1/out.bin", 1<<20 + 7, big[1<<20+7:]},
			{"last byte", "tasks/t1/tr-1/out.bin", int64(len(big) - 1), big[len(big)-1:]},
			{"at the end", "tasks/t1/tr-1/out.bin", int64(len(big)), nil},
			{"small", "inputs/data/rows.csv", 0, rows},
			{"empty", "tasks/t1/tr-1/empty.txt", 0, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d := downloadFile(t, fc, &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(), Uri: prefix + "/" + tt.file, Offset: tt.offset})
				if d.err != nil {
					t.Fatalf("Download() = %v", d.err)
				}
				if d.file.GetName() != tt.file || d.file.GetSize() != int64(len(files[tt.file])) || d.file.GetUri() != prefix+"/"+tt.file {
					t.Errorf("first message %v, want file %s of %d bytes", d.file, tt.file, len(files[tt.file]))
				}
				if !bytes.Equal(d.data, tt.want) {
					t.Errorf("content: %d bytes, want %d bytes from offset %d (equal: %v)", len(d.data), len(tt.want), tt.offset, bytes.Equal(d.data, tt.want))
				}
				if want := (len(tt.want) + downloadChunkSize - 1) / downloadChunkSize; d.chunks != want {
					t.Errorf("%d chunks, want %d", d.chunks, want)
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name   string
			req    *kitev1.FileServiceDownloadRequest
			field  string
			reason string // in the message
		}{
			{"no uri", &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId()}, "uri", "must be set"},
			{"no execution", &kitev1.FileServiceDownloadRequest{Uri: prefix + "/inputs/data/rows.csv"}, "execution_id", "must be set"},
			{"not a kite uri", &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(), Uri: "/etc/passwd"}, "uri", "kite:///"},
			{"a host", &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(), Uri: "kite://host/test/api/hello"}, "uri", "kite:///"},
			{"dot dot", &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(), Uri: prefix + "/../" + other.GetId() + "/inputs/data/rows.csv"}, "uri", `".."`},
			{"another execution's", &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(), Uri: otherFile}, "uri", "is not a file of execution"},
			{"a neighbour folder", &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(), Uri: prefix + "x/inputs/data/rows.csv"}, "uri", "is not a file of execution"},
			{"the folder itself", &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(), Uri: prefix}, "uri", "is not a file of execution"},
			{"negative offset", &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(), Uri: prefix + "/inputs/data/rows.csv", Offset: -1}, "offset", "negative"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d := downloadFile(t, fc, tt.req)
				if d.file != nil {
					t.Errorf("Download() sent file %v before refusing", d.file)
				}
				if fields := violationFields(t, d.err); !slices.Equal(fields, []string{tt.field}) {
					t.Errorf("field violations %v, want [%s] (%v)", fields, tt.field, d.err)
				}
				if !strings.Contains(statusMessage(d.err), tt.reason) {
					t.Errorf("message %q does not say %q", statusMessage(d.err), tt.reason)
				}
			})
		}

		d := downloadFile(t, fc, &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(), Uri: prefix + "/inputs/data/rows.csv", Offset: int64(len(rows)) + 1})
		wantCode(t, "Download() past the end", d.err, codes.OutOfRange)
	})

	t.Run("not found", func(t *testing.T) {
		missing := prefix + "/tasks/t1/tr-1/nope.txt"
		d := downloadFile(t, fc, &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(), Uri: missing})
		if st := wantCode(t, "Download() of a missing file", d.err, codes.NotFound); !strings.Contains(st.Message(), missing) {
			t.Errorf("message %q does not name %s", st.Message(), missing)
		}

		unknown := execution.RandomExecutionID(time.Now())
		_, err := fc.List(testCtx(t), &kitev1.FileServiceListRequest{ExecutionId: unknown})
		wantCode(t, "List() of an unknown execution", err, codes.NotFound)
		d = downloadFile(t, fc, &kitev1.FileServiceDownloadRequest{ExecutionId: unknown, Uri: storage.ExecutionPrefix(testNamespace, "hello", unknown) + "/inputs/a/b"})
		wantCode(t, "Download() of an unknown execution", d.err, codes.NotFound)
		_, err = fc.List(testCtx(t), &kitev1.FileServiceListRequest{})
		wantCode(t, "List() without execution_id", err, codes.InvalidArgument)
	})
}

// failingStorage is a storage whose backend is down.
type failingStorage struct{ storage.Storage }

func (failingStorage) List(context.Context, string) ([]storage.Info, error) {
	return nil, fmt.Errorf("listing: connection refused: %w", storage.ErrUnavailable)
}

func (failingStorage) Stat(context.Context, string) (storage.Info, error) {
	return storage.Info{}, fmt.Errorf("stat: connection refused: %w", storage.ErrUnavailable)
}

func TestFilesWithoutStorage(t *testing.T) {
	e := fakeEnv(t)
	startStandIn(t, e)
	for _, tt := range []struct {
		name  string
		store storage.Storage
		code  codes.Code
		msg   string
	}{
		{"none", nil, codes.FailedPrecondition, "no internal storage"},
		{"unavailable", failingStorage{newStore(t)}, codes.Unavailable, "connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startServer(t, e, testConfig(), Deps{Storage: tt.store})
			fc := kitev1.NewFileServiceClient(h.conn)
			ex := h.create(t, false)
			_, err := fc.List(testCtx(t), &kitev1.FileServiceListRequest{ExecutionId: ex.GetId()})
			if st := wantCode(t, "List()", err, tt.code); !strings.Contains(st.Message(), tt.msg) {
				t.Errorf("List(): message %q does not say %q", st.Message(), tt.msg)
			}
			d := downloadFile(t, fc, &kitev1.FileServiceDownloadRequest{ExecutionId: ex.GetId(),
				Uri: storage.ExecutionPrefix(testNamespace, "hello", ex.GetId()) + "/inputs/data/rows.csv"})
			if st := wantCode(t, "Download()", d.err, tt.code); !strings.Contains(st.Message(), tt.msg) {
				t.Errorf("Download(): message %q does not say %q", st.Message(), tt.msg)
			}
		})
	}
}

// TestSendChunksCancel: a download stops reading once its context ends.
func TestSendChunksCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sent, readErr, sendErr := sendChunks(ctx, bytes.NewReader(randomBytes(3*downloadChunkSize)), func([]byte) error {
		cancel() // the client goes away after the first chunk
		return nil
	})
	if sent != downloadChunkSize || !errors.Is(readErr, context.Canceled) || sendErr != nil {
		t.Errorf("sendChunks() = %d, %v, %v; want %d, context.Canceled, nil", sent, readErr, sendErr, downloadChunkSize)
	}
}

// statusMessage is the message of a status error.
func statusMessage(err error) string {
	st, _ := status.FromError(err)
	return st.Message()
}
