package flow

import (
	"fmt"
	"strings"
	"time"

	"github.com/sosodev/duration"
)

// ParseDuration reads a duration written the ISO-8601 way Kestra uses
// ("PT30S", "PT1H30M", "P1D") or the Go way ("30s", "1h30m"). Years and
// months are refused: they have no fixed length.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty duration; write it like PT30S or 30s")
	}
	if t[0] == 'P' || t[0] == 'p' || strings.HasPrefix(t, "-P") {
		d, err := duration.Parse(strings.ToUpper(t))
		if err != nil {
			return 0, fmt.Errorf("invalid ISO-8601 duration %q: write it like PT30S, PT5M, PT1H30M or P1D", s)
		}
		if d.Years != 0 || d.Months != 0 {
			return 0, fmt.Errorf("invalid duration %q: years and months have no fixed length; use days (P30D)", s)
		}
		return d.ToTimeDuration(), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: write it like PT30S (ISO-8601) or 30s, 5m, 1h30m", s)
	}
	return d, nil
}

// FormatDuration writes d the ISO-8601 way ("PT1M30S"), as Kestra shows durations.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "PT0S"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	b.WriteString("PT")
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if d > 0 {
		secs := d.Seconds()
		if d%time.Second == 0 {
			fmt.Fprintf(&b, "%dS", int64(secs))
		} else {
			b.WriteString(strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.9f", secs), "0"), "."))
			b.WriteByte('S')
		}
	}
	return b.String()
}
