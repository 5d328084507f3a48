package main

// How executions and their events read in a terminal: the one-line-per-event
// progress of kite execution run --follow and kite execution watch, and the
// execution with its task runs of kite execution get.

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// eventView turns the events of one execution, in order, into lines:
//
//	12:00:01.130  greet      RUNNING
//	12:00:01.331  greet      SUCCESS (0.2s)
//
// It remembers the task runs created, to name them by their task, and when
// they started, to say how long they took.
type eventView struct {
	// verbose shows every event; otherwise only the state changes of the
	// execution and its task runs, and the subflows started.
	verbose bool

	names   map[string]string    // task run id → "task" or "task [value]"
	starts  map[string]time.Time // task run id → when it was created
	created time.Time            // when the execution was created
	width   int                  // of the name column, the longest name so far
}

const executionWho = "execution"

func (v *eventView) line(ev *kitev1.ExecutionEvent) (string, bool) {
	if v.names == nil {
		v.names, v.starts, v.width = map[string]string{}, map[string]time.Time{}, len(executionWho)
	}
	at := ev.GetTime().AsTime()
	who, what := executionWho, ""
	if id := ev.GetTaskRunId(); id != "" {
		who = v.name(id)
	}
	switch ev.GetType() {
	case kitev1.EventType_EVENT_TYPE_CREATED:
		v.created = at
		e := ev.GetExecution()
		what = fmt.Sprintf("CREATED %s.%s revision %d", e.GetNamespace(), e.GetFlowId(), e.GetFlowRevision())
	case kitev1.EventType_EVENT_TYPE_STATE:
		what = stateChange(ev, v.created, at)
	case kitev1.EventType_EVENT_TYPE_TASK_RUN_CREATED:
		tr := ev.GetTaskRun()
		name := tr.GetTaskId()
		if tr.Value != nil {
			name += " [" + tr.GetValue() + "]"
		}
		v.names[tr.GetId()], v.starts[tr.GetId()] = name, at
		v.width = max(v.width, len(name))
		if !v.verbose {
			return "", false
		}
		who, what = name, "CREATED"
	case kitev1.EventType_EVENT_TYPE_TASK_RUN_STATE:
		what = stateChange(ev, v.starts[ev.GetTaskRunId()], at)
	case kitev1.EventType_EVENT_TYPE_CHILD:
		what = "started subflow execution " + ev.GetChildId()
	default:
		if !v.verbose {
			return "", false
		}
		what = eventDetail(ev)
	}
	return fmt.Sprintf("%s  %-*s  %s", localTime(ev.GetTime(), "15:04:05.000"), v.width, who, what), true
}

func (v *eventView) name(taskRunID string) string {
	if n, ok := v.names[taskRunID]; ok {
		return n
	}
	return taskRunID // created before the events watched
}

// stateChange is "SUCCESS (0.2s)", or "FAILED (1.5s): the error": the time
// taken since start, when the state ends the run. As in Kestra, a run's
// duration counts from its creation.
func stateChange(ev *kitev1.ExecutionEvent, start, at time.Time) string {
	s := stateName(ev.GetState())
	if coreState(ev.GetState()).Terminal() && !start.IsZero() {
		s += " (" + humanDuration(at.Sub(start)) + ")"
	}
	if e := ev.GetError(); e != "" {
		s += ": " + e
	}
	return s
}

// eventDetail describes the events that are not state changes.
func eventDetail(ev *kitev1.ExecutionEvent) string {
	switch ev.GetType() {
	case kitev1.EventType_EVENT_TYPE_ATTEMPT:
		s := fmt.Sprintf("attempt %d %s", ev.GetAttempt(), stateName(ev.GetState()))
		if e := ev.GetError(); e != "" {
			s += ": " + e
		}
		return s
	case kitev1.EventType_EVENT_TYPE_OUTPUTS:
		return "outputs " + structText(ev.GetOutputs())
	case kitev1.EventType_EVENT_TYPE_LABELS:
		return "labels " + labelsText(ev.GetLabels())
	case kitev1.EventType_EVENT_TYPE_TIMER_SET:
		t := ev.GetTimer()
		return fmt.Sprintf("timer %s (%s) due %s", t.GetId(), t.GetKind(), localTime(t.GetDue(), "15:04:05.000"))
	case kitev1.EventType_EVENT_TYPE_TIMER_CANCELLED:
		return "timer " + ev.GetTimer().GetId() + " cancelled"
	case kitev1.EventType_EVENT_TYPE_TASK_RUN_REMOVED:
		return "removed (restart or replay)"
	case kitev1.EventType_EVENT_TYPE_ITERATIONS:
		return fmt.Sprintf("%d iterations ended, %s", ev.GetDone(), stateName(ev.GetState()))
	}
	return strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_")
}

// structText is a Struct as compact JSON, cut when long.
func structText(s *structpb.Struct) string {
	if s == nil {
		return "{}"
	}
	return compact(s.AsMap())
}

// printExecutionTable prints an execution for a person: the execution, then
// one row per task run, nested under its flowable parent.
func printExecutionTable(w io.Writer, e *kitev1.Execution) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Execution:\t%s\n", e.GetId())
	fmt.Fprintf(tw, "Flow:\t%s.%s (revision %d)\n", e.GetNamespace(), e.GetFlowId(), e.GetFlowRevision())
	state := stateName(e.GetState())
	if d, ok := took(e.GetHistory(), coreState(e.GetState()).Terminal()); ok {
		state += " (" + d + ")"
	}
	fmt.Fprintf(tw, "State:\t%s\n", state)
	if h := e.GetHistory(); len(h) > 0 {
		fmt.Fprintf(tw, "Created:\t%s\n", localTime(h[0].GetTime(), "2006-01-02 15:04:05 MST"))
	}
	if len(e.GetLabels()) > 0 {
		fmt.Fprintf(tw, "Labels:\t%s\n", labelsText(e.GetLabels()))
	}
	if len(e.GetInputs().GetFields()) > 0 {
		fmt.Fprintf(tw, "Inputs:\t%s\n", structText(e.GetInputs()))
	}
	if len(e.GetOutputs().GetFields()) > 0 {
		fmt.Fprintf(tw, "Outputs:\t%s\n", structText(e.GetOutputs()))
	}
	if p := e.GetParent(); p != nil {
		fmt.Fprintf(tw, "Parent:\texecution %s of %s.%s (task run %s)\n", p.GetExecutionId(), p.GetNamespace(), p.GetFlowId(), p.GetTaskRunId())
	}
	if r := e.GetRetryOf(); r != nil {
		fmt.Fprintf(tw, "Retry of:\texecution %s (retry %d)\n", r.GetOriginalId(), r.GetNumber())
	}
	if msg := e.GetError(); msg != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", msg)
	}
	_ = tw.Flush()

	if len(e.GetTaskRuns()) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TASK\tSTATE\tSTARTED\tDURATION\tATTEMPTS\tOUTPUTS OR ERROR")
		depth := map[string]int{}
		for _, tr := range e.GetTaskRuns() {
			d := 0
			if p, ok := depth[tr.GetParentTaskRunId()]; ok {
				d = p + 1
			}
			depth[tr.GetId()] = d
			name := strings.Repeat("  ", d) + tr.GetTaskId()
			if tr.Value != nil {
				name += " [" + tr.GetValue() + "]"
			}
			started, dur := "-", "-"
			if h := tr.GetHistory(); len(h) > 0 {
				started = localTime(h[0].GetTime(), "15:04:05.000")
			}
			if s, ok := took(tr.GetHistory(), coreState(tr.GetState()).Terminal()); ok {
				dur = s
			}
			detail := tr.GetError()
			if detail == "" && len(tr.GetOutputs().GetFields()) > 0 {
				detail = structText(tr.GetOutputs())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", name, stateName(tr.GetState()), started, dur, len(tr.GetAttempts()), detail)
		}
		_ = tw.Flush()
	}
	if e.GetState() == kitev1.State_STATE_PAUSED {
		fmt.Fprintf(w, "\nIt waits for a resume: kite execution resume %s\n", e.GetId())
	}
}

// took is the time from the first state of a history to its last, when the
// run has ended: its duration, as Kestra counts it.
func took(h []*kitev1.StateTime, ended bool) (string, bool) {
	if !ended || len(h) < 2 {
		return "", false
	}
	return humanDuration(h[len(h)-1].GetTime().AsTime().Sub(h[0].GetTime().AsTime())), true
}
