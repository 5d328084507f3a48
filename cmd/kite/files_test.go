package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/storage/local"
	"github.com/kiteflow/kite/integration/clustertest"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/api"
	"github.com/kiteflow/kite/streams"
)

// noFlows is a FlowSource without flows: the files tests create no
// executions through the API.
type noFlows struct{}

func (noFlows) Flow(namespace, id string, _ int) (*flow.Flow, error) {
	return nil, flow.ErrNotFound
}
func (noFlows) Latest() []*flow.Flow { return nil }

// filesAPI is the real API server on a kfake broker, with a local internal
// storage.
type filesAPI struct {
	addr  string
	kafka streams.Config
	store storage.Storage
}

// startFilesAPI serves the real API on 127.0.0.1 with store as its internal
// storage (nil: none); it stops when the test ends.
func startFilesAPI(t *testing.T, store storage.Storage) *filesAPI {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	kc := streams.Defaults()
	kc.Brokers, kc.Partitions = cluster.ListenAddrs(), 1
	adm := kadm.NewClient(clustertest.Client(t, kc))
	if err := streams.EnsureTopics(t.Context(), adm, kc); err != nil {
		t.Fatal(err)
	}
	cfg := api.Defaults()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	srv, err := api.New(cfg, api.Deps{Flows: noFlows{}, Kafka: kc, Storage: store}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Run(ctx); err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &filesAPI{addr: srv.GRPCAddr(), kafka: kc, store: store}
}

// execution records the CREATED event of a new execution of company.team
// etl, as the executor would, and returns its id.
func (a *filesAPI) execution(t *testing.T) string {
	t.Helper()
	id := execution.RandomExecutionID(time.Now())
	ev := &kitev1.ExecutionEvent{Seq: 1, ExecutionId: id, Time: timestamppb.Now(), Type: kitev1.EventType_EVENT_TYPE_CREATED,
		Execution: &kitev1.Execution{Id: id, Namespace: "company.team", FlowId: "etl", FlowRevision: 1, State: kitev1.State_STATE_CREATED}}
	v, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: a.kafka.Topic(streams.TopicExecutionEvents), Key: []byte(id), Value: v}
	if err := clustertest.Client(t, a.kafka).ProduceSync(t.Context(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return id
}

// put stores the files, by name, in the folder of execution id.
func (a *filesAPI) put(t *testing.T, id string, files map[string][]byte) {
	t.Helper()
	prefix := storage.ExecutionPrefix("company.team", "etl", id)
	for name, data := range files {
		if _, err := a.store.Put(t.Context(), prefix+"/"+name, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
}

func localStore(t *testing.T) *local.Store {
	t.Helper()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func pseudoRandom(n int) []byte {
	r := rand.New(rand.NewPCG(7, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// checkSaved fails unless dir holds exactly the files, with their content.
func checkSaved(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	found := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		name := filepath.ToSlash(rel)
		found[name] = true
		want, ok := files[name]
		if !ok {
			t.Errorf("unexpected file %s (a temporary file left behind?)", name)
			return nil
		}
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes differ from the %d stored", name, len(got), len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if !found[name] {
			t.Errorf("%s was not saved", name)
		}
	}
}

func TestExecutionFiles(t *testing.T) {
	a := startFilesAPI(t, localStore(t))
	id := a.execution(t)
	files := map[string][]byte{
		"inputs/data/rows.csv":        []byte("a,b\n1,2\n"),
		"tasks/t1/tr-1/out.bin":       pseudoRandom(5<<20 + 321), // 5 MiB and a bit: six chunks
		"tasks/t1/tr-1/empty.txt":     {},
		"tasks/t2/tr-2/report/a.json": []byte(`{"ok":true}`),
	}
	a.put(t, id, files)
	prefix := storage.ExecutionPrefix("company.team", "etl", id)

	t.Run("list", func(t *testing.T) {
		out, errOut, code := runCLI(t, "execution", "files", id, "--server", a.addr)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 || !regexp.MustCompile(`^NAME\s+SIZE\s+UPDATED\s+URI$`).MatchString(lines[0]) {
			t.Fatalf("output:\n%s", out)
		}
		for i, want := range []string{
			`^inputs/data/rows\.csv\s+8 B\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+` + regexp.QuoteMeta(prefix+"/inputs/data/rows.csv") + `$`,
			`^tasks/t1/tr-1/empty\.txt\s+0 B\s`,
			`^tasks/t1/tr-1/out\.bin\s+5\.0 MiB\s`,
			`^tasks/t2/tr-2/report/a\.json\s+11 B\s`,
		} {
			if !regexp.MustCompile(want).MatchString(lines[i+1]) {
				t.Errorf("line %d %q does not match %s", i+1, lines[i+1], want)
			}
		}

		out, _, code = runCLI(t, "execution", "files", id, "--server", a.addr, "-o", "json")
		var doc struct {
			Files []struct {
				URI, Name, Size, Updated string
			}
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || len(doc.Files) != 4 {
			t.Fatalf("-o json: exit %d, %v:\n%s", code, err, out)
		}
		if f := doc.Files[2]; f.Name != "tasks/t1/tr-1/out.bin" || f.Size != "5243201" || f.URI != prefix+"/tasks/t1/tr-1/out.bin" || f.Updated == "" {
			t.Errorf("-o json: third file %+v", f)
		}
		out, _, _ = runCLI(t, "execution", "files", id, "--server", a.addr, "-o", "yaml")
		if !strings.Contains(out, "name: tasks/t1/tr-1/out.bin") {
			t.Errorf("-o yaml:\n%s", out)
		}

		empty := a.execution(t)
		out, _, code = runCLI(t, "execution", "files", empty, "--server", a.addr)
		if code != 0 || strings.TrimSpace(out) != "execution "+empty+" has no files" {
			t.Errorf("an execution without files: exit %d, %q", code, out)
		}
	})

	t.Run("download all", func(t *testing.T) {
		dir := t.TempDir()
		out, errOut, code := runCLI(t, "execution", "files", id, "--server", a.addr, "--download", "--dir", dir)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		checkSaved(t, filepath.Join(dir, id), files)
		if want := "saved 4 files (5.0 MiB) in " + filepath.Join(dir, id); strings.TrimSpace(out) != want {
			t.Errorf("stdout %q, want %q", out, want)
		}
		for _, want := range []string{"saved inputs/data/rows.csv (8 B)\n", "saved tasks/t1/tr-1/out.bin (5.0 MiB)\n", "saved tasks/t1/tr-1/empty.txt (0 B)\n"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr %q lacks %q", errOut, want)
			}
		}

		// Again: the files are replaced, nothing else appears.
		if _, errOut, code := runCLI(t, "execution", "files", id, "--server", a.addr, "--download", "--dir", dir); code != 0 {
			t.Fatalf("second download: exit %d: %s", code, errOut)
		}
		checkSaved(t, filepath.Join(dir, id), files)
	})

	t.Run("download some", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir) // --dir defaults to the current folder
		out, errOut, code := runCLI(t, "execution", "files", id, "--server", a.addr, "--download",
			"--file", "tasks/t1/tr-1/out.bin", "--file", "inputs/data/rows.csv", "-o", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		checkSaved(t, filepath.Join(dir, id), map[string][]byte{
			"tasks/t1/tr-1/out.bin": files["tasks/t1/tr-1/out.bin"], "inputs/data/rows.csv": files["inputs/data/rows.csv"],
		})
		var doc struct{ Files []struct{ Name string } }
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Files) != 2 || doc.Files[0].Name != "inputs/data/rows.csv" {
			t.Errorf("-o json: %v:\n%s", err, out)
		}
		if !strings.Contains(errOut, "saved 2 files (5.0 MiB) in "+id) {
			t.Errorf("stderr %q lacks the summary", errOut)
		}
	})

	t.Run("errors", func(t *testing.T) {
		dir := t.TempDir()
		unknown := execution.RandomExecutionID(time.Now())
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"unknown file", []string{id, "--download", "--dir", dir, "--file", "inputs/nope.csv"},
				`execution ` + id + ` has no file "inputs/nope.csv" (--file takes a NAME of the list: kite execution files ` + id + `)`},
			{"--file without --download", []string{id, "--file", "inputs/data/rows.csv"}, "--file and --dir choose what --download saves and where: add --download"},
			{"--dir without --download", []string{id, "--dir", dir}, "add --download"},
			{"unknown execution", []string{unknown}, "execution " + unknown + " not found"},
			{"unknown execution, download", []string{unknown, "--download", "--dir", dir}, "execution " + unknown + " not found"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, errOut, code := runCLI(t, append([]string{"execution", "files", "--server", a.addr}, tt.args...)...)
				if code != 1 || !strings.Contains(errOut, tt.want) {
					t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, tt.want)
				}
			})
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("refused downloads left %d entries in --dir", len(entries))
		}
	})
}

func TestExecutionFilesWithoutStorage(t *testing.T) {
	a := startFilesAPI(t, nil)
	id := a.execution(t)
	_, errOut, code := runCLI(t, "execution", "files", id, "--server", a.addr)
	if want := "error: this Kite server has no internal storage configured (storage.type): it keeps no files of executions\n"; code != 1 || errOut != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, want)
	}
}

// flakyFiles forwards to a FileService and cuts the first Download after
// two chunks with UNAVAILABLE, as a server that restarts does.
type flakyFiles struct {
	kitev1.UnimplementedFileServiceServer
	next kitev1.FileServiceClient

	mu      sync.Mutex
	offsets []int64 // of every Download
}

func (f *flakyFiles) List(ctx context.Context, req *kitev1.FileServiceListRequest) (*kitev1.FileServiceListResponse, error) {
	return f.next.List(ctx, req)
}

func (f *flakyFiles) Download(req *kitev1.FileServiceDownloadRequest, stream grpc.ServerStreamingServer[kitev1.FileServiceDownloadResponse]) error {
	f.mu.Lock()
	f.offsets = append(f.offsets, req.GetOffset())
	cut := len(f.offsets) == 1
	f.mu.Unlock()
	in, err := f.next.Download(stream.Context(), req)
	if err != nil {
		return err
	}
	for chunks := 0; ; {
		msg, err := in.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if msg.GetData() != nil {
			if cut && chunks == 2 {
				return status.Error(codes.Unavailable, "the API server is shutting down")
			}
			chunks++
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
}

func TestExecutionFilesResume(t *testing.T) {
	a := startFilesAPI(t, localStore(t))
	id := a.execution(t)
	big := pseudoRandom(4<<20 + 99)
	a.put(t, id, map[string][]byte{"tasks/t1/tr-1/out.bin": big})

	conn, err := grpc.NewClient(a.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	flaky := &flakyFiles{next: kitev1.NewFileServiceClient(conn)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	kitev1.RegisterFileServiceServer(srv, flaky)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	dir := t.TempDir()
	_, errOut, code := runCLI(t, "execution", "files", id, "--server", lis.Addr().String(), "--download", "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkSaved(t, filepath.Join(dir, id), map[string][]byte{"tasks/t1/tr-1/out.bin": big})
	if want := "lost the download of tasks/t1/tr-1/out.bin at 2.0 MiB (the API server is shutting down); resuming\n"; !strings.Contains(errOut, want) {
		t.Errorf("stderr %q lacks %q", errOut, want)
	}
	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	if len(flaky.offsets) != 2 || flaky.offsets[0] != 0 || flaky.offsets[1] != 2<<20 {
		t.Errorf("Download offsets %v, want [0 %d]", flaky.offsets, 2<<20)
	}
}

func TestChooseFiles(t *testing.T) {
	files := []*kitev1.File{{Name: "inputs/a/x.csv"}, {Name: "tasks/t/r/y.txt"}}
	if got, err := chooseFiles("E1", files, []string{"tasks/t/r/y.txt"}); err != nil || len(got) != 1 || got[0] != files[1] {
		t.Errorf("chooseFiles(one) = %v, %v", got, err)
	}
	for _, tt := range []struct {
		name  string
		id    string
		files []*kitev1.File
		want  string
	}{
		{"dot dot", "E1", []*kitev1.File{{Name: "../../etc/passwd"}}, "would be saved outside its folder"},
		{"absolute", "E1", []*kitev1.File{{Name: "/etc/passwd"}}, "would be saved outside its folder"},
		{"inner dot dot", "E1", []*kitev1.File{{Name: "tasks/../../x"}}, "would be saved outside its folder"},
		{"empty name", "E1", []*kitev1.File{{Name: ""}}, "would be saved outside its folder"},
		{"id with a slash", "../E1", files, "cannot name a folder"},
		{"id dot dot", "..", files, "cannot name a folder"},
		{"no files", "E1", nil, "has no files to download"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := chooseFiles(tt.id, tt.files, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("chooseFiles() = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		12_900_000: "12.3 MiB", 5 << 30: "5.0 GiB", 3 << 40: "3.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
