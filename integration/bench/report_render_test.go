package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleResult is a run of three rates, the highest failing on its p99
// and on Create errors, with the five-If flow and two ForEach runs whose
// Kafka bytes per item are bytesAt100 and bytesAt1000.
func sampleResult(bytesAt100, bytesAt1000 float64) *Result {
	usage := func(kite float64) Usage {
		return Usage{
			Processes: []ProcessUsage{
				{Name: "kite", Cores: kite, RSSMaxBytes: 180 << 20},
				{Name: "kafka", Cores: 0.8, RSSMaxBytes: 1 << 30},
			},
			Projection: &Projection{DocsPerSecond: 41.5, LagP50Ms: 25, LagP99Ms: 250},
		}
	}
	rate := func(rate int, p99 float64, passed bool) RateRun {
		return RateRun{
			Flow: "bench.two_tasks", Rate: rate, DurationSeconds: 60, Created: rate, Succeeded: rate,
			Latency:       Quantiles{P50: 42.5, P95: p99 / 2, P99: p99, Max: p99 * 1.5},
			CreateLatency: Quantiles{P50: 3, P95: 5, P99: 8, Max: 12},
			DonePerMinute: float64(rate), TaskRunsPerExecution: 2, Passed: passed,
			Usage: usage(float64(rate) / 1000),
		}
	}
	failing := rate(6000, 2412.7, false)
	failing.Created, failing.Succeeded, failing.Failed, failing.Unfinished, failing.CreateErrors = 5990, 5900, 30, 60, 10
	failing.Errors = []ErrorCount{{Message: "rpc error: code = Unavailable", Count: 10}}
	first := rate(60, 95.3, true)
	first.Hops = []Hop{
		{Name: "create → first task created", Latency: Quantiles{P50: 10, P95: 20, P99: 30}},
		{Name: "last task → execution ended", Latency: Quantiles{P50: 5, P95: 6, P99: 7}},
	}
	ifs := rate(600, 310.4, true)
	ifs.Flow, ifs.TaskRunsPerExecution = "bench.five_ifs", 10
	foreach := func(items int, perItem float64) ForEachRun {
		total := int64(perItem * float64(items))
		return ForEachRun{
			Items: items, State: "SUCCESS", WallMs: float64(items) * 2.5, TaskRuns: items + 1, TasksPerSec: 400,
			KafkaBytes: total, BytesByTopic: map[string]int64{"execution-events": total * 3 / 4, "task-runs": total - total*3/4},
			BytesPerItem: perItem, Usage: usage(1.2),
		}
	}
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	return &Result{
		Name:     "standalone (embedded broker)",
		Started:  start,
		Finished: start.Add(7*time.Minute + 3*time.Second),
		Machine:  Machine{Hostname: "bench-1", OS: "linux/amd64 6.8.0", CPU: "AMD EPYC 7B13", Cores: 8, MemoryBytes: 32 << 30},
		Versions: map[string]string{"kite": "v0.4.0", "go": "go1.26.0", "broker": "Kafka 4.3.1"},
		Settings: Settings{
			Server: "localhost:7070", Brokers: "localhost:9092", Observe: "execution-events consumer",
			StepSeconds: 60, P99LimitMs: 1000, IfRate: 600, ForEachConcurrency: 0,
		},
		Rates:       []RateRun{first, rate(600, 812.3, true), failing},
		HighestRate: 600,
		Ifs:         &ifs,
		ForEach:     []ForEachRun{foreach(100, bytesAt100), foreach(1000, bytesAt1000)},
	}
}

func TestRenderTable(t *testing.T) {
	tests := []struct {
		name        string
		bytesAt1000 float64
		want        string
	}{
		{"linear", 820, "100 items → 800 B, 1000 items → 820 B (×1.02 per item: linear ≈ 1) — linear"},
		{"quadratic", 8000, "100 items → 800 B, 1000 items → 8000 B (×10.00 per item: linear ≈ 1) — grows faster than linear"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := sampleResult(800, tt.bytesAt1000).Table()
			t.Log("\n" + table)
			for _, want := range []string{
				"kite bench: standalone (embedded broker)",
				"took 7m3s",
				"8 cores, 32.0 GiB, AMD EPYC 7B13",
				"versions: broker Kafka 4.3.1, go go1.26.0, kite v0.4.0",
				"Two-task flow (Log + Return) at fixed rates",
				"812.3", "2412.7", "95.3", // p99 of each rate
				"error (10×): rpc error: code = Unavailable",
				"≤250 ms",
				"highest rate with p99 < 1000 ms: 600/min (p99 812.3 ms)",
				"Where the time goes at 60/min",
				"create → first task created",
				"Five If tasks (10 task runs) at 600/min",
				"310.4",
				"topic execution-events",
				tt.want,
			} {
				if !strings.Contains(table, want) {
					t.Errorf("Table() lacks %q", want)
				}
			}
			twoTasks, _, _ := strings.Cut(table, "Five If tasks")
			for rate, passed := range map[string]string{"60": "yes", "600": "yes", "6000": "no"} {
				rows := rowsStartingWith(twoTasks, rate+" ")
				if len(rows) != 1 || !strings.Contains(rows[0], " "+passed+" ") {
					t.Errorf("the two-task flow's rows at %s/min are %q, want one that says passed %s", rate, rows, passed)
				}
			}
		})
	}
}

func TestRenderTableNoRatePassed(t *testing.T) {
	r := sampleResult(800, 800)
	r.HighestRate = 0
	if table := r.Table(); !strings.Contains(table, "highest rate with p99 < 1000 ms: none of the rates passed") {
		t.Errorf("Table() does not say that no rate passed:\n%s", table)
	}
}

func TestRenderWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	r := sampleResult(800, 820)
	paths, err := r.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "results.json"), filepath.Join(dir, "results.txt"), filepath.Join(dir, "results.svg")}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("WriteFiles wrote %q, want %q", paths, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != len(want) {
		t.Errorf("the directory holds %d entries, want %d (no temporary files)", len(entries), len(want))
	}

	var back Result
	if err := json.Unmarshal(readFile(t, paths[0]), &back); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("results.json does not round-trip:\n got %+v\nwant %+v", back, *r)
	}

	if got := string(readFile(t, paths[1])); got != r.Table() {
		t.Errorf("results.txt is not Table():\n%s", got)
	}

	svg := readFile(t, paths[2])
	checkSVG(t, svg)
	for _, title := range []string{"offered rate (executions/min)", "latency (ms)", "items", "Kafka bytes written (KiB)", "ForEach: bytes written to Kafka"} {
		if !bytes.Contains(svg, []byte(title)) {
			t.Errorf("results.svg lacks the title %q", title)
		}
	}
}

func TestRenderEmpty(t *testing.T) {
	r := &Result{Name: "nothing measured", Settings: Settings{P99LimitMs: 1000}}
	table := r.Table()
	if strings.Count(table, "not run") != 2 {
		t.Errorf("an empty Table() should say twice that a part was not run:\n%s", table)
	}
	paths, err := r.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svg := readFile(t, paths[2])
	checkSVG(t, svg)
	if !bytes.Contains(svg, []byte("not measured")) {
		t.Error("the chart of an empty result does not say it was not measured")
	}
}

// checkSVG fails t unless svg is well-formed XML with an <svg> root.
func checkSVG(t testing.TB, svg []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		if el, ok := tok.(xml.StartElement); ok && root == "" {
			root = el.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("the SVG's root element is <%s>, want <svg>", root)
	}
}

func rowsStartingWith(table, prefix string) []string {
	var rows []string
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), prefix) {
			rows = append(rows, line)
		}
	}
	return rows
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
