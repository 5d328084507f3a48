package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// Load creates executions of one flow through the API at a fixed rate,
// open loop: each Create call starts on schedule in a goroutine of its own,
// whether or not earlier ones have answered or ended.
type Load struct {
	Executions        kitev1.ExecutionServiceClient
	Namespace, FlowID string
	Observer          *Observer
	// Watch observes each execution with a Watch call of its own, opened
	// when Create answers, instead of leaving it to an EventsReader feeding
	// Observer. Its milestones before the terminal one are then not timed.
	// It is what a client would do, but it is not free for the server: each
	// Watch lists offsets twice and reads with a Kafka client of its own. On
	// 2 cores with kfake, at 4,000/min, Kite used 1.45 cores with Watch
	// against 0.96 with the reader, and the p99 was 663ms against 63ms; so
	// the benchmark reads the events itself by default.
	Watch bool
	// CreateTimeout bounds one Create call.
	CreateTimeout time.Duration
}

// Step is the outcome of creating executions at one rate for a while.
type Step struct {
	Rate     int // executions per minute offered
	Duration time.Duration

	Scheduled    int
	CreateErrors int
	// Errors are the distinct errors (execution ids and durations masked),
	// the first few, each with its count.
	Errors     []ErrorCount
	Succeeded  int
	Failed     int // ended in another state than SUCCESS
	Unfinished int // not ended when the step stopped waiting
	// TaskRuns is the most task runs an execution had.
	TaskRuns int

	// Latency is, for each execution that succeeded, the time from its Create
	// call's scheduled start to its terminal event seen; sorted.
	Latency []time.Duration
	// Hops are the parts of Latency between milestones (see HopNames); sorted.
	Hops [numHops][]time.Duration
	// MaxLag is the latest a Create call went out after its schedule: large
	// when the machine could not keep up, which Latency includes.
	MaxLag time.Duration
	// Span is from the first scheduled start to the last execution's end.
	Span time.Duration
}

// The parts of an execution's latency that Step.Hops holds.
const (
	hopCreate        = iota // Create call: start → answer
	hopCreated              // start → CREATED seen
	hopFirstRunning         // CREATED → task 1 RUNNING
	hopFirstEnded           // task 1 RUNNING → ended
	hopSecondRunning        // task 1 ended → task 2 RUNNING
	hopSecondEnded          // task 2 RUNNING → ended
	hopEnded                // task 2 ended → execution ended
	hopEndVisible           // terminal event produced → seen
	numHops
)

// HopNames names the hops, in Step.Hops order.
var HopNames = [numHops]string{
	"Create call (start → answer)",
	"start → CREATED seen",
	"CREATED → task 1 RUNNING",
	"task 1 RUNNING → ended",
	"task 1 ended → task 2 RUNNING",
	"task 2 RUNNING → ended",
	"task 2 ended → execution ended",
	"terminal event produced → seen",
}

// ErrorCount is one kind of error and how often it happened.
type ErrorCount struct {
	Message string `json:"message"`
	Count   int    `json:"count"`
}

// maskErr masks what differs between errors of one kind: execution ids
// and durations.
var maskErr = regexp.MustCompile(`\b[0-9A-Z]{20,}\b|\b\d+(\.\d+)?(ms|s|µs)\b`)

func (s *Step) addError(err error) {
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Code().String() + ": " + st.Message()
	}
	msg = maskErr.ReplaceAllString(msg, "…")
	for i := range s.Errors {
		if s.Errors[i].Message == msg {
			s.Errors[i].Count++
			return
		}
	}
	if len(s.Errors) < 5 {
		s.Errors = append(s.Errors, ErrorCount{Message: msg, Count: 1})
	}
}

// OK reports whether the step sustained its rate: every execution created
// and succeeded, with a p99 latency under limit.
func (s *Step) OK(limit time.Duration) bool {
	return s.Scheduled > 0 && s.CreateErrors == 0 && s.Failed == 0 && s.Unfinished == 0 &&
		len(s.Latency) > 0 && Percentile(s.Latency, 0.99) < limit
}

// DonePerMinute is the executions that succeeded per minute of Span.
func (s *Step) DonePerMinute() float64 {
	if s.Span <= 0 {
		return 0
	}
	return float64(s.Succeeded) / s.Span.Minutes()
}

// Percentile returns the p-quantile (nearest rank) of sorted durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Run creates executions at rate per minute for d, then waits up to drain
// for them to end, and returns what happened.
func (l *Load) Run(ctx context.Context, rate int, d, drain time.Duration) *Step {
	step := &Step{Rate: rate, Duration: d}
	n := int(int64(rate) * int64(d) / int64(time.Minute))
	interval := time.Minute / time.Duration(rate)

	watchCtx, stopWatches := context.WithCancel(ctx)
	defer stopWatches()
	var (
		mu      sync.Mutex
		ids     = make([]string, 0, n)
		calls   sync.WaitGroup
		watches sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		step.CreateErrors++
		step.addError(err)
	}

	begin := time.Now().Add(10 * time.Millisecond)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
schedule:
	for i := range n {
		at := begin.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break schedule
			}
		}
		step.Scheduled++
		calls.Go(func() {
			lag := time.Since(at)
			mu.Lock()
			step.MaxLag = max(step.MaxLag, lag)
			mu.Unlock()
			cctx, cancel := context.WithTimeout(ctx, l.CreateTimeout)
			resp, err := l.Executions.Create(cctx, &kitev1.ExecutionServiceCreateRequest{Namespace: l.Namespace, FlowId: l.FlowID})
			cancel()
			if err != nil {
				fail(err)
				return
			}
			id := resp.GetExecution().GetId()
			l.Observer.register(id, at, time.Now())
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
			if l.Watch {
				watches.Go(func() {
					if err := l.watch(watchCtx, id); err != nil && watchCtx.Err() == nil {
						fail(fmt.Errorf("watching execution %s: %w", id, err))
					}
				})
			}
		})
	}
	calls.Wait()
	step.Unfinished = l.Observer.wait(ctx, ids, time.Now().Add(drain))
	stopWatches()
	watches.Wait()

	var end time.Time
	for _, t := range l.Observer.snapshot(ids) {
		switch {
		case !t.ended():
			continue
		case t.state != kitev1.State_STATE_SUCCESS:
			step.Failed++
			continue
		}
		step.Succeeded++
		step.TaskRuns = max(step.TaskRuns, t.taskRuns)
		step.Latency = append(step.Latency, t.seen[msEnded].Sub(t.start))
		if t.seen[msEnded].After(end) {
			end = t.seen[msEnded]
		}
		hop := func(h int, from, to time.Time) {
			if !from.IsZero() && !to.IsZero() {
				step.Hops[h] = append(step.Hops[h], to.Sub(from))
			}
		}
		hop(hopCreate, t.start, t.returned)
		hop(hopCreated, t.start, t.seen[msCreated])
		hop(hopFirstRunning, t.seen[msCreated], t.seen[msFirstRunning])
		hop(hopFirstEnded, t.seen[msFirstRunning], t.seen[msFirstEnded])
		hop(hopSecondRunning, t.seen[msFirstEnded], t.seen[msSecondRunning])
		hop(hopSecondEnded, t.seen[msSecondRunning], t.seen[msSecondEnded])
		hop(hopEnded, t.seen[msSecondEnded], t.seen[msEnded])
		hop(hopEndVisible, t.written, t.seen[msEnded])
	}
	if !end.IsZero() {
		step.Span = end.Sub(begin)
	}
	slices.Sort(step.Latency)
	for i := range step.Hops {
		slices.Sort(step.Hops[i])
	}
	return step
}

// watch follows execution id with Watch until the stream ends, feeding the
// events to the observer as they arrive.
func (l *Load) watch(ctx context.Context, id string) error {
	stream, err := l.Executions.Watch(ctx, &kitev1.ExecutionServiceWatchRequest{ExecutionId: id})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		l.Observer.observe(time.Now(), resp.GetEvent(), time.Time{})
	}
}
