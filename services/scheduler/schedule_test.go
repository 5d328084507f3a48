package scheduler

import (
	"strings"
	"testing"
	"time"

	eventv1 "github.com/kiteflow/kite/proto/gen/kite/event/v1"
)

func mustSchedule(tb testing.TB, cron, tz string) schedule {
	tb.Helper()
	s, err := parseSchedule(&eventv1.Schedule{Cron: cron, Timezone: tz})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestDueTicks(t *testing.T) {
	const (
		all  = eventv1.RecoverMissedSchedules_RECOVER_MISSED_SCHEDULES_ALL
		last = eventv1.RecoverMissedSchedules_RECOVER_MISSED_SCHEDULES_LAST
		none = eventv1.RecoverMissedSchedules_RECOVER_MISSED_SCHEDULES_NONE
	)
	minutes := mustSchedule(t, "* * * * *", "")
	base := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }
	tests := []struct {
		name        string
		first, now  time.Time
		p           policy
		want        []time.Time
		wantLatest  time.Time
		wantSkipped int
	}{
		{name: "not due", first: at(1), now: at(0).Add(30 * time.Second), p: policy{recover: all, missedAfter: time.Minute, maxFires: 100}},
		{name: "on time", first: at(1), now: at(1).Add(100 * time.Millisecond),
			p: policy{recover: none, missedAfter: time.Minute, maxFires: 100}, want: []time.Time{at(1)}, wantLatest: at(1)},
		{name: "late but not missed fires whatever the policy", first: at(1), now: at(2).Add(time.Second),
			p: policy{recover: none, missedAfter: 2 * time.Minute, maxFires: 100}, want: []time.Time{at(1), at(2)}, wantLatest: at(2)},
		{name: "all", first: at(1), now: at(10).Add(time.Second),
			p:    policy{recover: all, missedAfter: time.Minute, maxFires: 100},
			want: []time.Time{at(1), at(2), at(3), at(4), at(5), at(6), at(7), at(8), at(9), at(10)}, wantLatest: at(10)},
		{name: "unspecified is all", first: at(1), now: at(3).Add(time.Second),
			p:    policy{missedAfter: time.Minute, maxFires: 100},
			want: []time.Time{at(1), at(2), at(3)}, wantLatest: at(3)},
		{name: "all keeps the latest maxFires", first: at(1), now: at(1000).Add(time.Second),
			p:    policy{recover: all, missedAfter: time.Minute, maxFires: 3},
			want: []time.Time{at(998), at(999), at(1000)}, wantLatest: at(1000), wantSkipped: 997},
		{name: "last", first: at(1), now: at(10).Add(time.Second),
			p:    policy{recover: last, missedAfter: time.Minute, maxFires: 100},
			want: []time.Time{at(10)}, wantLatest: at(10), wantSkipped: 9},
		{name: "none fires only the ticks within missedAfter", first: at(1), now: at(10).Add(time.Second),
			p:    policy{recover: none, missedAfter: time.Minute, maxFires: 100},
			want: []time.Time{at(10)}, wantLatest: at(10), wantSkipped: 9},
		{name: "lateMaximumDelay skips old ticks", first: at(1), now: at(10).Add(time.Second),
			p:    policy{recover: all, missedAfter: time.Minute, maxFires: 100, lateMax: 150 * time.Second},
			want: []time.Time{at(8), at(9), at(10)}, wantLatest: at(10), wantSkipped: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fire, latest, skipped := dueTicks(minutes, tt.first, tt.now, tt.p)
			var got []time.Time
			for _, f := range fire {
				got = append(got, f.date)
				if want := f.date.Add(-time.Minute); !f.previous.Equal(want) {
					t.Errorf("tick %s: previous %s, want %s", f.date, f.previous, want)
				}
			}
			if len(got) != len(tt.want) || !latest.Equal(tt.wantLatest) || skipped != tt.wantSkipped {
				t.Fatalf("dueTicks() = %v, %s, %d; want %v, %s, %d", got, latest, skipped, tt.want, tt.wantLatest, tt.wantSkipped)
			}
			for i := range got {
				if !got[i].Equal(tt.want[i]) {
					t.Errorf("tick %d = %s, want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestScheduleSteps(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	tests := []struct {
		name, cron, tz string
		at             time.Time
		next, prev     time.Time
	}{
		{name: "seconds", cron: "*/10 * * * * *", at: time.Date(2030, 1, 1, 0, 0, 5, 0, time.UTC),
			next: time.Date(2030, 1, 1, 0, 0, 10, 0, time.UTC), prev: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "daily in a time zone", cron: "0 9 * * *", tz: "Europe/Paris", at: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC),
			next: time.Date(2030, 1, 2, 9, 0, 0, 0, paris), prev: time.Date(2030, 1, 1, 9, 0, 0, 0, paris)},
		{name: "weekdays from a monday", cron: "0 9 * * 1-5", at: time.Date(2030, 1, 7, 8, 0, 0, 0, time.UTC), // a Monday
			next: time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC), prev: time.Date(2030, 1, 4, 9, 0, 0, 0, time.UTC)},
		{name: "yearly", cron: "@yearly", at: time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC),
			next: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), prev: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSchedule(t, tt.cron, tt.tz)
			if got := s.next(tt.at); !got.Equal(tt.next) {
				t.Errorf("next(%s) = %s, want %s", tt.at, got, tt.next)
			}
			if got := s.prev(tt.at); !got.Equal(tt.prev) {
				t.Errorf("prev(%s) = %s, want %s", tt.at, got, tt.prev)
			}
			if got := s.atOrAfter(tt.next); !got.Equal(tt.next) {
				t.Errorf("atOrAfter(%s) = %s, want the tick itself", tt.next, got)
			}
		})
	}
}

func TestExecutionID(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC)
	id := executionID("ns/flow/tick", at, "")
	for _, other := range []string{
		executionID("ns/flow/tick", at.Add(time.Second), ""),
		executionID("ns/flow/other", at, ""),
		executionID("ns/flow/tick", at, "backfill-1"),
	} {
		if other == id {
			t.Errorf("two fires share the execution id %s", id)
		}
	}
	if again := executionID("ns/flow/tick", at, ""); again != id {
		t.Errorf("the same tick gave ids %s and %s", id, again)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
	c := Config{InstanceID: "a b", TimerInterval: 2 * time.Second}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, field := range []string{"instance_id", "max_missed_fires", "missed_after", "backfill_batch", "backfill_interval", "timer_interval"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate() = %q, missing %s", err, field)
		}
	}
}
