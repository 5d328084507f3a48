// Package local is Kite's internal storage on the local filesystem: one
// folder, an object per regular file at its URI's path, for a single node
// (the server's default, `kite flow test`, tests).
//
// A Put writes a temporary file under the folder's .tmp directory, syncs it
// and renames it into place, then syncs the directory it landed in: an
// object appears whole or not at all, and survives a crash once Put has
// returned. A crash mid-Put can leave a file in .tmp; it is never listed.
//
// Every access goes through an os.Root, so no symbolic link found in the
// folder leads outside it. The store creates no links; one it finds is not
// an object.
//
// Unlike a bucket, a folder cannot hold both an object "a/b" and an object
// "a/b/c": the second Put fails.
package local

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/kiteflow/kite/core/storage"
)

const (
	// tmpDir holds the files of Puts in progress. It is the first segment
	// of no URI Kite builds (a namespace segment holds no dot), and URIs
	// naming it are refused.
	tmpDir = ".tmp"
	// dirPerm and filePerm keep stored files to Kite's user: they hold
	// flows' data.
	dirPerm  = 0o750
	filePerm = 0o600
	// copyBufferSize is the chunk a Put copies at a time, checking its ctx
	// between chunks.
	copyBufferSize = 256 << 10
	// renameAttempts bounds the retries of a Put whose folder a concurrent
	// Delete or DeletePrefix removed as empty in the meantime.
	renameAttempts = 8
)

// Store is internal storage in a local folder.
type Store struct {
	dir   string
	root  *os.Root
	close sync.Once
	err   error // of the first Close
}

var _ storage.Storage = (*Store)(nil)

// copyBuffers recycles Put's copy buffers.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// New opens the store in dir, creating the folder if need be.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, tmpDir), dirPerm); err != nil {
		return nil, fmt.Errorf("creating internal storage folder %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening internal storage folder %s: %w", dir, err)
	}
	return &Store{dir: dir, root: root}, nil
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// Close releases the folder. It is idempotent.
func (s *Store) Close() error {
	s.close.Do(func() {
		if err := s.root.Close(); err != nil {
			s.err = fmt.Errorf("closing internal storage folder %s: %w", s.dir, err)
		}
	})
	return s.err
}

// Put stores the bytes of r under uri.
func (s *Store) Put(ctx context.Context, uri string, r io.Reader) (int64, error) {
	name, err := s.name(uri)
	if err != nil {
		return 0, fmt.Errorf("storing %s: %w", uri, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("storing %s: %w", uri, err)
	}
	tmp, n, err := s.writeTemp(ctx, r)
	if err != nil {
		return 0, fmt.Errorf("storing %s: %w", uri, err)
	}
	if err := s.commit(ctx, tmp, name); err != nil {
		_ = s.root.Remove(tmp)
		return 0, fmt.Errorf("storing %s: %w", uri, err)
	}
	return n, nil
}

// writeTemp copies r to a new synced file under tmpDir and returns its name
// and size. It removes the file if it fails.
func (s *Store) writeTemp(ctx context.Context, r io.Reader) (_ string, _ int64, err error) {
	tmp := path.Join(tmpDir, rand.Text())
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return "", 0, fmt.Errorf("creating a temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = s.root.Remove(tmp)
		}
	}()
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	// The struct hides f's ReadFrom, which would ignore buf.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, &ctxReader{ctx: ctx, r: r}, *buf)
	if err != nil {
		return "", 0, fmt.Errorf("writing after %d bytes: %w", n, err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("syncing: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("closing: %w", err)
	}
	return tmp, n, nil
}

// commit renames the temporary file tmp to name, creating its folders, and
// syncs the folders whose entries changed.
func (s *Store) commit(ctx context.Context, tmp, name string) error {
	dir := path.Dir(name)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Sync the new folders' parents too, or a crash could lose them
		// with the object.
		synced := []string{dir}
		if _, err := s.root.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			for d := path.Dir(dir); d != "."; d = path.Dir(d) {
				synced = append(synced, d)
			}
			synced = append(synced, ".")
		}
		err := s.root.MkdirAll(dir, dirPerm)
		if err == nil {
			err = s.root.Rename(tmp, name)
		}
		switch {
		case err == nil:
			for _, d := range synced {
				if err := s.syncDir(d); err != nil {
					return err
				}
			}
			return nil
		case errors.Is(err, fs.ErrNotExist) && attempt < renameAttempts:
			// A concurrent Delete removed the folder, empty, between
			// MkdirAll and Rename.
			continue
		default:
			return fmt.Errorf("moving into place: %w", err)
		}
	}
}

func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return fmt.Errorf("opening folder %s to sync it: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing folder %s: %w", dir, err)
	}
	return nil
}

// Get opens the object at uri, the bytes of rng only.
func (s *Store) Get(ctx context.Context, uri string, rng storage.Range) (io.ReadCloser, error) {
	name, err := s.name(uri)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", uri, err)
	}
	if rng.Offset < 0 {
		return nil, fmt.Errorf("reading %s: negative offset %d", uri, rng.Offset)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", uri, err)
	}
	f, err := s.open(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", uri, err)
	}
	if rng.Offset > 0 {
		if _, err := f.Seek(rng.Offset, io.SeekStart); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("reading %s from byte %d: %w", uri, rng.Offset, err)
		}
	}
	if rng.Length <= 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, rng.Length), f}, nil
}

// open opens the regular file name, not through a link in its last
// segment.
func (s *Store) open(name string) (*os.File, error) {
	for attempt := 1; ; attempt++ {
		before, err := s.regular(name)
		if err != nil {
			return nil, err
		}
		f, err := s.root.Open(name)
		if err != nil {
			return nil, translate(err)
		}
		after, err := f.Stat()
		if err == nil && os.SameFile(before, after) {
			return f, nil
		}
		_ = f.Close()
		if err != nil {
			return nil, err
		}
		// Replaced in between, by a Put (the next attempt reads the new
		// object) or by a link (it is not an object).
		if attempt == renameAttempts {
			return nil, fmt.Errorf("%s keeps being replaced", name)
		}
	}
}

// regular describes the regular file name, without following a link in
// its last segment: anything else is not an object.
func (s *Store) regular(name string) (fs.FileInfo, error) {
	fi, err := s.root.Lstat(name)
	if err != nil {
		return nil, translate(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, storage.ErrNotFound
	}
	return fi, nil
}

// Stat describes the object at uri.
func (s *Store) Stat(ctx context.Context, uri string) (storage.Info, error) {
	name, err := s.name(uri)
	if err != nil {
		return storage.Info{}, fmt.Errorf("describing %s: %w", uri, err)
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, fmt.Errorf("describing %s: %w", uri, err)
	}
	fi, err := s.regular(name)
	if err != nil {
		return storage.Info{}, fmt.Errorf("describing %s: %w", uri, err)
	}
	return storage.Info{URI: uri, Size: fi.Size(), Updated: fi.ModTime()}, nil
}

// List returns the objects under prefix, sorted by URI.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Info, error) {
	var infos []storage.Info
	_, err := s.walk(ctx, prefix, func(name string, fi fs.FileInfo) error {
		infos = append(infos, storage.Info{URI: storage.URI(name), Size: fi.Size(), Updated: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	// The walk goes by name folder by folder: "a/b" before "a-c".
	slices.SortFunc(infos, func(a, b storage.Info) int { return strings.Compare(a.URI, b.URI) })
	return infos, nil
}

// Delete removes the object at uri.
func (s *Store) Delete(ctx context.Context, uri string) error {
	name, err := s.name(uri)
	if err != nil {
		return fmt.Errorf("deleting %s: %w", uri, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("deleting %s: %w", uri, err)
	}
	if _, err := s.regular(name); err != nil {
		return fmt.Errorf("deleting %s: %w", uri, err)
	}
	if err := s.root.Remove(name); err != nil {
		return fmt.Errorf("deleting %s: %w", uri, translate(err))
	}
	s.removeEmpty(path.Dir(name))
	return nil
}

// DeletePrefix removes every object under prefix and returns how many.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	var n int
	dirs, err := s.walk(ctx, prefix, func(name string, _ fs.FileInfo) error {
		err := s.root.Remove(name)
		switch {
		case err == nil:
			n++
		case errors.Is(err, fs.ErrNotExist): // deleted concurrently
		default:
			return err
		}
		return nil
	})
	// Children before parents, then the folders above the prefix.
	for _, d := range slices.Backward(dirs) {
		_ = s.root.Remove(d) // fails unless empty
	}
	if len(dirs) > 0 {
		s.removeEmpty(path.Dir(dirs[0]))
	}
	if err != nil {
		return n, fmt.Errorf("deleting %s after %d files: %w", prefix, n, err)
	}
	return n, nil
}

// walk calls fn for each object under prefix, in no particular order, and
// returns the folders it went through, parents first, short of the store's
// folder and .tmp.
func (s *Store) walk(ctx context.Context, prefix string, fn func(name string, fi fs.FileInfo) error) ([]string, error) {
	top, err := s.prefixName(prefix)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Only a real folder: not a file named like the prefix (it is not
	// under itself), not a link.
	fi, err := s.root.Lstat(top)
	switch {
	case err != nil && errors.Is(translate(err), storage.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, nil
	}
	var dirs []string
	err = fs.WalkDir(s.root.FS(), top, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			// What was removed during the walk is skipped.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if name == tmpDir {
				return fs.SkipDir
			}
			if name != "." { // the store's folder stays
				dirs = append(dirs, name)
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(name, fi)
	})
	return dirs, err
}

// removeEmpty removes dir and its parents while they are empty, short of
// the store's folder.
func (s *Store) removeEmpty(dir string) {
	for ; dir != "."; dir = path.Dir(dir) {
		fi, err := s.root.Lstat(dir)
		if err != nil || !fi.IsDir() || s.root.Remove(dir) != nil {
			return
		}
	}
}

// name is the file name of uri, relative to the store's folder.
func (s *Store) name(uri string) (string, error) {
	p, err := storage.Parse(uri)
	if err != nil {
		return "", err
	}
	return local(uri, p)
}

// prefixName is the folder name of prefix, relative to the store's folder.
func (s *Store) prefixName(prefix string) (string, error) {
	p, err := storage.ParsePrefix(prefix)
	if err != nil {
		return "", err
	}
	return local(prefix, p)
}

// local checks the path p of uri, from storage.Parse or ParsePrefix, names
// a file inside the store's folder and not its temporary files, and returns
// it: "." for storage.Root.
func local(uri, p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	// Parse already refuses "..", empty segments and backslashes; IsLocal
	// also refuses what the OS would not take as a relative name (reserved
	// names on Windows).
	if !filepath.IsLocal(filepath.FromSlash(p)) {
		return "", fmt.Errorf("%w %q: not a local file name", storage.ErrInvalidURI, uri)
	}
	first, _, _ := strings.Cut(p, "/")
	if strings.EqualFold(first, tmpDir) {
		return "", fmt.Errorf("%w %q: %s is reserved for files being written", storage.ErrInvalidURI, uri, tmpDir)
	}
	return p, nil
}

// translate makes an error of a missing file one wrapping
// storage.ErrNotFound.
func translate(err error) error {
	// ENOTDIR: a file where a folder of the path should be.
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return storage.ErrNotFound
	}
	return err
}

// ctxReader reads r until ctx is done, checking it before each read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
