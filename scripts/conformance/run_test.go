package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// corpus is a small expectations.yaml covering what phase 2 does with entries.
const corpus = `
- file: core/src/test/resources/flows/valids/ok.yaml
  class: core
  inputs: {n: 42, s: x, m: {a: 1}, b: true}
  environment: {KESTRA_TEST1: "yes"}
  expect:
    state: SUCCESS
    task_runs: 1
    outputs: {t.value: "1"}
    logs: [anything]
  scenarios:
  - inputs: {s: "y"}
    expect: {state: FAILED, task_runs: 1}
  - name: concurrency
    expect: {first: SUCCESS, second: CANCELLED}
- file: core/src/test/resources/flows/valids/bad.yaml
  class: core
  role: standalone
  expect: {state: FAILED, task_runs: 2, outputs: {t.value: "b"}}
- file: core/src/test/resources/flows/valids/paused.yaml
  class: core
  expect: {state: PAUSED, task_runs: 1}
  then: [{action: resume, expect: {state: SUCCESS}}]
- file: core/src/test/resources/flows/valids/invalid.yaml
  class: core
  expect: {state: SUCCESS}
- file: core/src/test/resources/flows/valids/no-validation.yaml
  class: core
  inputs: {}
  inputs_mode: none
  expect: {state: SUCCESS}
- file: core/src/test/resources/flows/valids/wrong-exit.yaml
  class: core
  expect: {state: FAILED}
- file: core/src/test/resources/flows/valids/generated.yaml
  class: core
  inputs_generated: {big: {repeat: ab, times: 3}}
  start_labels: {k: v}
  expect: {state: SUCCESS, labels_exactly: {k: v}}
- file: core/src/test/resources/flows/valids/child.yaml
  class: core
  role: subflow-child
  expect: {state: SUCCESS}
- file: core/src/test/resources/flows/valids/other.yaml
  class: other
  reason: not in the core set
`

// fakeKite answers `flow validate` with success, `flow test --help` with
// help naming the command (unless helpMissing), and `flow test FILE` with a
// canned execution per flow. Every `flow test` run appends its arguments, the
// KESTRA_TEST1 variable and the content of @files to $KITE_LOG.
const fakeKite = `#!/bin/sh
if [ "$1 $2" = "flow validate" ]; then exit 0; fi
if [ "$3" = "--help" ]; then
  if [ -n "$HELP_MISSING" ]; then printf 'Usage:\n  kite flow [command]\n'; else printf 'Usage:\n  kite flow test FILE [flags]\n'; fi
  exit 0
fi
echo "ARGS $* ENV $KESTRA_TEST1" >> "$KITE_LOG"
for a in "$@"; do
  case "$a" in *=@*) echo "FILE $(cat "${a#*=@}")" >> "$KITE_LOG";; esac
done
one='{"id": "e1", "flowId": "f", "state": "%s", "labels": [{"key": "k", "value": "v"}], "taskRuns": [{"id": "r1", "taskId": "t", "state": "%s", "outputs": {"value": "%s"}}]}\n'
case "$(basename "$3")" in
  ok.yaml)
    case "$*" in
      *s=y*) printf "$one" FAILED FAILED 1; exit 1;;
      *) printf "$one" SUCCESS SUCCESS 1; exit 0;;
    esac;;
  bad.yaml) printf "$one" SUCCESS SUCCESS a; exit 0;;
  paused.yaml) printf "$one" PAUSED PAUSED ""; exit 3;;
  invalid.yaml|no-validation.yaml) echo "inputs: missing x" >&2; exit 2;;
  wrong-exit.yaml) printf "$one" FAILED FAILED ""; exit 0;;
  generated.yaml) printf "$one" SUCCESS SUCCESS ""; exit 0;;
  *) echo "unexpected flow $3" >&2; exit 2;;
esac
`

// fakeCorpus writes the corpus, its flows and the fake kite into a temp dir
// and returns the corpus dir, the kite path and the log path.
func fakeCorpus(t *testing.T) (dir, kite, log string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake kite is a shell script")
	}
	root := t.TempDir()
	dir = filepath.Join(root, "kestra")
	if err := os.MkdirAll(filepath.Join(dir, "flows"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "expectations.yaml"), []byte(corpus), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ok", "bad", "paused", "invalid", "no-validation", "wrong-exit", "generated", "child", "other"} {
		flow := "id: " + name + "\nnamespace: io.kestra.tests\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n"
		if err := os.WriteFile(filepath.Join(dir, "flows", name+".yaml"), []byte(flow), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kite = filepath.Join(root, "kite")
	if err := os.WriteFile(kite, []byte(fakeKite), 0o755); err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(root, "kite.log")
	t.Setenv("KITE_LOG", log)
	return dir, kite, log
}

func TestExecutionPhase(t *testing.T) {
	dir, kite, logPath := fakeCorpus(t)
	report := filepath.Join(t.TempDir(), "bin", "conformance.json")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-dir", dir, "-kite", kite, "-report", report}, &stdout, &stderr)

	if code != 0 {
		t.Errorf("exit %d, want 0: phase 2 failures do not fail the run without -strict-exec; stderr: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"core: 8/8 valid",
		"FAIL flows/bad.yaml: state SUCCESS, want FAILED; task_runs 1, want 2; outputs t.value = \"a\", want \"b\"\n",
		"FAIL flows/invalid.yaml: flow or inputs rejected (exit 2): inputs: missing x\n",
		"FAIL flows/wrong-exit.yaml: exit 0, want 1 for state FAILED\n",
		"SKIP flows/no-validation.yaml: kite rejected the inputs, which Kestra's test does not validate (inputs_mode none)",
		"SKIP flows/ok.yaml#2: nothing in expect can be checked from one execution\n",
		"execution: 4/7 passed (57%), 2 skipped\n",
		"execution: not checked: first (1), labels_exactly (start_labels) (1), logs (1), second (1), start_labels (1), then (1)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q; got:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"ok.yaml:", "ok.yaml#1", "paused.yaml", "generated.yaml", "child.yaml", "other.yaml"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output mentions %q (passed or not run); got:\n%s", unwanted, out)
		}
	}

	logged, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(logged)
	flows := filepath.Join(dir, "flows")
	for _, want := range []string{
		"ARGS flow test " + filepath.Join(flows, "ok.yaml") + " --flows " + flows + " --output json --timeout 60s " +
			`--input b=true --input m={"a":1} --input n=42 --input s=x ENV yes`,
		"--input s=y ENV yes",
		"FILE ababab",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("kite log lacks %q; got:\n%s", want, log)
		}
	}
	if strings.Contains(log, "child.yaml") || strings.Contains(log, "other.yaml") {
		t.Errorf("a subflow-child or class other flow was run; log:\n%s", log)
	}
	if n := strings.Count(log, "ARGS "); n != 8 {
		t.Errorf("%d runs, want 8 (7 entries and scenarios, 1 with inputs rejected); log:\n%s", n, log)
	}

	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("reading the report: %v", err)
	}
	var got execReport
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("decoding the report: %v", err)
	}
	if got.Passed != 4 || got.Total != 7 || len(got.Flows) != 9 {
		t.Errorf("report: %d/%d passed, %d flows; want 4/7, 9 flows", got.Passed, got.Total, len(got.Flows))
	}
	byLabel := map[string]execResult{}
	for _, f := range got.Flows {
		byLabel[f.label()] = f
	}
	if r := byLabel["flows/ok.yaml#1"]; !r.Passed || r.State != "FAILED" || r.Scenario != 1 {
		t.Errorf("report of ok.yaml#1 = %+v, want passed with state FAILED", r)
	}
	if r := byLabel["flows/paused.yaml"]; !r.Passed || !slices.Equal(r.NotChecked, []string{"then"}) {
		t.Errorf("report of paused.yaml = %+v, want passed, then not checked", r)
	}
	if r := byLabel["flows/bad.yaml"]; r.Passed || len(r.Reasons) != 3 {
		t.Errorf("report of bad.yaml = %+v, want failed with 3 reasons", r)
	}
}

func TestStrictExec(t *testing.T) {
	dir, kite, _ := fakeCorpus(t)
	var stdout, stderr bytes.Buffer
	args := []string{"-dir", dir, "-kite", kite, "-report", "", "-strict-exec"}
	if code := run(t.Context(), args, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d with -strict-exec and failing executions, want 1; stderr: %s", code, stderr.String())
	}
}

func TestExecutionPhaseSkipped(t *testing.T) {
	dir, kite, logPath := fakeCorpus(t)
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"by flag", []string{"-exec=false"}, "", ""},
		{"without kite flow test", nil, "1", "execution: skipped, " + kite + " has no `flow test` command yet\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HELP_MISSING", tt.env)
			var stdout, stderr bytes.Buffer
			args := append([]string{"-dir", dir, "-kite", kite, "-report", ""}, tt.args...)
			if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
				t.Errorf("exit %d, want 0; stderr: %s", code, stderr.String())
			}
			out := stdout.String()
			if tt.want != "" && !strings.Contains(out, tt.want) {
				t.Errorf("output lacks %q; got:\n%s", tt.want, out)
			}
			if tt.want == "" && strings.Contains(out, "execution") {
				t.Errorf("output mentions the execution phase; got:\n%s", out)
			}
			if _, err := os.Stat(logPath); !os.IsNotExist(err) {
				t.Errorf("kite flow test was run (%s exists)", logPath)
			}
		})
	}
}
