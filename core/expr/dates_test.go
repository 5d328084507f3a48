package expr

import (
	"strings"
	"testing"
	"time"
)

func TestDateFilter(t *testing.T) {
	vars := kestraVars()
	vars["d"] = "2024-01-02T03:04:05.123456789Z"
	vars["zoned"] = "2024-07-14T10:00:00+02:00[Europe/Paris]"
	vars["epoch"] = int64(1704164645)
	runRenderCases(t, testEngine(t), vars, []renderCase{
		{`{{ d | date("yyyy-MM-dd'T'HH:mm:ss.SSSXXX") }}`, "2024-01-02T03:04:05.123Z"},
		{`{{ d | date }}`, "2024-01-02T03:04:05.123456Z"},
		{`{{ d | date('iso') }}`, "2024-01-02T03:04:05.123456Z"},
		{`{{ d | date('iso_sec') }}`, "2024-01-02T03:04:05Z"},
		{`{{ d | date('sql') }}`, "2024-01-02 03:04:05.123456"},
		{`{{ d | date('sql_seq') }}`, "2024-01-02 03:04:05"},
		{`{{ d | date('iso_date_time') }}`, "2024-01-02T03:04:05.123456789Z"},
		{`{{ d | date('iso_date') }}`, "2024-01-02Z"},
		{`{{ d | date('iso_local_date') }}`, "2024-01-02"},
		{`{{ d | date('iso_local_date_time') }}`, "2024-01-02T03:04:05.123456789"},
		{`{{ d | date('iso_local_time') }}`, "03:04:05.123456789"},
		{`{{ d | date('iso_instant') }}`, "2024-01-02T03:04:05.123456789Z"},
		{`{{ t | date('iso_instant') }}`, "2024-01-02T03:04:05Z"},
		{`{{ t | date('iso_ordinal_date') }}`, "2024-002Z"},
		{`{{ t | date('iso_week_date') }}`, "2024-W01-3Z"},
		{`{{ t | date('rfc_1123_date_time') }}`, "Tue, 2 Jan 2024 03:04:05 GMT"},
		{`{{ t | date('rfc_1123_date_time', timeZone='Europe/Paris') }}`, "Tue, 2 Jan 2024 04:04:05 +0100"},
		{`{{ t | date('short') }}`, "1/2/24, 3:04 AM"},
		{`{{ t | date('medium') }}`, "Jan 2, 2024, 3:04:05 AM"},
		{`{{ t | date('yyyy-MM-dd HH:mm:ss', timeZone='Europe/Paris') }}`, "2024-01-02 04:04:05"},
		{`{{ t | date('HH:mm XXX', timeZone='America/New_York') }}`, "22:04 -05:00"},
		{`{{ t | date('HH:mm', timeZone='+05:30') }}`, "08:34"},
		{`{{ zoned | date('yyyy-MM-dd HH:mm') }}`, "2024-07-14 08:00"},
		{`{{ zoned | date('HH:mm VV', timeZone='Europe/Paris') }}`, "10:00 Europe/Paris"},
		{`{{ epoch | date('yyyy-MM-dd HH:mm:ss') }}`, "2024-01-02 03:04:05"},
		{`{{ '2024-01-02' | date('EEEE d MMMM yy') }}`, "Tuesday 2 January 24"},
		{`{{ '2024-01-02T15:04:05' | date('h:mm a, EEE MMM, D, Q, QQQ, e') }}`, "3:04 PM, Tue Jan, 2, 1, Q1, 3"},
		{`{{ '2024-01-02T00:30:00Z' | date('k K h H') }}`, "24 0 12 0"},
		{`{{ t | date("'at' HH 'o''clock' ''") }}`, "at 03 o'clock '"},
		{`{{ t | date('yyyy[-MM]') }}`, "2024-01"},
		{`{{ t | date('Z ZZZZ ZZZZZ x xx xxx X O') }}`, "+0000 GMT Z +00 +0000 +00:00 Z GMT"},
		{`{{ t | date('Z ZZZZ ZZZZZ x xxx X O OOOO', timeZone='Asia/Kolkata') }}`, "+0530 GMT+05:30 +05:30 +0530 +05:30 +0530 GMT+5:30 GMT+05:30"},
		{`{{ '02/01/2024 10:11' | date('yyyy-MM-dd HH:mm', existingFormat='dd/MM/yyyy HH:mm') }}`, "2024-01-02 10:11"},
		{`{{ '2024-01-02 10:11:12.500' | date('SSS', existingFormat='yyyy-MM-dd HH:mm:ss.SSS') }}`, "500"},
		{`{{ null | date('yyyy') }}`, ""},
	})
}

func TestDateAddAndTimestamp(t *testing.T) {
	vars := map[string]any{"d": "2024-01-31T10:00:00Z", "t": time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	runRenderCases(t, testEngine(t), vars, []renderCase{
		{`{{ d | dateAdd(1, 'DAYS') }}`, "2024-02-01T10:00:00.000000Z"},
		{`{{ d | dateAdd(-2, 'HOURS', 'HH:mm') }}`, "08:00"},
		{`{{ d | dateAdd(1, 'MONTHS', 'yyyy-MM-dd') }}`, "2024-02-29"},
		{`{{ d | dateAdd(1, 'YEARS', 'yyyy-MM-dd') }}`, "2025-01-31"},
		{`{{ d | dateAdd(2, 'WEEKS', 'yyyy-MM-dd') }}`, "2024-02-14"},
		{`{{ d | dateAdd(90, 'SECONDS', 'HH:mm:ss') }}`, "10:01:30"},
		{`{{ d | dateAdd(1500, 'MILLIS', 'ss.SSS') }}`, "01.500"},
		{`{{ d | dateAdd(amount=1, unit='minutes', format='mm') }}`, "01"},
		{`{{ d | timestamp }}`, "1706695200"},
		{`{{ 1.5 | timestampMilli }}`, "1500"},
		{`{{ t | timestamp }}`, "1704164645"},
		{`{{ d | timestampMilli }}`, "1706695200000"},
		{`{{ d | timestampMicro }}`, "1706695200000000"},
		{`{{ d | timestampNano }}`, "1706695200000000000"},
		{`{{ '2024-01-31T10:00:00' | timestamp(timeZone='Europe/Paris') }}`, "1706691600"},
	})
	err := renderError(t, testEngine(t), `{{ d | dateAdd(1, 'FORTNIGHTS') }}`, vars)
	if !strings.Contains(err.Error(), `unknown unit "FORTNIGHTS"`) {
		t.Errorf("error = %v", err)
	}
	err = renderError(t, testEngine(t), `{{ d | date('yyyy', timeZone='Mars/Olympus') }}`, vars)
	if !strings.Contains(err.Error(), `unknown time zone "Mars/Olympus"`) {
		t.Errorf("error = %v", err)
	}
	err = renderError(t, testEngine(t), `{{ d | date('yyyy {') }}`, vars)
	if !strings.Contains(err.Error(), `reserved character`) {
		t.Errorf("error = %v", err)
	}
	err = renderError(t, testEngine(t), `{{ d | date('yyyy b') }}`, vars)
	if !strings.Contains(err.Error(), `unknown pattern letter 'b'`) {
		t.Errorf("error = %v", err)
	}
}

// The engine's location applies when no timeZone is given.
func TestWithLocation(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	e := testEngine(t, WithLocation(paris))
	runRenderCases(t, e, nil, []renderCase{
		{`{{ now() }}`, "2024-03-05T15:07:09.123456+01:00"},
		{`{{ '2024-01-02T03:04:05Z' | date('HH:mm') }}`, "04:04"},
		{`{{ '2024-01-02T03:04:05' | date('HH:mm XXX') }}`, "03:04 +01:00"},
	})
}
