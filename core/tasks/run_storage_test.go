package tasks

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/storage"
)

func TestStorageTasks(t *testing.T) {
	ctx := t.Context()
	rc, _ := newRunContext(t, parseTask(t, `
  - id: w
    type: io.kestra.plugin.core.storage.Write
    content: "id,name\n1,{{ inputs.name }}\n"
    extension: .csv`), testVars)
	res, err := runTask(ctx, t, rc)
	if err != nil {
		t.Fatal(err)
	}
	uri, _ := res.Outputs["uri"].(string)
	if want := "kite:///kite/test/f/executions/exec1/tasks/w/taskrun1/w.csv"; uri != want {
		t.Fatalf("uri = %q, want %q", uri, want)
	}
	r, err := rc.Files.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	_ = r.Close()
	if string(b) != "id,name\n1,Ada\n" || res.Outputs["size"] != int64(len(b)) {
		t.Errorf("file = %q (size output %v), want the rendered content", b, res.Outputs["size"])
	}

	// Size, then Delete, of the same file, by the same store.
	vars := map[string]any{"outputs": map[string]any{"w": map[string]any{"uri": uri}}}
	size, _ := newRunContext(t, parseTask(t, `
  - id: s
    type: io.kestra.plugin.core.storage.Size
    uri: "{{ outputs.w.uri }}"`), vars)
	size.Files.Store = rc.Files.Store
	res, err = runTask(ctx, t, size)
	if err != nil || res.Outputs["size"] != int64(len(b)) {
		t.Fatalf("Size = %v, %v; want %d", res, err, len(b))
	}
	del, _ := newRunContext(t, parseTask(t, `
  - id: d
    type: io.kestra.plugin.core.storage.Delete
    uri: "{{ outputs.w.uri }}"
    errorOnMissing: true`), vars)
	del.Files.Store = rc.Files.Store
	if res, err = runTask(ctx, t, del); err != nil || res.Outputs["deleted"] != true {
		t.Fatalf("Delete = %v, %v", res, err)
	}
	if _, err := rc.Files.Stat(ctx, uri); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after Delete, Stat = %v; want ErrNotFound", err)
	}
	if _, err = runTask(ctx, t, del); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Delete of a missing file with errorOnMissing = %v; want ErrNotFound", err)
	}
}

func TestPurgeCurrentExecutionFiles(t *testing.T) {
	ctx := t.Context()
	rc, _ := newRunContext(t, parseTask(t, `
  - id: p
    type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles`), nil)
	store := rc.Files.Store
	keep := "kite:///kite/test/f/executions/exec10/inputs/a/x.txt"
	for _, uri := range []string{
		"kite:///kite/test/f/executions/exec1/inputs/a/x.txt",
		"kite:///kite/test/f/executions/exec1/tasks/t/tr/y.txt",
		keep,
	} {
		if _, err := store.Put(ctx, uri, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	res, err := runTask(ctx, t, rc)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Outputs["uris"].([]any)); n != 2 {
		t.Errorf("purged %d files, want 2: %v", n, res.Outputs["uris"])
	}
	left, err := store.List(ctx, storage.Root)
	if err != nil || len(left) != 1 || left[0].URI != keep {
		t.Errorf("left = %v, %v; want only the other execution's file", left, err)
	}
}

func TestFileFunctions(t *testing.T) {
	ctx := t.Context()
	rc, _ := newRunContext(t, &flow.Task{ID: "t", Type: "return"}, nil)
	uri := "kite:///kite/test/f/executions/exec1/inputs/f/a.txt"
	if _, err := rc.Files.Store.Put(ctx, uri, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	engine := expr.New(expr.WithFunc("read", ReadFunc), expr.WithFunc("fileExists", FileExistsFunc),
		expr.WithFunc("fileSize", FileSizeFunc), expr.WithFunc("isFileEmpty", IsFileEmptyFunc))
	vars := map[string]any{"inputs": map[string]any{"f": uri}}
	fctx := WithFiles(ctx, rc.Files)
	for _, tc := range []struct{ src, want, wantErr string }{
		{"{{ read(inputs.f) }}", "hello", ""},
		{"{{ fileSize(inputs.f) }}", "5", ""},
		{"{{ isFileEmpty(inputs.f) }}", "false", ""},
		{"{{ fileExists(inputs.f) }} {{ fileExists('kite:///kite/test/f/none') }}", "true false", ""},
		{"{{ read('kite:///kite/test/f/none') }}", "", "kite:///kite/test/f/none"},
		{"{{ read('kite:///other/ns/f') }}", "", "not a file of namespace kite.test"},
		{"{{ read('kite:///kite/../etc/passwd') }}", "", "invalid internal storage URI"},
	} {
		got, err := engine.Render(fctx, tc.src, vars)
		if tc.wantErr != "" {
			wantErr(t, err, tc.wantErr)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
	// Outside a task run, the functions say there is no storage.
	_, err := engine.Render(ctx, "{{ read(inputs.f) }}", vars)
	wantErr(t, err, "no internal storage")
}
