package main

// kite logs: the log lines of executions on a Kite server.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

func newLogsCmd() *cobra.Command {
	cmd := group("logs", "Read the log lines of executions on the Kite server")
	cf := addClientFlags(cmd, true)
	cmd.AddCommand(newLogsTailCmd(cf))
	return cmd
}

func newLogsTailCmd(cf *clientFlags) *cobra.Command {
	var execID, task, level string
	cmd := &cobra.Command{
		Use:   "tail --execution ID",
		Short: "Print the log lines of an execution as they are logged, until it ends",
		Long: `Print the log lines of an execution: first those already logged, then the new ones
as they are logged, until the execution has ended and its last lines are printed.
Lines read as in kite flow test, in local time:
  12:00:01.250 INFO  greet: Hello, Kite!
--task keeps the lines of one task (every run of it); --level those of a level and
above: TRACE, DEBUG, INFO, WARN or ERROR. With --output json or yaml each line is a
document (JSON: one per line).`,
		Example: `  kite logs tail --execution 01M80SCHM88R6E4WXZJ1WV4
  kite logs tail --execution 01M80SCHM88R6E4WXZJ1WV4 --task greet --level WARN
  kite logs tail --execution 01M80SCHM88R6E4WXZJ1WV4 -o json | jq -r .message`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			minLevel, err := parseLogLevel(level)
			if err != nil {
				return err
			}
			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			p := &printer{w: cmd.OutOrStdout(), format: cf.output, stream: true}
			req := &kitev1.LogServiceTailRequest{ExecutionId: execID, TaskId: task, MinLevel: minLevel}
			err = tailLogs(cmd.Context(), c, req, func(e *kitev1.LogEntry) error {
				if !p.table() {
					return p.print(e)
				}
				_, err := fmt.Fprintln(p.w, logLine(e))
				return err
			})
			if err != nil && cmd.Context().Err() == nil {
				return c.apiError(err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&execID, "execution", "e", "", "the id of the execution whose lines to print (required)")
	f.StringVarP(&task, "task", "t", "", "only the lines of this task, by its id in the flow")
	f.StringVar(&level, "level", "", "only the lines of this level and above: TRACE, DEBUG, INFO, WARN or ERROR (default: every line)")
	_ = cmd.MarkFlagRequired("execution")
	return cmd
}

// tailLogs calls fn with each log line of a Tail until the stream ends.
func tailLogs(ctx context.Context, c *apiClient, req *kitev1.LogServiceTailRequest, fn func(*kitev1.LogEntry) error) error {
	stream, err := c.logs.Tail(ctx, req)
	if err != nil {
		return err
	}
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(res.GetEntry()); err != nil {
			return err
		}
	}
}

// parseLogLevel reads --level: a level name of Kestra's, in any case.
func parseLogLevel(s string) (kitev1.LogLevel, error) {
	if s == "" {
		return kitev1.LogLevel_LOG_LEVEL_UNSPECIFIED, nil
	}
	name := strings.ToUpper(s)
	if name == "WARNING" {
		name = "WARN"
	}
	if v, ok := kitev1.LogLevel_value["LOG_LEVEL_"+name]; ok && v != 0 {
		return kitev1.LogLevel(v), nil
	}
	return 0, fmt.Errorf("--level %q: the levels are TRACE, DEBUG, INFO, WARN and ERROR", s)
}

// logLine formats a log line as kite flow test prints them (printLog):
// "12:00:01.250 INFO  greet: Hello".
func logLine(e *kitev1.LogEntry) string {
	who := e.GetTaskId()
	if who == "" {
		who = "execution"
	}
	if a := e.GetAttempt(); a > 1 {
		who += fmt.Sprintf(" (attempt %d)", a)
	}
	level := strings.TrimPrefix(e.GetLevel().String(), "LOG_LEVEL_")
	return fmt.Sprintf("%s %-5s %s: %s", localTime(e.GetTime(), "15:04:05.000"), level, who, e.GetMessage())
}

// lineWriter writes whole lines from several goroutines: the events and the
// log lines of kite execution run --follow.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) println(s string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := fmt.Fprintln(l.w, s)
	return err
}
