package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/kiteflow/kite/proto/codec"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// monitor follows the execution-events topic while the test runs (read
// committed, from the start) to see executions appear and end: it paces the
// quiescence and notices a run that makes no progress. The verification
// does not trust it: it reads the topic again from the start.
type monitor struct {
	cl *kgo.Client

	mu       sync.Mutex
	ended    map[string]bool // every execution seen created → ended
	nEnded   int
	progress time.Time // the last time an execution ended (or the clock was reset)
	fetchErr string    // the last fetch error, while the broker is away
	wake     chan struct{}
}

func newMonitor(brokers []string, topic string) (*monitor, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("kite-chaos-monitor"),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	return &monitor{cl: cl, ended: map[string]bool{}, progress: time.Now(), wake: make(chan struct{}, 1)}, nil
}

// run reads events until ctx ends, then closes the client.
func (m *monitor) run(ctx context.Context) error {
	defer m.cl.Close()
	for {
		fetches := m.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				m.mu.Lock()
				m.fetchErr = fmt.Sprintf("%s[%d]: %v", topic, p, err)
				m.mu.Unlock()
			}
		})
		var bad error
		m.mu.Lock()
		fetches.EachRecord(func(r *kgo.Record) {
			var ev kitev1.ExecutionEvent
			if err := proto.Unmarshal(r.Value, &ev); err != nil {
				bad = fmt.Errorf("decoding the event at %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
				return
			}
			id := ev.GetExecutionId()
			switch ev.GetType() {
			case kitev1.EventType_EVENT_TYPE_CREATED:
				if _, ok := m.ended[id]; !ok {
					m.ended[id] = false
				}
			case kitev1.EventType_EVENT_TYPE_STATE:
				if codec.FromState(ev.GetState()).Terminal() && !m.ended[id] {
					m.ended[id] = true
					m.nEnded++
					m.progress = time.Now()
				}
			}
		})
		m.mu.Unlock()
		if bad != nil {
			return bad
		}
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// resetProgress starts the no-progress clock again.
func (m *monitor) resetProgress() {
	m.mu.Lock()
	m.progress = time.Now()
	m.mu.Unlock()
}

// counts returns the executions seen and ended so far.
func (m *monitor) counts() (seen, ended int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.ended), m.nEnded
}

// stalled reports, when executions are running and none ended for limit,
// why that is a failure.
func (m *monitor) stalled(limit time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	running := len(m.ended) - m.nEnded
	if idle := time.Since(m.progress); running > 0 && idle > limit {
		return fmt.Errorf("no progress: no execution ended for %s while %d were running (%d ended so far; last fetch error: %q)",
			idle.Round(time.Second), running, m.nEnded, m.fetchErr)
	}
	return nil
}

// waitEnded waits until every execution seen has ended and every one that
// Create answered with has been seen, for at most within; it fails early
// when no execution ends for stall.
func (m *monitor) waitEnded(ctx context.Context, created map[string]string, within, stall time.Duration, logf func(string, ...any)) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	lastLog := time.Now()
	for {
		m.mu.Lock()
		var running, unseen []string
		for id, ended := range m.ended {
			if !ended {
				running = append(running, id)
			}
		}
		for id := range created {
			if _, ok := m.ended[id]; !ok {
				unseen = append(unseen, id)
			}
		}
		m.mu.Unlock()
		if len(running) == 0 && len(unseen) == 0 {
			return nil
		}
		if err := m.stalled(stall); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			slices.Sort(running)
			slices.Sort(unseen)
			return fmt.Errorf("%d executions had not ended %s after the last Create (first: %v), and %d that Create answered with were never seen on the topic (first: %v)",
				len(running), within, first(running, 5), len(unseen), first(unseen, 5))
		}
		if time.Since(lastLog) >= 15*time.Second {
			lastLog = time.Now()
			logf("quiescing: %d executions running, %d created not seen yet", len(running), len(unseen))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.wake:
		case <-tick.C:
		}
	}
}

// first returns at most n elements of s.
func first[T any](s []T, n int) []T { return s[:min(n, len(s))] }
