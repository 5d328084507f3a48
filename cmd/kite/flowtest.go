package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiteflow/kite/core/execution"
	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/local"
	"github.com/kiteflow/kite/core/storage"
	storagelocal "github.com/kiteflow/kite/core/storage/local"
)

// Exit codes of kite flow test.
const (
	exitSucceeded = 0 // SUCCESS or WARNING
	exitFailed    = 1 // FAILED, KILLED or CANCELLED
	exitInvalid   = 2 // the flow or its inputs are invalid: nothing ran
	exitWaiting   = 3 // PAUSED (waiting for a resume) or timed out
)

func newFlowTestCmd() *cobra.Command {
	var (
		inputs   []string
		flowsDir string
		output   string
		timeout  time.Duration
		raw      bool
	)
	cmd := &cobra.Command{
		Use:   "test FILE",
		Short: "Run a flow locally, in-process, and print its task runs, outputs and logs",
		Long: `Run a flow in this process (no server needed): tasks run here, subflows are looked
up among the flow files of the same folder (or --flows DIR). Logs print as they happen,
then every task run with its state and outputs.

Inputs: --input key=value (repeat it). A value starting with [ or { is read as JSON;
key=@path passes a local file (for FILE inputs): it is copied into a temporary internal
storage, which the tasks read from and write their files to, removed at the end.

Exit status: 0 SUCCESS or WARNING; 1 FAILED, KILLED or CANCELLED; 2 the flow or its
inputs are invalid (nothing ran); 3 PAUSED (waiting for a resume) or --timeout reached.
An execution retried as new executions (retry behavior CREATE_NEW_EXECUTION) exits
with the status of the last one.`,
		Example: `  kite flow test examples/flows/hello-world.yaml --input name=Kite
  kite flow test flow.yaml --output json | jq .state`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output is text or json, not %q", output)
			}
			given, err := parseInputs(inputs)
			if err != nil {
				return err
			}
			file := args[0]
			if flowsDir == "" {
				flowsDir = filepath.Dir(file)
			}
			p := newParser()
			src, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			errOut := cmd.ErrOrStderr()
			f, err := p.Parse(file, src)
			if err != nil {
				fmt.Fprintln(errOut, err)
				return &exitError{code: exitInvalid}
			}
			for _, w := range f.Warnings {
				fmt.Fprintln(errOut, w.String())
			}
			flows, _ := local.LoadDir(p, flowsDir) // a sibling that does not parse is simply not found
			flows.Add(f)
			rt := local.New(flows)
			rt.Engine = expr.Default
			// Task files live in a temporary folder, removed at the end.
			filesDir, err := os.MkdirTemp("", "kite-flow-test-files-")
			if err != nil {
				return err
			}
			defer func() { _ = os.RemoveAll(filesDir) }()
			if rt.Store, err = storagelocal.New(filesDir); err != nil {
				return err
			}
			if err := storeInputFiles(cmd.Context(), rt.Store, f, given); err != nil {
				return err
			}
			var mu sync.Mutex
			if output == "text" {
				rt.OnLog = func(l local.LogLine) {
					mu.Lock()
					defer mu.Unlock()
					printLog(cmd.OutOrStdout(), l)
				}
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			start := time.Now()
			res, err := rt.Run(ctx, f, given, local.Options{RawInputs: raw})
			var ie *execution.InputError
			switch {
			case errors.As(err, &ie):
				fmt.Fprintf(errOut, "%s: %v\n", file, err)
				return &exitError{code: exitInvalid}
			case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
				if res != nil && output == "text" {
					printExecution(cmd.OutOrStdout(), res, time.Since(start))
				} else if res != nil {
					_ = writeJSON(cmd.OutOrStdout(), res)
				}
				if errors.Is(err, context.DeadlineExceeded) {
					fmt.Fprintf(errOut, "%s: the execution did not end within %s; it was killed\n", file, timeout)
				}
				return &exitError{code: exitWaiting}
			case err != nil:
				return err
			}
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				printExecution(cmd.OutOrStdout(), res, time.Since(start))
			}
			st := res.Execution.State
			if st == execution.Retried && len(res.Retries) > 0 {
				st = res.Retries[len(res.Retries)-1].State // how the line of retries ended
			}
			return exitFor(st)
		},
	}
	cmd.Flags().StringArrayVarP(&inputs, "input", "i", nil, "an input as key=value (repeat it); key=@path for a file")
	cmd.Flags().StringVar(&flowsDir, "flows", "", "folder of the flows subflows are looked up in (default: the folder of FILE)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, or json (the execution, as one JSON document)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "kill the execution if it has not ended by then")
	cmd.Flags().BoolVar(&raw, "raw-inputs", false, "skip input validation and pass the values as given (as Kestra's own tests do)")
	return cmd
}

func exitFor(st execution.State) error {
	switch st {
	case execution.Success, execution.Warning:
		return nil
	case execution.Failed, execution.Killed, execution.Cancelled:
		return &exitError{code: exitFailed}
	}
	return &exitError{code: exitWaiting}
}

// parseInputs reads --input key=value flags.
func parseInputs(flags []string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--input %q: write it as key=value", kv)
		}
		switch {
		case strings.HasPrefix(v, "@"):
			abs, err := filepath.Abs(v[1:])
			if err != nil {
				return nil, err
			}
			if _, err := os.Stat(abs); err != nil {
				return nil, fmt.Errorf("--input %s: %w", k, err)
			}
			out[k] = "file://" + abs
		case strings.HasPrefix(v, "[") || strings.HasPrefix(v, "{"):
			var j any
			if err := json.Unmarshal([]byte(v), &j); err != nil {
				return nil, fmt.Errorf("--input %s: the value starts like JSON but is not: %w", k, err)
			}
			out[k] = j
		default:
			out[k] = v
		}
	}
	return out, nil
}

// jsonExecution is the --output json document.
type jsonExecution struct {
	*execution.Execution
	SubflowExecutions []*execution.Execution `json:"subflowExecutions"`
	RetryExecutions   []*execution.Execution `json:"retryExecutions"`
}

func writeJSON(w io.Writer, res *local.Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	children := res.Children
	if children == nil {
		children = []*execution.Execution{}
	}
	retries := res.Retries
	if retries == nil {
		retries = []*execution.Execution{}
	}
	return enc.Encode(jsonExecution{Execution: res.Execution, SubflowExecutions: children, RetryExecutions: retries})
}

func printLog(w io.Writer, l local.LogLine) {
	who := l.TaskID
	if who == "" {
		who = "execution"
	}
	fmt.Fprintf(w, "%s %-5s %s: %s\n", l.Time.Local().Format("15:04:05.000"), l.Level, who, l.Message)
}

func printExecution(w io.Writer, res *local.Result, took time.Duration) {
	e := res.Execution
	fmt.Fprintf(w, "\nTask runs of %s.%s (execution %s):\n", e.Namespace, e.FlowID, e.ID)
	depth := map[string]int{}
	for _, tr := range e.TaskRuns {
		d := 0
		if tr.ParentID != "" {
			d = depth[tr.ParentID] + 1
		}
		depth[tr.ID] = d
		name := tr.TaskID
		if tr.HasValue {
			name += " [" + tr.Value + "]"
		}
		line := fmt.Sprintf("  %s%-*s %-9s", strings.Repeat("  ", d), 30-2*d, name, tr.State)
		if n := len(tr.Attempts); n > 1 {
			line += fmt.Sprintf(" (%d attempts)", n)
		}
		if len(tr.Outputs) > 0 {
			line += " " + compact(tr.Outputs)
		}
		if tr.Error != "" {
			line += " error: " + tr.Error
		}
		fmt.Fprintln(w, line)
	}
	for _, c := range res.Children {
		fmt.Fprintf(w, "  subflow %s.%s: execution %s %s\n", c.Namespace, c.FlowID, c.ID, c.State)
	}
	for i, r := range res.Retries {
		fmt.Fprintf(w, "  retry %d: execution %s %s\n", i+1, r.ID, r.State)
	}
	if len(e.Outputs) > 0 {
		fmt.Fprintf(w, "Outputs: %s\n", compact(e.Outputs))
	}
	fmt.Fprintf(w, "Execution %s %s in %s", e.ID, e.State, took.Round(time.Millisecond))
	if e.Error != "" {
		fmt.Fprintf(w, ": %s", e.Error)
	}
	fmt.Fprintln(w)
	if e.State == execution.Paused {
		fmt.Fprintln(w, "It is waiting for a resume, which 'kite flow test' cannot give: run it on a server to resume it.")
	}
}

func compact(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	s := strings.TrimSpace(b.String())
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

// storeInputFiles copies the local files given as key=@path into the
// store, under a folder of the flow named flow-test, and replaces their
// file:// URIs by the kite:/// ones the tasks read.
func storeInputFiles(ctx context.Context, store storage.Storage, f *flow.Flow, given map[string]any) error {
	for k, v := range given {
		s, ok := v.(string)
		path, isFile := strings.CutPrefix(s, "file://")
		if !ok || !isFile {
			continue
		}
		uri, err := storage.InputFile(f.Namespace, f.ID, "flow-test", k, filepath.Base(path))
		if err != nil {
			return fmt.Errorf("--input %s: %w", k, err)
		}
		src, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("--input %s: %w", k, err)
		}
		_, err = store.Put(ctx, uri, src)
		_ = src.Close()
		if err != nil {
			return fmt.Errorf("--input %s: %w", k, err)
		}
		given[k] = uri
	}
	return nil
}
