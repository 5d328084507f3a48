package flows

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/core/expr"
	"github.com/kiteflow/kite/core/flow"
	"github.com/kiteflow/kite/core/tasks"
	"github.com/kiteflow/kite/integration/clustertest"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/streams"
)

// timeout bounds every wait of a test on the broker.
const timeout = 30 * time.Second

// env is a broker with a flows topic: kfake in-process, or the real Kafka
// that make test starts (integration/kafkatest).
type env struct{ kafka streams.Config }

// fakeEnv starts a kfake cluster with Kite's topics, as a server creates them.
func fakeEnv(tb testing.TB) *env { return &env{kafka: clustertest.Fake(tb)} }

// realEnv creates Kite's topics under a prefix of the test's own on the real
// broker, deleted when the test ends.
func realEnv(tb testing.TB) *env { return &env{kafka: clustertest.Real(tb)} }

// eachBroker runs a test on kfake and on the real broker.
func eachBroker(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("kfake", func(t *testing.T) { fn(t, fakeEnv(t)) })
	t.Run("kafka", func(t *testing.T) { fn(t, realEnv(t)) })
}

func client(tb testing.TB, cfg streams.Config) *kgo.Client {
	tb.Helper()
	opts, err := cfg.ClientOpts(testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

func testLogger(tb testing.TB) *zap.Logger {
	if os.Getenv("KITE_DEBUG") != "" {
		return zaptest.NewLogger(tb)
	}
	return nil
}

func newParser() *flow.Parser {
	return &flow.Parser{Registry: tasks.Registry(), CheckExpr: expr.Default.Check}
}

// startStore starts a store on e, stopped when the test ends, and waits
// until it is ready.
func startStore(tb testing.TB, e *env) *Store {
	tb.Helper()
	s, err := NewStore(e.kafka, newParser(), testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Run(ctx); err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	tb.Cleanup(func() { cancel(); wg.Wait() })
	if err := s.Ready(waitCtx(tb)); err != nil {
		tb.Fatal(err)
	}
	return s
}

func waitCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(tb.Context(), timeout)
	tb.Cleanup(cancel)
	return ctx
}

// source is a valid flow whose log task says message.
func source(namespace, id, message string) string {
	return fmt.Sprintf(`id: %s
namespace: %s
description: says %s
labels:
  team: data
tasks:
  - id: hello
    type: log
    message: %q
`, id, namespace, message, message)
}

// invalidSource has several errors, at known positions.
const invalidSource = `namespace: kite.tests
taks:
  - id: hello
    type: log
    message: hi
concurrency:
  behavior: DROP
`

func apply(tb testing.TB, s *Store, src string) (*kitev1.Flow, bool) {
	tb.Helper()
	pb, changed, _, err := s.Apply(waitCtx(tb), src)
	if err != nil {
		tb.Fatalf("Apply: %v", err)
	}
	return pb, changed
}

func revisionsOf(pbs []*kitev1.Flow) []int32 {
	var out []int32
	for _, pb := range pbs {
		out = append(out, pb.GetRevision())
	}
	return out
}

func keysOf(pbs []*kitev1.Flow) []string {
	var out []string
	for _, pb := range pbs {
		out = append(out, key(pb.GetNamespace(), pb.GetId()))
	}
	return out
}

// TestStoreRevisions walks a flow through its life: each step applies a
// source or deletes the flow, then says what the store must hold.
func TestStoreRevisions(t *testing.T) {
	eachBroker(t, func(t *testing.T, e *env) {
		s := startStore(t, e)
		v1, v2 := source("company.team", "hello", "one"), source("company.team", "hello", "two")
		steps := []struct {
			name        string
			apply       string // a source to apply; empty: delete the flow
			wantRev     int32  // of the applied revision
			wantChanged bool
			wantErr     error
			wantLatest  string // source of the latest revision; empty: not found
			wantRevs    []int32
		}{
			{name: "new flow", apply: v1, wantRev: 1, wantChanged: true, wantLatest: v1, wantRevs: []int32{1}},
			{name: "same source", apply: v1, wantRev: 1, wantLatest: v1, wantRevs: []int32{1}},
			{name: "changed source", apply: v2, wantRev: 2, wantChanged: true, wantLatest: v2, wantRevs: []int32{1, 2}},
			{name: "delete", wantRevs: []int32{1, 2}},
			{name: "delete again", wantErr: flow.ErrNotFound, wantRevs: []int32{1, 2}},
			{name: "apply after delete", apply: v1, wantRev: 3, wantChanged: true, wantLatest: v1, wantRevs: []int32{1, 2, 3}},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				if st.apply != "" {
					pb, changed, _, err := s.Apply(waitCtx(t), st.apply)
					if err != nil {
						t.Fatalf("Apply: %v", err)
					}
					if pb.GetRevision() != st.wantRev || changed != st.wantChanged {
						t.Errorf("Apply = revision %d, changed %v; want %d, %v", pb.GetRevision(), changed, st.wantRev, st.wantChanged)
					}
					if pb.GetDescription() == "" || len(pb.GetLabels()) != 1 || pb.GetUpdateTime() == nil {
						t.Errorf("Apply = %v; want the description, labels and update time", pb)
					}
				} else if err := s.Delete(waitCtx(t), "company.team", "hello"); !errors.Is(err, st.wantErr) {
					t.Fatalf("Delete = %v, want %v", err, st.wantErr)
				}

				f, err := s.Flow("company.team", "hello", 0)
				switch {
				case st.wantLatest == "" && !errors.Is(err, flow.ErrNotFound):
					t.Errorf("Flow(latest) = %v, %v; want not found", f, err)
				case st.wantLatest != "" && (err != nil || f.Source != st.wantLatest || f.Revision != int(st.wantRev)):
					t.Errorf("Flow(latest) = %+v, %v; want revision %d of %q", f, err, st.wantRev, st.wantLatest)
				}
				revs, err := s.Revisions("company.team", "hello")
				if err != nil || !slices.Equal(revisionsOf(revs), st.wantRevs) {
					t.Errorf("Revisions = %v, %v; want %v", revisionsOf(revs), err, st.wantRevs)
				}
			})
		}

		// Every revision stays readable, deleted or not.
		for rev, want := range map[int]string{1: v1, 2: v2, 3: v1} {
			if got, err := s.Source("company.team", "hello", rev); err != nil || got != want {
				t.Errorf("Source(revision %d) = %q, %v; want %q", rev, got, err, want)
			}
			if f, err := s.Flow("company.team", "hello", rev); err != nil || f.Revision != rev {
				t.Errorf("Flow(revision %d) = %+v, %v", rev, f, err)
			}
		}
		if _, err := s.Flow("company.team", "hello", 4); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("Flow(revision 4) = %v, want not found", err)
		}

		// A store started later reads the same.
		apply(t, s, source("company", "other", "x"))
		if err := s.Delete(waitCtx(t), "company", "other"); err != nil {
			t.Fatal(err)
		}
		later := startStore(t, e)
		for _, st := range []*Store{s, later} {
			got, err := st.Revisions("company.team", "hello")
			if err != nil || !slices.Equal(revisionsOf(got), []int32{1, 2, 3}) {
				t.Errorf("Revisions = %v, %v; want 1, 2, 3", revisionsOf(got), err)
			}
			if got := keysOf(st.List("")); !slices.Equal(got, []string{"company.team/hello"}) {
				t.Errorf("List = %v, want only company.team/hello", got)
			}
			if pb, err := st.Get("company", "other", 1); err != nil || !pb.GetDeleted() {
				t.Errorf("Get(deleted flow, revision 1) = %v, %v; want it, marked deleted", pb, err)
			}
		}
		// The later store goes on counting.
		if pb, _ := apply(t, later, v2); pb.GetRevision() != 4 {
			t.Errorf("Apply on the later store = revision %d, want 4", pb.GetRevision())
		}
		if pb, _ := apply(t, later, source("company", "other", "y")); pb.GetRevision() != 2 {
			t.Errorf("re-creating a deleted flow on the later store = revision %d, want 2", pb.GetRevision())
		}
	})
}

func TestStoreList(t *testing.T) {
	eachBroker(t, func(t *testing.T, e *env) {
		s := startStore(t, e)
		for _, k := range [][2]string{
			{"companyx", "a"}, {"company.team", "b"}, {"company", "z"}, {"company", "a"}, {"other", "a"}, {"company.team.sub", "a"},
		} {
			apply(t, s, source(k[0], k[1], "hi"))
		}
		apply(t, s, source("company.gone", "a", "hi"))
		if err := s.Delete(waitCtx(t), "company.gone", "a"); err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			prefix string
			want   []string
		}{
			{"", []string{"company/a", "company/z", "company.team/b", "company.team.sub/a", "companyx/a", "other/a"}},
			{"company", []string{"company/a", "company/z", "company.team/b", "company.team.sub/a"}},
			{"company.team", []string{"company.team/b", "company.team.sub/a"}},
			{"comp", nil},
			{"nothing", nil},
		}
		for _, tt := range tests {
			t.Run(tt.prefix, func(t *testing.T) {
				if got := keysOf(s.List(tt.prefix)); !slices.Equal(got, tt.want) {
					t.Errorf("List(%q) = %v, want %v", tt.prefix, got, tt.want)
				}
			})
		}

		var latest []string
		for _, f := range s.Latest() {
			latest = append(latest, key(f.Namespace, f.ID))
		}
		if want := tests[0].want; !slices.Equal(latest, want) {
			t.Errorf("Latest = %v, want %v", latest, want)
		}
	})
}

func TestStoreApplyInvalid(t *testing.T) {
	eachBroker(t, func(t *testing.T, e *env) {
		s := startStore(t, e)
		pb, _, _, err := s.Apply(waitCtx(t), invalidSource)
		var diags flow.Diagnostics
		if !errors.As(err, &diags) || !errors.Is(err, flow.ErrInvalidFlow) {
			t.Fatalf("Apply = %v, %v; want flow.Diagnostics", pb, err)
		}
		if n := len(diags.Errors()); n < 2 {
			t.Errorf("Apply found %d errors, want every one:\n%v", n, diags)
		}
		if got := s.List(""); len(got) != 0 {
			t.Errorf("List after an invalid Apply = %v, want nothing stored", got)
		}
	})
}

// TestStoreConcurrentApply applies versions of one flow from several
// goroutines: each gets a revision of its own.
func TestStoreConcurrentApply(t *testing.T) {
	eachBroker(t, func(t *testing.T, e *env) {
		s := startStore(t, e)
		const n = 10
		revs := make([]int32, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				pb, _, _, err := s.Apply(waitCtx(t), source("company", "busy", fmt.Sprint("version ", i)))
				if err != nil {
					t.Errorf("Apply %d: %v", i, err)
					return
				}
				revs[i] = pb.GetRevision()
			})
		}
		wg.Wait()
		slices.Sort(revs)
		want := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
		if !slices.Equal(revs, want) {
			t.Errorf("revisions = %v, want %v", revs, want)
		}
		if got, err := s.Revisions("company", "busy"); err != nil || !slices.Equal(revisionsOf(got), want) {
			t.Errorf("Revisions = %v, %v; want %v", revisionsOf(got), err, want)
		}
	})
}

// TestStoreSkipsBadRecords: records Kite did not write (not a Flow, a key
// that is not the flow's, a source that does not parse) do not stop the
// store, and what can be kept is.
func TestStoreSkipsBadRecords(t *testing.T) {
	eachBroker(t, func(t *testing.T, e *env) {
		topic := e.kafka.Topic(streams.TopicFlows)
		broken := &kitev1.Flow{Namespace: "company", Id: "broken", Revision: 1, Source: "id: broken\nnamespace: company\ntasks: 3\n"}
		wrongKey := &kitev1.Flow{Namespace: "company", Id: "a", Revision: 1, Source: source("company", "a", "hi")}
		recs := []*kgo.Record{
			{Topic: topic, Key: []byte("company/garbage"), Value: []byte("not protobuf \xff\xff")},
			{Topic: topic, Key: []byte("company/b"), Value: mustMarshal(t, wrongKey)},
			{Topic: topic, Key: []byte("company/broken"), Value: mustMarshal(t, broken)},
		}
		if err := client(t, e.kafka).ProduceSync(waitCtx(t), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}

		s := startStore(t, e)
		if got := keysOf(s.List("")); !slices.Equal(got, []string{"company/broken"}) {
			t.Errorf("List = %v, want only the flow whose source does not parse", got)
		}
		if _, err := s.Flow("company", "broken", 0); !errors.Is(err, flow.ErrInvalidFlow) {
			t.Errorf("Flow(broken) = %v, want an invalid flow error", err)
		}
		if got := s.Latest(); len(got) != 0 {
			t.Errorf("Latest = %v, want nothing that does not parse", got)
		}
		// A fixed source makes revision 2.
		if pb, _ := apply(t, s, source("company", "broken", "fixed")); pb.GetRevision() != 2 {
			t.Errorf("Apply = revision %d, want 2", pb.GetRevision())
		}
		if got := s.Latest(); len(got) != 1 || got[0].Revision != 2 {
			t.Errorf("Latest = %v, want company/broken revision 2", got)
		}
	})
}

func TestStoreStopped(t *testing.T) {
	e := fakeEnv(t)
	s, err := NewStore(e.kafka, newParser(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run(canceled) = %v, want nil", err)
	}
	if err := s.Run(t.Context()); err == nil {
		t.Error("a second Run succeeded")
	}
	if err := s.Ready(t.Context()); !errors.Is(err, errStopped) {
		t.Errorf("Ready after Run = %v, want %v", err, errStopped)
	}
	if _, _, _, err := s.Apply(t.Context(), source("company", "a", "hi")); !errors.Is(err, errStopped) {
		t.Errorf("Apply after Run = %v, want %v", err, errStopped)
	}
	s.Close() // idempotent
}

func TestStoreMissingTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := streams.Defaults()
	cfg.Brokers = c.ListenAddrs()
	s, err := NewStore(cfg, newParser(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(waitCtx(t)); err == nil || !strings.Contains(err.Error(), "kite.flows") {
		t.Errorf("Run without a flows topic = %v, want an error naming the topic", err)
	}
}

func mustMarshal(tb testing.TB, pb *kitev1.Flow) []byte {
	tb.Helper()
	b, err := proto.Marshal(pb)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
