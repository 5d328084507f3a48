// Command conformance checks Kite against the Kestra conformance corpus
// (../shared/conformance/kestra, see its README), in three phases.
//
// Phase 1, validation: `kite flow validate` on every flow. A `class: core` flow
// must validate (exit 0). A `class: other` flow must validate or be rejected
// with a message containing "not supported yet". No flow may crash kite: an
// exit code above 1, death by a signal, a timeout or "panic" in the output.
// Only problems are printed, one line per flow, then a summary. Any failure
// here makes the exit status 1.
//
// Phase 2, execution (run.go, match.go): `kite flow test` runs every core flow
// that is meant to be started directly, and each of its scenarios, and the
// execution it prints is compared with the entry's `expect`. Failures are
// printed, with a summary and the expectation fields that one execution
// cannot show; they make the exit status 1 only with -strict-exec. The JSON
// report goes to -report. -exec=false skips the phase, and it skips itself
// when bin/kite has no `flow test` command yet.
//
// Phase 3, the server (server.go, serverrun.go, convert.go), with -server:
// the same runs through the gRPC API of `kite server standalone` (-server
// auto starts one from the -kite binary, on free ports and a temporary data
// dir, and stops it at the end; -server host:port uses a running one). Every
// flow file is applied with FlowService.Apply, each run is created with
// ExecutionService.Create, followed with Watch until it settles as `kite flow
// test` would, read with Get (its subflow executions too) and compared with
// the same expectations. Failures are printed, then the runs whose verdict
// differs from phase 2's; they make the exit status 1 only with
// -strict-exec. The JSON report goes to -server-report.
//
// It is run by `make conformance` (scripts/conformance.sh); it will give way to
// a kite command once kite can run the corpus itself.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// expectation is the part of one expectations.yaml entry that validation needs.
type expectation struct {
	File  string `yaml:"file"` // path in Kestra's repository; the flow is flows/<basename>
	Class string `yaml:"class"`
}

// outcome is how kite treated one flow.
type outcome int

const (
	valid        outcome = iota // exit 0
	notSupported                // exit 1 with "not supported yet"
	rejected                    // exit 1 with any other message
	crashed                     // exit > 1, signal, timeout or "panic"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: it returns the exit status, 0 when everything required
// passed, 1 when something failed, 2 when it could not check.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("conformance", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dir := flags.String("dir", "../shared/conformance/kestra", "conformance corpus (holds expectations.yaml and flows/)")
	kite := flags.String("kite", "bin/kite", "kite binary")
	timeout := flags.Duration("timeout", time.Minute, "time limit for one `kite flow validate`")
	runExec := flags.Bool("exec", true, "phase 2: run the core flows with `kite flow test` and compare the executions")
	strictExec := flags.Bool("strict-exec", false, "make phase 2 and 3 failures fail the run (exit 1)")
	execTimeout := flags.Duration("exec-timeout", time.Minute, "--timeout given to `kite flow test`, and the time phase 3 gives one execution to settle")
	workers := flags.Int("workers", 2, "runs at a time, in phase 2 and in phase 3")
	reportPath := flags.String("report", "bin/conformance.json", "where phase 2 writes its JSON report (empty: nowhere)")
	server := flags.String("server", "", "phase 3: run the core flows through the gRPC API of a server: auto (start `kite server standalone` from -kite) or host:port (empty: skip the phase)")
	serverReport := flags.String("server-report", "bin/conformance-server.json", "where phase 3 writes its JSON report, and with -server auto the server's log beside it as .log (empty: nowhere)")
	if err := flags.Parse(args); err != nil {
		return 2
	}

	ok, err := validateCorpus(stdout, *dir, *kite, *timeout)
	if err != nil {
		fmt.Fprintln(stderr, "conformance:", err)
		return 2
	}
	var flowTest []execResult // phase 2's, to compare phase 3's with
	if *runExec {
		results, execOK, err := execCorpus(ctx, stdout, execOptions{
			Dir:     *dir,
			Kite:    *kite,
			Timeout: *execTimeout,
			Workers: *workers,
			Report:  *reportPath,
		})
		if err != nil {
			fmt.Fprintln(stderr, "conformance:", err)
			return 2
		}
		if *strictExec && !execOK {
			ok = false
		}
		flowTest = results
	}
	if *server != "" {
		serverOK, err := serverCorpus(ctx, stdout, serverOptions{
			Dir:      *dir,
			Kite:     *kite,
			Server:   *server,
			Timeout:  *execTimeout,
			Workers:  *workers,
			Report:   *serverReport,
			FlowTest: flowTest,
		})
		if err != nil {
			fmt.Fprintln(stderr, "conformance:", err)
			return 2
		}
		if *strictExec && !serverOK {
			ok = false
		}
	}
	if !ok {
		return 1
	}
	return 0
}

// validateCorpus is phase 1: `kite flow validate` on every flow of the corpus.
func validateCorpus(w io.Writer, dir, kite string, timeout time.Duration) (bool, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "expectations.yaml"))
	if err != nil {
		return false, fmt.Errorf("reading expectations: %w", err)
	}
	var entries []expectation
	if err := yaml.Unmarshal(raw, &entries); err != nil {
		return false, fmt.Errorf("parsing %s: %w", filepath.Join(dir, "expectations.yaml"), err)
	}

	var coreTotal, coreValid, otherPassed, otherUnsupported, otherRejected, crashes int
	for _, e := range entries {
		if e.Class != "core" && e.Class != "other" {
			return false, fmt.Errorf("%s: class %q, want core or other", e.File, e.Class)
		}
		flow := filepath.Join("flows", filepath.Base(e.File))
		got, detail := validate(kite, filepath.Join(dir, flow), timeout)

		switch {
		case got == crashed:
			crashes++
			report(w, "CRASH", e.Class, flow, detail)
		case e.Class == "core":
			if got == valid {
				coreValid++
			} else {
				report(w, "FAIL", e.Class, flow, detail)
			}
		case got == valid:
			otherPassed++
		case got == notSupported:
			otherUnsupported++
		default:
			otherRejected++
			report(w, "REJECTED", e.Class, flow, detail)
		}
		if e.Class == "core" {
			coreTotal++
		}
	}

	fmt.Fprintf(w, "core: %d/%d valid, other: %d passed, %d not supported, %d crashed\n",
		coreValid, coreTotal, otherPassed, otherUnsupported, crashes)
	if otherRejected > 0 {
		fmt.Fprintf(w, "other: %d rejected with an error other than \"not supported yet\" (listed above; not a failure)\n", otherRejected)
	}
	return coreValid == coreTotal && crashes == 0, nil
}

// validate runs `kite flow validate flow` and classifies the result; detail
// describes anything but a clean exit 0.
func validate(kite, flow string, timeout time.Duration) (outcome, string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	out, err := exec.CommandContext(ctx, kite, "flow", "validate", flow).CombinedOutput()
	text := strings.TrimSpace(string(out))
	code := 0
	if err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return crashed, fmt.Sprintf("could not run %s: %v", kite, err)
		}
		code = exitErr.ExitCode() // -1 when killed by a signal
	}

	switch {
	case ctx.Err() != nil:
		return crashed, fmt.Sprintf("no answer within %s", timeout)
	case code > 1 || code < 0 || bytes.Contains(out, []byte("panic")):
		return crashed, fmt.Sprintf("exit %d: %s", code, firstLines(text, 3))
	case code == 0:
		return valid, ""
	case strings.Contains(text, "not supported yet"):
		return notSupported, firstLines(text, 1)
	default:
		return rejected, fmt.Sprintf("exit %d: %s", code, firstLines(text, 3))
	}
}

func report(w io.Writer, verdict, class, flow, detail string) {
	fmt.Fprintf(w, "%-8s %-5s %s: %s\n", verdict, class, flow, detail)
}

// firstLines returns at most n non-blank lines of s, joined by " | ", so that
// one flow stays on one line of the report.
func firstLines(s string, n int) string {
	var lines []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if len(lines) == n {
			return strings.Join(lines, " | ") + " | …"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, " | ")
}
