package main

// kite execution: create executions of flows on a Kite server, follow them,
// and kill, resume, restart and replay them.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// fileChunkSize is the size of the chunks a FILE input is streamed in.
const fileChunkSize = 256 << 10

// runExitStatus is the exit status paragraph of the commands that wait for an
// execution to end; the codes are kite flow test's (flowtest.go).
const runExitStatus = `Exit status: 0 SUCCESS or WARNING; 1 FAILED, KILLED or CANCELLED, or an error (the
server cannot be reached…); 2 the server refused the inputs (nothing ran); 3 the
execution has not ended: still PAUSED or running when --wait-timeout is reached or the
command is interrupted, or RETRIED (a new execution carries on its retry).`

func newExecutionCmd() *cobra.Command {
	cmd := group("execution", "Run flows on the Kite server, follow their executions, and kill, resume, restart or replay them")
	cf := addClientFlags(cmd, true)
	cmd.AddCommand(newExecutionRunCmd(cf), newExecutionGetCmd(cf), newExecutionWatchCmd(cf),
		newExecutionKillCmd(cf), newExecutionResumeCmd(cf), newExecutionRestartCmd(cf), newExecutionReplayCmd(cf))
	cmd.AddCommand(newExecutionFilesCmd(cf))
	return cmd
}

// fileInput is an --input key=@path: a local file sent to a FILE input.
type fileInput struct{ input, path string }

func newExecutionRunCmd(cf *clientFlags) *cobra.Command {
	var (
		inputs, labels []string
		revision       int32
		wait, follow   bool
		waitTimeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run NAMESPACE FLOW",
		Short: "Create an execution of a flow on the Kite server, and optionally wait for its end",
		Long: `Create an execution of a flow stored on the Kite server and print its id.

Inputs: --input key=value (repeat it). Values are sent as text and the server reads
them as the flow declares each input (INT, BOOLEAN, JSON…). key=@path sends a local
file to a FILE input: it is streamed to the server in chunks, whatever its size.
Labels: --label key=value (repeat it), added to the flow's own.

--wait waits for the execution to end, then prints it: state, task runs, outputs.
--follow does the same and meanwhile prints each task run's progress and the
execution's log lines as they happen:
  12:00:01.123  execution  RUNNING
  12:00:01.130  greet      RUNNING
  12:00:01.250 INFO  greet: Hello, Kite!
  12:00:01.331  greet      SUCCESS (0.2s)
With --output json or yaml the execution is printed as a document (its id, state,
task runs and outputs), and --follow's lines go to standard error.

An execution keeps running on the server when the command stops waiting for it.

` + runExitStatus + `
Without --wait or --follow: 0 once the execution is created.`,
		Example: `  kite execution run company.team hello --input name=Kite --wait
  kite execution run company.team etl --input data=@./rows.csv --label env=dev --follow
  id=$(kite execution run company.team hello) && kite execution watch "$id"
  kite execution run company.team hello --wait -o json | jq .outputs`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kvs, err := keyValues("input", inputs)
			if err != nil {
				return err
			}
			var plain [][2]string
			var files []fileInput
			for _, kv := range kvs {
				path, isFile := strings.CutPrefix(kv[1], "@")
				if !isFile {
					plain = append(plain, kv)
					continue
				}
				st, err := os.Stat(path)
				if err != nil {
					return fmt.Errorf("--input %s: %w", kv[0], err)
				}
				if !st.Mode().IsRegular() {
					return fmt.Errorf("--input %s: %s is not a regular file", kv[0], path)
				}
				files = append(files, fileInput{input: kv[0], path: path})
			}
			given, err := stringInputs(plain)
			if err != nil {
				return err
			}
			lkvs, err := keyValues("label", labels)
			if err != nil {
				return err
			}
			req := &kitev1.ExecutionServiceCreateRequest{Namespace: args[0], FlowId: args[1], Inputs: given}
			for _, kv := range lkvs {
				req.Labels = append(req.Labels, &kitev1.Label{Key: kv[0], Value: kv[1]})
			}
			if cmd.Flags().Changed("revision") {
				req.Revision = &revision
			}

			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			ctx, out, errOut := cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			var ex *kitev1.Execution
			if len(files) == 0 {
				uctx, cancel := c.unary(ctx)
				res, cerr := c.execs.Create(uctx, req)
				cancel()
				ex, err = res.GetExecution(), cerr
			} else {
				ex, err = createWithFiles(ctx, c, req, files)
			}
			if isCode(err, codes.InvalidArgument) {
				fmt.Fprintln(errOut, "error:", c.apiError(err))
				return &exitError{code: exitInvalid}
			} else if err != nil {
				return c.apiError(err)
			}

			p := &printer{w: out, format: cf.output}
			if !wait && !follow {
				if p.table() {
					fmt.Fprintln(out, ex.GetId())
					return nil
				}
				return p.print(ex)
			}
			var progress io.Writer
			if follow {
				progress = out
				if !p.table() {
					progress = errOut // stdout keeps one document
				}
			}
			return waitAndPrint(ctx, c, ex.GetId(), waitTimeout, progress, p, errOut)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&inputs, "input", "i", nil, "an input as key=value (repeat it); key=@path streams a local file to a FILE input")
	f.StringArrayVarP(&labels, "label", "l", nil, "a label of the execution as key=value (repeat it)")
	f.Int32Var(&revision, "revision", 0, "the flow revision to run (default: the latest)")
	f.BoolVarP(&wait, "wait", "w", false, "wait for the execution to end, print it and exit with a status from its state")
	f.BoolVarP(&follow, "follow", "f", false, "like --wait, printing task run progress and log lines as they happen")
	f.DurationVar(&waitTimeout, "wait-timeout", 0, "with --wait or --follow, stop waiting after this long (exit 3); 0 waits until the execution ends")
	return cmd
}

// createWithFiles creates an execution with CreateWithFiles: the request, then
// the content of each file in chunks of fileChunkSize, read from the file as
// they are sent. The upload has no --timeout: a large file takes its time.
func createWithFiles(ctx context.Context, c *apiClient, req *kitev1.ExecutionServiceCreateRequest, files []fileInput) (*kitev1.Execution, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a file that fails to read aborts the stream
	stream, err := c.execs.CreateWithFiles(ctx)
	if err != nil {
		return nil, err
	}
	err = stream.Send(&kitev1.ExecutionServiceCreateWithFilesRequest{
		Part: &kitev1.ExecutionServiceCreateWithFilesRequest_Request{Request: req},
	})
	for _, f := range files {
		if err != nil {
			break
		}
		err = sendFile(stream, f)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// On io.EOF the server ended the stream early; CloseAndRecv gives its status.
	res, err := stream.CloseAndRecv()
	return res.GetExecution(), err
}

func sendFile(stream kitev1.ExecutionService_CreateWithFilesClient, fi fileInput) error {
	f, err := os.Open(fi.path)
	if err != nil {
		return fmt.Errorf("--input %s: %w", fi.input, err)
	}
	defer func() { _ = f.Close() }()
	name := filepath.Base(fi.path)
	for first := true; ; first = false {
		buf := make([]byte, fileChunkSize) // a message must not change once sent: one buffer per chunk
		n, rerr := io.ReadFull(f, buf)
		if n == 0 && !first && (errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF)) {
			return nil
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return fmt.Errorf("--input %s: reading %s: %w", fi.input, fi.path, rerr)
		}
		chunk := &kitev1.FileChunk{Input: fi.input, Data: buf[:n]}
		if first {
			chunk.FileName = name // the server reads it from the first chunk
		}
		if err := stream.Send(&kitev1.ExecutionServiceCreateWithFilesRequest{
			Part: &kitev1.ExecutionServiceCreateWithFilesRequest_Chunk{Chunk: chunk},
		}); err != nil {
			return err
		}
		if rerr != nil { // a short read: that was the end of the file
			return nil
		}
	}
}

// errWaitTimeout reports that --wait-timeout was reached.
var errWaitTimeout = errors.New("wait timeout")

// waitAndPrint waits for an execution to end (Watch), printing its progress
// to progress when it is not nil, then prints it as it ended and returns the
// exit status of its state.
func waitAndPrint(ctx context.Context, c *apiClient, id string, waitTimeout time.Duration, progress io.Writer, p *printer, errOut io.Writer) error {
	err := awaitEnd(ctx, c, id, waitTimeout, progress, errOut)
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(errOut, "stopped waiting: execution %s goes on on the server (kite execution watch %s)\n", id, id)
		return &exitError{code: exitWaiting}
	case err != nil && !errors.Is(err, errWaitTimeout):
		return c.apiError(err)
	}
	uctx, cancel := c.unary(ctx)
	defer cancel()
	res, gerr := c.execs.Get(uctx, &kitev1.ExecutionServiceGetRequest{ExecutionId: id})
	if gerr != nil {
		return c.apiError(gerr)
	}
	ex := res.GetExecution()
	if p.table() {
		if progress != nil {
			fmt.Fprintln(p.w) // after the progress lines
		}
		printExecutionTable(p.w, ex)
	} else if perr := p.print(ex); perr != nil {
		return perr
	}
	if err != nil {
		fmt.Fprintf(errOut, "execution %s has not ended within %s (--wait-timeout); it goes on on the server\n", id, waitTimeout)
		return &exitError{code: exitWaiting}
	}
	return exitFor(coreState(ex.GetState()))
}

// tailGrace is how long the log tail of --follow may lag behind the end of
// the execution before it is cut.
const tailGrace = 10 * time.Second

// awaitEnd watches an execution until it ends. With a progress writer, it
// prints the state changes of the execution and its task runs, and tails its
// logs alongside.
func awaitEnd(ctx context.Context, c *apiClient, id string, waitTimeout time.Duration, progress, errOut io.Writer) error {
	wctx := ctx
	if waitTimeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, waitTimeout)
		defer cancel()
	}
	var lines *lineWriter
	tailDone := make(chan struct{})
	tctx, stopTail := context.WithCancel(wctx)
	defer func() { stopTail(); <-tailDone }()
	if progress == nil {
		close(tailDone)
	} else {
		lines = &lineWriter{w: progress}
		go func() {
			defer close(tailDone)
			err := tailLogs(tctx, c, &kitev1.LogServiceTailRequest{ExecutionId: id}, func(e *kitev1.LogEntry) error {
				return lines.println(logLine(e))
			})
			if err != nil && tctx.Err() == nil {
				fmt.Fprintf(errOut, "the logs of execution %s could not be followed: %v\n", id, c.apiError(err))
			}
		}()
	}
	view := &eventView{}
	err := watchEvents(wctx, c, id, 0, errOut, func(ev *kitev1.ExecutionEvent) error {
		if lines == nil {
			return nil
		}
		if s, ok := view.line(ev); ok {
			return lines.println(s)
		}
		return nil
	})
	if err == nil && progress != nil {
		select { // the tail ends once the last lines are sent
		case <-tailDone:
		case <-time.After(tailGrace):
		}
	}
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return errWaitTimeout
	}
	return err
}

// watchEvents calls fn with the events of an execution from sequence from on,
// until the execution ends. A stream lost to an unavailable server is resumed
// where it stopped, as the API asks, for a while.
func watchEvents(ctx context.Context, c *apiClient, id string, from int64, errOut io.Writer, fn func(*kitev1.ExecutionEvent) error) error {
	const maxFailures = 8
	backoff, failures, received := 200*time.Millisecond, 0, false
	for {
		stream, err := c.execs.Watch(ctx, &kitev1.ExecutionServiceWatchRequest{ExecutionId: id, FromSequence: from})
		for err == nil {
			var res *kitev1.ExecutionServiceWatchResponse
			if res, err = stream.Recv(); err == nil {
				ev := res.GetEvent()
				from, received, failures, backoff = ev.GetSeq()+1, true, 0, 200*time.Millisecond
				err = fn(ev)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		failures++
		if !received || !isCode(err, codes.Unavailable) || failures > maxFailures || ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(errOut, "lost the events of execution %s (%s); resuming from event %d\n", id, cleanTransportMessage(statusMessage(err)), from)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func newExecutionGetCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show an execution: state, task runs, inputs and outputs",
		Long: `Show an execution as it is now: its flow, state and duration, labels, inputs and
outputs, then one row per task run (nested under its flowable parent) with its
state, start, duration, attempts, and outputs or error. Times are local.
--output json or yaml prints the whole execution, task runs' histories included.`,
		Example: `  kite execution get 01M80SCHM88R6E4WXZJ1WV4
  kite execution get 01M80SCHM88R6E4WXZJ1WV4 -o json | jq '.taskRuns[] | {taskId, state}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			uctx, cancel := c.unary(cmd.Context())
			defer cancel()
			res, err := c.execs.Get(uctx, &kitev1.ExecutionServiceGetRequest{ExecutionId: args[0]})
			if err != nil {
				return c.apiError(err)
			}
			p := &printer{w: cmd.OutOrStdout(), format: cf.output}
			if p.table() {
				printExecutionTable(p.w, res.GetExecution())
				return nil
			}
			return p.print(res.GetExecution())
		},
	}
}

func newExecutionWatchCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "watch ID",
		Short: "Print the events of an execution as they happen, until it ends",
		Long: `Print the events of an execution: first those already recorded, then the new ones
as they happen, until the execution ends (at once when it has ended already):
  12:00:01.100  execution  CREATED company.team.hello revision 3
  12:00:01.130  greet      RUNNING
  12:00:01.331  greet      outputs {"value":"Hello"}
With --output json or yaml, each event is a document (JSON: one per line).

` + runExitStatus,
		Example: `  kite execution watch 01M80SCHM88R6E4WXZJ1WV4
  kite execution watch 01M80SCHM88R6E4WXZJ1WV4 -o json | jq -c 'select(.type == "EVENT_TYPE_TASK_RUN_STATE")'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			p := &printer{w: out, format: cf.output, stream: true}
			view := &eventView{verbose: true}
			state := kitev1.State_STATE_UNSPECIFIED
			err = watchEvents(ctx, c, args[0], 0, cmd.ErrOrStderr(), func(ev *kitev1.ExecutionEvent) error {
				switch ev.GetType() {
				case kitev1.EventType_EVENT_TYPE_CREATED:
					state = ev.GetExecution().GetState()
				case kitev1.EventType_EVENT_TYPE_STATE:
					state = ev.GetState()
				}
				if !p.table() {
					return p.print(ev)
				}
				if s, ok := view.line(ev); ok {
					_, err := fmt.Fprintln(out, s)
					return err
				}
				return nil
			})
			switch {
			case ctx.Err() != nil:
				return &exitError{code: exitWaiting}
			case err != nil:
				return c.apiError(err)
			}
			return exitFor(coreState(state))
		},
	}
}

func newExecutionKillCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "kill ID",
		Short: "Kill an execution: its running task runs are stopped and it ends KILLED",
		Long: `Kill an execution: its running task runs are stopped, then it ends KILLED, and so do
the subflow executions it started. The command returns once the server accepted the
kill; kite execution watch ID shows its effect.`,
		Example: `  kite execution kill 01M80SCHM88R6E4WXZJ1WV4`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executionCommand(cmd, cf, func(ctx context.Context, c *apiClient) (proto.Message, string, error) {
				res, err := c.execs.Kill(ctx, &kitev1.ExecutionServiceKillRequest{ExecutionId: args[0]})
				return res, requested("kill", args[0]), err
			})
		},
	}
}

func newExecutionResumeCmd(cf *clientFlags) *cobra.Command {
	var inputs []string
	cmd := &cobra.Command{
		Use:   "resume ID",
		Short: "Resume a PAUSED execution, with the inputs its Pause task asks for",
		Long: `Resume a PAUSED execution. --input key=value gives the inputs its Pause task asks
for (onResume), as text the server reads by their declared types. The command returns
once the server accepted the resume; kite execution watch ID shows its effect.`,
		Example: `  kite execution resume 01M80SCHM88R6E4WXZJ1WV4
  kite execution resume 01M80SCHM88R6E4WXZJ1WV4 --input approved=true --input reason="looks good"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kvs, err := keyValues("input", inputs)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				if strings.HasPrefix(kv[1], "@") {
					return fmt.Errorf("--input %s: resume takes no files, only values", kv[0])
				}
			}
			given, err := stringInputs(kvs)
			if err != nil {
				return err
			}
			return executionCommand(cmd, cf, func(ctx context.Context, c *apiClient) (proto.Message, string, error) {
				res, err := c.execs.Resume(ctx, &kitev1.ExecutionServiceResumeRequest{ExecutionId: args[0], Inputs: given})
				return res, requested("resume", args[0]), err
			})
		},
	}
	cmd.Flags().StringArrayVarP(&inputs, "input", "i", nil, "an input of the Pause task as key=value (repeat it)")
	return cmd
}

func newExecutionRestartCmd(cf *clientFlags) *cobra.Command {
	var revision int32
	cmd := &cobra.Command{
		Use:   "restart ID",
		Short: "Run an ended execution again from its failed task runs, in the same execution",
		Long: `Restart an ended execution: it runs again from its failed task runs, in the same
execution (state RESTARTED), with its own flow revision or the one --revision names.
The command returns once the server accepted the restart; kite execution watch ID
shows its effect.`,
		Example: `  kite execution restart 01M80SCHM88R6E4WXZJ1WV4
  kite execution restart 01M80SCHM88R6E4WXZJ1WV4 --revision 4`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &kitev1.ExecutionServiceRestartRequest{ExecutionId: args[0]}
			if cmd.Flags().Changed("revision") {
				req.Revision = &revision
			}
			return executionCommand(cmd, cf, func(ctx context.Context, c *apiClient) (proto.Message, string, error) {
				res, err := c.execs.Restart(ctx, req)
				return res, requested("restart", args[0]), err
			})
		},
	}
	cmd.Flags().Int32Var(&revision, "revision", 0, "the flow revision to run the restart with (default: the execution's own)")
	return cmd
}

func newExecutionReplayCmd(cf *clientFlags) *cobra.Command {
	var (
		taskRun  string
		revision int32
	)
	cmd := &cobra.Command{
		Use:   "replay ID",
		Short: "Run an ended execution again as a new execution, from a task run or from the start",
		Long: `Replay an ended execution: a new execution copies it up to a task run (--task-run,
an id from kite execution get ID -o json) and runs again from there; from the start
without --task-run. Prints the new execution's id.`,
		Example: `  kite execution replay 01M80SCHM88R6E4WXZJ1WV4
  kite execution replay 01M80SCHM88R6E4WXZJ1WV4 --task-run 2kJx0pZb3Qm9xYf1Rv7sTd
  kite execution watch "$(kite execution replay 01M80SCHM88R6E4WXZJ1WV4)"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &kitev1.ExecutionServiceReplayRequest{ExecutionId: args[0], TaskRunId: taskRun}
			if cmd.Flags().Changed("revision") {
				req.Revision = &revision
			}
			return executionCommand(cmd, cf, func(ctx context.Context, c *apiClient) (proto.Message, string, error) {
				res, err := c.execs.Replay(ctx, req)
				return res, res.GetExecutionId(), err
			})
		},
	}
	cmd.Flags().StringVar(&taskRun, "task-run", "", "the id of the task run to run again from (default: the start)")
	cmd.Flags().Int32Var(&revision, "revision", 0, "the flow revision to run the replay with (default: the execution's own)")
	return cmd
}

// executionCommand makes one unary call that acts on an execution and prints
// the server's answer (json, yaml) or, as a table, the line call returns.
func executionCommand(cmd *cobra.Command, cf *clientFlags, call func(context.Context, *apiClient) (res proto.Message, line string, err error)) error {
	c, err := cf.dial()
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	uctx, cancel := c.unary(cmd.Context())
	defer cancel()
	res, line, err := call(uctx, c)
	if err != nil {
		return c.apiError(err)
	}
	p := &printer{w: cmd.OutOrStdout(), format: cf.output}
	if !p.table() {
		return p.print(res)
	}
	_, err = fmt.Fprintln(p.w, line)
	return err
}

// requested is what kill, resume and restart print: the server accepted the
// command, and its effect shows in the execution's events.
func requested(what, id string) string {
	return fmt.Sprintf("%s of execution %s requested; follow it with: kite execution watch %s", what, id, id)
}
