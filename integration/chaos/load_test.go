package chaos

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

const namespace = "kite.chaos"

// effectPrefix starts the id of every task that appends its side effect to
// the effects file: one line "EXECUTION_ID TASKRUN_ID ATTEMPT" per attempt.
const effectPrefix = "effect"

// effectTask is a shell Commands task (indented by indent spaces) that
// appends its line to path with >> (an O_APPEND write of a few dozen
// bytes: atomic). A flaky one fails its first attempt, after appending,
// and is retried.
func effectTask(indent int, id, path string, flaky bool) string {
	pad := strings.Repeat(" ", indent)
	line := fmt.Sprintf(`echo "{{ execution.id }} {{ taskrun.id }} {{ taskrun.attemptsCount + 1 }}" >> '%s'`, path)
	var b strings.Builder
	fmt.Fprintf(&b, "%s- id: %s\n", pad, id)
	fmt.Fprintf(&b, "%s  type: io.kestra.plugin.scripts.shell.Commands\n", pad)
	fmt.Fprintf(&b, "%s  warningOnStdErr: false\n", pad)
	fmt.Fprintf(&b, "%s  commands:\n", pad)
	fmt.Fprintf(&b, "%s    - |\n%s      %s\n", pad, pad, line)
	if flaky {
		// attemptsCount counts the attempts before this one: 0 on the first.
		fmt.Fprintf(&b, "%s      test {{ taskrun.attemptsCount }} -ge 1\n", pad)
		fmt.Fprintf(&b, "%s  retry: {type: constant, interval: PT0.5S, maxAttempt: 6}\n", pad)
	}
	return b.String()
}

// flowIDs are the flows of the mix, in the order executions cycle through them.
var flowIDs = []string{"sequential", "parallel", "foreach", "retry", "subflow"}

// flowSources returns the YAML of the flows of the mix, the ones others
// depend on first: subflow runs sequential.
func flowSources(effects string) []string {
	const log, ret = "io.kestra.plugin.core.log.Log", "io.kestra.plugin.core.debug.Return"
	head := func(id string) string { return "id: " + id + "\nnamespace: " + namespace + "\ntasks:\n" }
	return []string{
		head("sequential") +
			"  - {id: hello, type: " + log + `, message: "sequential {{ execution.id }}"}` + "\n" +
			effectTask(2, effectPrefix, effects, false) +
			"  - {id: value, type: " + ret + `, format: "{{ execution.id }}"}` + "\n",
		head("parallel") +
			"  - id: fan\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n" +
			"      - {id: left, type: " + log + ", message: left}\n" +
			"      - {id: middle, type: " + ret + ", format: middle}\n" +
			effectTask(6, effectPrefix, effects, false),
		head("foreach") +
			"  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n" +
			`    values: ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]` + "\n" +
			"    concurrencyLimit: 0\n    tasks:\n" +
			"      - {id: item, type: " + ret + `, format: "{{ taskrun.value }}"}` + "\n" +
			effectTask(2, effectPrefix, effects, false),
		head("retry") +
			effectTask(2, effectPrefix+"-flaky", effects, true) +
			"  - {id: after, type: " + log + ", message: retried}\n",
		head("subflow") +
			"  - {id: child, type: io.kestra.plugin.core.flow.Subflow, namespace: " + namespace + ", flowId: sequential, wait: true}\n" +
			effectTask(2, effectPrefix, effects, false),
	}
}

// applyFlows applies the flows of the mix through the API.
func applyFlows(ctx context.Context, flows kitev1.FlowServiceClient, effects string) error {
	for _, src := range flowSources(effects) {
		if _, err := flows.Apply(ctx, &kitev1.FlowServiceApplyRequest{Source: src}); err != nil {
			return fmt.Errorf("applying flow:\n%s\n%w", src, err)
		}
	}
	return nil
}

// load creates executions through the API at a steady rate, with a bounded
// number of calls in flight, and retries a Create that failed because the
// API or Kafka was down. A retried Create may have created its execution
// already: the verification counts every execution found on Kafka.
type load struct {
	executions kitev1.ExecutionServiceClient
	n          int
	over       time.Duration // the creation's length
	inFlight   int
	giveUpAt   time.Duration // a Create retried this long is abandoned
	log        func(format string, args ...any)

	mu        sync.Mutex
	created   map[string]string // execution id → flow id, as Create answered
	byFlow    map[string]int
	failures  map[string]int // failed Create calls, by gRPC code
	recovered int            // Creates that answered DEADLINE_EXCEEDED with the id of the execution asked for
	abandoned []string       // the last error of each Create given up
	maxLag    time.Duration  // the latest a call went out after its schedule
	done      int
}

func newLoad(executions kitev1.ExecutionServiceClient, n int, over time.Duration, logf func(string, ...any)) *load {
	return &load{executions: executions, n: n, over: over, inFlight: 48, giveUpAt: 4 * time.Minute, log: logf,
		created: map[string]string{}, byFlow: map[string]int{}, failures: map[string]int{}}
}

// run creates the executions; it returns when every Create ended (answered
// or abandoned), or when ctx ends.
func (l *load) run(ctx context.Context) {
	interval := l.over / time.Duration(l.n)
	sem := make(chan struct{}, l.inFlight)
	var calls sync.WaitGroup
	begin := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	lastReport := begin
	for i := range l.n {
		at := begin.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				calls.Wait()
				return
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			calls.Wait()
			return
		}
		l.mu.Lock()
		l.maxLag = max(l.maxLag, time.Since(at))
		l.mu.Unlock()
		flowID := flowIDs[i%len(flowIDs)]
		calls.Go(func() {
			defer func() { <-sem }()
			l.create(ctx, flowID)
		})
		if time.Since(lastReport) >= 30*time.Second {
			lastReport = time.Now()
			l.mu.Lock()
			l.log("load: %d of %d Create calls started, %d answered, failures %v", i+1, l.n, len(l.created), l.failures)
			l.mu.Unlock()
		}
	}
	calls.Wait()
}

// askedFor finds the id of the execution in the API's DEADLINE_EXCEEDED
// answer: the create command was written, the executor had not recorded
// it yet.
var askedFor = regexp.MustCompile(`execution (\S+) was asked for`)

// create creates one execution, retrying while the API or Kafka is down.
func (l *load) create(ctx context.Context, flowID string) {
	start := time.Now()
	backoff := 200 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := l.executions.Create(cctx, &kitev1.ExecutionServiceCreateRequest{Namespace: namespace, FlowId: flowID})
		cancel()
		if err == nil {
			l.record(resp.GetExecution().GetId(), flowID, false)
			return
		}
		if ctx.Err() != nil {
			return
		}
		st, _ := status.FromError(err)
		l.mu.Lock()
		l.failures[st.Code().String()]++
		l.mu.Unlock()
		if m := askedFor.FindStringSubmatch(st.Message()); st.Code() == codes.DeadlineExceeded && m != nil {
			// Written, but the executor was down or restoring: the execution
			// will run; creating another would be a needless duplicate.
			l.record(m[1], flowID, true)
			return
		}
		if time.Since(start) > l.giveUpAt {
			l.mu.Lock()
			l.abandoned = append(l.abandoned, fmt.Sprintf("%s: %v", flowID, err))
			l.done++
			l.mu.Unlock()
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, 3*time.Second)
	}
}

func (l *load) record(id, flowID string, recovered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.created[id] = flowID
	l.byFlow[flowID]++
	l.done++
	if recovered {
		l.recovered++
	}
}

// createdIDs returns the executions Create answered with, by id.
func (l *load) createdIDs() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.created)
}
