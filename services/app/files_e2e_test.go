package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/storage/local"
	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/app"
)

// filesFlow takes a FILE input through a shell task to output files, reads
// one back in an expression, writes a file with the Write task, and makes
// an output larger than a Kafka record may carry (claim-check) that later
// tasks and an If condition read.
const filesFlow = `id: files
namespace: kite.test.files
inputs:
  - id: data
    type: FILE
tasks:
  - id: count
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      data.csv: "{{ inputs.data }}"
    outputFiles: ["out/*"]
    commands:
      - mkdir out && wc -l < data.csv | tr -d ' ' > out/count.txt && cp data.csv out/copy.csv
  - id: check
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.count.outputFiles['out/count.txt']) | trim }}"
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "lines={{ outputs.check.value }}"
    extension: .txt
  - id: big
    type: io.kestra.plugin.core.debug.Return
    format: "{% for i in range(1, 2000) %}line {{ i }};{% endfor %}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.big.value | length }}"
  - id: branch
    type: io.kestra.plugin.core.flow.If
    condition: "{{ outputs.big.value | startsWith('line 1;') }}"
    then:
      - id: seen
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.big.value | slice(0, 7) }}"
`

// uploadFile creates an execution with content as its FILE input, sent in
// chunks as `kite execution run --input data=@…` does.
func uploadFile(tb testing.TB, conn *grpc.ClientConn, req *kitev1.ExecutionServiceCreateRequest, input, name string, content []byte, chunk int) (*kitev1.Execution, error) {
	tb.Helper()
	stream, err := kitev1.NewExecutionServiceClient(conn).CreateWithFiles(tb.Context())
	if err != nil {
		return nil, err
	}
	msgs := []*kitev1.ExecutionServiceCreateWithFilesRequest{{Part: &kitev1.ExecutionServiceCreateWithFilesRequest_Request{Request: req}}}
	for off := 0; off < len(content); off += chunk {
		c := &kitev1.FileChunk{Input: input, Data: content[off:min(off+chunk, len(content))]}
		if off == 0 {
			c.FileName = name
		}
		msgs = append(msgs, &kitev1.ExecutionServiceCreateWithFilesRequest{Part: &kitev1.ExecutionServiceCreateWithFilesRequest_Chunk{Chunk: c}})
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break // CloseAndRecv says why
		}
	}
	resp, err := stream.CloseAndRecv()
	return resp.GetExecution(), err
}

func download(tb testing.TB, files kitev1.FileServiceClient, id, uri string) []byte {
	tb.Helper()
	stream, err := files.Download(tb.Context(), &kitev1.FileServiceDownloadRequest{ExecutionId: id, Uri: uri})
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return buf.Bytes()
		}
		if err != nil {
			tb.Fatalf("downloading %s: %v", uri, err)
		}
		buf.Write(m.GetData())
	}
}

func TestFilesThroughAnExecution(t *testing.T) {
	var dataDir string
	a := startApp(t, "standalone", nil, func(c *app.Config) {
		dataDir = c.DataDir
		c.Storage.MaxInlineBytes = 4096
	})
	conn := dial(t, a)
	if _, err := kitev1.NewFlowServiceClient(conn).Apply(t.Context(), &kitev1.FlowServiceApplyRequest{Source: filesFlow}); err != nil {
		t.Fatal(err)
	}

	// 3 MiB of random lines, sent in 256 KiB chunks.
	var content []byte
	for len(content) < 3<<20 {
		content = append(content, []byte(rand.Text()+"\n")...)
	}
	lines := bytes.Count(content, []byte("\n"))
	created, err := uploadFile(t, conn, &kitev1.ExecutionServiceCreateRequest{Namespace: "kite.test.files", FlowId: "files"},
		"data", "rows.csv", content, 256<<10)
	if err != nil {
		t.Fatalf("CreateWithFiles: %v", err)
	}
	id := created.GetId()
	inputURI := created.GetInputs().GetFields()["data"].GetStringValue()
	if want := "kite:///kite/test/files/files/executions/" + id + "/inputs/data/rows.csv"; inputURI != want {
		t.Fatalf("the FILE input is %q, want %q", inputURI, want)
	}
	watch(t, conn, id, nil)

	got, err := kitev1.NewExecutionServiceClient(conn).Get(t.Context(), &kitev1.ExecutionServiceGetRequest{ExecutionId: id})
	if err != nil {
		t.Fatal(err)
	}
	e := got.GetExecution()
	if st := codec.FromState(e.GetState()); st != "SUCCESS" {
		t.Fatalf("execution ended %s, want SUCCESS: %v", st, e)
	}
	outputs := map[string]map[string]any{}
	for _, tr := range e.GetTaskRuns() {
		outputs[tr.GetTaskId()] = codec.FromStruct(tr.GetOutputs())
	}
	if v := outputs["check"]["value"]; v != strconv.Itoa(lines) {
		t.Errorf("read() of the count file = %v, want %d", v, lines)
	}
	// The large output comes back whole from Get, and the tasks and the
	// executor's If condition read it as if it were inline.
	big, _ := outputs["big"]["value"].(string)
	if !strings.HasPrefix(big, "line 1;line 2;") || !strings.Contains(big, ";line 1999;") || len(big) < 4096 {
		t.Errorf("the large output is %.80q…, want the task's value", big)
	}
	if v := outputs["after"]["value"]; v != strconv.Itoa(len(big)) {
		t.Errorf("a later task saw the large output of length %v, want %d", v, len(big))
	}
	if v := outputs["seen"]["value"]; v != "line 1;" {
		t.Errorf("the If branch saw %v, want line 1;", v)
	}

	// The files of the execution: the input, the shell task's two output
	// files and the Write task's file, byte for byte.
	files := kitev1.NewFileServiceClient(conn)
	list, err := files.List(t.Context(), &kitev1.FileServiceListRequest{ExecutionId: id})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*kitev1.File{}
	for _, f := range list.GetFiles() {
		byName[f.GetName()] = f
	}
	outFiles, _ := outputs["count"]["outputFiles"].(map[string]any)
	copyURI, _ := outFiles["out/copy.csv"].(string)
	writeURI, _ := outputs["write"]["uri"].(string)
	for _, want := range []struct {
		uri     string
		content []byte
	}{
		{inputURI, content},
		{copyURI, content},
		{writeURI, []byte("lines=" + strconv.Itoa(lines))},
	} {
		found := false
		for _, f := range list.GetFiles() {
			found = found || f.GetUri() == want.uri
		}
		if !found {
			t.Errorf("List does not hold %s; it has %v", want.uri, byName)
			continue
		}
		if b := download(t, files, id, want.uri); !bytes.Equal(b, want.content) {
			t.Errorf("%s: downloaded %d bytes that differ from the %d expected", want.uri, len(b), len(want.content))
		}
	}
	// The large output is kept as a file of the task run (claim-check).
	kept := false
	for name := range byName {
		kept = kept || strings.HasPrefix(name, "tasks/big/") && strings.HasSuffix(name, "/outputs-1/value.json")
	}
	if !kept {
		t.Errorf("no claim-checked value of task big among the files: %v", byName)
	}

	// An upload cut in the middle creates nothing and leaves no file.
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := kitev1.NewExecutionServiceClient(conn).CreateWithFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&kitev1.ExecutionServiceCreateWithFilesRequest{Part: &kitev1.ExecutionServiceCreateWithFilesRequest_Request{
		Request: &kitev1.ExecutionServiceCreateRequest{Namespace: "kite.test.files", FlowId: "files"}}})
	_ = stream.Send(&kitev1.ExecutionServiceCreateWithFilesRequest{Part: &kitev1.ExecutionServiceCreateWithFilesRequest_Chunk{
		Chunk: &kitev1.FileChunk{Input: "data", FileName: "cut.csv", Data: content[:1<<20]}}})
	// Cut the stream once the server is storing the file (its temporary
	// file exists).
	tmp := filepath.Join(dataDir, "storage", ".tmp")
	waitFor(t, "the upload to start", func() bool {
		entries, _ := os.ReadDir(tmp)
		return len(entries) > 0
	})
	cancel()
	store, err := local.New(filepath.Join(dataDir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the interrupted upload's temporary file to go", func() bool {
		entries, _ := os.ReadDir(tmp)
		return len(entries) == 0
	})
	all, err := store.List(t.Context(), storage.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range all {
		if strings.HasSuffix(i.URI, "/cut.csv") {
			t.Errorf("the interrupted upload left %s", i.URI)
		}
	}
}

// waitFor polls cond until it holds, failing after 20 seconds.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
