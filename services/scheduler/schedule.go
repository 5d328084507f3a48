package scheduler

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kiteflow/kite/core/flow"
	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
)

// schedule is a Schedule trigger's cron expression evaluated in its time zone.
type schedule struct {
	cron cron.Schedule
	loc  *time.Location
}

func parseSchedule(s *eventv1.Schedule) (schedule, error) {
	c, err := flow.ParseCron(s.GetCron())
	if err != nil {
		return schedule{}, fmt.Errorf("cron %q: %w", s.GetCron(), err)
	}
	tz := s.GetTimezone()
	if tz == "" {
		tz = "Etc/UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return schedule{}, fmt.Errorf("timezone %q: %w", tz, err)
	}
	return schedule{cron: c, loc: loc}, nil
}

// next returns the first tick strictly after t.
func (s schedule) next(t time.Time) time.Time { return s.cron.Next(t.In(s.loc)) }

// atOrAfter returns the first tick at or after t.
func (s schedule) atOrAfter(t time.Time) time.Time { return s.next(t.Add(-time.Nanosecond)) }

// prev returns the last tick strictly before t, or the zero time when there
// is none in the ten years before t. Cron has no backward step: it looks
// forward from t minus a span that doubles until it holds a tick.
func (s schedule) prev(t time.Time) time.Time {
	span := max(s.next(t).Sub(t), time.Second)
	for span < 10*366*24*time.Hour {
		x := s.next(t.Add(-span))
		if x.Before(t) {
			for {
				y := s.next(x)
				if y.IsZero() || !y.Before(t) {
					return x
				}
				x = y
			}
		}
		span *= 2
	}
	return time.Time{}
}

// tick is one scheduled date, with the one before it (for trigger.previous).
type tick struct {
	date, previous time.Time
}

// policy says which due ticks fire.
type policy struct {
	recover eventv1.RecoverMissedSchedules
	// lateMax skips ticks older than it; 0 for no limit.
	lateMax time.Duration
	// missedAfter is the age after which a tick counts as missed rather
	// than late.
	missedAfter time.Duration
	// maxFires bounds the ticks fired at once; the latest are kept.
	maxFires int
}

// dueTicks returns the ticks of s from first (a tick) up to now that fire
// under p, oldest first, the latest tick up to now (which the next tick
// follows), and how many due ticks were skipped.
//
// Ticks fire when the scheduler is on time. When it is behind (its oldest
// due tick is older than missedAfter: it was down, or the trigger's
// partition was moving), the trigger's recoverMissedSchedules says which
// of the due ticks fire: ALL of them (the latest maxFires), the LAST one,
// or NONE but those within missedAfter. Then ticks older than lateMax are
// skipped. The cost is one cron step per due tick.
func dueTicks(s schedule, first, now time.Time, p policy) (fire []tick, latest time.Time, skipped int) {
	if first.After(now) {
		return nil, time.Time{}, 0
	}
	keep := max(p.maxFires, 1)
	ring := make([]tick, 0, keep) // the latest due ticks
	n := 0
	prev := s.prev(first)
	for t := first; !t.IsZero() && !t.After(now); prev, t = t, s.next(t) {
		if len(ring) < keep {
			ring = append(ring, tick{date: t, previous: prev})
		} else {
			ring[n%keep] = tick{date: t, previous: prev}
		}
		n++
	}
	// The ring in order, oldest first.
	due := make([]tick, 0, len(ring))
	if n > keep {
		due = append(append(due, ring[n%keep:]...), ring[:n%keep]...)
	} else {
		due = append(due, ring...)
	}
	latest = due[len(due)-1].date

	behind := now.Sub(first) > p.missedAfter
	switch {
	case !behind || p.recover == eventv1.RecoverMissedSchedules_RECOVER_MISSED_SCHEDULES_ALL ||
		p.recover == eventv1.RecoverMissedSchedules_RECOVER_MISSED_SCHEDULES_UNSPECIFIED:
		fire = due
	case p.recover == eventv1.RecoverMissedSchedules_RECOVER_MISSED_SCHEDULES_LAST:
		fire = due[len(due)-1:]
	default: // NONE
		for _, t := range due {
			if now.Sub(t.date) <= p.missedAfter {
				fire = append(fire, t)
			}
		}
	}
	if p.lateMax > 0 {
		kept := fire[:0:0]
		for _, t := range fire {
			if now.Sub(t.date) <= p.lateMax {
				kept = append(kept, t)
			}
		}
		fire = kept
	}
	return fire, latest, n - len(fire)
}

// scheduleOf returns the schedule of a Schedule trigger's properties, as
// the flow parser decoded them (it checked their types and the cron).
func scheduleOf(tr *flow.Trigger) (*eventv1.Schedule, error) {
	s := &eventv1.Schedule{}
	s.Cron, _ = tr.Props["cron"].(string)
	s.Timezone, _ = tr.Props["timezone"].(string)
	switch v, _ := tr.Props["recoverMissedSchedules"].(string); v {
	case "", "ALL":
		s.RecoverMissedSchedules = eventv1.RecoverMissedSchedules_RECOVER_MISSED_SCHEDULES_ALL
	case "LAST":
		s.RecoverMissedSchedules = eventv1.RecoverMissedSchedules_RECOVER_MISSED_SCHEDULES_LAST
	case "NONE":
		s.RecoverMissedSchedules = eventv1.RecoverMissedSchedules_RECOVER_MISSED_SCHEDULES_NONE
	default:
		return nil, fmt.Errorf("recoverMissedSchedules %q is not one of ALL, LAST, NONE", v)
	}
	if d, ok := tr.Props["lateMaximumDelay"].(string); ok && d != "" {
		late, err := flow.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("lateMaximumDelay: %w", err)
		}
		s.LateMaximumDelay = durationpb.New(late)
	}
	if _, err := parseSchedule(s); err != nil {
		return nil, err
	}
	return s, nil
}
