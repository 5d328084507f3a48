package flow_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/invalid")

func newParser(tb testing.TB) *flow.Parser {
	tb.Helper()
	return &flow.Parser{Registry: tasks.Registry(), CheckExpr: expr.Default.Check}
}

func parseFile(tb testing.TB, path string) (*flow.Flow, error) {
	tb.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return newParser(tb).Parse(filepath.ToSlash(path), src)
}

// TestInvalidFlows checks that every broken flow of testdata/invalid reports
// all of its problems, located, as its .golden file lists them. Files named
// warn-*.yaml hold problems that are warnings: the flow parses, with them.
func TestInvalidFlows(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := parseFile(t, file)
			var diags flow.Diagnostics
			if strings.HasPrefix(filepath.Base(file), "warn-") {
				if err != nil {
					t.Fatalf("want only warnings, got errors:\n%v", err)
				}
				diags, err = f.Warnings, f.Warnings
				for _, d := range diags {
					if !d.Warning {
						t.Errorf("not a warning: %v", d)
					}
				}
				if len(diags) == 0 {
					t.Fatal("no warnings")
				}
			} else {
				if err == nil {
					t.Fatalf("parsed %s without error: %+v", file, f)
				}
				if !errors.As(err, &diags) || !errors.Is(err, flow.ErrInvalidFlow) {
					t.Fatalf("error %T is not Diagnostics wrapping ErrInvalidFlow: %v", err, err)
				}
			}
			for _, d := range diags {
				if d.Line < 1 || d.Column < 1 || d.File != file {
					t.Errorf("diagnostic without a location: %+v", d)
				}
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run go test -update to create it)", rerr)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestValidFlows(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if _, err := parseFile(t, file); err != nil {
				t.Fatalf("unexpected problems:\n%v", err)
			}
		})
	}
}

func TestFullFlowModel(t *testing.T) {
	f, err := parseFile(t, "testdata/valid/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != "full" || f.Namespace != "kite.tests.full" || f.Description != "Every feature at once" {
		t.Errorf("header: %q %q %q", f.ID, f.Namespace, f.Description)
	}
	if len(f.Labels) != 2 || f.Labels[0] != (flow.Label{Key: "team", Value: "data"}) || f.Labels[1].Value != "1" {
		t.Errorf("labels: %+v", f.Labels)
	}
	if len(f.Inputs) != 6 || f.Inputs[2].ID != "color" || f.Inputs[3].ItemType != flow.InputInt || !f.Inputs[0].Required || f.Inputs[1].Required {
		t.Errorf("inputs: %+v", f.Inputs)
	}
	if f.Concurrency == nil || f.Concurrency.Limit != 2 || f.Concurrency.Behavior != flow.ConcurrencyCancel {
		t.Errorf("concurrency: %+v", f.Concurrency)
	}
	if f.Retry == nil || f.Retry.Behavior != flow.RetryCreateNewExecution || f.Retry.MaxAttempts != 2 {
		t.Errorf("retry: %+v", f.Retry)
	}
	hello := f.Tasks[0]
	if hello.Type != "log" || hello.TypeName != "io.kestra.plugin.core.log.Log" || hello.Props["message"] != "{{ vars.greeting }}" {
		t.Errorf("hello: %+v", hello)
	}
	if hello.Props["level"] != "WARN" {
		t.Errorf("plugin default not applied: level = %v", hello.Props["level"])
	}
	if quiet := f.Tasks[1]; quiet.Props["level"] != "DEBUG" {
		t.Errorf("plugin default overrode the task's own value: %v", quiet.Props["level"])
	}
	each := f.Tasks[2]
	if !each.Flowable() || each.Type != "for-each" || len(each.Tasks("tasks")) != 1 {
		t.Fatalf("each: %+v", each)
	}
	sw := each.Tasks("tasks")[0]
	if sw.Type != "switch" || len(sw.Cases("cases")["1"]) != 1 || sw.Tasks("defaults")[0].Type != "return" {
		t.Errorf("switch: %+v", sw)
	}
	big, ok := f.FindTask("big")
	if !ok || big.Retry == nil || big.Retry.Type != flow.RetryExponential || big.Retry.MaxInterval.Seconds() != 10 || !big.Retry.WarningOnRetry {
		t.Errorf("big: %+v", big)
	}
	later, _ := f.FindTask("later")
	if later.Timeout.Minutes() != 1 || later.RunIf == "" {
		t.Errorf("later: %+v", later)
	}
	var ids []string
	f.Walk(func(tk *flow.Task, _ string) bool { ids = append(ids, tk.ID); return true })
	want := "hello quiet each pick one other check big small later alert bye"
	if strings.Join(ids, " ") != want {
		t.Errorf("walk order:\n got %s\nwant %s", strings.Join(ids, " "), want)
	}
	if len(f.Triggers) != 3 || f.Triggers[0].Type != "schedule" || len(f.Triggers[2].Conditions) != 2 || f.Triggers[2].Conditions[0].Type != "execution-status" {
		t.Errorf("triggers: %+v", f.Triggers)
	}
	if len(f.Outputs) != 1 || f.Outputs[0].ID != "result" {
		t.Errorf("outputs: %+v", f.Outputs)
	}
}

func TestLabelsAsList(t *testing.T) {
	f, err := parseFile(t, "testdata/valid/labels-list.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Labels) != 2 || f.Labels[1] != (flow.Label{Key: "b", Value: "two"}) {
		t.Errorf("labels: %+v", f.Labels)
	}
}

func TestUnsupportedIsMarked(t *testing.T) {
	_, err := parseFile(t, "testdata/invalid/unsupported.yaml")
	var diags flow.Diagnostics
	if !errors.As(err, &diags) || !diags.OnlyUnsupported() {
		t.Fatalf("want only unsupported-feature diagnostics, got %v", err)
	}
	for _, d := range diags {
		if !strings.Contains(d.Message, "not supported yet: ") {
			t.Errorf("message does not say 'not supported yet': %s", d.Message)
		}
	}
}

func TestStrictMakesWarningsErrors(t *testing.T) {
	src, err := os.ReadFile("testdata/invalid/warn-expressions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := newParser(t)
	p.Strict = true
	_, err = p.Parse("x.yaml", src)
	var diags flow.Diagnostics
	if !errors.As(err, &diags) || len(diags.Errors()) != 5 {
		t.Fatalf("want 5 errors in strict mode, got %v", err)
	}
}
