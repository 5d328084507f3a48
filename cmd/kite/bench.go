package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiteflow/kite/integration/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		brokers, prefix, name, out string
		rates, forEach             string
		processes, versions        []string
		profile                    bool
		cfg                        = bench.Config{P99Limit: time.Second}
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a running Kite: latency at fixed rates, If and ForEach flows, CPU and memory",
		Long: `Measure a running Kite server (standalone, or roles in several processes) through its
gRPC API, reading the execution events and topic sizes from its Kafka.

It applies three flows in namespace kite.bench and runs, in order:
  1. the two-task flow (Log + Return, Kestra's benchmark flow) at each of --rates for --step,
     stopping at the first rate whose executions do not all succeed with a p99 under
     --p99-limit (--all-rates runs every rate);
  2. a flow of five If tasks (ten task runs) at --if-rate for --if-for;
  3. one ForEach execution for each of --foreach item counts: wall time, task runs per
     second and the bytes Kite's topics grew by on the brokers.
Latency is from a Create call's scheduled start (an open loop: calls start on schedule
whether or not earlier ones answered) to the terminal state read from execution-events.
Each --process is sampled meanwhile (CPU, RSS), and the indexer's projection lag is read
from the metrics of the Kite processes.

Results go to --out as results.json, results.txt (the table printed at the end) and
results.svg (latency against rate, ForEach bytes against items).

'make bench' starts a standalone Kite and a distributed one on a real Kafka and
OpenSearch, and runs this against each (docs/benchmarks.md).`,
		Example: `  kite bench --server localhost:7777 --brokers 127.0.0.1:9092 \
    --process standalone=http://localhost:8080/metrics --rates 1000,2000,4000
  kite bench --brokers $KAFKA --topic-prefix kite. --process executor=http://10.0.0.5:9464/metrics \
    --process kafka=12345 --version kafka=4.3.1 --out bin/bench/distributed`,
		Args: cobra.NoArgs,
	}
	cf := addClientFlags(cmd, false)
	fs := cmd.Flags()
	fs.StringVar(&brokers, "brokers", os.Getenv("KITE_KAFKA_BROKERS"), "Kafka bootstrap address(es) of the Kite under test, comma-separated; $KITE_KAFKA_BROKERS when set (required)")
	fs.StringVar(&prefix, "topic-prefix", "kite.", "the Kite's kafka.topic_prefix")
	fs.StringVar(&rates, "rates", "1000,2000,5000,10000,20000,40000,60000", "rates of the two-task flow, executions per minute, comma-separated (empty skips it)")
	fs.DurationVar(&cfg.StepFor, "step", 30*time.Second, "how long each rate runs")
	fs.BoolVar(&cfg.AllRates, "all-rates", false, "run every rate, not only up to the first that fails")
	fs.DurationVar(&cfg.Warmup, "warmup", 20*time.Second, "run the first rate this long before measuring (0: none)")
	fs.DurationVar(&cfg.Drain, "drain", 20*time.Second, "how long a run waits after its last Create for its executions to end")
	fs.DurationVar(&cfg.P99Limit, "p99-limit", time.Second, "the p99 latency a rate must stay under to pass")
	fs.IntVar(&cfg.IfRate, "if-rate", 1000, "rate of the five-If flow, executions per minute (0 skips it)")
	fs.DurationVar(&cfg.IfFor, "if-for", 30*time.Second, "how long the five-If flow runs")
	fs.StringVar(&forEach, "foreach", "100,1000", "item counts of the ForEach runs, comma-separated (empty skips them)")
	fs.IntVar(&cfg.ForEachConcurrency, "foreach-concurrency", 0, "the ForEach's concurrencyLimit (0: every item at once; Kestra's default is 1)")
	fs.StringArrayVar(&processes, "process", nil, "a process to sample, NAME=URL (a Kite process's /metrics) or NAME=PID (any process on this host); repeatable")
	fs.StringArrayVar(&versions, "version", nil, "a version to record with the results, NAME=VALUE (e.g. kafka=4.3.1); repeatable")
	fs.StringVar(&name, "name", "", "what is measured, recorded with the results (default: the server and brokers)")
	fs.StringVar(&out, "out", "bin/bench", "directory for results.json, results.txt and results.svg")
	fs.BoolVar(&profile, "cpu-profile", false, "take a CPU profile of each Kite --process during each rate, into --out as NAME-FLOW-RATE.pprof (the server needs pprof: true, KITE_PPROF=true)")

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var err error
		if cfg.Brokers = splitList(brokers); len(cfg.Brokers) == 0 {
			return errors.New("--brokers is required: kite bench reads the execution events and the topics' sizes from the Kite's Kafka (standalone: 127.0.0.1:<broker_port>)")
		}
		cfg.TopicPrefix = prefix
		if cfg.Rates, err = positiveInts("--rates", rates); err != nil {
			return err
		}
		if cfg.ForEach, err = positiveInts("--foreach", forEach); err != nil {
			return err
		}
		if cfg.IfRate < 0 || cfg.ForEachConcurrency < 0 {
			return errors.New("--if-rate and --foreach-concurrency must not be negative")
		}
		for _, d := range []struct {
			flag string
			v    time.Duration
		}{{"--step", cfg.StepFor}, {"--drain", cfg.Drain}, {"--p99-limit", cfg.P99Limit}, {"--if-for", cfg.IfFor}} {
			if d.v <= 0 {
				return fmt.Errorf("%s must be positive, not %s", d.flag, d.v)
			}
		}
		probe := &bench.Probe{}
		for _, p := range processes {
			pr, err := bench.ParseProcess(p)
			if err != nil {
				return fmt.Errorf("--process %w", err)
			}
			probe.Processes = append(probe.Processes, pr)
		}
		// The load generator's own cost: on one machine it competes with
		// the server for the same cores.
		probe.Processes = append(probe.Processes, bench.Process{Name: "kite-bench", PID: os.Getpid()})
		res := &bench.Result{Name: name, Started: time.Now(), Machine: bench.ThisMachine(), Versions: bench.KiteVersions(version)}
		for _, v := range versions {
			k, val, ok := strings.Cut(v, "=")
			if !ok || k == "" {
				return fmt.Errorf("--version %q: want NAME=VALUE", v)
			}
			res.Versions[k] = val
		}
		if res.Name == "" {
			res.Name = fmt.Sprintf("server %s, brokers %s", cf.server, brokers)
		}
		client, err := cf.dial()
		if err != nil {
			return err
		}
		defer func() { _ = client.Close() }()

		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := probe.Check(ctx); err != nil {
			return fmt.Errorf("--process: %w", err)
		}
		cfg.Conn, cfg.CreateTimeout = client.conn, cf.timeout
		cfg.Probe = probe
		if profile {
			cfg.ProfileDir = out
		}
		w := cmd.ErrOrStderr()
		cfg.Progress = func(format string, args ...any) {
			fmt.Fprintf(w, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
		}
		res.Settings = bench.Settings{Server: cf.server, Brokers: brokers, Observe: "one read_committed consumer of execution-events",
			StepSeconds: cfg.StepFor.Seconds(), P99LimitMs: float64(cfg.P99Limit.Milliseconds()), IfRate: cfg.IfRate,
			ForEachConcurrency: cfg.ForEachConcurrency}
		runErr := bench.Run(ctx, cfg, res)
		if runErr != nil {
			runErr = client.apiError(runErr)
		}
		res.Finished = time.Now()
		// What was measured is written even when a part failed or the run
		// was interrupted.
		paths, err := res.WriteFiles(out)
		fmt.Fprint(cmd.OutOrStdout(), "\n"+res.Table())
		if err != nil {
			return errors.Join(runErr, err)
		}
		fmt.Fprintf(w, "results: %s\n", strings.Join(paths, ", "))
		if errors.Is(runErr, context.Canceled) {
			return errors.New("interrupted: the results above are partial")
		}
		return runErr
	}
	return cmd
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// positiveInts parses a comma-separated list of positive integers.
func positiveInts(flag, s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", flag, f)
		}
		out = append(out, n)
	}
	return out, nil
}
