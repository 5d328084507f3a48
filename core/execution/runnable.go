package execution

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/kiteflow/kite/core/flow"
)

// dispatch creates attempt n of a runnable task run and asks a worker to run it.
func (s *step) dispatch(tr *TaskRun, n int) {
	s.emit(&Event{Type: EvAttempt, TaskRunID: tr.ID, Attempt: n, State: Created})
	s.effect(Dispatch{TaskRunID: tr.ID, Attempt: n})
}

// current reports whether a result is about the task run's live attempt.
func current(tr *TaskRun, attempt int) bool {
	return !tr.State.Terminal() && attempt == len(tr.Attempts) && attempt > 0 &&
		!tr.Attempts[attempt-1].State.Terminal()
}

func (s *step) taskStarted(in TaskStarted) {
	tr, ok := s.e.TaskRun(in.TaskRunID)
	if !ok || s.e.Terminal() || !current(tr, in.Attempt) || tr.Attempts[in.Attempt-1].State == Running {
		s.logf(nil, "DEBUG", "start of task run %s attempt %d ignored: not its live attempt", in.TaskRunID, in.Attempt)
		return
	}
	s.emit(&Event{Type: EvAttempt, TaskRunID: tr.ID, Attempt: in.Attempt, State: Running})
	s.setTaskRunState(tr, Running, "")
	if t, ok := s.task(tr); ok && t.Timeout > 0 {
		s.setTimer(TimerTimeout, tr, s.now.Add(t.Timeout))
	}
}

func (s *step) taskFinished(in TaskFinished) {
	tr, ok := s.e.TaskRun(in.TaskRunID)
	if !ok || s.e.Terminal() || !current(tr, in.Attempt) {
		s.logf(nil, "DEBUG", "result of task run %s attempt %d recorded and ignored: the attempt is not live", in.TaskRunID, in.Attempt)
		return
	}
	st := in.State
	switch st {
	case Success, Warning, Failed, Killed:
	case "":
		st = Success
	default:
		s.logf(tr, "ERROR", "task run %s: a result cannot be %s; counted as FAILED", tr.TaskID, st)
		st = Failed
	}
	s.cancelTimer(TimerTimeout, tr)
	if tr.Attempts[in.Attempt-1].State == Created {
		// The worker reported the end without a start.
		s.emit(&Event{Type: EvAttempt, TaskRunID: tr.ID, Attempt: in.Attempt, State: Running})
		s.setTaskRunState(tr, Running, "")
	}
	s.emit(&Event{Type: EvAttempt, TaskRunID: tr.ID, Attempt: in.Attempt, State: st})
	if len(in.Outputs) > 0 {
		s.emit(&Event{Type: EvOutputs, TaskRunID: tr.ID, Outputs: in.Outputs})
	}
	if len(in.Labels) > 0 {
		s.emit(&Event{Type: EvLabels, Labels: in.Labels})
	}
	s.attemptEnded(tr, st, in.Error)
}

func (s *step) workerLost(in WorkerLost) {
	tr, ok := s.e.TaskRun(in.TaskRunID)
	if !ok || s.e.Terminal() || !current(tr, in.Attempt) {
		return
	}
	msg := fmt.Sprintf("worker %s stopped while running attempt %d", in.WorkerID, in.Attempt)
	s.cancelTimer(TimerTimeout, tr)
	s.emit(&Event{Type: EvAttempt, TaskRunID: tr.ID, Attempt: in.Attempt, State: Killed})
	if s.e.State == Killing {
		s.setTaskRunState(tr, Killed, msg)
		return
	}
	s.logf(tr, "WARN", "task %s: %s; running it again as attempt %d", tr.TaskID, msg, in.Attempt+1)
	s.dispatch(tr, in.Attempt+1)
}

// attemptEnded decides what follows an attempt: another attempt after a
// backoff, or the end of the task run.
func (s *step) attemptEnded(tr *TaskRun, st State, errMsg string) {
	t, _ := s.task(tr)
	pol := s.retryPolicy(t, tr)
	if st == Failed && s.e.State != Killing && pol != nil && pol.Behavior != flow.RetryCreateNewExecution {
		if delay, ok := retryDelay(pol, len(tr.Attempts), firstDate(tr), s.now, tr.ID); ok {
			s.logf(tr, "WARN", "task %s attempt %d failed (%s); retrying in %s", tr.TaskID, len(tr.Attempts), errMsg, delay)
			s.setTaskRunState(tr, Retrying, errMsg)
			s.setTimer(TimerRetry, tr, s.now.Add(delay))
			return
		}
	}
	if st == Success && len(tr.Attempts) > 1 && pol != nil && pol.WarningOnRetry {
		st = Warning
	}
	if s.e.State == Killing {
		st = Killed
	}
	s.setTaskRunState(tr, st, errMsg)
}

// retryPolicy is the retry of a task: its own, else the nearest enclosing
// flowable's, else the flow's.
func (s *step) retryPolicy(t *flow.Task, tr *TaskRun) *flow.Retry {
	if t != nil && t.Retry != nil {
		return t.Retry
	}
	for p := tr.ParentID; p != ""; {
		ptr, ok := s.e.TaskRun(p)
		if !ok {
			break
		}
		if pt, ok := s.task(ptr); ok && pt.Retry != nil {
			return pt.Retry
		}
		p = ptr.ParentID
	}
	return s.f.Retry
}

// retryDelay says whether a policy allows another try after n tries, the
// first of which started at first, and after how long. seed makes random
// delays the same when a step is replayed.
func retryDelay(r *flow.Retry, n int, first, now time.Time, seed string) (time.Duration, bool) {
	if r.MaxAttempts > 0 && n >= r.MaxAttempts {
		return 0, false
	}
	var delay time.Duration
	switch r.Type {
	case flow.RetryConstant:
		delay = r.Interval
	case flow.RetryExponential:
		delay = r.Interval
		for i := 1; i < n; i++ {
			delay = time.Duration(float64(delay) * r.DelayFactor)
			if r.MaxInterval > 0 && delay > r.MaxInterval {
				delay = r.MaxInterval
				break
			}
		}
	case flow.RetryRandom:
		delay = r.MinInterval
		if span := r.MaxInterval - r.MinInterval; span > 0 {
			h := uint64(n)
			for _, c := range seed {
				h = h*31 + uint64(c)
			}
			delay += time.Duration(rand.New(rand.NewPCG(h, uint64(n))).Int64N(int64(span)))
		}
	}
	if r.MaxDuration > 0 && !first.IsZero() && now.Add(delay).Sub(first) > r.MaxDuration {
		return 0, false
	}
	return delay, true
}

func (s *step) timerFired(in TimerFired) {
	tm, ok := s.e.Timers[in.TimerID]
	if !ok || s.e.Terminal() {
		s.logf(nil, "DEBUG", "timer %s ignored: cancelled or the execution ended", in.TimerID)
		return
	}
	s.emit(&Event{Type: EvTimerCancelled, Timer: &Timer{ID: tm.ID}})
	tr, ok := s.e.TaskRun(tm.TaskRunID)
	if !ok || tr.State.Terminal() {
		return
	}
	switch tm.Kind {
	case TimerRetry:
		if tr.State != Retrying {
			return
		}
		s.setTaskRunState(tr, Running, "")
		if t, ok := s.task(tr); ok && t.Type == "subflow" {
			s.startSubflow(t, tr)
			return
		}
		s.dispatch(tr, len(tr.Attempts)+1)
	case TimerPause:
		if tr.State == Paused {
			s.endPause(tr, false, nil)
		}
	case TimerTimeout:
		t, _ := s.task(tr)
		msg := "timed out"
		if t != nil {
			msg = fmt.Sprintf("timed out after %s", flow.FormatDuration(t.Timeout))
		}
		if tr.State == Paused {
			s.cancelTimer(TimerPause, tr)
			s.setTaskRunState(tr, Failed, msg)
			return
		}
		n := len(tr.Attempts)
		if n == 0 {
			return
		}
		s.effect(CancelTask{TaskRunID: tr.ID, Attempt: n})
		s.logf(tr, "ERROR", "task %s %s", tr.TaskID, msg)
		s.emit(&Event{Type: EvAttempt, TaskRunID: tr.ID, Attempt: n, State: Failed})
		s.attemptEnded(tr, Failed, msg)
	}
}
