package expr

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Date filters, as Kestra's: format, timeZone, existingFormat and locale are
// the standard arguments. Dates come as time.Time, ISO-8601 strings (or
// strings in existingFormat) or epoch seconds.
var dateParams = []string{"format", "timeZone", "existingFormat", "locale"}

func dateFilters() map[string]*filterEntry {
	return map[string]*filterEntry{
		"date":           {fn: dateFilter, params: dateParams},
		"dateAdd":        {fn: dateAddFilter, params: append([]string{"amount", "unit"}, dateParams...)},
		"timestamp":      {fn: timestampFilter(time.Second), params: []string{"timeZone", "existingFormat"}},
		"timestampMilli": {fn: timestampFilter(time.Millisecond), params: []string{"timeZone", "existingFormat"}},
		"timestampMicro": {fn: timestampFilter(time.Microsecond), params: []string{"timeZone", "existingFormat"}},
		"timestampNano":  {fn: timestampFilter(time.Nanosecond), params: []string{"timeZone", "existingFormat"}},
	}
}

var fixedOffset = regexp.MustCompile(`^([+-])(\d{1,2})(?::?(\d{2}))?$`)

// loadZone resolves a Java ZoneId: a region (Europe/Paris), UTC/Z/GMT or a
// fixed offset (+02:00).
func loadZone(name string, def *time.Location) (*time.Location, error) {
	switch name {
	case "":
		return def, nil
	case "Z", "UTC", "GMT", "UT":
		return time.UTC, nil
	}
	if m := fixedOffset.FindStringSubmatch(strings.TrimPrefix(strings.TrimPrefix(name, "UTC"), "GMT")); m != nil {
		// The pattern admits digits only, so Atoi cannot fail.
		h, _ := strconv.Atoi(m[2])
		mins := 0
		if m[3] != "" {
			mins, _ = strconv.Atoi(m[3])
		}
		off := h*3600 + mins*60
		if m[1] == "-" {
			off = -off
		}
		return time.FixedZone(name, off), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return loc, nil
}

// dateArgs reads the standard date arguments starting at index i.
type dateArgs struct {
	format         string
	zone           *time.Location
	existingFormat string
}

func readDateArgs(ctx context.Context, args []any, i int) (dateArgs, error) {
	var d dateArgs
	var err error
	if d.format, err = strArg(args, i, "format", "iso"); err != nil {
		return d, err
	}
	zoneName, err := strArg(args, i+1, "timeZone", "")
	if err != nil {
		return d, err
	}
	if d.zone, err = loadZone(zoneName, engineFrom(ctx).loc); err != nil {
		return d, err
	}
	if d.existingFormat, err = strArg(args, i+2, "existingFormat", ""); err != nil {
		return d, err
	}
	return d, nil
}

// toTime converts a filter input to a date.
func toTime(v any, loc *time.Location, existingFormat string) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		if existingFormat != "" {
			return parseJava(x, existingFormat, loc)
		}
		return parseISO(x, loc)
	case float64:
		sec, frac := math.Modf(x)
		if math.IsNaN(x) || math.Abs(sec) > 1e15 {
			return time.Time{}, fmt.Errorf("%v is not a valid epoch second", x)
		}
		return time.Unix(int64(sec), int64(frac*1e9)).In(loc), nil
	}
	if i, ok := toInt(v); ok {
		return time.Unix(i, 0).In(loc), nil
	}
	return time.Time{}, fmt.Errorf("expected a date, got %s", typeName(v))
}

func dateFilter(ctx context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	d, err := readDateArgs(ctx, args, 0)
	if err != nil {
		return nil, err
	}
	t, err := toTime(in, d.zone, d.existingFormat)
	if err != nil {
		return nil, err
	}
	return formatDate(t.In(d.zone), d.format)
}

func dateAddFilter(ctx context.Context, in any, args []any) (any, error) {
	if in == nil {
		return nil, nil
	}
	amount, err := intArgAt(args, 0, "amount", 0)
	if err != nil {
		return nil, err
	}
	if arg(args, 0) == nil {
		return nil, fmt.Errorf("argument amount is required")
	}
	unit, err := strArg(args, 1, "unit", "")
	if err != nil {
		return nil, err
	}
	d, err := readDateArgs(ctx, args, 2)
	if err != nil {
		return nil, err
	}
	t, err := toTime(in, d.zone, d.existingFormat)
	if err != nil {
		return nil, err
	}
	t, err = addUnits(t.In(d.zone), amount, unit)
	if err != nil {
		return nil, err
	}
	return formatDate(t, d.format)
}

// addUnits adds amount of a java.time.temporal.ChronoUnit. Months and years
// keep the day of month, clamped to the month's last day, as java.time does.
func addUnits(t time.Time, amount int64, unit string) (time.Time, error) {
	if amount > 1e12 || amount < -1e12 {
		return time.Time{}, fmt.Errorf("amount %d is out of range", amount)
	}
	n := int(amount)
	switch strings.ToUpper(unit) {
	case "NANOS":
		return t.Add(time.Duration(amount)), nil
	case "MICROS":
		return t.Add(time.Duration(amount) * time.Microsecond), nil
	case "MILLIS":
		return t.Add(time.Duration(amount) * time.Millisecond), nil
	case "SECONDS":
		return t.Add(time.Duration(amount) * time.Second), nil
	case "MINUTES":
		return t.Add(time.Duration(amount) * time.Minute), nil
	case "HOURS":
		return t.Add(time.Duration(amount) * time.Hour), nil
	case "HALF_DAYS":
		return t.Add(time.Duration(amount) * 12 * time.Hour), nil
	case "DAYS":
		return t.AddDate(0, 0, n), nil
	case "WEEKS":
		return t.AddDate(0, 0, 7*n), nil
	case "MONTHS":
		return addMonths(t, n), nil
	case "YEARS":
		return addMonths(t, 12*n), nil
	case "DECADES":
		return addMonths(t, 120*n), nil
	case "CENTURIES":
		return addMonths(t, 1200*n), nil
	case "MILLENNIA":
		return addMonths(t, 12000*n), nil
	}
	return time.Time{}, fmt.Errorf("unknown unit %q (units: NANOS, MICROS, MILLIS, SECONDS, MINUTES, HOURS, HALF_DAYS, DAYS, WEEKS, MONTHS, YEARS, DECADES, CENTURIES, MILLENNIA)", unit)
}

func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

func timestampFilter(unit time.Duration) Filter {
	return func(ctx context.Context, in any, args []any) (any, error) {
		if in == nil {
			return nil, nil
		}
		zoneName, err := strArg(args, 0, "timeZone", "")
		if err != nil {
			return nil, err
		}
		zone, err := loadZone(zoneName, engineFrom(ctx).loc)
		if err != nil {
			return nil, err
		}
		existing, err := strArg(args, 1, "existingFormat", "")
		if err != nil {
			return nil, err
		}
		t, err := toTime(in, zone, existing)
		if err != nil {
			return nil, err
		}
		switch unit {
		case time.Second:
			return t.Unix(), nil
		case time.Millisecond:
			return t.UnixMilli(), nil
		case time.Microsecond:
			return t.UnixMicro(), nil
		}
		return t.UnixNano(), nil
	}
}

// nowFunc is Kestra's now(): the current time formatted (ISO-8601 with
// microseconds and offset by default).
func nowFunc(ctx context.Context, args []any) (any, error) {
	d, err := readDateArgs(ctx, args, 0)
	if err != nil {
		return nil, err
	}
	return formatDate(engineFrom(ctx).now().In(d.zone), d.format)
}
