package query

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sosodev/duration"
)

// value is a value as written: an unquoted word (possibly with wildcards)
// or a quoted phrase.
type value struct {
	at     Pos
	raw    string // as written, quotes included
	text   string // unescaped, quotes removed
	quoted bool
	wild   bool // unquoted, with a * or ? that is not escaped
}

// unescapeWord removes the backslash escapes of an unquoted word (\X is X)
// and reports whether it holds unescaped wildcards (* or ?) and escaped
// ones (\* or \?).
func unescapeWord(raw string) (text string, wild, escapedWild bool) {
	if !strings.ContainsAny(raw, `\*?`) {
		return raw, false, false
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\\' && i+1 < len(raw):
			i++
			if raw[i] == '*' || raw[i] == '?' {
				escapedWild = true
			}
			b.WriteByte(raw[i])
		case c == '*' || c == '?':
			wild = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), wild, escapedWild
}

// unquote removes the quotes of a quoted value and its escapes \" and \\;
// any other backslash is literal ("C:\temp").
func unquote(raw string) string {
	s := raw[1 : len(raw)-1]
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// wordSpecial reports whether c must be escaped in an unquoted word.
func wordSpecial(c rune) bool {
	switch c {
	case '\t', '\n', '\f', '\r', ' ', '(', ')', '<', '>', '=', ':', '"', '\\':
		return true
	}
	return false
}

// isKeyword reports whether s is an operator keyword (and, or, not).
func isKeyword(s string) bool {
	return strings.EqualFold(s, "and") || strings.EqualFold(s, "or") || strings.EqualFold(s, "not")
}

// escapeWord writes s as an unquoted word that parses back to s: special
// characters escaped, * and ? escaped unless they are wildcards (wild), a
// keyword escaped so that it is a word. In a value (colons), a ":" after
// the first character needs no escape.
func escapeWord(s string, wild, colons bool) string {
	var b strings.Builder
	if isKeyword(s) {
		b.WriteByte('\\')
	}
	for i, c := range s {
		if c == ':' && colons && i > 0 {
			b.WriteRune(c)
			continue
		}
		if wordSpecial(c) || (!wild && (c == '*' || c == '?')) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// quote writes s as a quoted phrase that parses back to s.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	b.WriteByte('"')
	return b.String()
}

var decimal = regexp.MustCompile(`^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$`)

// parseNumber parses a decimal number (no hex, no Inf or NaN).
func parseNumber(s string) (float64, bool) {
	if !decimal.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// formatNumber writes a number so that parseNumber reads it back exactly:
// without an exponent unless it is very large or very small.
func formatNumber(f float64) string {
	if a := math.Abs(f); a == 0 || a >= 1e-6 && a < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// Date precisions, for the range a date-only or minute value stands for.
const (
	precDay = iota
	precMinute
	precSecond
)

var dateLayouts = []struct {
	layout string
	prec   int
}{
	{"2006-01-02", precDay},
	{"2006-01-02T15:04", precMinute},
	{"2006-01-02T15:04Z07:00", precMinute},
	// Parsing accepts a fraction after the seconds without it in the layout.
	{"2006-01-02T15:04:05", precSecond},
	{time.RFC3339, precSecond},
}

var errDateSyntax = errors.New("is not a date: use RFC 3339 (2026-01-02T15:04:05Z) or now-1d")

// parseDate parses an absolute date (RFC 3339 or a shorter form, UTC when
// no zone is given) or one relative to now (now-1d/d). It returns the
// instant in UTC, how precise the value was written and whether it is
// relative.
func parseDate(s string, now time.Time) (t time.Time, prec int, relative bool, err error) {
	if len(s) >= 3 && strings.EqualFold(s[:3], "now") {
		t, err := parseRelative(s[3:], now)
		return t, precSecond, true, err
	}
	if len(s) < 10 || len(s) > 40 {
		return time.Time{}, 0, false, errDateSyntax
	}
	u := strings.ToUpper(s)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l.layout, u); err == nil {
			return t.UTC(), l.prec, false, nil
		}
	}
	return time.Time{}, 0, false, errDateSyntax
}

// maxRelative bounds the number of a relative date's offset, so that no
// offset overflows a time.Duration.
const maxRelative = 1_000_000

// parseRelative parses what follows "now": offsets like -1d or +2h, then an
// optional rounding like /d.
func parseRelative(s string, now time.Time) (time.Time, error) {
	t := now.UTC()
	for len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		sign := 1
		if s[0] == '-' {
			sign = -1
		}
		i := 1
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 1 || i == len(s) {
			return time.Time{}, errors.New("is not a date: write now-1d, now+2h, now-15m, now-30s or now-1w")
		}
		n, err := strconv.Atoi(s[1:i])
		if err != nil || n > maxRelative {
			return time.Time{}, fmt.Errorf("is out of range: at most %d units from now", maxRelative)
		}
		n *= sign
		switch s[i] {
		case 's':
			t = t.Add(time.Duration(n) * time.Second)
		case 'm':
			t = t.Add(time.Duration(n) * time.Minute)
		case 'h':
			t = t.Add(time.Duration(n) * time.Hour)
		case 'd':
			t = t.AddDate(0, 0, n)
		case 'w':
			t = t.AddDate(0, 0, 7*n)
		default:
			return time.Time{}, fmt.Errorf("has an unknown unit %q: use s, m, h, d or w", s[i:i+1])
		}
		s = s[i+1:]
	}
	if len(s) == 2 && s[0] == '/' {
		switch s[1] {
		case 's':
			t = t.Truncate(time.Second)
		case 'm':
			t = t.Truncate(time.Minute)
		case 'h':
			t = t.Truncate(time.Hour)
		case 'd':
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		case 'w': // the Monday of the week
			t = time.Date(t.Year(), t.Month(), t.Day()-(int(t.Weekday())+6)%7, 0, 0, 0, 0, time.UTC)
		default:
			return time.Time{}, fmt.Errorf("has an unknown rounding %q: use /s, /m, /h, /d or /w", s)
		}
		s = ""
	}
	if s != "" {
		return time.Time{}, errors.New("is not a date: write now-1d, now+2h, now-15m, now-30s or now-1w, optionally rounded (now-1d/d)")
	}
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, errors.New("is out of range: years 1 to 9999")
	}
	return t, nil
}

var errDurationSyntax = errors.New("is not a duration: use 10s, 1m30s, 250ms, 2h, 1d, PT10S or milliseconds (10000)")

// Duration units in milliseconds, longest name first where one is the
// prefix of another.
var durationUnits = []struct {
	name string
	ms   float64
}{
	{"ms", 1}, {"s", 1000}, {"m", 60_000}, {"h", 3_600_000}, {"d", 86_400_000},
}

// parseDuration parses a duration into milliseconds: a plain number of
// milliseconds, a sequence of numbers with units (1m30s, 250ms, 1.5h, 1d),
// or an ISO-8601 duration (PT10S, P1D).
func parseDuration(s string) (float64, error) {
	if f, ok := parseNumber(s); ok {
		if f < 0 {
			return 0, errors.New("is negative: durations are at least 0")
		}
		return f, nil
	}
	if s == "" {
		return 0, errDurationSyntax
	}
	if s[0] == 'P' || s[0] == 'p' {
		return parseISODuration(strings.ToUpper(s))
	}
	total := 0.0
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		n, err := strconv.ParseFloat(s[:i], 64)
		if i == 0 || err != nil {
			return 0, errDurationSyntax
		}
		s = s[i:]
		unit := -1
		for j, u := range durationUnits {
			if strings.HasPrefix(s, u.name) {
				unit = j
				break
			}
		}
		if unit < 0 {
			return 0, errDurationSyntax
		}
		total += n * durationUnits[unit].ms
		s = s[len(durationUnits[unit].name):]
	}
	if math.IsInf(total, 0) {
		return 0, errDurationSyntax
	}
	return total, nil
}

// parseISODuration parses an ISO-8601 duration without years or months,
// which have no fixed length.
func parseISODuration(s string) (float64, error) {
	d, err := duration.Parse(s)
	if err != nil || s == "P" || s == "PT" || strings.HasSuffix(s, "T") {
		return 0, errDurationSyntax
	}
	if d.Years != 0 || d.Months != 0 {
		return 0, errors.New("has years or months, which have no fixed length: use weeks (P2W) or days (P30D)")
	}
	ms := d.Weeks*7*86_400_000 + d.Days*86_400_000 + d.Hours*3_600_000 + d.Minutes*60_000 + d.Seconds*1000
	if math.IsInf(ms, 0) || math.IsNaN(ms) {
		return 0, errDurationSyntax
	}
	return ms, nil
}

// parseBool parses true or false, in any case.
func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

// wildcardMatch reports whether s matches pattern, where * matches any run
// of characters and ? one character. Iterative, linear in practice.
func wildcardMatch(pattern, s string) bool {
	p, r := []rune(pattern), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(r) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == r[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
