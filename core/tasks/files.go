package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiteflow/kite/core/storage"
)

// Files gives a task run access to internal storage: it reads the files of
// its flow's namespace (its execution's inputs, the files earlier tasks
// wrote, those of other executions of the namespace) and writes its own
// under its task run's folder.
type Files struct {
	Store       storage.Storage
	Namespace   string
	FlowID      string
	ExecutionID string
	TaskID      string
	TaskRunID   string
}

// errNoStorage is the error of a file operation where Kite has no internal
// storage (a renderer outside a task run).
var errNoStorage = errors.New("this task run has no internal storage")

// scope is the folder a task run may read from: its namespace's.
func (f *Files) scope() string {
	return storage.URI(strings.ReplaceAll(f.Namespace, ".", "/"))
}

// check refuses a URI the task run may not read.
func (f *Files) check(uri string) error {
	if f == nil || f.Store == nil {
		return errNoStorage
	}
	if _, err := storage.Parse(uri); err != nil {
		return err
	}
	if !storage.Within(uri, f.scope()) {
		return fmt.Errorf("%s is not a file of namespace %s: a task reads the files of its own namespace only", uri, f.Namespace)
	}
	return nil
}

// Open opens the file at uri for reading.
func (f *Files) Open(ctx context.Context, uri string) (io.ReadCloser, error) {
	if err := f.check(uri); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, uri, storage.Whole)
}

// Stat describes the file at uri.
func (f *Files) Stat(ctx context.Context, uri string) (storage.Info, error) {
	if err := f.check(uri); err != nil {
		return storage.Info{}, err
	}
	return f.Store.Stat(ctx, uri)
}

// Put stores r as the task run's file name (a slash-separated relative
// path) and returns its URI.
func (f *Files) Put(ctx context.Context, name string, r io.Reader) (string, error) {
	if f == nil || f.Store == nil {
		return "", errNoStorage
	}
	uri, err := storage.TaskFile(f.Namespace, f.FlowID, f.ExecutionID, f.TaskID, f.TaskRunID, name)
	if err != nil {
		return "", err
	}
	if _, err := f.Store.Put(ctx, uri, r); err != nil {
		return "", fmt.Errorf("storing %s: %w", name, err)
	}
	return uri, nil
}

// PutFile stores the local file at path as the task run's file name.
func (f *Files) PutFile(ctx context.Context, name, path string) (string, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = src.Close() }()
	return f.Put(ctx, name, src)
}

// Download copies the file at uri to the local file dst, streaming it.
func (f *Files) Download(ctx context.Context, uri, dst string) error {
	src, err := f.Open(ctx, uri)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, src); err != nil {
		_ = out.Close()
		return fmt.Errorf("reading %s: %w", uri, err)
	}
	return out.Close()
}

// filesKey carries a task run's Files in the context of its expressions,
// for read(), fileExists(), fileSize() and isFileEmpty().
type filesKey struct{}

// WithFiles returns ctx carrying f for the file functions of expressions.
func WithFiles(ctx context.Context, f *Files) context.Context {
	if f == nil {
		return ctx
	}
	return context.WithValue(ctx, filesKey{}, f)
}

func filesFrom(ctx context.Context) *Files {
	f, _ := ctx.Value(filesKey{}).(*Files)
	return f
}

// MaxReadBytes bounds what read() returns: an expression's value is held in
// memory and may travel in a Kafka record, so a larger file must be passed
// by URI (inputFiles) instead.
const MaxReadBytes = 8 << 20

// uriArg is the one string argument of a file function.
func uriArg(name string, args []any) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("%s() takes one argument, the file's URI", name)
	}
	s, ok := args[0].(string)
	if !ok {
		return "", fmt.Errorf("%s(): the URI must be a string, got %T", name, args[0])
	}
	return s, nil
}

// ReadFunc is read(uri): the content of a file of internal storage as a
// string, up to MaxReadBytes.
func ReadFunc(ctx context.Context, args []any) (any, error) {
	uri, err := uriArg("read", args)
	if err != nil {
		return nil, err
	}
	r, err := filesFrom(ctx).Open(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("read(): %w", err)
	}
	defer func() { _ = r.Close() }()
	b, err := io.ReadAll(io.LimitReader(r, MaxReadBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read(): reading %s: %w", uri, err)
	}
	if len(b) > MaxReadBytes {
		return nil, fmt.Errorf("read(): %s is larger than %d MiB; pass it to a task by URI (inputFiles) instead", uri, MaxReadBytes>>20)
	}
	return string(b), nil
}

// FileExistsFunc is fileExists(uri).
func FileExistsFunc(ctx context.Context, args []any) (any, error) {
	uri, err := uriArg("fileExists", args)
	if err != nil {
		return nil, err
	}
	_, err = filesFrom(ctx).Stat(ctx, uri)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return nil, fmt.Errorf("fileExists(): %w", err)
	}
	return true, nil
}

// statFunc describes the file its one argument names, for the function name.
func statFunc(ctx context.Context, name string, args []any) (storage.Info, error) {
	uri, err := uriArg(name, args)
	if err != nil {
		return storage.Info{}, err
	}
	info, err := filesFrom(ctx).Stat(ctx, uri)
	if err != nil {
		return storage.Info{}, fmt.Errorf("%s(): %w", name, err)
	}
	return info, nil
}

// FileSizeFunc is fileSize(uri), in bytes.
func FileSizeFunc(ctx context.Context, args []any) (any, error) {
	info, err := statFunc(ctx, "fileSize", args)
	if err != nil {
		return nil, err
	}
	return info.Size, nil
}

// IsFileEmptyFunc is isFileEmpty(uri).
func IsFileEmptyFunc(ctx context.Context, args []any) (any, error) {
	info, err := statFunc(ctx, "isFileEmpty", args)
	if err != nil {
		return nil, err
	}
	return info.Size == 0, nil
}
