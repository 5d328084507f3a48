package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// entry is an expectations.yaml entry as phase 2 reads it (the header of that
// file explains every field).
type entry struct {
	File            string                    `yaml:"file"`
	Class           string                    `yaml:"class"`
	Role            string                    `yaml:"role"`
	Inputs          map[string]any            `yaml:"inputs"`
	InputsMode      string                    `yaml:"inputs_mode"`
	InputsGenerated map[string]generatedInput `yaml:"inputs_generated"`
	StartLabels     map[string]any            `yaml:"start_labels"`
	Environment     map[string]string         `yaml:"environment"`
	Globals         map[string]any            `yaml:"globals"`
	Expect          map[string]any            `yaml:"expect"`
	Then            []any                     `yaml:"then"`
	Scenarios       []scenario                `yaml:"scenarios"`
}

type scenario struct {
	Name            string                    `yaml:"name"`
	Inputs          map[string]any            `yaml:"inputs"`
	InputsMode      string                    `yaml:"inputs_mode"`
	InputsGenerated map[string]generatedInput `yaml:"inputs_generated"`
	StartLabels     map[string]any            `yaml:"start_labels"`
	Expect          map[string]any            `yaml:"expect"`
}

// generatedInput is a string input too large to write out: repeat × times.
type generatedInput struct {
	Repeat string `yaml:"repeat"`
	Times  int    `yaml:"times"`
}

// Runs and outputs that `kite flow test` cannot reproduce, whatever the engine
// does. Keys are the flow's base name, with "#n" for scenario n.
var (
	skippedRuns = map[string]string{
		"inputs-large.yaml#1": "relies on the 1 MiB message cap of Kestra's JDBC queue (not portable, see its notes)",
	}
	ignoredOutputs = map[string]map[string]string{
		"variables.yaml": {"global.value": "globals: kite flow test cannot set them"},
	}
)

// execCase is one run of phase 2: an entry, or one of its scenarios.
type execCase struct {
	Flow       string // flows/<name>, relative to the corpus
	Scenario   int    // 0 for the entry itself, n for its n-th scenario
	Name       string
	Inputs     map[string]any
	InputsMode string
	Generated  map[string]generatedInput
	Env        map[string]string
	Labels     map[string]any // start_labels: the labels the test creates the execution with
	Expect     map[string]any
	NotChecked []string // fields of the entry that no run can check
	Options    checkOptions
	Skip       string // why the case is not run
}

// execResult is one line of the JSON report.
type execResult struct {
	File       string   `json:"file"`
	Scenario   int      `json:"scenario"` // 0: the entry itself; n: its n-th scenario
	Name       string   `json:"name,omitempty"`
	Passed     bool     `json:"passed"`
	Skipped    string   `json:"skipped,omitempty"`
	State      string   `json:"state,omitempty"`
	Reasons    []string `json:"reasons"`
	NotChecked []string `json:"not_checked"`
}

type execReport struct {
	Skipped string       `json:"skipped,omitempty"`
	Passed  int          `json:"passed"`
	Total   int          `json:"total"`
	Flows   []execResult `json:"flows"`
}

type execOptions struct {
	Dir     string        // the corpus
	Kite    string        // the kite binary
	Timeout time.Duration // --timeout of `kite flow test`
	Workers int
	Report  string // JSON report path; empty for none
}

// execCorpus is phase 2. It returns the results (nil when the phase skipped
// itself) and false when a run failed; an error only when the corpus cannot be
// read.
func execCorpus(ctx context.Context, w io.Writer, opts execOptions) ([]execResult, bool, error) {
	if why := flowTestMissing(ctx, opts.Kite); why != "" {
		fmt.Fprintf(w, "execution: skipped, %s\n", why)
		return nil, true, writeReport(opts.Report, execReport{Skipped: why, Flows: []execResult{}})
	}
	cases, err := loadCases(opts.Dir)
	if err != nil {
		return nil, false, err
	}
	results := runCases(ctx, opts.Workers, cases, func(ctx context.Context, c execCase) execResult {
		return runCase(ctx, opts, c)
	})
	report := summarise(w, "execution", results)
	if err := writeReport(opts.Report, report); err != nil {
		return nil, false, err
	}
	return results, report.Passed == report.Total, nil
}

// summarise prints the skipped and failed runs of a phase, then its summary
// lines, each starting with phase ("execution: 80/81 passed (99%)"), and
// returns the report of the results.
func summarise(w io.Writer, phase string, results []execResult) execReport {
	report := execReport{Flows: results}
	if report.Flows == nil {
		report.Flows = []execResult{}
	}
	notChecked := map[string]int{}
	skipped := 0
	for _, r := range results {
		for _, f := range r.NotChecked {
			notChecked[notCheckedName(f)]++
		}
		switch {
		case r.Skipped != "":
			skipped++
			fmt.Fprintf(w, "SKIP %s: %s\n", r.label(), r.Skipped)
		case r.Passed:
			report.Passed++
			report.Total++
		default:
			report.Total++
			fmt.Fprintf(w, "FAIL %s: %s\n", r.label(), strings.Join(r.Reasons, "; "))
		}
	}
	pct := 0.0
	if report.Total > 0 {
		pct = 100 * float64(report.Passed) / float64(report.Total)
	}
	fmt.Fprintf(w, "%s: %d/%d passed (%.0f%%)", phase, report.Passed, report.Total, pct)
	if skipped > 0 {
		fmt.Fprintf(w, ", %d skipped", skipped)
	}
	fmt.Fprintln(w)
	if len(notChecked) > 0 {
		fields := slices.SortedFunc(maps.Keys(notChecked), func(a, b string) int {
			if d := notChecked[b] - notChecked[a]; d != 0 {
				return d
			}
			return strings.Compare(a, b)
		})
		parts := make([]string, len(fields))
		for i, f := range fields {
			parts[i] = fmt.Sprintf("%s (%d)", f, notChecked[f])
		}
		fmt.Fprintf(w, "%s: not checked: %s\n", phase, strings.Join(parts, ", "))
	}
	return report
}

func (r execResult) label() string {
	if r.Scenario == 0 {
		return r.File
	}
	return fmt.Sprintf("%s#%d", r.File, r.Scenario)
}

// notCheckedName groups not-checked fields for the summary: "outputs k (why)"
// counts as "outputs (why)".
func notCheckedName(f string) string {
	if rest, ok := strings.CutPrefix(f, "outputs "); ok {
		if _, why, ok := strings.Cut(rest, " ("); ok {
			return "outputs (" + why
		}
		return "outputs matcher"
	}
	if name, _, ok := strings.Cut(f, " "); ok && strings.HasPrefix(f, "labels_") && strings.Contains(f, "(placeholder)") {
		return name + " (placeholder)"
	}
	return f
}

// flowTestMissing says why `kite flow test` cannot be used, or "". cobra
// answers `kite flow test --help` with the help of `kite flow` (exit 0) while
// the command does not exist, so the help must also name the command.
func flowTestMissing(ctx context.Context, kite string) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kite, "flow", "test", "--help").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("`%s flow test --help` failed (%v): %s", kite, err, firstLines(string(out), 1))
	}
	if !bytes.Contains(out, []byte("flow test")) {
		return fmt.Sprintf("%s has no `flow test` command yet", kite)
	}
	return ""
}

// loadCases reads the runs of phase 2: every core entry that is started
// directly (role absent or standalone), and each of its scenarios.
func loadCases(dir string) ([]execCase, error) {
	path := filepath.Join(dir, "expectations.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading expectations: %w", err)
	}
	var entries []entry
	if err := yaml.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	var cases []execCase
	for _, e := range entries {
		if e.Class != "core" || (e.Role != "" && e.Role != "standalone") {
			continue
		}
		base := filepath.Base(e.File)
		flow := filepath.Join("flows", base)
		forEach, err := forEachTasks(filepath.Join(dir, flow))
		if err != nil {
			return nil, err
		}
		c := execCase{
			Flow: flow, Inputs: e.Inputs, InputsMode: e.InputsMode, Generated: e.InputsGenerated,
			Env: e.Environment, Expect: asMap(normalise(e.Expect)),
		}
		if len(e.Then) > 0 {
			// A flow that pauses for a delay: kite flow test waits for the
			// delay, so what it shows is the expectation after the wait.
			if w, ok := waitThen(e.Expect, e.Then); ok {
				c.Expect = asMap(normalise(w))
			} else {
				c.NotChecked = append(c.NotChecked, "then")
			}
		}
		if len(e.Globals) > 0 {
			c.NotChecked = append(c.NotChecked, "globals")
		}
		cases = append(cases, finish(c, base, e.StartLabels, forEach))
		for i, s := range e.Scenarios {
			sc := execCase{
				Flow: flow, Scenario: i + 1, Name: s.Name, Inputs: s.Inputs, InputsMode: s.InputsMode,
				Generated: s.InputsGenerated, Env: e.Environment, Expect: asMap(normalise(s.Expect)),
			}
			cases = append(cases, finish(sc, base, s.StartLabels, forEach))
		}
	}
	return cases, nil
}

// finish sets what checking a case needs and whether it can run at all.
func finish(c execCase, base string, startLabels map[string]any, forEach map[string]bool) execCase {
	c.Options = checkOptions{forEach: forEach, ignoredOutputs: ignoredOutputs[base]}
	c.Labels = startLabels
	if len(startLabels) > 0 {
		c.Options.labelsNotPassed = "start_labels"
		c.NotChecked = append(c.NotChecked, "start_labels")
	}
	key := base
	if c.Scenario > 0 {
		key = fmt.Sprintf("%s#%d", base, c.Scenario)
	}
	if why, ok := skippedRuns[key]; ok {
		c.Skip = why
		return c
	}
	// Nothing to run for when no field of the expect can be checked.
	if !slices.ContainsFunc(checkedFields, func(f string) bool { _, ok := c.Expect[f]; return ok }) {
		c.Skip = "nothing in expect can be checked from one execution"
	}
	return c
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// forEachTasks returns the ids of a flow's ForEach tasks (ForEach and the
// older EachSequential and EachParallel), wherever they are nested.
func forEachTasks(file string) (map[string]bool, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading flow: %w", err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	ids := map[string]bool{}
	var visit func(v any)
	visit = func(v any) {
		switch c := v.(type) {
		case map[string]any:
			id, _ := c["id"].(string)
			typ, _ := c["type"].(string)
			switch typ[strings.LastIndex(typ, ".")+1:] {
			case "ForEach", "EachSequential", "EachParallel":
				ids[id] = true
			}
			for _, e := range c {
				visit(e)
			}
		case []any:
			for _, e := range c {
				visit(e)
			}
		}
	}
	visit(doc)
	return ids, nil
}

// runCases runs the cases with run on workers goroutines; results are in
// case order.
func runCases(ctx context.Context, workers int, cases []execCase, run func(context.Context, execCase) execResult) []execResult {
	results := make([]execResult, len(cases))
	todo := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range todo {
				results[i] = run(ctx, cases[i])
			}
		})
	}
	for i := range cases {
		todo <- i
	}
	close(todo)
	wg.Wait()
	return results
}

// runCase runs `kite flow test` for one case and compares the execution.
func runCase(ctx context.Context, opts execOptions, c execCase) execResult {
	r := newResult(c)
	if r.Skipped != "" {
		return r
	}

	tmp, err := os.MkdirTemp("", "kite-conformance-")
	if err != nil {
		r.Reasons = []string{fmt.Sprintf("creating a temp dir: %v", err)}
		return r
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	args, err := flowTestArgs(opts, c, tmp)
	if err != nil {
		r.Reasons = []string{err.Error()}
		return r
	}
	// kite stops itself at --timeout (exit 3); the margin is for a kite that hangs.
	runCtx, cancel := context.WithTimeout(ctx, opts.Timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(runCtx, opts.Kite, args...)
	cmd.Env = os.Environ()
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		cmd.Env = append(cmd.Env, k+"="+c.Env[k])
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			r.Reasons = []string{fmt.Sprintf("could not run %s: %v", opts.Kite, err)}
			return r
		}
		code = exitErr.ExitCode()
	}

	switch {
	case runCtx.Err() != nil:
		r.Reasons = []string{fmt.Sprintf("no answer within %s", opts.Timeout+30*time.Second)}
		return r
	case bytes.Contains(stderr.Bytes(), []byte("panic")):
		r.Reasons = []string{fmt.Sprintf("crashed (exit %d): %s", code, firstLines(stderr.String(), 3))}
		return r
	case code == 2 && c.InputsMode == "none":
		r.Skipped = "kite rejected the inputs, which Kestra's test does not validate (inputs_mode none): " + firstLines(stderr.String(), 1)
		return r
	case code == 2:
		r.Reasons = []string{"flow or inputs rejected (exit 2): " + firstLines(stderr.String(), 3)}
		return r
	}
	var x execution
	if err := json.Unmarshal(stdout.Bytes(), &x); err != nil {
		r.Reasons = []string{fmt.Sprintf("exit %d without an execution in JSON (%v): %s", code, err, firstLines(stderr.String()+stdout.String(), 3))}
		return r
	}
	r.State = x.State

	opts2 := c.Options
	opts2.now = time.Now()
	v := check(c.Expect, scope{x: &x, top: &x}, opts2, "")
	r.Reasons = append(r.Reasons, v.Reasons...)
	if want, ok := exitCodes[x.State]; ok && want != code {
		r.Reasons = append(r.Reasons, fmt.Sprintf("exit %d, want %d for state %s", code, want, x.State))
	} else if !ok && code == 3 {
		r.Reasons = appendHint(r.Reasons, x.State, "timed out after "+seconds(opts.Timeout))
	}
	r.NotChecked = append(r.NotChecked, v.NotChecked...)
	slices.Sort(r.NotChecked)
	r.Passed = len(r.Reasons) == 0
	return r
}

// newResult starts the result of a case; it is complete when the case is
// skipped (r.Skipped set).
func newResult(c execCase) execResult {
	r := execResult{File: c.Flow, Scenario: c.Scenario, Name: c.Name, Reasons: []string{}, NotChecked: slices.Clone(c.NotChecked)}
	if r.NotChecked == nil {
		r.NotChecked = []string{}
	}
	for f := range c.Expect {
		if !slices.Contains(checkedFields, f) && c.Skip != "" {
			r.NotChecked = append(r.NotChecked, f)
		}
	}
	if c.Skip != "" {
		r.Skipped = c.Skip
		slices.Sort(r.NotChecked)
	}
	return r
}

// exitCodes are the exit statuses `kite flow test` gives each final state.
var exitCodes = map[string]int{
	"SUCCESS": 0, "WARNING": 0,
	"FAILED": 1, "KILLED": 1, "CANCELLED": 1,
	"PAUSED": 3,
}

// appendHint adds a remark to the state reason, if there is one.
func appendHint(reasons []string, state, hint string) []string {
	for i, r := range reasons {
		if strings.HasPrefix(r, "state "+state+",") {
			reasons[i] = r + " (" + hint + ")"
		}
	}
	return reasons
}

// flowTestArgs builds the arguments of `kite flow test` for a case; inputs
// too large for the command line (generated ones) go through files in tmp.
func flowTestArgs(opts execOptions, c execCase, tmp string) ([]string, error) {
	flows := filepath.Join(opts.Dir, "flows")
	args := []string{"flow", "test", filepath.Join(opts.Dir, c.Flow), "--flows", flows,
		"--output", "json", "--timeout", seconds(opts.Timeout)}
	if c.InputsMode == "raw" || c.InputsMode == "none" {
		// Kestra's test handed the inputs to the execution unvalidated.
		args = append(args, "--raw-inputs")
	}
	for _, k := range slices.Sorted(maps.Keys(c.Inputs)) {
		v, err := inputValue(c.Inputs[k])
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", k, err)
		}
		args = append(args, "--input", k+"="+v)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Generated)) {
		g := c.Generated[k]
		file := filepath.Join(tmp, "input-"+k)
		if err := os.WriteFile(file, []byte(strings.Repeat(g.Repeat, g.Times)), 0o600); err != nil {
			return nil, fmt.Errorf("writing generated input %s: %w", k, err)
		}
		args = append(args, "--input", k+"=@"+file)
	}
	return args, nil
}

// seconds writes a duration as kite's flags read it, in seconds: "60s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// inputValue renders an input for --input: strings as they are, anything else
// as JSON (true, 42, 3.14, {"a":1}).
func inputValue(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := json.Marshal(normalise(v))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func writeReport(path string, report any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// waitThen returns the expectation after the first follow-up step when the
// entry stops at PAUSED and that step is only a wait (a pause delay).
func waitThen(expect map[string]any, then []any) (map[string]any, bool) {
	if expect["state"] != "PAUSED" || len(then) == 0 {
		return nil, false
	}
	step, ok := then[0].(map[string]any)
	if !ok {
		return nil, false
	}
	action, _ := step["action"].(string)
	want, ok := step["expect"].(map[string]any)
	if !strings.HasPrefix(action, "wait") || !ok {
		return nil, false
	}
	return want, true
}
