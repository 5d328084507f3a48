package main

// Tests of the client commands against the stand-in server of fakeapi_test.go.
// The commands run in-process, as main runs them, so that the tests can see
// what the server received.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// syncBuffer is an output stream that a test can read while a command writes
// to it, and wait on.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed at each write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	close(s.changed)
	s.changed = make(chan struct{})
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output matches re, for 10s at most.
func (s *syncBuffer) waitFor(t testing.TB, re *regexp.Regexp) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		out, changed := s.b.String(), s.changed
		s.mu.Unlock()
		if re.MatchString(out) {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %q in the output after 10s:\n%s", re, out)
		}
	}
}

// cliRun is a kite command running in this process.
type cliRun struct {
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int
}

// startCLI runs kite with args, as main does: an *exitError gives its code,
// another error is printed and gives 1.
func startCLI(t testing.TB, args ...string) *cliRun {
	t.Helper()
	r := &cliRun{stdout: newSyncBuffer(), stderr: newSyncBuffer(), done: make(chan struct{})}
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(r.stdout)
	root.SetErr(r.stderr)
	go func() {
		defer close(r.done)
		err := root.ExecuteContext(t.Context())
		var ee *exitError
		switch {
		case errors.As(err, &ee):
			r.code = ee.code
		case err != nil:
			fmt.Fprintln(r.stderr, "error:", err)
			r.code = 1
		}
	}()
	t.Cleanup(func() { <-r.done })
	return r
}

func (r *cliRun) wait(t testing.TB) (stdout, stderr string, code int) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the command did not end within 30s; output so far:\n%s%s", r.stdout, r.stderr)
	}
	return r.stdout.String(), r.stderr.String(), r.code
}

func runCLI(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return startCLI(t, args...).wait(t)
}

func writeTemp(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const helloFlow = `id: hello
namespace: company.team
description: Says hello
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: Hello
`

func TestFlowApply(t *testing.T) {
	_, addr := startFakeAPI(t)
	dir := t.TempDir()
	hello := writeTemp(t, dir, "hello.yaml", helloFlow)
	bad := writeTemp(t, t.TempDir(), "unknown-type.yaml", readFile(t, "../../core/flow/testdata/invalid/unknown-type.yaml"))
	warn := writeTemp(t, t.TempDir(), "warn.yaml", `id: warn
namespace: company.team
tasks:
  - id: unclosed
    type: log
    message: "Hello {{ inputs.name "
`)

	// The steps share the server: each sees what the previous ones stored.
	for _, step := range []struct {
		name       string
		before     func()
		args       []string
		code       int
		out, noOut []string
		errOut     []string
	}{
		{name: "a new flow", args: []string{hello}, out: []string{hello + ": company.team.hello → revision 1 (new)\n"}},
		{name: "the same source again", args: []string{hello}, out: []string{hello + ": company.team.hello → revision 1 (unchanged)\n"}},
		{
			name:   "a changed source",
			before: func() { writeTemp(t, dir, "hello.yaml", helloFlow+"    description: changed\n") },
			args:   []string{dir}, out: []string{hello + ": company.team.hello → revision 2\n"}, noOut: []string{"unchanged", "(new)"},
		},
		{
			name: "problems are located, every file is tried, exit 1",
			args: []string{bad, dir},
			code: 1,
			errOut: []string{
				bad + `:5:11: tasks[0].type: unknown task type "io.kestra.plugin.core.log.Lg"; did you mean "io.kestra.plugin.core.log.Log"?` + "\n",
				bad + `:8:11: tasks[1].type: unknown task type "sequencial"; did you mean "sequential"?` + "\n",
			},
			out:   []string{hello + ": company.team.hello → revision 2 (unchanged)\n", "2 files: 0 new, 0 changed, 1 unchanged, 1 refused\n"},
			noOut: []string{bad},
		},
		{
			name:   "warnings are printed, the flow is applied",
			args:   []string{warn},
			out:    []string{warn + ": company.team.warn → revision 1 (new)\n"},
			errOut: []string{warn + `:6:21: warning: tasks[0].message: expression syntax: unclosed "{{", expected "}}"`},
		},
		{name: "a missing path", args: []string{filepath.Join(dir, "nope.yaml")}, code: 1, errOut: []string{"nope.yaml: no such file or directory"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before()
			}
			out, errOut, code := runCLI(t, append([]string{"flow", "apply", "--server", addr}, step.args...)...)
			if code != step.code {
				t.Errorf("exit %d, want %d\n%s%s", code, step.code, out, errOut)
			}
			wantSubstrings(t, "stdout", out, step.out...)
			wantSubstrings(t, "stderr", errOut, step.errOut...)
			for _, no := range step.noOut {
				if strings.Contains(out, no) {
					t.Errorf("stdout has %q:\n%s", no, out)
				}
			}
		})
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantSubstrings(t testing.TB, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s has no %q:\n%s", what, w, got)
		}
	}
}

func TestFlowListGetDelete(t *testing.T) {
	_, addr := startFakeAPI(t)
	dir := t.TempDir()
	writeTemp(t, dir, "a.yaml", helloFlow)
	writeTemp(t, dir, "b.yaml", strings.Replace(helloFlow, "id: hello", "id: bye", 1))
	writeTemp(t, dir, "c.yaml", strings.Replace(helloFlow, "company.team", "company.other", 1))
	writeTemp(t, dir, "d.yaml", strings.Replace(helloFlow, "company.team", "companyx", 1))
	if out, errOut, code := runCLI(t, "flow", "apply", "--server", addr, dir); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}

	t.Run("list follows the pages", func(t *testing.T) {
		out, errOut, code := runCLI(t, "flow", "list", "--server", addr, "company")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		want := []string{`^NAMESPACE\s+ID\s+REVISION\s+UPDATED\s+STATUS\s+DESCRIPTION$`,
			`^company\.other\s+hello\s+1\s+2026-01-0[12] \d\d:\d\d:\d\d\s+enabled\s+Says hello$`,
			`^company\.team\s+bye\s+1\s`, `^company\.team\s+hello\s+1\s`}
		if len(lines) != len(want) {
			t.Fatalf("%d lines, want %d (companyx is not under company):\n%s", len(lines), len(want), out)
		}
		for i, re := range want {
			if !regexp.MustCompile(re).MatchString(lines[i]) {
				t.Errorf("line %d %q does not match %s", i, lines[i], re)
			}
		}
	})

	t.Run("get --source gives back the file", func(t *testing.T) {
		out, _, code := runCLI(t, "flow", "get", "--server", addr, "company.team", "hello", "--source", "--revision", "1")
		if code != 0 || out != helloFlow {
			t.Errorf("exit %d, source:\n%s", code, out)
		}
	})

	t.Run("get", func(t *testing.T) {
		out, _, code := runCLI(t, "flow", "get", "--server", addr, "company.team", "hello")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		wantSubstrings(t, "stdout", out, "Flow:         company.team.hello\n", "Revision:     1\n", "Status:       enabled\n", "Description:  Says hello\n")
	})

	t.Run("delete, then it is not found", func(t *testing.T) {
		out, _, code := runCLI(t, "flow", "delete", "--server", addr, "company.team", "bye")
		if code != 0 || out != "deleted company.team.bye\n" {
			t.Errorf("exit %d: %s", code, out)
		}
		_, errOut, code := runCLI(t, "flow", "get", "--server", addr, "company.team", "bye")
		if code != 1 || errOut != "error: flow company.team.bye not found\n" {
			t.Errorf("exit %d: %q", code, errOut)
		}
	})
}

func TestExecutionRunWaitExitCodes(t *testing.T) {
	_, addr := startFakeAPI(t)
	for _, tc := range []struct {
		flow    string
		args    []string
		code    int
		out     []string
		errOut  []string
		outOnly string // the whole stdout, when set
	}{
		{flow: "success", code: 0, out: []string{"State:      SUCCESS (0.6s)\n", `Outputs:    {"greeting":"hi"}`}},
		{flow: "warning", code: 0, out: []string{"State:      WARNING (0.6s)\n"}},
		{flow: "failed", code: 1, out: []string{"State:      FAILED (0.6s)\n", "Error:      boom\n"}},
		{flow: "killed", code: 1, out: []string{"State:      KILLED (0.6s)\n"}},
		{flow: "cancelled", code: 1, out: []string{"State:      CANCELLED (0.6s)\n"}},
		{flow: "retried", code: 3, out: []string{"State:      RETRIED (0.6s)\n"}},
		{
			flow: "paused", args: []string{"--wait-timeout", "50ms"}, code: 3,
			out:    []string{"State:      PAUSED\n", "It waits for a resume: kite execution resume ex-paused\n"},
			errOut: []string{"execution ex-paused has not ended within 50ms (--wait-timeout); it goes on on the server\n"},
		},
		{
			flow: "success", args: []string{"--input", "name=bad"}, code: 2,
			errOut: []string{"error: the inputs are invalid:\n  name: must match \"^[A-Z]\", got \"bad\"\n"}, outOnly: "",
		},
		{flow: "nosuchflow", code: 1, errOut: []string{"error: flow tests.nosuchflow not found\n"}, outOnly: ""},
	} {
		t.Run(tc.flow+strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"execution", "run", "--server", addr, "tests", tc.flow, "--wait"}, tc.args...)
			out, errOut, code := runCLI(t, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			wantSubstrings(t, "stdout", out, tc.out...)
			wantSubstrings(t, "stderr", errOut, tc.errOut...)
			if tc.outOnly == "" && len(tc.out) == 0 && out != "" {
				t.Errorf("stdout: %q, want nothing", out)
			}
			if len(tc.out) > 0 {
				wantSubstrings(t, "stdout", out, "Execution:  ex-"+tc.flow+"\n", "Flow:       tests."+tc.flow+" (revision 1)\n")
				row := `(?m)^TASK\s+STATE\s+STARTED\s+DURATION\s+ATTEMPTS\s+OUTPUTS OR ERROR\nt1\s+[A-Z]+\s+\d\d:\d\d:01\.200\s+(0\.3s|-)\s+1\s+(\{"value":"hi"\}|boom)$`
				if !regexp.MustCompile(row).MatchString(out) {
					t.Errorf("no task run row matching %s:\n%s", row, out)
				}
			}
		})
	}
}

func TestExecutionRunNoWait(t *testing.T) {
	api, addr := startFakeAPI(t)
	out, errOut, code := runCLI(t, "execution", "run", "--server", addr, "tests", "success",
		"--input", "name=Kite", "-i", "count=3", "--label", "env=dev", "-l", "team=data", "--revision", "1")
	if code != 0 || out != "ex-success\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	got := api.creates[0]
	rev := int32(1)
	want := &kitev1.ExecutionServiceCreateRequest{
		Namespace: "tests", FlowId: "success", Revision: &rev,
		Labels: []*kitev1.Label{{Key: "env", Value: "dev"}, {Key: "team", Value: "data"}},
	}
	want.Inputs = mustStruct(t, map[string]any{"name": "Kite", "count": "3"}) // text: the server types them
	if !proto.Equal(got, want) {
		t.Errorf("request:\n%v\nwant\n%v", got, want)
	}
}

func TestExecutionRunStreamsFiles(t *testing.T) {
	api, addr := startFakeAPI(t)
	dir := t.TempDir()
	data := make([]byte, 2*fileChunkSize+12345)
	_, _ = rand.Read(data)
	big := filepath.Join(dir, "rows.bin")
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := writeTemp(t, dir, "empty.txt", "")

	out, errOut, code := runCLI(t, "execution", "run", "--server", addr, "tests", "success",
		"--input", "data=@"+big, "--input", "name=Kite", "--input", "none=@"+empty)
	if code != 0 || out != "ex-success\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	if in := api.creates[0].GetInputs().GetFields(); len(in) != 1 || in["name"].GetStringValue() != "Kite" {
		t.Errorf("inputs of the request: %v, want only name (files go as chunks)", in)
	}
	var got []byte
	var dataChunks int
	for i, c := range api.chunks {
		if c.GetInput() != "data" {
			continue
		}
		dataChunks++
		got = append(got, c.GetData()...)
		if len(c.GetData()) > fileChunkSize {
			t.Errorf("chunk %d: %d bytes, more than %d", i, len(c.GetData()), fileChunkSize)
		}
		if wantName := map[bool]string{true: "rows.bin", false: ""}[i == 0]; c.GetFileName() != wantName {
			t.Errorf("chunk %d: file name %q, want %q", i, c.GetFileName(), wantName)
		}
	}
	if dataChunks != 3 || !bytes.Equal(got, data) {
		t.Errorf("the server got %d bytes in %d chunks; want the %d bytes of the file in 3", len(got), dataChunks, len(data))
	}
	last := api.chunks[len(api.chunks)-1]
	if len(api.chunks) != 4 || last.GetInput() != "none" || last.GetFileName() != "empty.txt" || len(last.GetData()) != 0 {
		t.Errorf("an empty file is one empty chunk with its name; last chunk: %v (of %d)", last, len(api.chunks))
	}

	t.Run("a missing file is reported before anything is sent", func(t *testing.T) {
		_, errOut, code := runCLI(t, "execution", "run", "--server", addr, "tests", "success", "--input", "data=@"+filepath.Join(dir, "nope"))
		if code != 1 || !strings.Contains(errOut, "error: --input data: stat ") || len(api.creates) != 1 {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
}

func TestExecutionRunFollow(t *testing.T) {
	api, addr := startFakeAPI(t)
	api.gate = make(chan struct{})
	run := startCLI(t, "execution", "run", "--server", addr, "tests", "success", "--follow")

	// The lines come as the events do: t1 RUNNING shows while the server
	// holds the rest of the events.
	running := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.300  t1 +RUNNING$`)
	run.stdout.waitFor(t, running)
	if strings.Contains(run.stdout.String(), "SUCCESS") {
		t.Fatalf("SUCCESS before the server sent it:\n%s", run.stdout)
	}
	close(api.gate)
	out, errOut, code := run.wait(t)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, re := range []string{
		`(?m)^\d\d:\d\d:\d\d\.000  execution  CREATED tests\.success revision 1$`,
		`(?m)^\d\d:\d\d:\d\d\.100  execution  RUNNING$`,
		running.String(),
		`(?m)^\d\d:\d\d:\d\d\.500  t1 +SUCCESS \(0\.3s\)$`,
		`(?m)^\d\d:\d\d:\d\d\.600  execution  SUCCESS \(0\.6s\)$`,
		`(?m)^\d\d:\d\d:\d\d\.300 INFO  t1: hello from t1$`,
		`(?m)^\d\d:\d\d:\d\d\.400 WARN  execution: careful$`,
		`(?m)^State:\s+SUCCESS \(0\.6s\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no line matching %s:\n%s", re, out)
		}
	}
	if strings.Index(out, "t1         RUNNING") > strings.Index(out, "t1         SUCCESS") {
		t.Errorf("SUCCESS before RUNNING:\n%s", out)
	}
	if strings.Contains(out, "outputs") {
		t.Errorf("--follow shows state changes, not every event:\n%s", out)
	}
	if len(api.tails) != 1 || api.tails[0].GetExecutionId() != "ex-success" {
		t.Errorf("tail requests: %v", api.tails)
	}
}

func TestExecutionWatch(t *testing.T) {
	api, addr := startFakeAPI(t)
	for _, flow := range []string{"success", "failed"} {
		if _, errOut, code := runCLI(t, "execution", "run", "--server", addr, "tests", flow); code != 0 {
			t.Fatal(errOut)
		}
	}

	t.Run("every event, and the exit status of the end", func(t *testing.T) {
		out, errOut, code := runCLI(t, "execution", "watch", "--server", addr, "ex-failed")
		if code != 1 {
			t.Errorf("exit %d, want 1: %s", code, errOut)
		}
		if n := strings.Count(out, "\n"); n != 7 {
			t.Errorf("%d lines, want one per event:\n%s", n, out)
		}
		for _, re := range []string{
			`(?m)^\d\d:\d\d:\d\d\.200  t1 +CREATED$`,
			`(?m)^\d\d:\d\d:\d\d\.400  t1 +outputs \{"value":"hi"\}$`,
			`(?m)^\d\d:\d\d:\d\d\.500  t1 +FAILED \(0\.3s\): boom$`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("no line matching %s:\n%s", re, out)
			}
		}
	})

	t.Run("a lost stream resumes after the last event", func(t *testing.T) {
		api.mu.Lock()
		api.dropAfter, api.watches = 3, nil
		api.mu.Unlock()
		out, errOut, code := runCLI(t, "execution", "watch", "--server", addr, "ex-success")
		if code != 0 || strings.Count(out, "\n") != 7 {
			t.Errorf("exit %d:\n%s%s", code, out, errOut)
		}
		wantSubstrings(t, "stderr", errOut, "lost the events of execution ex-success (the server is restarting); resuming from event 4\n")
		if fmt.Sprint(api.watches) != "[0 4]" {
			t.Errorf("from_sequence of the watches: %v, want [0 4]", api.watches)
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, errOut, code := runCLI(t, "execution", "watch", "--server", addr, "nope")
		if code != 1 || errOut != "error: execution nope not found\n" {
			t.Errorf("exit %d: %q", code, errOut)
		}
	})
}

func TestExecutionCommands(t *testing.T) {
	api, addr := startFakeAPI(t)
	if _, errOut, code := runCLI(t, "execution", "run", "--server", addr, "tests", "failed"); code != 0 {
		t.Fatal(errOut)
	}
	rev := int32(3)
	for _, tc := range []struct {
		args   []string
		out    string
		code   int
		errOut string
		want   proto.Message // what the server received
	}{
		{
			args: []string{"kill", "ex-failed"}, out: "kill of execution ex-failed requested; follow it with: kite execution watch ex-failed\n",
			want: &kitev1.ExecutionServiceKillRequest{ExecutionId: "ex-failed"},
		},
		{
			args: []string{"resume", "ex-failed", "--input", "approved=true"}, out: "resume of execution ex-failed requested; follow it with: kite execution watch ex-failed\n",
			want: &kitev1.ExecutionServiceResumeRequest{ExecutionId: "ex-failed", Inputs: mustStruct(t, map[string]any{"approved": "true"})},
		},
		{
			args: []string{"resume", "ex-failed", "--input", "approved=perhaps"}, code: 1,
			errOut: "error: the inputs are invalid:\n  approved: expected true or false, got \"perhaps\"\n",
		},
		{
			args: []string{"restart", "ex-failed", "--revision", "3"}, out: "restart of execution ex-failed requested; follow it with: kite execution watch ex-failed\n",
			want: &kitev1.ExecutionServiceRestartRequest{ExecutionId: "ex-failed", Revision: &rev},
		},
		{
			args: []string{"replay", "ex-failed", "--task-run", "tr-1"}, out: "ex-replayed\n",
			want: &kitev1.ExecutionServiceReplayRequest{ExecutionId: "ex-failed", TaskRunId: "tr-1"},
		},
		{args: []string{"kill", "nope"}, code: 1, errOut: "error: execution nope not found\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			api.mu.Lock()
			api.commands = nil
			api.mu.Unlock()
			out, errOut, code := runCLI(t, append([]string{"execution", "--server", addr}, tc.args...)...)
			if code != tc.code || out != tc.out || errOut != tc.errOut {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errOut, tc.code, tc.out, tc.errOut)
			}
			if tc.want != nil && (len(api.commands) != 1 || !proto.Equal(api.commands[0], tc.want)) {
				t.Errorf("the server got %v, want %v", api.commands, tc.want)
			}
		})
	}
}

func TestLogsTail(t *testing.T) {
	api, addr := startFakeAPI(t)
	if _, errOut, code := runCLI(t, "execution", "run", "--server", addr, "tests", "success"); code != 0 {
		t.Fatal(errOut)
	}
	for _, tc := range []struct {
		args  []string
		lines []string
		want  *kitev1.LogServiceTailRequest
	}{
		{
			args:  []string{"--execution", "ex-success"},
			lines: []string{`^\d\d:\d\d:\d\d\.300 INFO  t1: hello from t1$`, `^\d\d:\d\d:\d\d\.400 WARN  execution: careful$`},
			want:  &kitev1.LogServiceTailRequest{ExecutionId: "ex-success"},
		},
		{
			args:  []string{"-e", "ex-success", "--level", "warning"},
			lines: []string{`WARN  execution: careful$`},
			want:  &kitev1.LogServiceTailRequest{ExecutionId: "ex-success", MinLevel: kitev1.LogLevel_LOG_LEVEL_WARN},
		},
		{
			args:  []string{"-e", "ex-success", "--task", "t1", "--level", "debug"},
			lines: []string{`INFO  t1: hello from t1$`},
			want:  &kitev1.LogServiceTailRequest{ExecutionId: "ex-success", TaskId: "t1", MinLevel: kitev1.LogLevel_LOG_LEVEL_DEBUG},
		},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			api.mu.Lock()
			api.tails = nil
			api.mu.Unlock()
			out, errOut, code := runCLI(t, append([]string{"logs", "tail", "--server", addr}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != len(tc.lines) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tc.lines), out)
			}
			for i, re := range tc.lines {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("line %q does not match %s", lines[i], re)
				}
			}
			if len(api.tails) != 1 || !proto.Equal(api.tails[0], tc.want) {
				t.Errorf("the server got %v, want %v", api.tails, tc.want)
			}
		})
	}

	t.Run("bad level", func(t *testing.T) {
		_, errOut, code := runCLI(t, "logs", "tail", "--server", addr, "-e", "x", "--level", "loud")
		if code != 1 || !strings.Contains(errOut, `--level "loud": the levels are TRACE, DEBUG, INFO, WARN and ERROR`) {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
	t.Run("the execution is required", func(t *testing.T) {
		_, errOut, code := runCLI(t, "logs", "tail", "--server", addr)
		if code != 1 || !strings.Contains(errOut, `required flag(s) "execution" not set`) {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
}

// TestOutputFormats checks that --output json and yaml print documents that
// parse back into the messages the server sent.
func TestOutputFormats(t *testing.T) {
	api, addr := startFakeAPI(t)
	if _, errOut, code := runCLI(t, "flow", "apply", "--server", addr, writeTemp(t, t.TempDir(), "hello.yaml", helloFlow)); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := runCLI(t, "execution", "run", "--server", addr, "tests", "success"); code != 0 {
		t.Fatal(errOut)
	}
	final := func() proto.Message { return api.runs["ex-success"].final }
	for _, tc := range []struct {
		name string
		args []string
		code int
		// want returns the documents the command prints, in order; each
		// document is parsed into a new message of the same type.
		want func() []proto.Message
	}{
		{name: "execution get", args: []string{"execution", "get", "ex-success"}, want: func() []proto.Message { return []proto.Message{final()} }},
		{name: "execution run --wait", args: []string{"execution", "run", "tests", "success", "--wait"}, want: func() []proto.Message { return []proto.Message{final()} }},
		{name: "execution run --follow", args: []string{"execution", "run", "tests", "success", "--follow"}, want: func() []proto.Message { return []proto.Message{final()} }},
		{name: "execution run --wait, failed", args: []string{"execution", "run", "tests", "failed", "--wait"}, code: 1, want: func() []proto.Message {
			return []proto.Message{api.runs["ex-failed"].final}
		}},
		{name: "execution replay", args: []string{"execution", "replay", "ex-success"}, want: func() []proto.Message {
			return []proto.Message{&kitev1.ExecutionServiceReplayResponse{ExecutionId: "ex-replayed"}}
		}},
		{name: "execution kill", args: []string{"execution", "kill", "ex-success"}, want: func() []proto.Message {
			return []proto.Message{&kitev1.ExecutionServiceKillResponse{}}
		}},
		{name: "execution watch", args: []string{"execution", "watch", "ex-success"}, want: func() []proto.Message {
			var out []proto.Message
			for _, ev := range api.runs["ex-success"].events {
				out = append(out, ev)
			}
			return out
		}},
		{name: "logs tail", args: []string{"logs", "tail", "-e", "ex-success"}, want: func() []proto.Message {
			var out []proto.Message
			for _, e := range api.runs["ex-success"].logs {
				out = append(out, e)
			}
			return out
		}},
		{name: "flow get", args: []string{"flow", "get", "company.team", "hello"}, want: func() []proto.Message {
			return []proto.Message{api.flows["company.team/hello"][0]}
		}},
		{name: "flow list", args: []string{"flow", "list"}, want: func() []proto.Message {
			return []proto.Message{&kitev1.FlowServiceListResponse{Flows: api.flows["company.team/hello"]}}
		}},
		{name: "flow apply", args: []string{"flow", "apply", writeTemp(t, t.TempDir(), "hello.yaml", helloFlow)}, want: func() []proto.Message {
			return []proto.Message{&kitev1.FlowServiceApplyResponse{Flow: api.flows["company.team/hello"][0]}}
		}},
	} {
		for _, format := range []string{"json", "yaml"} {
			t.Run(tc.name+" "+format, func(t *testing.T) {
				out, errOut, code := runCLI(t, append(tc.args, "--server", addr, "--output", format)...)
				if code != tc.code {
					t.Fatalf("exit %d, want %d: %s", code, tc.code, errOut)
				}
				docs := splitDocuments(t, format, out)
				want := tc.want()
				if len(docs) != len(want) {
					t.Fatalf("%d documents, want %d:\n%s", len(docs), len(want), out)
				}
				for i, doc := range docs {
					got := want[i].ProtoReflect().New().Interface()
					if err := protojson.Unmarshal(doc, got); err != nil {
						t.Fatalf("document %d: %v\n%s", i, err, doc)
					}
					if !proto.Equal(got, want[i]) {
						t.Errorf("document %d:\n%v\nwant\n%v", i, got, want[i])
					}
				}
			})
		}
	}

	t.Run("json of a single document is indented, camelCase", func(t *testing.T) {
		out, _, _ := runCLI(t, "execution", "get", "ex-success", "--server", addr, "-o", "json")
		wantSubstrings(t, "stdout", out, "{\n  \"id\": \"ex-success\",\n", `"flowId": "success"`, `"state": "STATE_SUCCESS"`)
	})
	t.Run("yaml keeps strings that read as other types quoted", func(t *testing.T) {
		y, err := jsonToYAML([]byte(`{"a":"true","b":"123","c":"","d":"x: y","e":"line 1\nline 2\n","f":true,"g":1.5,"h":null,"i":[],"j":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if err := yaml.Unmarshal(y, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"a": "true", "b": "123", "c": "", "d": "x: y", "e": "line 1\nline 2\n", "f": true, "g": 1.5, "h": nil, "i": []any{}, "j": map[string]any{}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got %v\nwant %v\nfrom:\n%s", got, want, y)
		}
		if !strings.Contains(string(y), "e: |\n") {
			t.Errorf("a multi-line string is a literal block:\n%s", y)
		}
	})
}

// splitDocuments splits JSON Lines, one indented JSON document, or YAML
// documents, and returns each as JSON.
func splitDocuments(t testing.TB, format, out string) [][]byte {
	t.Helper()
	var docs [][]byte
	if format == "json" {
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			docs = append(docs, raw)
		}
		return docs
	}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			if err.Error() == "EOF" {
				return docs
			}
			t.Fatalf("not YAML: %v\n%s", err, out)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
}

func TestUnreachableServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close() // nothing listens there now

	for _, args := range [][]string{
		{"flow", "list"},
		{"flow", "apply", writeTemp(t, t.TempDir(), "hello.yaml", helloFlow)},
		{"execution", "run", "tests", "success", "--wait"},
		{"execution", "run", "tests", "success", "--input", "f=@" + writeTemp(t, t.TempDir(), "f.txt", "x")},
		{"execution", "watch", "ex-1"},
		{"logs", "tail", "-e", "ex-1"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, append(args, "--server", addr)...)
			want := "error: cannot reach the Kite server at " + addr + ": "
			if code != 1 || !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "connection refused") ||
				!strings.HasSuffix(errOut, "(is `kite server standalone` running? set --server or KITE_SERVER)\n") {
				t.Errorf("exit %d: %s", code, errOut)
			}
		})
	}

	t.Run("KITE_SERVER is the default address", func(t *testing.T) {
		t.Setenv("KITE_SERVER", addr)
		_, errOut, _ := runCLI(t, "flow", "list")
		wantSubstrings(t, "stderr", errOut, "cannot reach the Kite server at "+addr+":")
	})
}

func TestClientFlags(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		errOut string
	}{
		{[]string{"flow", "list", "-o", "xml"}, `error: --output is table, json or yaml, not "xml"`},
		{[]string{"flow", "list", "--ca-file", "/no/such/ca.pem"}, "error: reading --ca-file: open /no/such/ca.pem: no such file or directory"},
		{[]string{"execution", "run", "ns", "f", "--input", "novalue"}, `error: --input "novalue": write it as key=value`},
		{[]string{"execution", "run", "ns", "f", "-i", "a=1", "-i", "a=2"}, "error: --input a is given twice"},
		{[]string{"execution", "resume", "x", "-i", "f=@file"}, "error: --input f: resume takes no files, only values"},
		{[]string{"execution", "frob"}, `error: unknown command "frob" for "kite execution"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, tc.args...)
			if code != 1 || !strings.HasPrefix(errOut, tc.errOut) {
				t.Errorf("exit %d: %s", code, errOut)
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{3 * time.Millisecond, "3ms"},
		{200 * time.Millisecond, "0.2s"},
		{12500 * time.Millisecond, "12.5s"},
		{4*time.Minute + 5*time.Second, "4m05s"},
		{2*time.Hour + 3*time.Minute, "2h03m"},
		{76 * time.Hour, "3d04h"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%s) = %s, want %s", tc.d, got, tc.want)
		}
	}
}

func mustStruct(t testing.TB, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
