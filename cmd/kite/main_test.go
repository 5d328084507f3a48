package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kite builds the binary once per test run and returns its path, so the
// tests exercise what a user runs: flags, output streams and exit codes.
func kite(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kite")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestCLI(t *testing.T) {
	bin := kite(t)

	t.Run("examples are valid, without warnings", func(t *testing.T) {
		out, errOut, code := run(t, bin, "flow", "validate", "--strict", "../../examples/flows")
		if code != 0 || errOut != "" {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		if !strings.Contains(out, "hello-world.yaml: ok (kite.examples.hello-world, 2 tasks)") || !strings.Contains(out, "0 invalid") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("broken flows give located errors and exit 1", func(t *testing.T) {
		out, errOut, code := run(t, bin, "flow", "validate", "../../core/flow/testdata/invalid")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
		}
		for _, want := range []string{
			`unknown-type.yaml:5:11: tasks[0].type: unknown task type "io.kestra.plugin.core.log.Lg"; did you mean "io.kestra.plugin.core.log.Log"?`,
			`duplicate-ids.yaml:10:9: tasks[1].tasks[0].id: duplicate task id "step" (first at line 4)`,
			`cron.yaml:13:11: triggers[1].cron: invalid cron expression "61 * * * *"`,
			`warn-expressions.yaml:9:29: warning: tasks[1].format: expression syntax: unexpected "}}"`,
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("missing %q in:\n%s", want, errOut)
			}
		}
		if !strings.Contains(out, "1 valid, 12 invalid") {
			t.Errorf("summary: %s", out)
		}
	})

	t.Run("strict makes warnings fail", func(t *testing.T) {
		_, _, code := run(t, bin, "flow", "validate", "--strict", "../../core/flow/testdata/invalid/warn-expressions.yaml")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
	})

	t.Run("missing path", func(t *testing.T) {
		_, errOut, code := run(t, bin, "flow", "validate", "no/such/dir")
		if code != 1 || !strings.Contains(errOut, "no/such/dir") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})

	t.Run("schema is JSON", func(t *testing.T) {
		out, _, code := run(t, bin, "flow", "schema")
		var v map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["$schema"] == nil {
			t.Fatalf("exit %d, not a JSON schema: %.200s", code, out)
		}
	})

	t.Run("types", func(t *testing.T) {
		out, _, code := run(t, bin, "flow", "types", "io.kestra.core.tasks.flows.Pause")
		if code != 0 || !strings.HasPrefix(out, "pause (flowable task)") || !strings.Contains(out, "delay") {
			t.Errorf("exit %d:\n%s", code, out)
		}
		_, errOut, code := run(t, bin, "flow", "types", "sequencial")
		if code != 1 || !strings.Contains(errOut, `did you mean sequential`) {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})

	t.Run("unknown subcommand", func(t *testing.T) {
		_, errOut, code := run(t, bin, "flow", "valdate", "x.yaml")
		if code != 1 || !strings.Contains(errOut, `unknown command "valdate" for "kite flow"; did you mean validate?`) {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})

	t.Run("flow test runs a flow and exits by its state", func(t *testing.T) {
		out, errOut, code := run(t, bin, "flow", "test", "../../examples/flows/hello-world.yaml", "--input", "name=Kite")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range []string{"INFO  greet: Hello, Kite!", `greeting                       SUCCESS   {"value":"Hello, KITE"}`, `Outputs: {"greeting":"Hello, KITE"}`} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in:\n%s", want, out)
			}
		}
	})

	t.Run("flow test --output json", func(t *testing.T) {
		out, _, code := run(t, bin, "flow", "test", "../../examples/flows/retry-and-errors.yaml", "--input", "fail=true", "--output", "json")
		var x struct {
			State    string `json:"state"`
			TaskRuns []struct {
				TaskID   string            `json:"taskId"`
				State    string            `json:"state"`
				Attempts []json.RawMessage `json:"attempts"`
			} `json:"taskRuns"`
		}
		if err := json.Unmarshal([]byte(out), &x); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if code != 1 || x.State != "FAILED" {
			t.Fatalf("exit %d, state %s", code, x.State)
		}
		got := map[string]string{}
		for _, tr := range x.TaskRuns {
			got[tr.TaskID] = tr.State
			if tr.TaskID == "maybe-fail" && len(tr.Attempts) != 3 {
				t.Errorf("maybe-fail has %d attempts, want 3 (maxAttempt)", len(tr.Attempts))
			}
		}
		want := map[string]string{"maybe-fail": "FAILED", "alert": "SUCCESS", "cleanup": "SUCCESS"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("task %s: %s, want %s (all: %v)", k, got[k], v, got)
			}
		}
		if _, ran := got["check"]; ran {
			t.Error("check ran after a failure")
		}
	})

	t.Run("flow test refuses bad inputs with exit 2", func(t *testing.T) {
		_, errOut, code := run(t, bin, "flow", "test", "../../examples/flows/retry-and-errors.yaml", "--input", "fail=perhaps", "--input", "nope=1")
		if code != 2 || !strings.Contains(errOut, `fail: expected true or false, got "perhaps"`) || !strings.Contains(errOut, "nope: not an input") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})

	t.Run("version", func(t *testing.T) {
		out, _, code := run(t, bin, "version")
		if code != 0 || !strings.HasPrefix(out, "kite ") {
			t.Errorf("exit %d: %s", code, out)
		}
	})
}
