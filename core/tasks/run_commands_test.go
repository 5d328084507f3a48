//go:build unix

package tasks

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/flow"
)

func TestCommands(t *testing.T) {
	t.Setenv("KITE_TEST_WORKER_SECRET", "s3cr3t")
	tests := []struct {
		name      string
		task      string
		wantErr   string
		wantState execution.State
		wantInfo  []string
		wantWarn  []string
		// outputs that must be present with these values
		wantOutputs map[string]any
	}{
		{
			name: "stdout at INFO and stderr at WARN, in order, stderr makes WARNING",
			task: `
  - id: t
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo one
      - echo two >&2
      - echo three
      - echo four >&2`,
			wantState: execution.Warning,
			wantInfo:  []string{"one", "three"},
			wantWarn:  []string{"two", "four"},
			wantOutputs: map[string]any{
				"exitCode": 0, "stdOutLineCount": 2, "stdErrLineCount": 2, "vars": map[string]any{},
			},
		},
		{
			name: "warningOnStdErr false keeps SUCCESS",
			task: `
  - id: t
    type: commands
    warningOnStdErr: false
    commands: ["echo oops >&2"]`,
			wantState: execution.Success,
			wantWarn:  []string{"oops"},
		},
		{
			name: "output markers set vars and are not logged",
			task: `
  - id: t
    type: commands
    commands:
      - echo before
      - 'echo ''::{"outputs":{"a":1,"b":"x","c":{"d":[1.5,true]}}}::'''
      - 'echo ''::{"outputs":{"b":"y"},"metrics":[{"name":"m","type":"counter","value":1}]}::'''
      - 'echo ''::{"logs":[{"level":"ERROR","message":"from a marker"}]}::'''
      - echo after`,
			wantState: execution.Success,
			wantInfo:  []string{"before", "after"},
			wantOutputs: map[string]any{
				"vars":            map[string]any{"a": int64(1), "b": "y", "c": map[string]any{"d": []any{1.5, true}}},
				"stdOutLineCount": 2,
			},
		},
		{
			name: "an invalid marker is reported, not logged as output",
			task: `
  - id: t
    type: commands
    commands: ["echo '::{not json}::'"]`,
			wantState:   execution.Success,
			wantWarn:    []string{"ignoring an invalid ::{...}:: output line"},
			wantOutputs: map[string]any{"vars": map[string]any{}, "stdOutLineCount": 0},
		},
		{
			name: "non-zero exit fails with the code",
			task: `
  - id: t
    type: commands
    commands: ["echo about to fail", "exit 3"]`,
			wantErr:     "command exited with code 3",
			wantState:   execution.Failed,
			wantInfo:    []string{"about to fail"},
			wantOutputs: map[string]any{"exitCode": 3},
		},
		{
			name: "failFast stops at the first failing command",
			task: `
  - id: t
    type: commands
    commands: ["false", "echo not reached"]`,
			wantErr:     "command exited with code 1",
			wantState:   execution.Failed,
			wantOutputs: map[string]any{"exitCode": 1},
		},
		{
			name: "without failFast the last command decides",
			task: `
  - id: t
    type: commands
    failFast: false
    commands: ["false", "echo reached"]`,
			wantState:   execution.Success,
			wantInfo:    []string{"reached"},
			wantOutputs: map[string]any{"exitCode": 0},
		},
		{
			name: "env and beforeCommands, rendered; the worker's environment is not passed on",
			task: `
  - id: t
    type: commands
    env:
      GREETING: "hi {{ inputs.name }}"
      PATH: /usr/bin:/bin
    beforeCommands:
      - export SUFFIX=!
    commands:
      - echo "$GREETING$SUFFIX"
      - echo "path=$PATH"
      - echo "secret=${KITE_TEST_WORKER_SECRET:-unset}"
      - test -n "$HOME" && echo home set`,
			wantState: execution.Success,
			wantInfo:  []string{"hi Ada!", "path=/usr/bin:/bin", "secret=unset", "home set"},
		},
		{
			name: "interpreter as a command line",
			task: `
  - id: t
    type: commands
    interpreter: "/bin/sh -c"
    commands: ["echo $((6 * 7))"]`,
			wantState: execution.Success,
			wantInfo:  []string{"42"},
		},
		{
			name: "an interpreter that does not exist",
			task: `
  - id: t
    type: commands
    interpreter: ["/nonexistent/shell", "-c"]
    commands: ["echo hi"]`,
			wantErr:   "starting /nonexistent/shell",
			wantState: execution.Failed,
		},
		{
			name: "a command failing to render",
			task: `
  - id: t
    type: commands
    commands: ["echo {{ inputs.missing }}"]`,
			wantErr: "commands",
		},
		{
			name: "a line without a final newline is logged",
			task: `
  - id: t
    type: commands
    commands: ["printf 'no newline'"]`,
			wantState: execution.Success,
			wantInfo:  []string{"no newline"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, logs := newRunContext(t, parseTask(t, tt.task), testVars)
			res, err := runTask(t.Context(), t, rc)
			wantErr(t, err, tt.wantErr)
			if res == nil {
				if tt.wantState != "" {
					t.Fatalf("no result, want state %s", tt.wantState)
				}
				return
			}
			if res.State != tt.wantState {
				t.Errorf("state = %s, want %s", res.State, tt.wantState)
			}
			if got := logs.at(LevelInfo); tt.wantInfo != nil && !slices.Equal(got, tt.wantInfo) {
				t.Errorf("INFO logs = %q, want %q", got, tt.wantInfo)
			}
			if tt.wantWarn != nil {
				got := logs.at(LevelWarn)
				if len(got) != len(tt.wantWarn) {
					t.Errorf("WARN logs = %q, want %q", got, tt.wantWarn)
				}
				for i := range min(len(got), len(tt.wantWarn)) {
					if !strings.HasPrefix(got[i], tt.wantWarn[i]) {
						t.Errorf("WARN log %d = %q, want it to start with %q", i, got[i], tt.wantWarn[i])
					}
				}
			}
			for k, want := range tt.wantOutputs {
				if got := res.Outputs[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("outputs.%s = %#v, want %#v", k, got, want)
				}
			}
		})
	}
}

func TestCommandsMarkerLogsAtTheirLevel(t *testing.T) {
	rc, logs := newRunContext(t, parseTask(t, `
  - id: t
    type: commands
    commands: ['echo ''::{"logs":[{"level":"ERROR","message":"from a marker"},{"level":"DEBUG","message":"detail"}]}::''']`), nil)
	if _, err := runTask(t.Context(), t, rc); err != nil {
		t.Fatal(err)
	}
	want := []logEntry{{LevelError, "from a marker"}, {LevelDebug, "detail"}}
	if got := logs.all(); !slices.Equal(got, want) {
		t.Errorf("logs = %q, want %q", got, want)
	}
}

func TestCommandsWorkingDirectory(t *testing.T) {
	rc, logs := newRunContext(t, parseTask(t, `
  - id: t
    type: commands
    commands:
      - pwd
      - echo "$WORKING_DIR"
      - echo "{{ workingDir }}"`), nil)
	if _, err := runTask(t.Context(), t, rc); err != nil {
		t.Fatal(err)
	}
	want, err := filepath.EvalSymlinks(rc.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	got := logs.at(LevelInfo)
	if len(got) != 3 {
		t.Fatalf("INFO logs = %q, want 3 lines", got)
	}
	for i, l := range got {
		if p, err := filepath.EvalSymlinks(l); err != nil || p != want {
			t.Errorf("line %d = %q, want the working directory %q", i, l, want)
		}
	}
}

func TestCommandsInputAndOutputFiles(t *testing.T) {
	rc, _ := newRunContext(t, parseTask(t, `
  - id: t
    type: commands
    inputFiles:
      in.txt: "hello {{ inputs.name }}"
      "sub/{{ inputs.n }}.csv": "a,b"
    outputFiles:
      - "*.txt"
      - "res/**"
    commands:
      - cat in.txt > out.txt
      - mkdir -p res/deep && cp sub/3.csv res/deep/r.csv
      - echo ignored > other.log
      - ln -s /etc/hostname link.txt`), testVars)
	res, err := runTask(t.Context(), t, rc)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "kite:///kite/test/f/executions/exec1/tasks/t/taskrun1/"
	want := map[string]any{
		"in.txt":         prefix + "in.txt",
		"out.txt":        prefix + "out.txt",
		"res/deep/r.csv": prefix + "res/deep/r.csv",
	}
	if got := res.Outputs["outputFiles"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("outputFiles = %#v, want %#v", got, want)
	}
	// The files are in internal storage, as the command wrote them.
	for name, content := range map[string]string{"out.txt": "hello Ada", "res/deep/r.csv": "a,b"} {
		r, err := rc.Files.Open(t.Context(), prefix+name)
		if err != nil {
			t.Fatalf("opening %s: %v", name, err)
		}
		b, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil || string(b) != content {
			t.Errorf("%s = %q, %v; want %q", name, b, err, content)
		}
	}
}

// A file of internal storage given as an input file (a FILE input, an
// earlier task's output file) is streamed into the working directory.
func TestCommandsInputFileFromStorage(t *testing.T) {
	rc, _ := newRunContext(t, parseTask(t, `
  - id: t
    type: commands
    inputFiles:
      data.csv: "{{ inputs.file }}"
    outputFiles: [count.txt]
    commands:
      - wc -l < data.csv | tr -d ' ' > count.txt`), nil)
	uri := "kite:///kite/test/f/executions/exec0/inputs/file/rows.csv"
	if _, err := rc.Files.Store.Put(t.Context(), uri, strings.NewReader("a\nb\nc\n")); err != nil {
		t.Fatal(err)
	}
	rc.Vars = map[string]any{"inputs": map[string]any{"file": uri}}
	res, err := runTask(t.Context(), t, rc)
	if err != nil {
		t.Fatal(err)
	}
	out := res.Outputs["outputFiles"].(map[string]any)["count.txt"].(string)
	r, err := rc.Files.Open(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	if b, _ := io.ReadAll(r); strings.TrimSpace(string(b)) != "3" {
		t.Errorf("count.txt = %q, want 3", b)
	}

	// A file of another namespace is refused, and a missing one named.
	for _, tc := range []struct{ uri, want string }{
		{"kite:///other/f/executions/x/inputs/file/a.csv", "not a file of namespace kite.test"},
		{"kite:///kite/test/f/executions/x/inputs/file/missing.csv", "kite:///kite/test/f/executions/x/inputs/file/missing.csv"},
	} {
		rc, _ := newRunContext(t, rc.Task, map[string]any{"inputs": map[string]any{"file": tc.uri}})
		_, err := runTask(t.Context(), t, rc)
		wantErr(t, err, tc.want)
	}
}

func TestCommandsFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		props   map[string]any
		wantErr string
	}{
		{"invalid glob", map[string]any{"outputFiles": []any{"ok.txt", "[abc"}}, `outputFiles[1]: invalid glob "[abc"`},
		{"glob outside the working directory", map[string]any{"outputFiles": []any{"../*.txt"}}, "not a pattern relative to the working directory"},
		{"absolute input file", map[string]any{"inputFiles": map[string]any{"/tmp/x": "x"}}, "absolute path"},
		{"input file leaving the working directory", map[string]any{"inputFiles": map[string]any{"a/../../x": "x"}}, "leaves the working directory"},
		{"input file from Kestra's storage", map[string]any{"inputFiles": map[string]any{"x": "kestra://ns/f"}}, "is a Kestra storage URI"},
		{"input files as JSON text", map[string]any{"inputFiles": `{"ok.txt": "x"}`, "outputFiles": []any{"ok.txt"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			props := map[string]any{"commands": []any{"echo ran > ran.marker"}}
			for k, v := range tt.props {
				props[k] = v
			}
			rc, _ := newRunContext(t, &flow.Task{ID: "t", Type: "commands", Props: props}, nil)
			_, err := runTask(t.Context(), t, rc)
			wantErr(t, err, tt.wantErr)
			_, statErr := os.Stat(filepath.Join(rc.WorkDir, "ran.marker"))
			if ran := statErr == nil; ran != (tt.wantErr == "") {
				t.Errorf("the command ran: %v; want it to run only when the files are valid", ran)
			}
		})
	}
}

func TestCommandsSplitsHugeLines(t *testing.T) {
	const size = 3*maxLogLine + 10
	rc, logs := newRunContext(t, &flow.Task{ID: "t", Type: "commands", Props: map[string]any{
		"commands": []any{"head -c " + strconv.Itoa(size) + " /dev/zero | tr '\\0' a", "echo", "echo next"},
	}}, nil)
	if _, err := runTask(t.Context(), t, rc); err != nil {
		t.Fatal(err)
	}
	got := logs.at(LevelInfo)
	if len(got) != 5 || got[4] != "next" {
		t.Fatalf("got %d lines (last %q), want the long line in 4 pieces then next", len(got), abbreviate(got[len(got)-1], 20))
	}
	if joined := strings.Join(got[:4], ""); len(joined) != size || strings.Trim(joined, "a") != "" {
		t.Errorf("the pieces hold %d bytes, want %d", len(joined), size)
	}
}

// Output is logged as it is written, not when the command ends: the
// command waits for a file the test creates once it has seen the first
// line.
func TestCommandsStreamsOutput(t *testing.T) {
	rc, logs := newRunContext(t, &flow.Task{ID: "t", Type: "commands", Props: map[string]any{
		"commands": []any{"echo started", "while [ ! -f go ]; do sleep 0.01; done", "echo finished"},
	}}, nil)
	done := make(chan error, 1)
	go func() {
		_, err := Runners()["commands"].Run(t.Context(), rc)
		done <- err
	}()
	waitFor(t, 10*time.Second, "the first line to be logged", func() bool {
		return slices.Contains(logs.at(LevelInfo), "started")
	})
	if err := os.WriteFile(filepath.Join(rc.WorkDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not end within 10s")
	}
	if got := logs.at(LevelInfo); !slices.Equal(got, []string{"started", "finished"}) {
		t.Errorf("logs = %q", got)
	}
}

func TestCommandsCancellationEndsTheProcessGroup(t *testing.T) {
	tests := []struct {
		name    string
		command string
	}{
		{"children end on SIGTERM", "sleep 30 & echo $! > child.pid; wait"},
		// The shell and its child ignore SIGTERM: SIGKILL after the grace.
		{"children ignoring SIGTERM get SIGKILL", "trap '' TERM; sleep 30 & echo $! > child.pid; wait; wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, _ := newRunContext(t, &flow.Task{ID: "t", Type: "commands", Props: map[string]any{
				"commands": []any{tt.command},
			}}, nil)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := Runners()["commands"].Run(ctx, rc)
				done <- err
			}()
			pid := readPIDFile(t, filepath.Join(rc.WorkDir, "child.pid"))
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("error = %v, want one wrapping context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10s of cancellation")
			}
			waitFor(t, 5*time.Second, "the child process to end", func() bool { return processGone(pid) })
		})
	}
}

// A background process left behind by a command that exited is ended.
func TestCommandsEndsLeftoverProcesses(t *testing.T) {
	rc, _ := newRunContext(t, &flow.Task{ID: "t", Type: "commands", Props: map[string]any{
		"commands": []any{"sleep 30 >/dev/null 2>&1 & echo $! > child.pid"},
	}}, nil)
	if _, err := runTask(t.Context(), t, rc); err != nil {
		t.Fatal(err)
	}
	pid := readPIDFile(t, filepath.Join(rc.WorkDir, "child.pid"))
	waitFor(t, 5*time.Second, "the background process to end", func() bool { return processGone(pid) })
}

// readPIDFile waits for a file holding a process id and a newline.
func readPIDFile(tb testing.TB, path string) int {
	tb.Helper()
	var pid int
	waitFor(tb, 10*time.Second, path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// processGone reports whether pid has exited. An exited process whose
// parent has not reaped it yet (a zombie) has exited too: orphans stay
// zombies where the container's init does not reap them.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	state, _, ok := procStat(pid)
	return ok && (state == 'Z' || state == 'X')
}
