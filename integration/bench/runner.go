package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// Namespace holds the flows kite bench applies.
const Namespace = "kite.bench"

// The benchmark's flows. The first is Kestra's published benchmark flow
// (Log + Return), with Kestra's type names.
const (
	FlowLogReturn = "log-return"
	FlowIfs       = "five-ifs"
	FlowForEach   = "foreach"
)

func flowSources(forEachConcurrency int) map[string]string {
	ifs := "id: five-ifs\nnamespace: kite.bench\ntasks:\n"
	for i := 1; i <= 5; i++ {
		ifs += fmt.Sprintf(`  - id: if%d
    type: io.kestra.plugin.core.flow.If
    condition: "{{ execution.id != '' }}"
    then:
      - id: then%d
        type: io.kestra.plugin.core.debug.Return
        format: "{{ execution.id }}"
`, i, i)
	}
	return map[string]string{
		FlowLogReturn: `id: log-return
namespace: kite.bench
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "benchmark execution {{ execution.id }}"
  - id: value
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.id }}"
`,
		FlowIfs: ifs,
		FlowForEach: fmt.Sprintf(`id: foreach
namespace: kite.bench
inputs:
  - id: items
    type: INT
    defaults: 100
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, inputs.items) }}"
    concurrencyLimit: %d
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
`, forEachConcurrency),
	}
}

// Config says what a Runner measures and against what.
type Config struct {
	// Conn is the connection to the API.
	Conn grpc.ClientConnInterface
	// Brokers and TopicPrefix locate Kite's topics: the runner reads the
	// execution events and the topics' sizes.
	Brokers     []string
	TopicPrefix string

	// Rates are the two-task flow's rates (executions per minute), each for
	// StepFor; the runner stops at the first that fails unless AllRates.
	Rates    []int
	StepFor  time.Duration
	AllRates bool
	// Warmup runs the two-task flow at the first rate before measuring.
	Warmup time.Duration
	// Drain is how long a run waits after its last Create for its
	// executions to end.
	Drain    time.Duration
	P99Limit time.Duration
	// IfRate and IfFor run the five-If flow (IfRate 0 skips it).
	IfRate int
	IfFor  time.Duration
	// ForEach are the item counts of the ForEach runs (none skips them).
	ForEach            []int
	ForEachConcurrency int

	CreateTimeout time.Duration
	Probe         *Probe
	// ProfileDir, when set, receives a CPU profile of each Kite process
	// during each rate run (the processes must serve pprof).
	ProfileDir string
	// Progress receives a line as each part starts and ends.
	Progress func(format string, args ...any)
}

// Runner runs the benchmark against a running Kite.
type Runner struct {
	cfg   Config
	execs kitev1.ExecutionServiceClient
	obs   *Observer
	kafka *kgo.Client
	adm   *kadm.Client
}

// Run applies the flows, runs every part of cfg and fills res.
func Run(ctx context.Context, cfg Config, res *Result) (err error) {
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	r := &Runner{cfg: cfg, execs: kitev1.NewExecutionServiceClient(cfg.Conn), obs: NewObserver()}
	flows := kitev1.NewFlowServiceClient(cfg.Conn)
	for id, src := range flowSources(cfg.ForEachConcurrency) {
		if _, err := flows.Apply(ctx, &kitev1.FlowServiceApplyRequest{Source: src}); err != nil {
			return fmt.Errorf("applying flow %s.%s: %w", Namespace, id, err)
		}
	}
	if r.kafka, err = kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID("kite-bench")); err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer r.kafka.Close()
	r.adm = kadm.NewClient(r.kafka)

	topic := cfg.TopicPrefix + "execution-events"
	rd, err := NewEventsReader(ctx, cfg.Brokers, topic)
	if err != nil {
		return fmt.Errorf("reading %s on %s: %w", topic, strings.Join(cfg.Brokers, ","), err)
	}
	defer rd.Close()
	rctx, stop := context.WithCancel(ctx)
	readErr := make(chan error, 1)
	go func() { readErr <- rd.Run(rctx, r.obs) }()
	defer func() {
		stop()
		if e := <-readErr; e != nil && err == nil {
			err = e
		}
	}()

	if err := r.rates(ctx, res); err != nil {
		return err
	}
	if cfg.IfRate > 0 {
		r.cfg.Progress("five If tasks at %d/min for %s…", cfg.IfRate, cfg.IfFor)
		run := r.rate(ctx, FlowIfs, cfg.IfRate, cfg.IfFor)
		res.Ifs = &run
		r.cfg.Progress("%s", progressLine(run))
	}
	for _, n := range cfg.ForEach {
		run, err := r.forEach(ctx, n)
		if err != nil {
			return err
		}
		res.ForEach = append(res.ForEach, run)
	}
	return ctx.Err()
}

// rates runs the two-task flow at each rate.
func (r *Runner) rates(ctx context.Context, res *Result) error {
	if len(r.cfg.Rates) == 0 {
		return nil
	}
	if r.cfg.Warmup > 0 {
		r.cfg.Progress("warm-up: two-task flow at %d/min for %s (not measured)…", r.cfg.Rates[0], r.cfg.Warmup)
		load := r.load(FlowLogReturn)
		warm := load.Run(ctx, r.cfg.Rates[0], r.cfg.Warmup, r.cfg.Drain)
		if warm.Succeeded == 0 {
			return fmt.Errorf("warm-up: none of %d executions succeeded (%d failed, %d unfinished, errors %v): is every role running?",
				warm.Scheduled, warm.Failed, warm.Unfinished, warm.Errors)
		}
	}
	for _, rate := range r.cfg.Rates {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.cfg.Progress("two-task flow at %d/min for %s…", rate, r.cfg.StepFor)
		run := r.rate(ctx, FlowLogReturn, rate, r.cfg.StepFor)
		res.Rates = append(res.Rates, run)
		r.cfg.Progress("%s", progressLine(run))
		if run.Passed {
			res.HighestRate = max(res.HighestRate, rate)
		} else if !r.cfg.AllRates {
			r.cfg.Progress("stopping at the first rate that failed (--all-rates runs the others)")
			break
		}
	}
	return nil
}

func (r *Runner) load(flowID string) *Load {
	return &Load{Executions: r.execs, Namespace: Namespace, FlowID: flowID, Observer: r.obs, CreateTimeout: r.cfg.CreateTimeout}
}

// settle waits until what earlier runs left running has ended and no event
// has come for a while, so that a run does not pay for the last one.
func (r *Runner) settle(ctx context.Context) {
	if left := r.obs.running(); len(left) > 0 {
		if n := r.obs.wait(ctx, left, time.Now().Add(2*time.Minute)); n > 0 {
			r.cfg.Progress("%d executions of the last run still running after 2 minutes", n)
		}
	}
	if !r.obs.waitQuiet(ctx, 2*time.Second, 2*time.Minute) {
		r.cfg.Progress("events still come 2 minutes after the last run")
	}
}

// rate creates executions of a flow at rate per minute for d.
func (r *Runner) rate(ctx context.Context, flowID string, rate int, d time.Duration) RateRun {
	r.settle(ctx)
	span := r.cfg.Probe.Start(ctx)
	var profiles func() ([]string, error)
	if r.cfg.ProfileDir != "" {
		profiles = r.cfg.Probe.profileCPU(ctx, r.cfg.ProfileDir, fmt.Sprintf("%s-%d", flowID, rate), d)
	}
	st := r.load(flowID).Run(ctx, rate, d, r.cfg.Drain)
	if profiles != nil {
		paths, err := profiles()
		if err != nil {
			r.cfg.Progress("CPU profiles: %v", err)
		}
		if len(paths) > 0 {
			r.cfg.Progress("CPU profiles: %s", strings.Join(paths, ", "))
		}
	}
	run := RateRun{Flow: flowID, Rate: rate, DurationSeconds: d.Seconds(), Created: st.Scheduled - st.CreateErrors,
		Succeeded: st.Succeeded, Failed: st.Failed, Unfinished: st.Unfinished, CreateErrors: st.CreateErrors, Errors: st.Errors,
		Latency: quantiles(st.Latency), CreateLatency: quantiles(st.Hops[hopCreate]), DonePerMinute: st.DonePerMinute(),
		TaskRunsPerExecution: st.TaskRuns, Passed: st.OK(r.cfg.P99Limit)}
	if flowID == FlowLogReturn {
		for h, name := range HopNames {
			run.Hops = append(run.Hops, Hop{Name: name, Latency: quantiles(st.Hops[h])})
		}
	}
	run.Usage = span.End(ctx)
	return run
}

// forEach runs one execution of the ForEach flow over n items.
func (r *Runner) forEach(ctx context.Context, n int) (ForEachRun, error) {
	r.settle(ctx)
	r.cfg.Progress("ForEach of %d items…", n)
	before, err := TopicSizes(ctx, r.adm, r.cfg.TopicPrefix)
	if err != nil {
		return ForEachRun{}, err
	}
	span := r.cfg.Probe.Start(ctx)
	inputs, err := structpb.NewStruct(map[string]any{"items": n})
	if err != nil {
		return ForEachRun{}, err
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CreateTimeout)
	resp, err := r.execs.Create(cctx, &kitev1.ExecutionServiceCreateRequest{Namespace: Namespace, FlowId: FlowForEach, Inputs: inputs})
	cancel()
	if err != nil {
		return ForEachRun{}, fmt.Errorf("creating the ForEach execution: %w", err)
	}
	id := resp.GetExecution().GetId()
	r.obs.register(id, start, time.Now())
	if left := r.obs.wait(ctx, []string{id}, time.Now().Add(r.cfg.Drain+time.Duration(n)*100*time.Millisecond)); left > 0 {
		return ForEachRun{}, fmt.Errorf("the ForEach of %d items (execution %s) did not end", n, id)
	}
	t := r.obs.snapshot([]string{id})[0]
	// The last records of the execution (its end, the indexer's reads) may
	// reach the log dirs a little after the terminal event is read.
	r.obs.waitQuiet(ctx, time.Second, 30*time.Second)
	usage := span.End(ctx)
	after, err := TopicSizes(ctx, r.adm, r.cfg.TopicPrefix)
	if err != nil {
		return ForEachRun{}, err
	}
	run := ForEachRun{Items: n, State: strings.TrimPrefix(t.state.String(), "STATE_"), WallMs: ms(t.seen[msEnded].Sub(start)),
		TaskRuns: t.taskRuns, BytesByTopic: map[string]int64{}, Usage: usage}
	run.TasksPerSec = float64(run.TaskRuns) / t.seen[msEnded].Sub(start).Seconds()
	for topic, size := range after {
		if d := size - before[topic]; d != 0 {
			run.BytesByTopic[topic] = d
			run.KafkaBytes += d
		}
	}
	run.BytesPerItem = float64(run.KafkaBytes) / float64(n)
	r.cfg.Progress("ForEach of %d items: %s in %.0f ms, %d task runs (%.0f/s), %d bytes to Kafka (%.0f per item)",
		n, run.State, run.WallMs, run.TaskRuns, run.TasksPerSec, run.KafkaBytes, run.BytesPerItem)
	if t.state != kitev1.State_STATE_SUCCESS {
		return run, errors.New("the ForEach execution " + id + " ended " + run.State)
	}
	return run, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func quantiles(sorted []time.Duration) Quantiles {
	return Quantiles{P50: ms(Percentile(sorted, 0.5)), P95: ms(Percentile(sorted, 0.95)),
		P99: ms(Percentile(sorted, 0.99)), Max: ms(Percentile(sorted, 1))}
}

func progressLine(r RateRun) string {
	verdict := "passed"
	if !r.Passed {
		verdict = "FAILED"
	}
	line := fmt.Sprintf("  %s at %d/min: %d created, %d succeeded, %d failed, %d unfinished; p50 %.0f ms, p95 %.0f ms, p99 %.0f ms: %s",
		r.Flow, r.Rate, r.Created, r.Succeeded, r.Failed, r.Unfinished, r.Latency.P50, r.Latency.P95, r.Latency.P99, verdict)
	for _, p := range r.Usage.Processes {
		line += fmt.Sprintf("\n    %-10s cpu %.2f cores, rss max %d MiB", p.Name, p.Cores, p.RSSMaxBytes>>20)
	}
	if p := r.Usage.Projection; p != nil {
		line += fmt.Sprintf("\n    indexer    %.0f docs/s, projection lag p50 ≤%g ms, p99 ≤%g ms", p.DocsPerSecond, p.LagP50Ms, p.LagP99Ms)
	}
	for _, e := range r.Errors {
		line += fmt.Sprintf("\n    error (%d×): %s", e.Count, e.Message)
	}
	return line
}
