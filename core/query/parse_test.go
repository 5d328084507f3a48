package query_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/core/query"
)

// now is the instant relative dates are resolved against: a Wednesday.
var now = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

var states = []string{"CREATED", "RUNNING", "SUCCESS", "WARNING", "FAILED", "RETRYING", "RETRIED"}

// testSchema has a field of every type.
var testSchema = &query.Schema{
	Kind:     "executions",
	FullText: []string{"error", "message"},
	Fields: []*query.Field{
		{Name: "id", Type: query.Keyword},
		{Name: "namespace", Type: query.Keyword},
		{Name: "flow_id", Type: query.Keyword},
		{Name: "state", Type: query.Enum, Values: states},
		{Name: "start", Type: query.Date},
		{Name: "duration", Type: query.Duration},
		{Name: "labels", Type: query.Labels},
		{Name: "error", Type: query.Text},
		{Name: "message", Type: query.Text},
		{Name: "task_runs", Type: query.Number},
		{Name: "disabled", Type: query.Bool},
	},
}

const testFields = "fields: id, namespace, flow_id, state, start, duration, labels.KEY, error, message, task_runs, disabled"

// noTextSchema has no full-text fields.
var noTextSchema = &query.Schema{Kind: "triggers", Fields: []*query.Field{
	{Name: "namespace", Type: query.Keyword},
	{Name: "flow_id", Type: query.Keyword},
}}

// parseTests are valid queries and the trees they parse into.
var parseTests = []struct{ in, want string }{
	// Empty queries match everything.
	{"", "*"},
	{" \t\n ", "*"},
	{"*", "*"},
	{" * ", "*"},

	// field:value on keyword fields: exact, phrase, wildcard, escapes.
	{"namespace:prod", "namespace=prod"},
	{"namespace:\"prod team\"", `namespace="prod team"`},
	{`namespace:"a \"b\" \\ c:\d"`, `namespace="a \"b\" \\ c:\\d"`},
	{`namespace:"prod*"`, `namespace="prod*"`},
	{"namespace:prod*", "namespace~prod*"},
	{"namespace:*prod*", "namespace~*prod*"},
	{"namespace:pr?d", "namespace~pr?d"},
	{`namespace:prod\*`, `namespace=prod\*`},
	{`namespace:what\?`, `namespace=what\?`},
	{`namespace:a\ b\(c\)\"d\\`, `namespace=a\ b\(c\)\"d\\`},
	{"id:abc:def", "id=abc:def"},
	{"id:urn:kite:1", "id=urn:kite:1"},
	{"namespace : prod", "namespace=prod"},
	{"namespace: prod", "namespace=prod"},
	{"namespace:été", "namespace=été"},
	{`id:\and`, `id=\and`},
	{`id:"not"`, `id="not"`},
	{"id:not-found", "id=not-found"},
	{"flow_id:*", "flow_id:*"},

	// field:(values).
	{`namespace:(a or b or "c d")`, `(or namespace=a namespace=b namespace="c d")`},
	{"namespace:(a b)", "(and namespace=a namespace=b)"},
	{"namespace:(a and not b)", "(and namespace=a (not namespace=b))"},
	{"namespace:(a or (b and c))", "(or namespace=a (and namespace=b namespace=c))"},
	{"namespace:(a* or *)", "(or namespace~a* namespace:*)"},
	{"namespace:(id:x)", "namespace=id:x"},
	{"namespace:((a))", "namespace=a"},

	// Enum fields: case-insensitive, canonical; wildcards expand.
	{"state:FAILED", "state=FAILED"},
	{"state:failed", "state=FAILED"},
	{`state:"Failed"`, `state="FAILED"`},
	{"state:(FAILED or WARNING)", "(or state=FAILED state=WARNING)"},
	{"state:(not SUCCESS)", "(not state=SUCCESS)"},
	{"state:(FAILED and not WARNING)", "(and state=FAILED (not state=WARNING))"},
	{"state:RETR*", "(or state=RETRYING state=RETRIED)"},
	{"state:retr*", "(or state=RETRYING state=RETRIED)"},
	{"state:SUCC*", "state=SUCCESS"},
	{"state:?AILED", "state=FAILED"},
	{"state:RETR* or state:FAILED", "(or state=RETRYING state=RETRIED state=FAILED)"},
	{"not state:RETR*", "(not (or state=RETRYING state=RETRIED))"},
	{"state:*", "state:*"},

	// Labels.
	{"labels.team:data", "labels.team=data"},
	{"labels.team:*", "labels.team:*"},
	{"labels.team:dat*", "labels.team~dat*"},
	{`labels.team:"data eng"`, `labels.team="data eng"`},
	{"labels.team:(data or ml)", "(or labels.team=data labels.team=ml)"},
	{"labels.app.kubernetes-io_Name2:x", "labels.app.kubernetes-io_Name2=x"},

	// Numbers.
	{"task_runs:3", "task_runs=3"},
	{`task_runs:"3"`, "task_runs=3"},
	{"task_runs:-1.50", "task_runs=-1.5"},
	{"task_runs:1e3", "task_runs=1000"},
	{"task_runs > 3", "task_runs>3"},
	{"task_runs>3", "task_runs>3"},
	{"task_runs >= 3", "task_runs>=3"},
	{"task_runs< 3", "task_runs<3"},
	{"task_runs <=.5", "task_runs<=0.5"},
	{"task_runs:*", "task_runs:*"},

	// Dates: absolute.
	{"start > 2026-01-02T03:04:05Z", "start>2026-01-02T03:04:05Z"},
	{"start >= 2026-01-02", "start>=2026-01-02T00:00:00Z"},
	{"start < 2026-01-02T03:04", "start<2026-01-02T03:04:00Z"},
	{"start < 2026-01-02T03:04+02:00", "start<2026-01-02T01:04:00Z"},
	{"start <= 2026-01-02T03:04:05", "start<=2026-01-02T03:04:05Z"},
	{"start <= 2026-01-02T03:04:05.250+01:00", "start<=2026-01-02T02:04:05.25Z"},
	{"start > 2026-01-02t03:04:05z", "start>2026-01-02T03:04:05Z"},
	{`start > "2026-01-02"`, "start>2026-01-02T00:00:00Z"},
	{"start:2026-01-02T03:04:05Z", "start=2026-01-02T03:04:05Z"},
	{"start:2026-01-02T03:04:05.5-01:00", "start=2026-01-02T04:04:05.5Z"},
	{"start:*", "start:*"},

	// Dates: relative to now (2026-03-04T05:06:07Z, a Wednesday).
	{"start > now", "start>2026-03-04T05:06:07Z"},
	{"start > NOW", "start>2026-03-04T05:06:07Z"},
	{"start > now-1d", "start>2026-03-03T05:06:07Z"},
	{"start < now+2h", "start<2026-03-04T07:06:07Z"},
	{"start > now-15m", "start>2026-03-04T04:51:07Z"},
	{"start > now-30s", "start>2026-03-04T05:05:37Z"},
	{"start > now-1w", "start>2026-02-25T05:06:07Z"},
	{"start > now-1d-2h", "start>2026-03-03T03:06:07Z"},
	{"start >= now-1d/d", "start>=2026-03-03T00:00:00Z"},
	{"start >= now/d", "start>=2026-03-04T00:00:00Z"},
	{"start >= now/h", "start>=2026-03-04T05:00:00Z"},
	{"start >= now/m", "start>=2026-03-04T05:06:00Z"},
	{"start >= now/s", "start>=2026-03-04T05:06:07Z"},
	{"start >= now/w", "start>=2026-03-02T00:00:00Z"},

	// Durations, in milliseconds.
	{"duration >= 10s", "duration>=10000ms"},
	{"duration > 1m30s", "duration>90000ms"},
	{"duration > 250ms", "duration>250ms"},
	{"duration < 2h", "duration<7200000ms"},
	{"duration < 1d", "duration<86400000ms"},
	{"duration < 1.5h", "duration<5400000ms"},
	{"duration > PT10S", "duration>10000ms"},
	{"duration > pt1m30s", "duration>90000ms"},
	{"duration > P1DT1H", "duration>90000000ms"},
	{"duration > P1W", "duration>604800000ms"},
	{"duration > 1500", "duration>1500ms"},
	{"duration:10s", "duration=10000ms"},
	{"duration:0", "duration=0ms"},
	{"duration:*", "duration:*"},

	// Bools.
	{"disabled:true", "disabled=true"},
	{"disabled:FALSE", "disabled=false"},
	{`disabled:"True"`, "disabled=true"},

	// Text fields.
	{"error:timeout", "error=timeout"},
	{`error:"connection refused"`, `error="connection refused"`},
	{"error:time*", "error~time*"},
	{"error:*", "error:*"},
	{`error:what\?`, `error=what\?`},

	// Bare words: full text.
	{"timeout", "text=timeout"},
	{`"connection refused"`, `text="connection refused"`},
	{"timeout*", "text~timeout*"},
	{`\*`, `text=\*`},
	{`\and`, `text=\and`},
	{`"and"`, `text="and"`},
	{`a\(b\)`, `text=a\(b\)`},
	{`a\:b`, `text=a:b`},

	// Operators: precedence not > and > or, adjacency is and.
	{"foo bar", "(and text=foo text=bar)"},
	{"foo bar baz", "(and text=foo text=bar text=baz)"},
	{"state:FAILED namespace:prod", "(and state=FAILED namespace=prod)"},
	{`state:FAILED "connection refused"`, `(and state=FAILED text="connection refused")`},
	{"a or b and c", "(or text=a (and text=b text=c))"},
	{"a and b or c", "(or (and text=a text=b) text=c)"},
	{"a or b c", "(or text=a (and text=b text=c))"},
	{"(a or b) and c", "(and (or text=a text=b) text=c)"},
	{"(a or b) c", "(and (or text=a text=b) text=c)"},
	{"not a and b", "(and (not text=a) text=b)"},
	{"not a or b", "(or (not text=a) text=b)"},
	{"a not b", "(and text=a (not text=b))"},
	{"not (a or b)", "(not (or text=a text=b))"},
	{"not(a or b)", "(not (or text=a text=b))"},
	{"not not a", "(not (not text=a))"},
	{"NOT state:SUCCESS AND namespace:prod OR id:x", "(or (and (not state=SUCCESS) namespace=prod) id=x)"},
	{"a Or b", "(or text=a text=b)"},
	{"a and (b and c)", "(and text=a text=b text=c)"},
	{"(a or b) or c", "(or text=a text=b text=c)"},
	{"((a))", "text=a"},
	{"(a)(b)", "(and text=a text=b)"},
	{"state:FAILED and namespace:prod* and not flow_id:test", "(and state=FAILED namespace~prod* (not flow_id=test))"},
	{"labels.team:(data or ml) and duration >= 10s and start > now-1d",
		"(and (or labels.team=data labels.team=ml) duration>=10000ms start>2026-03-03T05:06:07Z)"},
	{`"connection refused" or timeout*`, `(or text="connection refused" text~timeout*)`},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := query.Parse(tt.in, testSchema, now)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := query.Format(n); got != tt.want {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestString checks that String writes a query that parses into the same
// tree.
func TestString(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := query.Parse(tt.in, testSchema, now)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			s := query.String(n)
			m, err := query.Parse(s, testSchema, now)
			if err != nil {
				t.Fatalf("Parse(String(Parse(%q))) = Parse(%q): %v", tt.in, s, err)
			}
			if got, want := query.Format(m), query.Format(n); got != want {
				t.Errorf("String(Parse(%q)) = %q, which parses into\n%s\nnot\n%s", tt.in, s, got, want)
			}
		})
	}
}

func TestStringForm(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"state:failed and namespace:prod* and not flow_id:test", "state:FAILED and namespace:prod* and not flow_id:test"},
		{"state:RETR*", "state:(RETRYING or RETRIED)"},
		{"(a or b) and not (c and d)", "(a or b) and not (c and d)"},
		{"a and b or c", "a and b or c"},
		{"labels.team:(data or ml) and duration >= 1m", "labels.team:(data or ml) and duration >= 60000"},
		{"start > now-1d and id:a:b", "start > 2026-03-03T05:06:07Z and id:a:b"},
		{`\or foo\* "x \"y\""`, `\or and foo\* and "x \"y\""`},
		{"not namespace:(a or b)", "not namespace:(a or b)"},
	} {
		n, err := query.Parse(tt.in, testSchema, now)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if got := query.String(n); got != tt.want {
			t.Errorf("String(Parse(%q)) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// errorTests are invalid queries and their errors; a want ending in "…"
// is a prefix.
var errorTests = []struct {
	schema   *query.Schema
	in, want string
}{
	// Unknown fields.
	{nil, "stat:x", `column 1: unknown field "stat" for executions (did you mean "state"?); ` + testFields},
	{nil, "state:FAILED and stat:x", `column 18: unknown field "stat" for executions (did you mean "state"?); …`},
	{nil, "State:x", `column 1: unknown field "State" for executions (did you mean "state"?); …`},
	{nil, "zzz:x", `column 1: unknown field "zzz" for executions; ` + testFields},
	{nil, "label.team:x", `column 1: unknown field "label.team" for executions (did you mean "labels.team"?); …`},
	{nil, "not:x", `column 1: unknown field "not" for executions; …`},
	{nil, "é stat:x", `column 3: unknown field "stat" for executions (did you mean "state"?); …`},
	{nil, "stat > 3", `column 1: unknown field "stat" for executions (did you mean "state"?); …`},

	// Syntax.
	{nil, "state:", `column 7: expected a value after "state:"`},
	{nil, "state:  ", `column 9: expected a value after "state:"`},
	{nil, "state:FAILED and namespace:", `column 28: expected a value after "namespace:"`},
	{nil, "state:and", `column 7: expected a value after "state:"; quote "and" to search for the word`},
	{nil, "task_runs:>3", `column 11: expected a value after "task_runs:"; a range has no ":" (task_runs > value)`},
	{nil, "task_runs >", `column 12: expected a value after "task_runs >"`},
	{nil, "task_runs > )", `column 13: expected a value after "task_runs >"`},
	{nil, "state:FAILED and", `column 17: expected a term after "and"`},
	{nil, "not", `column 4: expected a term after "not"`},
	{nil, "and a", `column 1: expected a term before "and"`},
	{nil, "a or or b", `column 6: expected a term before "or"`},
	{nil, "(state:FAILED", `column 1: unbalanced parenthesis`},
	{nil, "a and ((b)", `column 7: unbalanced parenthesis`},
	{nil, "state:FAILED)", `column 13: unbalanced parenthesis`},
	{nil, ")", `column 1: unbalanced parenthesis`},
	{nil, "(", `column 2: expected a term after "("`},
	{nil, "()", `column 2: expected a term before ")"`},
	{nil, "state:()", `column 8: expected a value before ")"`},
	{nil, "state:(FAILED or", `column 17: expected a value after "or"`},
	{nil, "state:(FAILED", `column 7: unbalanced parenthesis`},
	{nil, "state:(FAILED > 3)", `column 15: unexpected ">": a field name comes before it (field > value)`},
	{nil, `"abc`, `column 1: unterminated quoted string`},
	{nil, `state:"abc`, `column 7: unterminated quoted string`},
	{nil, `a "b" "c`, `column 7: unterminated quoted string`},
	{nil, `a \`, `column 3: a backslash at the end escapes nothing (write \\ for a backslash)`},
	{nil, "state=FAILED", `column 6: unexpected "=": write state:value`},
	{nil, "state = FAILED", `column 7: unexpected "=": write state:value`},
	{nil, "> 3", `column 1: expected a field name before ">"`},
	{nil, ":x", `column 1: expected a field name before ":"`},
	{nil, `"state":x`, `column 8: unexpected ":": a field name comes before it (field:value)`},
	{nil, "a = b", `column 3: unexpected "=": write a:value`},
	{nil, "(a) = b", `column 5: unexpected "=": write field:value`},
	{nil, `namespace:a\*b*`, `column 11: "a\\*b*" mixes wildcards (* or ?) with escaped ones (\* or \?), which is not supported`},
	{nil, `namespace:""`, `column 11: empty quoted value: to find documents without namespace, write not namespace:*`},
	{nil, `""`, `column 1: empty quoted phrase`},
	{nil, "a \xff b", `column 3: the query is not valid UTF-8`},
	{nil, "é\xff", `column 2: the query is not valid UTF-8`},

	// Enums.
	{nil, "state:bogus", `column 7: unknown value "bogus" for state; values: CREATED, RUNNING, SUCCESS, WARNING, FAILED, RETRYING, RETRIED`},
	{nil, "state:faild", `column 7: unknown value "faild" for state (did you mean "FAILED"?); values: …`},
	{nil, "state:XYZ*", `column 7: no value of state matches "XYZ*"; values: CREATED, RUNNING, SUCCESS, WARNING, FAILED, RETRYING, RETRIED`},
	{nil, "state:(FAILED or bogus)", `column 18: unknown value "bogus" for state; …`},
	{nil, `state:"FAIL*"`, `column 7: unknown value "FAIL*" for state (did you mean "FAILED"?); …`},

	// Numbers.
	{nil, "task_runs:abc", `column 11: "abc" is not a number`},
	{nil, "task_runs:inf", `column 11: "inf" is not a number`},
	{nil, "task_runs:0x10", `column 11: "0x10" is not a number`},
	{nil, "task_runs > 1_000", `column 13: "1_000" is not a number`},
	{nil, "task_runs:3*", `column 11: field task_runs is a number: wildcards apply to keyword, enum, label and text fields`},

	// Dates.
	{nil, "start:yesterday", `column 7: "yesterday" is not a date: use RFC 3339 (2026-01-02T15:04:05Z) or now-1d`},
	{nil, "state:FAILED start > yesterday", `column 22: "yesterday" is not a date: use RFC 3339 (2026-01-02T15:04:05Z) or now-1d`},
	{nil, "start > 2026-13-01", `column 9: "2026-13-01" is not a date: use RFC 3339 (2026-01-02T15:04:05Z) or now-1d`},
	{nil, "start > 2026-01-02T03", `column 9: "2026-01-02T03" is not a date: …`},
	{nil, "start:2026-01-02", `column 7: use a range: start >= 2026-01-02 and start < 2026-01-03`},
	{nil, "start:2026-01-02T03:04", `column 7: use a range: start >= 2026-01-02T03:04 and start < 2026-01-02T03:05Z`},
	{nil, "start:now-1d", `column 7: use a range: start >= now-1d`},
	{nil, "start:2026*", `column 7: field start is a date: wildcards apply to keyword, enum, label and text fields`},
	{nil, "start > now-1y", `column 9: "now-1y" has an unknown unit "y": use s, m, h, d or w`},
	{nil, "start > now-1D", `column 9: "now-1D" has an unknown unit "D": use s, m, h, d or w`},
	{nil, "start > now-1d/y", `column 9: "now-1d/y" has an unknown rounding "/y": use /s, /m, /h, /d or /w`},
	{nil, "start > now-", `column 9: "now-" is not a date: write now-1d, now+2h, now-15m, now-30s or now-1w`},
	{nil, "start > now-d", `column 9: "now-d" is not a date: …`},
	{nil, "start > nowish", `column 9: "nowish" is not a date: …`},
	{nil, "start > now-999999d-999999d-999999d-999999d", `column 9: "now-999999d-999999d-999999d-999999d" is out of range: years 1 to 9999`},
	{nil, "start > now-9999999d", `column 9: "now-9999999d" is out of range: at most 1000000 units from now`},

	// Durations.
	{nil, "duration > 10x", `column 12: "10x" is not a duration: use 10s, 1m30s, 250ms, 2h, 1d, PT10S or milliseconds (10000)`},
	{nil, "duration > s", `column 12: "s" is not a duration: …`},
	{nil, "duration > P1M", `column 12: "P1M" has years or months, which have no fixed length: use weeks (P2W) or days (P30D)`},
	{nil, "duration > PT", `column 12: "PT" is not a duration: …`},
	{nil, "duration > P1S", `column 12: "P1S" is not a duration: …`},
	{nil, "duration > -5", `column 12: "-5" is negative: durations are at least 0`},
	{nil, "duration:1h*", `column 10: field duration is a duration: wildcards apply to keyword, enum, label and text fields`},

	// Bools.
	{nil, "disabled:yes", `column 10: "yes" is not true or false`},
	{nil, "disabled:t*", `column 10: field disabled is a bool: wildcards apply to keyword, enum, label and text fields`},

	// Labels.
	{nil, "labels:x", `column 1: use labels.KEY:value: labels holds key/value pairs`},
	{nil, "labels:*", `column 1: use labels.KEY:value: labels holds key/value pairs`},
	{nil, "labels.:x", `column 1: expected a label key after "labels."`},
	{nil, "labels.a/b:x", `column 1: label key "a/b" may hold only letters, digits, _, - and .`},

	// Ranges on fields without an order.
	{nil, "namespace > 3", `column 1: field namespace is a keyword: ranges apply to number, date and duration fields`},
	{nil, "a and state >= 3", `column 7: field state is an enum: ranges apply to number, date and duration fields`},
	{nil, "error < x", `column 1: field error is full text: ranges apply to number, date and duration fields`},
	{nil, "disabled < x", `column 1: field disabled is a bool: ranges apply to number, date and duration fields`},
	{nil, "labels.team > 3", `column 1: labels are keywords: ranges apply to number, date and duration fields`},

	// Wildcards on text.
	{nil, "error:t?me", `column 7: field error is full text: a wildcard is only allowed as a single trailing * (a word prefix, like time*)`},
	{nil, "error:*ime", `column 7: field error is full text: …`},
	{nil, "error:ti*me*", `column 7: field error is full text: …`},
	{nil, "*ime", `column 1: a bare word may only end with * (a word prefix, like time*); escape a literal * or ? as \* or \?`},
	{nil, "why?", `column 1: a bare word may only end with * …`},
	{nil, "* and a", `column 1: * alone matches everything: leave it out (an empty query matches everything), or use field:* for a field that is set`},
	{nil, "not *", `column 5: * alone matches everything: …`},

	// Bare words without full-text fields.
	{noTextSchema, "namespace:a and oops", `column 17: bare words are not supported when searching triggers: use field:value; fields: namespace, flow_id`},
	{noTextSchema, `"a phrase"`, `column 1: bare words are not supported when searching triggers: …`},

	// Limits.
	{nil, strings.Repeat("a ", 2049), `column 4097: the query is too long: 4098 bytes, at most 4096`},
	{nil, strings.Repeat("é", 2049), `column 2049: the query is too long: 4098 bytes, at most 4096`},
	{nil, strings.Repeat("(", 65) + "a" + strings.Repeat(")", 65), `column 65: the query nests too deeply: at most 64 levels of parentheses and not`},
	{nil, strings.Repeat("not ", 65) + "a", `column 257: the query nests too deeply: …`},
	{nil, "state:" + strings.Repeat("(", 65) + "FAILED" + strings.Repeat(")", 65), `column 71: the query nests too deeply: …`},
	{nil, strings.Repeat("(", 10000), `column 4097: the query is too long: …`},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range errorTests {
		s := tt.schema
		if s == nil {
			s = testSchema
		}
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			n, err := query.Parse(tt.in, s, now)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want error %q", tt.in, query.Format(n), tt.want)
			}
			var qe *query.Error
			if !errors.As(err, &qe) {
				t.Fatalf("Parse(%q) error %T is not a *query.Error: %v", tt.in, err, err)
			}
			if n != nil {
				t.Errorf("Parse(%q) returned a node with its error", tt.in)
			}
			got := err.Error()
			if prefix, ok := strings.CutSuffix(tt.want, "…"); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.in, got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseNilSchema(t *testing.T) {
	if _, err := query.Parse("a", nil, now); err == nil || err.Error() != "column 1: nothing to search: no schema" {
		t.Errorf("Parse with a nil schema: %v", err)
	}
}

// TestParseValues checks the typed values of leaves and that their fields
// are the schema's.
func TestParseValues(t *testing.T) {
	field := testSchema.Field
	n, err := query.Parse(`state:failed task_runs:2.5 disabled:true start:2026-01-02T03:04:05Z duration:1m labels.team:"a b" timeout*`, testSchema, now)
	if err != nil {
		t.Fatal(err)
	}
	terms := n.(*query.And).Terms
	if m := terms[0].(*query.Match); m.Field != field("state") || m.Kind != query.Exact || m.Text != "FAILED" {
		t.Errorf("state: %+v", m)
	}
	if m := terms[1].(*query.Match); m.Field != field("task_runs") || m.Number != 2.5 || m.Text != "2.5" {
		t.Errorf("task_runs: %+v", m)
	}
	if m := terms[2].(*query.Match); m.Field != field("disabled") || !m.Bool {
		t.Errorf("disabled: %+v", m)
	}
	if m := terms[3].(*query.Match); m.Field != field("start") || !m.Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || m.Time.Location() != time.UTC {
		t.Errorf("start: %+v", m)
	}
	if m := terms[4].(*query.Match); m.Field != field("duration") || m.Number != 60000 {
		t.Errorf("duration: %+v", m)
	}
	if m := terms[5].(*query.Match); m.Field != field("labels") || m.Label != "team" || m.Kind != query.Phrase || m.Text != "a b" {
		t.Errorf("labels.team: %+v", m)
	}
	ft := terms[6].(*query.FullText)
	if ft.Kind != query.Wildcard || ft.Text != "timeout*" || len(ft.Fields) != 2 || ft.Fields[0] != field("error") || ft.Fields[1] != field("message") {
		t.Errorf("full text: %+v", ft)
	}

	n, err = query.Parse("start >= now-1h and labels.team:*", testSchema, now.In(time.FixedZone("X", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	terms = n.(*query.And).Terms
	if r := terms[0].(*query.Range); r.Op != query.GTE || !r.Time.Equal(now.Add(-time.Hour)) || r.Time.Location() != time.UTC {
		t.Errorf("range: %+v", r)
	}
	if e := terms[1].(*query.Exists); e.Field != field("labels") || e.Label != "team" {
		t.Errorf("exists: %+v", e)
	}
}

// TestPositions checks where nodes start: offsets in bytes, columns in
// characters.
func TestPositions(t *testing.T) {
	n, err := query.Parse(`"é" and  not state:(FAILED or *ING) and (task_runs > 3)`, testSchema, now)
	if err != nil {
		t.Fatal(err)
	}
	and := n.(*query.And)
	not := and.Terms[1].(*query.Not)
	or := not.X.(*query.Or)
	for _, c := range []struct {
		name string
		n    query.Node
		want query.Pos
	}{
		{"and", and, query.Pos{Offset: 0, Column: 1}},
		{"phrase", and.Terms[0], query.Pos{Offset: 0, Column: 1}},
		{"not", not, query.Pos{Offset: 10, Column: 10}},
		{"FAILED", or.Terms[0], query.Pos{Offset: 21, Column: 21}},
		{"*ING", or.Terms[1], query.Pos{Offset: 31, Column: 31}},
		{"range", and.Terms[2], query.Pos{Offset: 42, Column: 42}},
	} {
		if got := c.n.Position(); got != c.want {
			t.Errorf("%s at %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestFormatNil(t *testing.T) {
	if got := query.Format(nil); got != "*" {
		t.Errorf("Format(nil) = %q", got)
	}
	if got := query.String(nil); got != "" {
		t.Errorf("String(nil) = %q", got)
	}
}
