package expr

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // timeZone arguments must resolve on hosts without a zoneinfo database
	"unicode/utf8"
)

// Dates: Java DateTimeFormatter patterns (as Kestra's date filters take
// them) and ISO-8601 parsing. Month and day names are English; the locale
// argument is accepted and ignored.

// namedFormats are the format names Kestra accepts besides patterns.
var namedFormats = map[string]string{
	"iso":      "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
	"iso_sec":  "yyyy-MM-dd'T'HH:mm:ssXXX",
	"sql":      "yyyy-MM-dd HH:mm:ss.SSSSSS",
	"sql_seq":  "yyyy-MM-dd HH:mm:ss",
	"iso_date": "yyyy-MM-ddXXX",
	// The following are Java's ISO_* formatters; those with an optional
	// fraction are handled in formatNamed.
	"iso_local_date":     "yyyy-MM-dd",
	"iso_ordinal_date":   "yyyy-DDDXXX",
	"iso_week_date":      "YYYY-'W'ww-eXXX",
	"rfc_1123_date_time": "EEE, d MMM yyyy HH:mm:ss 'GMT'",
	"short":              "M/d/yy, h:mm a",
	"medium":             "MMM d, yyyy, h:mm:ss a",
	"long":               "MMMM d, yyyy 'at' h:mm:ss a z",
	"full":               "EEEE, MMMM d, yyyy 'at' h:mm:ss a zzzz",
}

// formatDate formats t with a named format or a Java pattern.
func formatDate(t time.Time, format string) (string, error) {
	switch format {
	case "iso_date_time", "iso_zoned_date_time":
		s := t.Format("2006-01-02T15:04:05.999999999Z07:00")
		if name := t.Location().String(); strings.Contains(name, "/") {
			s += "[" + name + "]"
		}
		return s, nil
	case "iso_offset_date_time":
		return t.Format("2006-01-02T15:04:05.999999999Z07:00"), nil
	case "iso_local_date_time":
		return t.Format("2006-01-02T15:04:05.999999999"), nil
	case "iso_time", "iso_offset_time":
		return t.Format("15:04:05.999999999Z07:00"), nil
	case "iso_local_time":
		return t.Format("15:04:05.999999999"), nil
	case "iso_instant":
		u := t.UTC()
		return u.Format("2006-01-02T15:04:05") + instantFraction(u.Nanosecond()) + "Z", nil
	case "rfc_1123_date_time":
		if _, off := t.Zone(); off != 0 {
			return t.Format("Mon, 2 Jan 2006 15:04:05 -0700"), nil
		}
	}
	if p, ok := namedFormats[format]; ok {
		format = p
	}
	return formatJava(t, format)
}

// instantFraction prints nanoseconds in groups of three digits, as Java's
// ISO_INSTANT does.
func instantFraction(ns int) string {
	switch {
	case ns == 0:
		return ""
	case ns%1_000_000 == 0:
		return fmt.Sprintf(".%03d", ns/1_000_000)
	case ns%1_000 == 0:
		return fmt.Sprintf(".%06d", ns/1_000)
	}
	return fmt.Sprintf(".%09d", ns)
}

// patternToken is a run of one pattern letter, or literal text.
type patternToken struct {
	letter  rune // 0 for literal text
	count   int
	literal string
}

func tokenizePattern(p string) ([]patternToken, error) {
	var toks []patternToken
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRuneInString(p[i:])
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			n := 0
			for i < len(p) && rune(p[i]) == r {
				n++
				i++
			}
			toks = append(toks, patternToken{letter: r, count: n})
		case r == '\'':
			i++
			end := i
			var lit strings.Builder
			for {
				if end >= len(p) {
					return nil, fmt.Errorf("date pattern %q: unclosed quote", p)
				}
				if p[end] == '\'' {
					if end+1 < len(p) && p[end+1] == '\'' {
						lit.WriteByte('\'')
						end += 2
						continue
					}
					break
				}
				lit.WriteByte(p[end])
				end++
			}
			if lit.Len() == 0 && end == i {
				lit.WriteByte('\'') // '' is a quote
			}
			toks = append(toks, patternToken{literal: lit.String()})
			i = end + 1
		case r == '[' || r == ']':
			i += size // optional sections: formatting prints their content
		case r == '{' || r == '}' || r == '#':
			return nil, fmt.Errorf("date pattern %q: reserved character %q", p, r)
		default:
			toks = append(toks, patternToken{literal: string(r)})
			i += size
		}
	}
	return toks, nil
}

// formatJava formats t with a java.time.format.DateTimeFormatter pattern.
func formatJava(t time.Time, pattern string) (string, error) {
	toks, err := tokenizePattern(pattern)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, tk := range toks {
		if tk.letter == 0 {
			b.WriteString(tk.literal)
			continue
		}
		s, err := formatField(t, tk.letter, tk.count)
		if err != nil {
			return "", fmt.Errorf("date pattern %q: %w", pattern, err)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func pad(n, width int) string {
	s := strconv.Itoa(abs(n))
	for len(s) < width {
		s = "0" + s
	}
	if n < 0 {
		return "-" + s
	}
	return s
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func text(count int, short, long string) string {
	switch count {
	case 4:
		return long
	case 5:
		return long[:1]
	}
	return short
}

func formatField(t time.Time, letter rune, n int) (string, error) {
	switch letter {
	case 'G':
		return text(n, "AD", "Anno Domini"), nil
	case 'y', 'u':
		return formatYear(t.Year(), n), nil
	case 'Y':
		y, _ := t.ISOWeek()
		return formatYear(y, n), nil
	case 'M', 'L':
		switch {
		case n <= 2:
			return pad(int(t.Month()), n), nil
		case n == 3:
			return t.Month().String()[:3], nil
		}
		return text(n, "", t.Month().String()), nil
	case 'd':
		return pad(t.Day(), n), nil
	case 'D':
		return pad(t.YearDay(), n), nil
	case 'Q', 'q':
		q := (int(t.Month())-1)/3 + 1
		switch {
		case n <= 2:
			return pad(q, n), nil
		case n == 3:
			return "Q" + strconv.Itoa(q), nil
		}
		return text(n, "", []string{"1st", "2nd", "3rd", "4th"}[q-1]+" quarter"), nil
	case 'w':
		_, w := t.ISOWeek()
		return pad(w, n), nil
	case 'W':
		first := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, t.Location())
		offset := (int(first.Weekday()) + 6) % 7 // Monday-based
		return pad((t.Day()+offset-1)/7+1, n), nil
	case 'E':
		return text(n, t.Weekday().String()[:3], t.Weekday().String()), nil
	case 'e', 'c':
		if n <= 2 {
			return pad(int(t.Weekday())+1, n), nil // Sunday is 1, as in the US locale
		}
		return text(n, t.Weekday().String()[:3], t.Weekday().String()), nil
	case 'a':
		if t.Hour() < 12 {
			return "AM", nil
		}
		return "PM", nil
	case 'H':
		return pad(t.Hour(), n), nil
	case 'k':
		h := t.Hour()
		if h == 0 {
			h = 24
		}
		return pad(h, n), nil
	case 'K':
		return pad(t.Hour()%12, n), nil
	case 'h':
		h := t.Hour() % 12
		if h == 0 {
			h = 12
		}
		return pad(h, n), nil
	case 'm':
		return pad(t.Minute(), n), nil
	case 's':
		return pad(t.Second(), n), nil
	case 'S':
		if n > 9 {
			return "", fmt.Errorf("too many S letters")
		}
		return fmt.Sprintf("%09d", t.Nanosecond())[:n], nil
	case 'n':
		return pad(t.Nanosecond(), n), nil
	case 'A':
		ms := ((t.Hour()*60+t.Minute())*60+t.Second())*1000 + t.Nanosecond()/1e6
		return pad(ms, n), nil
	case 'N':
		ns := int64((t.Hour()*60+t.Minute())*60+t.Second())*1e9 + int64(t.Nanosecond())
		return strconv.FormatInt(ns, 10), nil
	case 'V':
		return t.Location().String(), nil
	case 'z':
		if n == 4 {
			return t.Location().String(), nil
		}
		name, _ := t.Zone()
		return name, nil
	case 'O':
		_, off := t.Zone()
		if off == 0 {
			return "GMT", nil
		}
		if n == 4 {
			return "GMT" + formatOffset(off, true, false), nil
		}
		s := sign(off) + strconv.Itoa(abs(off)/3600)
		if m := abs(off) % 3600 / 60; m != 0 {
			s += ":" + pad(m, 2)
		}
		return "GMT" + s, nil
	case 'X', 'x':
		_, off := t.Zone()
		if off == 0 && letter == 'X' {
			return "Z", nil
		}
		switch n {
		case 1:
			s := sign(off) + pad(abs(off)/3600, 2)
			if m := abs(off) % 3600 / 60; m != 0 {
				s += pad(m, 2)
			}
			return s, nil
		case 2, 4:
			return formatOffset(off, false, n == 4), nil
		case 3, 5:
			return formatOffset(off, true, n == 5), nil
		}
		return "", fmt.Errorf("too many %c letters", letter)
	case 'Z':
		_, off := t.Zone()
		switch {
		case n <= 3:
			return formatOffset(off, false, false), nil
		case n == 4:
			if off == 0 {
				return "GMT", nil
			}
			return "GMT" + formatOffset(off, true, false), nil
		case off == 0:
			return "Z", nil
		}
		return formatOffset(off, true, true), nil
	}
	return "", fmt.Errorf("unknown pattern letter %q", letter)
}

func formatYear(y, n int) string {
	if n == 2 {
		return pad(((y%100)+100)%100, 2)
	}
	return pad(y, n)
}

func sign(off int) string {
	if off < 0 {
		return "-"
	}
	return "+"
}

// formatOffset prints +HHmm or +HH:mm, with seconds when present and wanted.
func formatOffset(off int, colon, seconds bool) string {
	sep := ""
	if colon {
		sep = ":"
	}
	a := abs(off)
	s := sign(off) + pad(a/3600, 2) + sep + pad(a%3600/60, 2)
	if seconds && a%60 != 0 {
		s += sep + pad(a%60, 2)
	}
	return s
}

// isoLayouts are the accepted ISO-8601 forms, with and without an offset.
var (
	isoZoned = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05Z0700", "2006-01-02 15:04:05Z07:00"}
	isoLocal = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"}
)

// parseISO parses an ISO-8601 date-time, as Java's ZonedDateTime.toString
// and OffsetDateTime.toString print them (a "[Zone/Id]" suffix is allowed).
// A value without an offset is read in loc.
func parseISO(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	var zone *time.Location
	if i := strings.LastIndexByte(s, '['); i > 0 && strings.HasSuffix(s, "]") {
		z, err := time.LoadLocation(s[i+1 : len(s)-1])
		if err == nil {
			zone = z
		}
		s = s[:i]
	}
	for _, layout := range isoZoned {
		if t, err := time.Parse(layout, s); err == nil {
			if zone != nil {
				t = t.In(zone)
			}
			return t, nil
		}
	}
	if zone != nil {
		loc = zone
	}
	for _, layout := range isoLocal {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse %q as an ISO-8601 date", s)
}

// parseJava parses s with a Java pattern (or named format) by translating
// it to a Go layout. Fields without a Go equivalent are rejected.
func parseJava(s, pattern string, loc *time.Location) (time.Time, error) {
	if p, ok := namedFormats[pattern]; ok {
		pattern = p
	} else if strings.HasPrefix(pattern, "iso") {
		return parseISO(s, loc)
	}
	toks, err := tokenizePattern(pattern)
	if err != nil {
		return time.Time{}, err
	}
	var layout strings.Builder
	for _, tk := range toks {
		if tk.letter == 0 {
			layout.WriteString(tk.literal)
			continue
		}
		l, ok := goLayout(tk.letter, tk.count)
		if !ok {
			return time.Time{}, fmt.Errorf("date pattern %q: %q cannot be used to parse", pattern, strings.Repeat(string(tk.letter), tk.count))
		}
		layout.WriteString(l)
	}
	t, err := time.ParseInLocation(layout.String(), strings.TrimSpace(s), loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot parse %q with pattern %q", s, pattern)
	}
	return t, nil
}

func goLayout(letter rune, n int) (string, bool) {
	switch letter {
	case 'y', 'u':
		if n == 2 {
			return "06", true
		}
		return "2006", true
	case 'M', 'L':
		return [...]string{"1", "01", "Jan", "January"}[min(n, 4)-1], true
	case 'd':
		return [...]string{"2", "02"}[min(n, 2)-1], true
	case 'D':
		return "002", true
	case 'E':
		if n == 4 {
			return "Monday", true
		}
		return "Mon", true
	case 'a':
		return "PM", true
	case 'H', 'k':
		return "15", true
	case 'h', 'K':
		return [...]string{"3", "03"}[min(n, 2)-1], true
	case 'm':
		return [...]string{"4", "04"}[min(n, 2)-1], true
	case 's':
		return [...]string{"5", "05"}[min(n, 2)-1], true
	case 'S':
		return strings.Repeat("9", min(n, 9)), true
	case 'X':
		return [...]string{"Z07", "Z0700", "Z07:00", "Z0700", "Z07:00"}[min(n, 5)-1], true
	case 'x':
		return [...]string{"-07", "-0700", "-07:00", "-0700", "-07:00"}[min(n, 5)-1], true
	case 'Z':
		if n == 5 {
			return "Z07:00", true
		}
		return "-0700", true
	case 'z':
		return "MST", true
	}
	return "", false
}
