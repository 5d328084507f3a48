package local_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/storage/local"
	"github.com/kiteflow/kite/core/storage/storagetest"
)

func open(tb testing.TB) storage.Storage {
	tb.Helper()
	return openIn(tb, tb.TempDir())
}

func openIn(tb testing.TB, dir string) *local.Store {
	tb.Helper()
	s, err := local.New(dir)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storagetest.Run(t, open)
}

func BenchmarkStore(b *testing.B) {
	storagetest.Bench(b, open)
}

func TestNewCreatesFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := openIn(t, dir)
	uri := storage.URI("company/flow/executions/e/x.txt")
	if _, err := s.Put(t.Context(), uri, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// The object is the file at the URI's path, readable by Kite's user
	// only.
	fi, err := os.Stat(filepath.Join(dir, "company", "flow", "executions", "e", "x.txt"))
	if err != nil {
		t.Fatalf("the object's file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("the object's file has mode %v, want no access for others", perm)
	}
}

func TestNewOnAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := local.New(f); err == nil {
		t.Errorf("New on a file: no error")
	}
}

// TestTempFiles: what a crashed Put leaves in .tmp is never an object,
// and .tmp is out of reach of URIs.
func TestTempFiles(t *testing.T) {
	dir := t.TempDir()
	s := openIn(t, dir)
	if err := os.WriteFile(filepath.Join(dir, ".tmp", "crashed"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := storage.URI("company/flow/executions/e/x.txt")
	if _, err := s.Put(t.Context(), uri, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{storage.URI("company"), storage.Root} {
		infos, err := s.List(t.Context(), prefix)
		if err != nil || len(infos) != 1 || infos[0].URI != uri {
			t.Errorf("List(%s) = %v, %v, want only %s", prefix, infos, err, uri)
		}
	}
	for _, uri := range []string{storage.URI(".tmp/crashed"), storage.URI(".TMP/crashed")} {
		if _, err := s.Stat(t.Context(), uri); !errors.Is(err, storage.ErrInvalidURI) {
			t.Errorf("Stat(%s): error %v, want one wrapping storage.ErrInvalidURI", uri, err)
		}
		if _, err := s.Put(t.Context(), uri, strings.NewReader("x")); !errors.Is(err, storage.ErrInvalidURI) {
			t.Errorf("Put(%s): error %v, want one wrapping storage.ErrInvalidURI", uri, err)
		}
		if _, err := s.DeletePrefix(t.Context(), uri); !errors.Is(err, storage.ErrInvalidURI) {
			t.Errorf("DeletePrefix(%s): error %v, want one wrapping storage.ErrInvalidURI", uri, err)
		}
	}

	// A failed Put cleans up after itself.
	if _, err := s.Put(t.Context(), uri, io.MultiReader(strings.NewReader("part"), errorReader{})); err == nil {
		t.Fatal("Put from a failing reader: no error")
	}
	entries, err := os.ReadDir(filepath.Join(dir, ".tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if names := names(entries); !slices.Equal(names, []string{"crashed"}) {
		t.Errorf(".tmp holds %q after a failed Put, want only the crashed file", names)
	}

	// Deleting everything leaves .tmp alone.
	if n, err := s.DeletePrefix(t.Context(), storage.Root); n != 1 || err != nil {
		t.Errorf("DeletePrefix(Root) = %d, %v, want 1, nil", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp", "crashed")); err != nil {
		t.Errorf("DeletePrefix(Root) reached .tmp: %v", err)
	}
	if _, err := s.Put(t.Context(), uri, strings.NewReader("x")); err != nil {
		t.Errorf("Put after DeletePrefix(Root): %v", err)
	}
}

type errorReader struct{}

func (errorReader) Read([]byte) (int, error) { return 0, errors.New("broken") }

// TestDeletePrefixRemovesFolders: purging an execution leaves no empty
// folders behind, nor removes those still in use.
func TestDeletePrefixRemovesFolders(t *testing.T) {
	dir := t.TempDir()
	s := openIn(t, dir)
	for _, p := range []string{"company/team/flow/executions/e1/tasks/t/r/a/b.txt", "company/team/flow/executions/e1/c.txt", "company/team/other/executions/e2/d.txt"} {
		if _, err := s.Put(t.Context(), storage.URI(p), strings.NewReader(p)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeletePrefix(t.Context(), storage.URI("company/team/flow/executions/e1")); n != 2 || err != nil {
		t.Fatalf("DeletePrefix = %d, %v, want 2, nil", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "company", "team", "flow")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the flow's folder, now empty, is still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "company", "team", "other", "executions", "e2", "d.txt")); err != nil {
		t.Errorf("another flow's file: %v", err)
	}
	if err := s.Delete(t.Context(), storage.URI("company/team/other/executions/e2/d.txt")); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if names := names(entries); !slices.Equal(names, []string{".tmp"}) {
		t.Errorf("after deleting every object the folder holds %q, want only .tmp", names)
	}
}

func names(entries []os.DirEntry) []string {
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestSymlinks: links placed in the folder, pointing outside it, are not
// followed, neither to read nor to write.
func TestSymlinks(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openIn(t, dir)
	team := filepath.Join(dir, "company", "team")
	if err := os.MkdirAll(team, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(team, "file-link")); err != nil {
		t.Skipf("cannot make a symbolic link: %v", err)
	}
	if err := os.Symlink(outside, filepath.Join(team, "dir-link")); err != nil {
		t.Fatal(err)
	}
	fileLink, inDirLink := storage.URI("company/team/file-link"), storage.URI("company/team/dir-link/secret")

	for _, uri := range []string{fileLink, inDirLink} {
		if r, err := s.Get(t.Context(), uri, storage.Whole); err == nil {
			data, _ := io.ReadAll(r)
			_ = r.Close()
			t.Errorf("Get(%s) read %q through a link", uri, data)
		}
		if info, err := s.Stat(t.Context(), uri); err == nil {
			t.Errorf("Stat(%s) = %+v through a link", uri, info)
		}
		if err := s.Delete(t.Context(), uri); err == nil {
			t.Errorf("Delete(%s) through a link: no error", uri)
		}
	}
	if _, err := s.Put(t.Context(), storage.URI("company/team/dir-link/planted"), strings.NewReader("x")); err == nil {
		t.Errorf("Put through a link to a folder: no error")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Put wrote through a link to a folder outside (%v)", err)
	}
	if infos, err := s.List(t.Context(), storage.URI("company")); err != nil || len(infos) != 0 {
		t.Errorf("List = %v, %v, want no object", infos, err)
	}
	if infos, err := s.List(t.Context(), storage.URI("company/team/dir-link")); err != nil || len(infos) != 0 {
		t.Errorf("List through a link = %v, %v, want no object", infos, err)
	}
	if n, err := s.DeletePrefix(t.Context(), storage.URI("company")); err != nil || n != 0 {
		t.Errorf("DeletePrefix = %d, %v, want 0, nil", n, err)
	}

	// A Put over a link replaces the link, not what it points to.
	if _, err := s.Put(t.Context(), fileLink, strings.NewReader("mine")); err != nil {
		t.Fatalf("Put over a link: %v", err)
	}
	if data, err := os.ReadFile(secret); err != nil || string(data) != "secret" {
		t.Errorf("the file outside = %q, %v, want it untouched", data, err)
	}
	r, err := s.Get(t.Context(), fileLink, storage.Whole)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	if data, err := io.ReadAll(r); err != nil || string(data) != "mine" {
		t.Errorf("Get after Put over a link = %q, %v, want mine", data, err)
	}
}

// TestFolderIsALink: a store whose folder is itself a link works.
func TestFolderIsALink(t *testing.T) {
	target := t.TempDir()
	link := filepath.Join(t.TempDir(), "store")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("cannot make a symbolic link: %v", err)
	}
	s := openIn(t, link)
	uri := storage.URI("company/flow/executions/e/x.txt")
	if _, err := s.Put(t.Context(), uri, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "company", "flow", "executions", "e", "x.txt")); err != nil {
		t.Error(err)
	}
}
