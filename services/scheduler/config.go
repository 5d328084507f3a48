package scheduler

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"
)

// Config configures the scheduler role. Start from Defaults(), decode YAML
// over it, then call Validate.
type Config struct {
	// InstanceID tells the scheduler instances apart: it names the
	// instance's transactional id, so two running instances must not share
	// it. Default: the host name (a pod's name).
	InstanceID string `yaml:"instance_id"`
	// MaxMissedFires bounds the executions one Schedule trigger creates at
	// once when it catches up with ticks missed while the scheduler was down
	// (recoverMissedSchedules ALL): the latest ones fire, the older ones are
	// skipped and counted in a log line. Default 100.
	MaxMissedFires int `yaml:"max_missed_fires"`
	// MissedAfter is how late a tick is before it counts as missed: a
	// scheduler whose oldest due tick is older than this was down (or the
	// trigger's partition was moving), and recoverMissedSchedules decides
	// which due ticks fire. Ticks less late than this always fire. Default 1m.
	MissedAfter time.Duration `yaml:"missed_after"`
	// BackfillBatch is how many executions a backfill creates at a time,
	// every BackfillInterval: a backfill of a long range does not flood the
	// executor. Default 10.
	BackfillBatch int `yaml:"backfill_batch"`
	// BackfillInterval is the pause between two batches of a backfill.
	// Default 1s.
	BackfillInterval time.Duration `yaml:"backfill_interval"`
	// TimerInterval is how often due ticks are looked for, the precision of
	// the schedules. Default 100ms.
	TimerInterval time.Duration `yaml:"timer_interval"`

	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time `yaml:"-"`
}

// Defaults returns a Config with every default set.
func Defaults() Config {
	host, err := os.Hostname()
	if err != nil || !instanceChars.MatchString(host) {
		host = "scheduler"
	}
	return Config{
		InstanceID:       host,
		MaxMissedFires:   100,
		MissedAfter:      time.Minute,
		BackfillBatch:    10,
		BackfillInterval: time.Second,
		TimerInterval:    100 * time.Millisecond,
	}
}

// A transactional id is free-form, but an instance id ends up in logs and
// metrics: keep it to the characters of a host name.
var instanceChars = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// Validate returns every problem in c at once, each naming the YAML field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !instanceChars.MatchString(c.InstanceID) {
		bad("instance_id", "%q must be letters, digits, '.', '_' or '-', and not empty", c.InstanceID)
	}
	if c.MaxMissedFires < 1 {
		bad("max_missed_fires", "must be at least 1, got %d", c.MaxMissedFires)
	}
	if c.MissedAfter <= 0 {
		bad("missed_after", "must be positive, got %s", c.MissedAfter)
	}
	if c.BackfillBatch < 1 {
		bad("backfill_batch", "must be at least 1, got %d", c.BackfillBatch)
	}
	if c.BackfillInterval <= 0 {
		bad("backfill_interval", "must be positive, got %s", c.BackfillInterval)
	}
	if c.TimerInterval <= 0 || c.TimerInterval > time.Second {
		bad("timer_interval", "must be between 1ns and 1s (schedules have seconds), got %s", c.TimerInterval)
	}
	return errors.Join(errs...)
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
