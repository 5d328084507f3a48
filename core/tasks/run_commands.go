//go:build unix

package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kiteflow/kite/core/execution"
)

// killGrace is how long a command's process group has to exit after
// SIGTERM before it gets SIGKILL.
const killGrace = 2 * time.Second

// defaultPath is the PATH of commands when the worker has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// runCommands is Kestra's shell Commands task, run as a local process (the
// PROCESS task runner): beforeCommands then commands, joined by newlines,
// are passed as one script to the interpreter (default /bin/sh -c) in the
// working directory.
//
// The outputs are exitCode, vars (set by ::{"outputs":{...}}:: lines),
// stdOutLineCount, stdErrLineCount and, when outputFiles is set,
// outputFiles. A non-zero exit fails the attempt; Run then returns the
// Result (with those outputs) together with the error. Output on stderr
// ends the task in WARNING when warningOnStdErr (the default).
func runCommands(ctx context.Context, rc *RunContext) (*Result, error) {
	if rc.WorkDir == "" {
		return nil, fmt.Errorf("commands need a working directory; none was given")
	}
	// Kestra's script tasks see their working directory as {{ workingDir }}.
	rc = withVars(rc, map[string]any{"workingDir": rc.WorkDir})

	interpreter, err := interpreterProp(ctx, rc)
	if err != nil {
		return nil, err
	}
	before, err := stringListProp(ctx, rc, "beforeCommands")
	if err != nil {
		return nil, err
	}
	commands, err := stringListProp(ctx, rc, "commands")
	if err != nil {
		return nil, err
	}
	if len(commands) == 0 {
		return nil, fmt.Errorf("commands: at least one command is required")
	}
	failFast, err := boolProp(ctx, rc, "failFast", true)
	if err != nil {
		return nil, err
	}
	warnOnStdErr, err := boolProp(ctx, rc, "warningOnStdErr", true)
	if err != nil {
		return nil, err
	}
	env, err := stringMapProp(ctx, rc, "env")
	if err != nil {
		return nil, err
	}
	outputPatterns, err := stringListProp(ctx, rc, "outputFiles")
	if err != nil {
		return nil, err
	}
	globs, err := compileOutputGlobs(outputPatterns)
	if err != nil {
		return nil, err
	}
	if err := writeInputFiles(ctx, rc); err != nil {
		return nil, err
	}
	if rc.Has("namespaceFiles") {
		// Namespace files need internal storage, which Kite does not have yet.
		rc.Logf(LevelWarn, "namespaceFiles is not supported yet: no namespace file was copied into the working directory")
	}

	script := commandScript(interpreter, failFast, before, commands)
	args := append(append([]string(nil), interpreter[1:]...), script)
	p := &process{
		name: interpreter[0],
		args: args,
		dir:  rc.WorkDir,
		env:  commandEnv(rc.WorkDir, env),
	}
	out := newOutputCollector(rc)
	exitCode, err := p.run(ctx, out)
	stdout, stderr := out.counts()
	outputs := map[string]any{
		"exitCode":        exitCode,
		"vars":            out.outputVars(),
		"stdOutLineCount": stdout,
		"stdErrLineCount": stderr,
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("commands interrupted: %w", ctx.Err())
	case err != nil:
		return &Result{State: execution.Failed, Outputs: outputs}, err
	}
	if len(outputPatterns) > 0 {
		found, err := collectOutputFiles(rc.WorkDir, globs)
		if err != nil {
			return &Result{State: execution.Failed, Outputs: outputs}, err
		}
		files, err := uploadOutputFiles(ctx, rc, found)
		if err != nil {
			return &Result{State: execution.Failed, Outputs: outputs}, err
		}
		outputs["outputFiles"] = files
	}
	res := &Result{State: execution.Success, Outputs: outputs}
	if warnOnStdErr && stderr > 0 {
		res.State = execution.Warning
	}
	return res, nil
}

// withVars returns a copy of rc whose expressions also see extra.
func withVars(rc *RunContext, extra map[string]any) *RunContext {
	c := *rc
	c.Vars = make(map[string]any, len(rc.Vars)+len(extra))
	maps.Copy(c.Vars, rc.Vars)
	maps.Copy(c.Vars, extra)
	return &c
}

// interpreterProp renders interpreter: a list (or the JSON text of one),
// or a command line split on spaces ("/bin/bash -c"). Default /bin/sh -c.
func interpreterProp(ctx context.Context, rc *RunContext) ([]string, error) {
	v, err := rc.Value(ctx, "interpreter")
	if err != nil {
		return nil, err
	}
	if s, ok := v.(string); ok && !strings.HasPrefix(strings.TrimSpace(s), "[") {
		v = strings.Fields(s)
	}
	l, err := toStringList("interpreter", v)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return []string{"/bin/sh", "-c"}, nil
	}
	if strings.TrimSpace(l[0]) == "" {
		return nil, fmt.Errorf("interpreter: the program is empty")
	}
	return l, nil
}

// posixShells are interpreters that understand "set -e".
var posixShells = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "ash": true, "busybox": true}

// commandScript joins the commands into one script. With failFast and a
// POSIX shell it starts with "set -e", as Kestra does, so that the first
// failing command ends the script; other interpreters get the commands as
// they are.
func commandScript(interpreter []string, failFast bool, before, commands []string) string {
	lines := make([]string, 0, len(before)+len(commands)+1)
	if failFast && posixShells[filepath.Base(interpreter[0])] {
		lines = append(lines, "set -e")
	}
	lines = append(lines, before...)
	lines = append(lines, commands...)
	return strings.Join(lines, "\n")
}

// commandEnv is the environment of the commands: a minimal one (PATH and
// HOME of the worker, WORKING_DIR as Kestra sets it) plus env, which may
// override them. The worker's other variables, secrets among them, are not
// passed on.
func commandEnv(workDir string, env map[string]string) []string {
	vars := map[string]string{
		"PATH":        os.Getenv("PATH"),
		"HOME":        os.Getenv("HOME"),
		"WORKING_DIR": workDir,
	}
	if vars["PATH"] == "" {
		vars["PATH"] = defaultPath
	}
	if vars["HOME"] == "" {
		vars["HOME"] = workDir
	}
	maps.Copy(vars, env)
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// process is one run of the interpreter, in a process group of its own.
type process struct {
	name string
	args []string
	dir  string
	env  []string
}

// run starts the process, streams its stdout and stderr to out line by
// line, and waits for it. When ctx is done the whole process group gets
// SIGTERM, then SIGKILL after killGrace. Whatever is left of the group
// once the process has exited (background children) is ended the same
// way, so that nothing outlives the attempt. It returns the exit code
// (-1 when the process did not exit normally) and an error unless the
// process exited with code 0.
func (p *process) run(ctx context.Context, out *outputCollector) (int, error) {
	cmd := exec.CommandContext(ctx, p.name, p.args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	group := &processGroup{}
	cmd.Cancel = func() error {
		group.terminate(cmd.Process.Pid)
		return nil
	}
	// After ctx is done (or the process exited while a child holds its
	// output open), Wait gives up on the output after killGrace.
	cmd.WaitDelay = killGrace

	// exec copies the output into the pipes; the readers log it as it comes.
	stdoutR, stdoutW := io.Pipe()
	stderrR, stderrW := io.Pipe()
	cmd.Stdout = stdoutW
	cmd.Stderr = stderrW
	var readers sync.WaitGroup
	readers.Go(func() { out.consume(stdoutR, false) })
	readers.Go(func() { out.consume(stderrR, true) })
	closeOutput := func() {
		_ = stdoutW.Close()
		_ = stderrW.Close()
		readers.Wait()
	}

	if err := cmd.Start(); err != nil {
		closeOutput()
		return -1, fmt.Errorf("starting %s: %w", p.name, err)
	}
	group.started(cmd.Process.Pid)
	waitErr := cmd.Wait()
	closeOutput()
	group.reap(killGrace)

	state := cmd.ProcessState
	if state == nil {
		return -1, fmt.Errorf("running %s: %w", p.name, waitErr)
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, fmt.Errorf("command killed by signal %s", ws.Signal())
	}
	code := state.ExitCode()
	if code != 0 {
		return code, fmt.Errorf("command exited with code %d", code)
	}
	if waitErr != nil && errors.Is(waitErr, exec.ErrWaitDelay) {
		out.rc.Logf(LevelWarn, "a background process kept the command's output open after it exited; it was ended after %s", killGrace)
	} else if waitErr != nil {
		return code, fmt.Errorf("running %s: %w", p.name, waitErr)
	}
	return code, nil
}

// processGroup ends a command's process group: SIGTERM, then SIGKILL after
// a grace period.
type processGroup struct {
	mu     sync.Mutex
	pgid   int
	termAt time.Time // when SIGTERM was sent; zero before
}

func (g *processGroup) started(pid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pgid = pid
}

// terminate sends SIGTERM to the group, once. pid is the group leader (the
// group's id, as it was started with Setpgid).
func (g *processGroup) terminate(pid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pgid = pid
	if g.termAt.IsZero() {
		g.termAt = time.Now()
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
}

// reap ends what is left of the group once its leader has been waited
// for: SIGTERM (unless already sent), then SIGKILL once grace has passed
// since SIGTERM, polling until the group is empty.
func (g *processGroup) reap(grace time.Duration) {
	g.mu.Lock()
	pgid := g.pgid
	g.mu.Unlock()
	if pgid <= 0 || !groupAlive(pgid) {
		return
	}
	g.terminate(pgid)
	g.mu.Lock()
	deadline := g.termAt.Add(grace)
	g.mu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		}
		<-tick.C
	}
}
