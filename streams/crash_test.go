package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// childEnv makes the test binary run the counting app of the env it holds
// (JSON), until killed (see TestMain).
const childEnv = "KITE_STREAMS_CHILD_ENV"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	os.Exit(m.Run())
}

// runChild runs the counting app until the process is killed.
func runChild(spec string) error {
	var e env
	if err := json.Unmarshal([]byte(spec), &e); err != nil {
		return err
	}
	cfg := e.appConfig("child")
	cfg.StaticMembership = true
	app, err := NewApp(cfg, counter{out: e.Out}, nil, []kgo.Opt{kgo.SeedBrokers(e.Brokers...)})
	if err != nil {
		return err
	}
	return app.Run(context.Background())
}

// TestSIGKILLExactlyOnce runs the counting app in a child process that is
// killed with SIGKILL at random moments and restarted until every input is
// counted: the output (read committed) holds exactly one result per input
// and the final counts are exact.
func TestSIGKILLExactlyOnce(t *testing.T) { eachBroker(t, testSIGKILL) }

func testSIGKILL(t *testing.T, e *env) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	spec, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	keys, values := make([]string, n), make([]string, n)
	for i := range keys {
		keys[i], values[i] = "k"+strconv.Itoa(i%13), "x"
	}
	produce(t, e, keys, values)

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	admCl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	// committed is how many inputs the group has committed so far.
	committed := func() int64 {
		offs, err := adm.FetchOffsets(t.Context(), e.Group)
		if err != nil {
			return 0
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == e.In && o.At > 0 {
				sum += o.At
			}
		})
		return sum
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	var kills, midStream int
	var progress int64
	for kills < 8 {
		cmd := start()
		// Kill once the child has committed more than the last one did, plus
		// a random few milliseconds: inside or between transactions, but
		// always with work left.
		deadline := time.Now().Add(60 * time.Second)
		for committed() <= progress && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // polling the condition above
		}
		time.Sleep(time.Duration(rnd.IntN(30)) * time.Millisecond) // a random moment to kill at
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
		progress = committed()
		if progress >= int64(n) {
			break
		}
		midStream++
	}
	if midStream == 0 {
		t.Fatal("no kill happened before the inputs were all processed")
	}
	{
		cmd := start()
		out := readAll(t, e, e.Out, n, 240*time.Second)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		checkCounts(t, out, keys)
		// Nothing more arrives later: no duplicate after the last kill.
		if again := readAll(t, e, e.Out, n+1, 2*time.Second); len(again) != n {
			t.Errorf("%d outputs in the end, want %d", len(again), n)
		}
		t.Logf("%d inputs, %d kills (%d with work left), %d outputs", n, kills, midStream, len(out))
	}
}

func checkCounts(t *testing.T, out []*kgo.Record, keys []string) {
	t.Helper()
	if len(out) != len(keys) {
		t.Fatalf("got %d outputs, want %d", len(out), len(keys))
	}
	seen := map[string]bool{}
	last := map[string]int{}
	for _, r := range out {
		if seen[string(r.Value)] {
			t.Fatalf("duplicate output %s", r.Value)
		}
		seen[string(r.Value)] = true
		k, rest, _ := strings.Cut(string(r.Value), "=")
		c, _ := strconv.Atoi(strings.SplitN(rest, "@", 2)[0])
		if c > last[k] {
			last[k] = c
		}
	}
	want := map[string]int{}
	for _, k := range keys {
		want[k]++
	}
	for k, w := range want {
		if last[k] != w {
			t.Errorf("count of %s = %d, want %d", k, last[k], w)
		}
	}
}
