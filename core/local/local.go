// Package local runs executions in-process: it drives the state machine of
// core/execution and runs runnable tasks with the runners of core/tasks in
// goroutines, with real timers. It backs `kite flow test` and the engine's
// unit tests; the Kafka executor (services) drives the same machine.
package local

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/tasks"
)

// FlowSource finds the flows subflows start.
type FlowSource interface {
	// Flow returns the flow; revision 0 means the latest. The error wraps
	// flow.ErrNotFound when there is none.
	Flow(namespace, id string, revision int) (*flow.Flow, error)
}

// LogLine is one log line of an execution.
type LogLine struct {
	Time        time.Time `json:"time"`
	ExecutionID string    `json:"executionId"`
	TaskRunID   string    `json:"taskRunId,omitempty"`
	TaskID      string    `json:"taskId,omitempty"`
	Level       string    `json:"level"`
	Message     string    `json:"message"`
}

// Runtime runs executions in-process. Its zero value is not usable; fill
// the fields (New gives defaults).
type Runtime struct {
	Flows FlowSource
	// Engine renders default input values; task properties are rendered by
	// an engine of each run, which adds errorLogs().
	Engine  *expr.Engine
	Runners map[string]tasks.Runner
	// Workers bounds the task attempts running at once.
	Workers int
	// OnLog, when set, sees every log line as it happens (from several
	// goroutines, one at a time).
	OnLog func(LogLine)
	// OnEvent, when set, sees every event as it is applied (from the
	// runtime's loop goroutine).
	OnEvent func(*execution.Event)
	// NewID makes execution ids.
	NewID func() string
	// Store is the internal storage of task files (kite flow test gives a
	// temporary folder); nil runs tasks without one.
	Store storage.Storage
}

// New returns a runtime with the built-in runners and flows from src.
func New(src FlowSource) *Runtime {
	return &Runtime{
		Flows: src, Engine: expr.Default,
		Runners: tasks.Runners(), Workers: 8, NewID: newExecutionID,
	}
}

// Result is what a run produced.
type Result struct {
	Execution *execution.Execution
	// Children are the subflow executions, in creation order.
	Children []*execution.Execution
	// Retries are the executions created to retry the root (retry behavior
	// CREATE_NEW_EXECUTION), in order.
	Retries []*execution.Execution
	Logs    []LogLine
}

// Options of one Run.
type Options struct {
	Labels []flow.Label
	// RawInputs skips input validation: the values are handed to the
	// execution as given, as Kestra's own tests do.
	RawInputs bool
}

// Run creates an execution of f with the given inputs and drives it (and
// its subflows) until it ends, or until it is PAUSED with nothing left to
// wait for, or ctx is done: the execution is then killed, and Run returns
// the result with ctx's error. The inputs are validated first: an
// *execution.InputError means nothing ran.
func (r *Runtime) Run(ctx context.Context, f *flow.Flow, inputs map[string]any, opts Options) (*Result, error) {
	resolve := execution.ResolveInputs
	if opts.RawInputs {
		resolve = execution.RawInputs
	}
	typed, err := resolve(f, inputs, r.Engine)
	if err != nil {
		return nil, err
	}
	labels := opts.Labels
	l := r.newLoop()
	defer l.stop()
	rootID := r.NewID()
	l.create(f, execution.Create{ID: rootID, Inputs: typed, Labels: labels})
	runErr := l.run(ctx, rootID)
	if runErr != nil && ctx.Err() == nil {
		return nil, runErr
	}
	res := &Result{Execution: l.execs[rootID].e, Logs: l.logs()}
	retry := map[string]bool{}
	for _, id := range l.retries {
		retry[id] = true
		res.Retries = append(res.Retries, l.execs[id].e)
	}
	for _, id := range l.order[1:] {
		if !retry[id] {
			res.Children = append(res.Children, l.execs[id].e)
		}
	}
	// When ctx ended the run, the result shows the execution killed.
	return res, runErr
}

// exec is one execution the loop drives.
type exec struct {
	f *flow.Flow
	e *execution.Execution
}

// message is an input for an execution, from a worker, a timer or a child.
// in is an execution.Input, or one of the loop's own wrappers (timerFired,
// attemptDone, retryDue) that carry bookkeeping besides it.
type message struct {
	execID string
	in     any
}

type attemptKey struct {
	taskRunID string
	attempt   int
}

// loop owns the executions: every Step runs on its goroutine.
type loop struct {
	r       *Runtime
	engine  *expr.Engine
	machine *execution.Machine
	execs   map[string]*exec
	order   []string
	retries []string // executions created to retry another, not subflows
	inbox   chan message
	sem     chan struct{}
	running map[attemptKey]context.CancelFunc
	wg      sync.WaitGroup
	timers  map[string]*time.Timer // execID/timerID → timer
	logMu   sync.Mutex
	lines   []LogLine
	err     error
}

func (r *Runtime) newLoop() *loop {
	workers := r.Workers
	if workers <= 0 {
		workers = 1
	}
	l := &loop{
		r: r, execs: map[string]*exec{}, inbox: make(chan message, 1024),
		sem: make(chan struct{}, workers), running: map[attemptKey]context.CancelFunc{},
		timers: map[string]*time.Timer{},
	}
	// The runtime supplies the functions that read the execution's logs.
	l.engine = expr.New(expr.WithFunc("errorLogs", l.errorLogs),
		expr.WithFunc("read", tasks.ReadFunc), expr.WithFunc("fileExists", tasks.FileExistsFunc),
		expr.WithFunc("fileSize", tasks.FileSizeFunc), expr.WithFunc("isFileEmpty", tasks.IsFileEmptyFunc))
	l.machine = &execution.Machine{Engine: l.engine, Env: execution.EnvVars(os.Environ())}
	return l
}

// errorLogs is Kestra's errorLogs(): the ERROR lines of the execution so far,
// each with taskId, taskRunId, level, message and timestamp.
func (l *loop) errorLogs(ctx context.Context, _ []any) (any, error) {
	vars := expr.VarsFrom(ctx)
	ex, _ := vars["execution"].(map[string]any)
	id, _ := ex["id"].(string)
	var out []any
	for _, line := range l.logs() {
		if line.ExecutionID == id && line.Level == "ERROR" {
			out = append(out, map[string]any{
				"taskId": line.TaskID, "taskRunId": line.TaskRunID, "level": line.Level,
				"message": line.Message, "timestamp": line.Time.Format(time.RFC3339Nano),
			})
		}
	}
	return out, nil
}

func (l *loop) log(line LogLine) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	if line.Time.IsZero() {
		line.Time = time.Now().UTC()
	}
	l.lines = append(l.lines, line)
	if l.r.OnLog != nil {
		l.r.OnLog(line)
	}
}

func (l *loop) logs() []LogLine {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	return append([]LogLine(nil), l.lines...)
}

// stop cancels what still runs and waits for the workers.
func (l *loop) stop() {
	for _, cancel := range l.running {
		cancel()
	}
	for _, t := range l.timers {
		t.Stop()
	}
	l.wg.Wait()
}

func (l *loop) create(f *flow.Flow, c execution.Create) {
	ex := &exec{f: f, e: &execution.Execution{}}
	l.execs[c.ID] = ex
	l.order = append(l.order, c.ID)
	l.step(c.ID, c)
}

// run processes messages until the root execution settles.
func (l *loop) run(ctx context.Context, rootID string) error {
	for {
		if l.err != nil {
			return l.err
		}
		if l.settled(rootID) {
			return nil
		}
		select {
		case m := <-l.inbox:
			l.receive(m)
		case <-ctx.Done():
			for _, id := range l.order {
				if !l.execs[id].e.Terminal() {
					l.step(id, execution.Kill{})
				}
			}
			return fmt.Errorf("execution %s: %w", rootID, ctx.Err())
		}
	}
}

// settled reports whether nothing more will happen on its own: the root
// ended (and its subflows too), or it waits for a resume with no worker,
// timer or child left to move it.
func (l *loop) settled(rootID string) bool {
	if len(l.running) > 0 || len(l.timers) > 0 || len(l.inbox) > 0 {
		return false
	}
	for _, id := range l.order {
		switch st := l.execs[id].e.State; {
		case st.Terminal(), st == execution.Paused, st == execution.Queued:
		default:
			return false
		}
	}
	return true
}

// receive settles the loop's bookkeeping of a message and steps its execution.
func (l *loop) receive(m message) {
	switch x := m.in.(type) {
	case timerFired:
		delete(l.timers, x.key)
		l.step(m.execID, execution.TimerFired{TimerID: x.id})
	case attemptDone:
		delete(l.running, x.key)
		l.step(m.execID, x.TaskFinished)
	case retryDue:
		delete(l.timers, x.key)
		l.retries = append(l.retries, x.create.ID)
		l.create(x.f, x.create)
	case execution.Input:
		l.step(m.execID, x)
	}
}

func (l *loop) step(execID string, in execution.Input) {
	ex, ok := l.execs[execID]
	if !ok {
		return
	}
	res, err := l.machine.Step(ex.f, ex.e, in, time.Now())
	if err != nil {
		l.err = err
		return
	}
	for _, ev := range res.Events {
		if l.r.OnEvent != nil {
			l.r.OnEvent(ev)
		}
		switch ev.Type {
		case execution.EvTimerSet:
			l.setTimer(execID, *ev.Timer)
		case execution.EvTimerCancelled:
			if t, ok := l.timers[execID+"/"+ev.Timer.ID]; ok {
				t.Stop()
				delete(l.timers, execID+"/"+ev.Timer.ID)
			}
		}
	}
	for _, ef := range res.Effects {
		l.effect(ex, ef)
	}
}

func (l *loop) setTimer(execID string, tm execution.Timer) {
	key := execID + "/" + tm.ID
	if old, ok := l.timers[key]; ok {
		old.Stop()
	}
	l.timers[key] = time.AfterFunc(time.Until(tm.Due), func() {
		l.inbox <- message{execID: execID, in: timerFired{key: key, id: tm.ID}}
	})
}

// timerFired is a timer going off, with the loop's bookkeeping key.
type timerFired struct{ key, id string }

func (l *loop) effect(ex *exec, ef execution.Effect) {
	e := ex.e
	switch ef := ef.(type) {
	case execution.Dispatch:
		l.dispatch(ex, ef)
	case execution.CancelTask:
		if cancel, ok := l.running[attemptKey{ef.TaskRunID, ef.Attempt}]; ok {
			cancel()
		}
	case execution.StartChild:
		l.startChild(ex, ef)
	case execution.KillChild:
		if _, ok := l.execs[ef.ChildID]; ok {
			l.step(ef.ChildID, execution.Kill{})
		}
	case execution.Log:
		line := LogLine{ExecutionID: e.ID, TaskRunID: ef.TaskRunID, Level: ef.Level, Message: ef.Message}
		if tr, ok := e.TaskRun(ef.TaskRunID); ok {
			line.TaskID = tr.TaskID
		}
		l.log(line)
	case execution.RetryExecution:
		key := "retry/" + ef.ID
		c := execution.Create{ID: ef.ID, Inputs: e.Inputs, Labels: e.Labels, Trigger: e.Trigger, Parent: e.Parent, RetryOf: &ef.RetryOf}
		f := ex.f
		l.timers[key] = time.AfterFunc(time.Until(ef.Due), func() {
			l.inbox <- message{in: retryDue{key: key, f: f, create: c}}
		})
	case execution.Ended:
		if p := e.Parent; p != nil {
			if _, ok := l.execs[p.ExecutionID]; ok {
				outputs := map[string]any{}
				for k, v := range e.Outputs {
					outputs[k] = v
				}
				for k, v := range ef.ParentOutputs {
					outputs[k] = v
				}
				l.step(p.ExecutionID, execution.ChildEnded{TaskRunID: p.TaskRunID, ChildID: e.ID, State: ef.State, Outputs: outputs, Error: ef.ParentOutputsError})
			}
		}
	}
}

func (l *loop) startChild(parent *exec, sc execution.StartChild) {
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		l.log(LogLine{ExecutionID: parent.e.ID, TaskRunID: sc.TaskRunID, Level: "ERROR", Message: msg})
		if sc.Wait {
			l.inbox <- message{execID: parent.e.ID, in: execution.ChildEnded{TaskRunID: sc.TaskRunID, ChildID: sc.ChildID, State: execution.Failed}}
		}
	}
	if l.r.Flows == nil {
		fail("subflow %s.%s: no flows to start it from", sc.Namespace, sc.FlowID)
		return
	}
	f, err := l.r.Flows.Flow(sc.Namespace, sc.FlowID, sc.Revision)
	if err != nil {
		fail("subflow %s.%s: %v", sc.Namespace, sc.FlowID, err)
		return
	}
	inputs, err := execution.ResolveInputs(f, sc.Inputs, l.r.Engine)
	if err != nil {
		fail("subflow %s.%s: %v", sc.Namespace, sc.FlowID, err)
		return
	}
	link := &execution.ParentLink{ExecutionID: parent.e.ID, TaskRunID: sc.TaskRunID, Namespace: parent.e.Namespace, FlowID: parent.e.FlowID, Outputs: sc.Outputs}
	trigger := map[string]any{
		"type": "io.kestra.plugin.core.flow.Subflow", "executionId": parent.e.ID,
		"namespace": parent.e.Namespace, "flowId": parent.e.FlowID, "flowRevision": parent.e.FlowRevision,
	}
	if !sc.Wait {
		link = nil
	}
	l.create(f, execution.Create{ID: sc.ChildID, Inputs: inputs, Labels: sc.Labels, Parent: link, Trigger: trigger})
}

// dispatch runs an attempt in a worker goroutine, bounded by Workers.
func (l *loop) dispatch(ex *exec, d execution.Dispatch) {
	tr, ok := ex.e.TaskRun(d.TaskRunID)
	if !ok {
		return
	}
	t, ok := ex.f.FindTask(tr.TaskID)
	if !ok {
		return
	}
	rc := &tasks.RunContext{
		Task: t, Vars: l.vars(ex, tr), Engine: l.engine,
		ExecutionID: ex.e.ID, TaskRunID: tr.ID, Attempt: d.Attempt,
		Logger: taskLogger{l: l, execID: ex.e.ID, taskRunID: tr.ID, taskID: tr.TaskID},
	}
	if l.r.Store != nil {
		rc.Files = &tasks.Files{Store: l.r.Store, Namespace: ex.e.Namespace, FlowID: ex.e.FlowID,
			ExecutionID: ex.e.ID, TaskID: tr.TaskID, TaskRunID: tr.ID}
	}
	ctx, cancel := context.WithCancel(context.Background())
	key := attemptKey{d.TaskRunID, d.Attempt}
	l.running[key] = cancel
	execID := ex.e.ID
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer cancel()
		l.sem <- struct{}{}
		defer func() { <-l.sem }()
		l.inbox <- message{execID: execID, in: execution.TaskStarted(d)}
		fin := tasks.RunAttempt(ctx, l.r.Runners, rc)
		fin.TaskRunID, fin.Attempt = d.TaskRunID, d.Attempt
		l.inbox <- message{execID: execID, in: attemptDone{TaskFinished: fin, key: key}}
	}()
}

// retryDue is the time to create the retry of a failed execution.
type retryDue struct {
	key    string
	f      *flow.Flow
	create execution.Create
}

func (l *loop) vars(ex *exec, tr *execution.TaskRun) map[string]any {
	v := execution.Vars(ex.f, ex.e, tr)
	v["envs"] = l.machine.Env
	return v
}

// attemptDone is TaskFinished with the loop's bookkeeping key.
type attemptDone struct {
	execution.TaskFinished
	key attemptKey
}

// newExecutionID returns a random id created now.
func newExecutionID() string { return execution.RandomExecutionID(time.Now()) }

type taskLogger struct {
	l                         *loop
	execID, taskRunID, taskID string
}

func (t taskLogger) Log(level tasks.Level, msg string) {
	t.l.log(LogLine{ExecutionID: t.execID, TaskRunID: t.taskRunID, TaskID: t.taskID, Level: string(level), Message: msg})
}

// DirFlows is a FlowSource of the flow files of a folder, parsed once.
type DirFlows struct {
	flows map[string]*flow.Flow
}

// LoadDir parses every .yaml/.yml file of dir (not recursively) with p.
// Files that do not parse are skipped and returned as problems.
func LoadDir(p *flow.Parser, dir string) (*DirFlows, []error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return &DirFlows{flows: map[string]*flow.Flow{}}, []error{err}
	}
	d := &DirFlows{flows: map[string]*flow.Flow{}}
	var problems []error
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
			continue
		}
		path := dir + string(os.PathSeparator) + name
		src, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		f, err := p.Parse(path, src)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		d.Add(f)
	}
	return d, problems
}

// Add adds (or replaces) a flow.
func (d *DirFlows) Add(f *flow.Flow) {
	if d.flows == nil {
		d.flows = map[string]*flow.Flow{}
	}
	d.flows[f.Namespace+"/"+f.ID] = f
}

// Flow implements FlowSource; revisions are not tracked, any revision is
// the one flow.
func (d *DirFlows) Flow(namespace, id string, _ int) (*flow.Flow, error) {
	f, ok := d.flows[namespace+"/"+id]
	if !ok {
		return nil, fmt.Errorf("flow %s.%s: %w", namespace, id, flow.ErrNotFound)
	}
	return f, nil
}
