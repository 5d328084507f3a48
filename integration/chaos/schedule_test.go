package chaos

import (
	"context"
	"math/rand/v2"
	"time"
)

// roles are what the chaos picks from, each with the same chance; a worker
// is one of the two worker processes.
var roles = []string{"executor", "worker", "scheduler", "indexer", "api"}

// schedule is the chaos: every 2–5 s it SIGKILLs a random role process and
// starts it again after a short pause; once, at brokerAt into the run, it
// restarts the broker instead. Its choices come from a seeded generator, so
// a seed replays the same order of kills (not the same timing of Kite).
type schedule struct {
	rng      *rand.Rand
	cl       *cluster
	broker   *broker
	brokerAt time.Duration
	log      func(format string, args ...any)

	kills          map[string]int // by slot
	brokerRestarts int
	brokerDown     time.Duration // from the stop to the broker serving again
	brokerErr      error
}

// run applies the chaos from begin until ctx ends.
func (s *schedule) run(ctx context.Context, begin time.Time) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	pause := func(d time.Duration) bool {
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		}
	}
	for {
		if !pause(2*time.Second + time.Duration(s.rng.Int64N(int64(3*time.Second)))) {
			return
		}
		if s.brokerRestarts == 0 && time.Since(begin) >= s.brokerAt {
			s.restartBroker(ctx)
			continue
		}
		role := roles[s.rng.IntN(len(roles))]
		name := role
		if role == "worker" {
			name = []string{"worker-1", "worker-2"}[s.rng.IntN(2)]
		}
		down := 300*time.Millisecond + time.Duration(s.rng.Int64N(int64(1200*time.Millisecond)))
		sl := s.cl.byName[name]
		pid := s.cl.kill(sl)
		if pid == 0 {
			s.log("chaos: %s was not running (starting again after a crash); not killed", name)
		} else {
			s.kills[name]++
			s.log("chaos: SIGKILL %s (pid %d); starting it again in %s", name, pid, down.Round(time.Millisecond))
		}
		if !pause(down) {
			return
		}
		if err := s.cl.start(sl); err != nil {
			s.log("chaos: starting %s again: %v", name, err)
		}
	}
}

// restartBroker stops the broker and starts it again with its data
// (kafka.sh restart), waiting until it serves. It stops it with SIGTERM, not
// SIGKILL: a SIGKILLed single-node Kafka 4.3.1 may complete a prepared
// transaction without writing its markers (see kafka.sh), a broker bug that
// would hang any reader of the partitions involved, Kite or not.
func (s *schedule) restartBroker(ctx context.Context) {
	s.brokerRestarts++
	s.log("chaos: stop the Kafka broker (SIGTERM) and start it again on %s with its data", s.broker.addr)
	start := time.Now()
	out, err := s.broker.restart(ctx)
	s.brokerDown = time.Since(start)
	if err != nil {
		s.brokerErr = err
		s.log("chaos: restarting the broker failed after %s: %v\n%s", s.brokerDown.Round(time.Millisecond), err, out)
		return
	}
	s.log("chaos: the broker serves again, %s after the stop", s.brokerDown.Round(time.Millisecond))
}
