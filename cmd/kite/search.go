package main

// kite search and kite stats: the SearchService of a Kite server.

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
)

// searchKind is one subcommand of kite search.
type searchKind struct {
	use, what string
	call      func(ctx context.Context, c *apiClient, q *kitev1.SearchQuery) (*kitev1.SearchPage, error)
	columns   []string
	row       func(d map[string]any) []string
}

var searchKinds = []searchKind{
	{use: "executions", what: "executions", columns: []string{"ID", "NAMESPACE", "FLOW", "STATE", "START", "DURATION"},
		call: func(ctx context.Context, c *apiClient, q *kitev1.SearchQuery) (*kitev1.SearchPage, error) {
			r, err := c.search.SearchExecutions(ctx, &kitev1.SearchServiceSearchExecutionsRequest{Search: q})
			return r.GetPage(), err
		},
		row: func(d map[string]any) []string {
			return []string{str(d, "id"), str(d, "namespace"), str(d, "flow_id"), str(d, "state"), when(d, "start"), millis(d, "duration")}
		}},
	{use: "task-runs", what: "task runs", columns: []string{"ID", "EXECUTION", "TASK", "STATE", "START", "DURATION", "ATTEMPTS"},
		call: func(ctx context.Context, c *apiClient, q *kitev1.SearchQuery) (*kitev1.SearchPage, error) {
			r, err := c.search.SearchTaskRuns(ctx, &kitev1.SearchServiceSearchTaskRunsRequest{Search: q})
			return r.GetPage(), err
		},
		row: func(d map[string]any) []string {
			return []string{str(d, "id"), str(d, "execution_id"), str(d, "task_id"), str(d, "state"), when(d, "start"), millis(d, "duration"), str(d, "attempts")}
		}},
	{use: "events", what: "execution events", columns: []string{"EXECUTION", "SEQ", "TIME", "TYPE", "STATE", "TASK RUN"},
		call: func(ctx context.Context, c *apiClient, q *kitev1.SearchQuery) (*kitev1.SearchPage, error) {
			r, err := c.search.SearchEvents(ctx, &kitev1.SearchServiceSearchEventsRequest{Search: q})
			return r.GetPage(), err
		},
		row: func(d map[string]any) []string {
			return []string{str(d, "execution_id"), str(d, "seq"), when(d, "time"), str(d, "type"), str(d, "state"), str(d, "task_run_id")}
		}},
	{use: "logs", what: "log lines", columns: []string{"TIME", "LEVEL", "EXECUTION", "TASK", "MESSAGE"},
		call: func(ctx context.Context, c *apiClient, q *kitev1.SearchQuery) (*kitev1.SearchPage, error) {
			r, err := c.search.SearchLogs(ctx, &kitev1.SearchServiceSearchLogsRequest{Search: q})
			return r.GetPage(), err
		},
		row: func(d map[string]any) []string {
			return []string{when(d, "time"), str(d, "level"), str(d, "execution_id"), str(d, "task_id"), str(d, "message")}
		}},
	{use: "flows", what: "flows", columns: []string{"NAMESPACE", "ID", "REVISION", "UPDATED", "DISABLED"},
		call: func(ctx context.Context, c *apiClient, q *kitev1.SearchQuery) (*kitev1.SearchPage, error) {
			r, err := c.search.SearchFlows(ctx, &kitev1.SearchServiceSearchFlowsRequest{Search: q})
			return r.GetPage(), err
		},
		row: func(d map[string]any) []string {
			return []string{str(d, "namespace"), str(d, "id"), str(d, "revision"), when(d, "updated"), str(d, "disabled")}
		}},
}

func newSearchCmd() *cobra.Command {
	cmd := group("search", "Search executions, task runs, events, logs and flows on the Kite server")
	cmd.Long = `Search what Kite recorded, with a Kibana-style query (docs/search.md):
  field:value, field:(a or b), prefix*, "a phrase", field:* (has a value),
  field >= 10, duration > 10s, start > now-1d, and / or / not, parentheses,
  labels.KEY:value, and bare words for the full text (log messages, errors, flow sources).
Quote the query for the shell. Results follow what happened by about a second (the
indexer's projection); kite execution get and watch never lag.`
	cf := addClientFlags(cmd, true)
	for _, k := range searchKinds {
		cmd.AddCommand(newSearchKindCmd(cf, k))
	}
	return cmd
}

func newSearchKindCmd(cf *clientFlags, k searchKind) *cobra.Command {
	var (
		since, until string
		sorts        []string
		limit        int
	)
	cmd := &cobra.Command{
		Use:   k.use + " [QUERY]",
		Short: "Search " + k.what,
		Example: map[string]string{
			"executions": `  kite search executions 'state:FAILED and namespace:prod*' --since 24h
  kite search executions 'labels.team:data and duration > 5m' --sort duration:desc --limit 10
  kite search executions 'flow_id:nightly' -o json | jq -r .id`,
			"logs": `  kite search logs 'level:ERROR and "connection refused"' --since 1h
  kite search logs 'execution_id:01M80SCHM88R6E4WXZJ1WV4' --sort time`,
			"task-runs": `  kite search task-runs 'state:FAILED and attempts > 1' --since 7d`,
			"events":    `  kite search events 'execution_id:01M80SCHM88R6E4WXZJ1WV4' --sort seq`,
			"flows":     `  kite search flows 'io.kestra.plugin.core.http.Request and namespace:prod*'`,
		}[k.use],
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			q := &kitev1.SearchQuery{}
			if len(args) == 1 {
				q.Query = args[0]
			}
			var err error
			if q.Since, err = parseWhen("--since", since, now); err != nil {
				return err
			}
			if q.Until, err = parseWhen("--until", until, now); err != nil {
				return err
			}
			for _, s := range sorts {
				field, dir, _ := strings.Cut(s, ":")
				if dir != "" && dir != "asc" && dir != "desc" {
					return fmt.Errorf("--sort %q: give FIELD, FIELD:asc or FIELD:desc", s)
				}
				q.Sort = append(q.Sort, &kitev1.SortField{Field: field, Descending: dir == "desc"})
			}
			if limit <= 0 {
				return fmt.Errorf("--limit must be positive")
			}
			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			return runSearch(cmd, c, cf, k, q, limit)
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only what happened since: a duration back from now (30m, 24h, 7d, 2w) or a time (2026-01-02, 2026-01-02T15:04:05Z)")
	f.StringVar(&until, "until", "", "only what happened before: a duration back from now or a time")
	f.StringSliceVar(&sorts, "sort", nil, "order by FIELD[:asc|:desc], repeatable (default: newest first)")
	f.IntVar(&limit, "limit", 50, "print at most this many hits (pages are fetched as needed)")
	return cmd
}

func runSearch(cmd *cobra.Command, c *apiClient, cf *clientFlags, k searchKind, q *kitev1.SearchQuery, limit int) error {
	p := &printer{w: cmd.OutOrStdout(), format: cf.output, stream: true}
	var tw *tabwriter.Writer
	if p.table() {
		tw = tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(k.columns, "\t"))
	}
	printed := 0
	var total int64
	for {
		q.Size = int32(min(limit-printed, 1000))
		ctx, cancel := c.unary(cmd.Context())
		page, err := k.call(ctx, c, q)
		cancel()
		if err != nil {
			return searchError(c, err)
		}
		total = page.GetTotal()
		for _, d := range page.GetDocuments() {
			if tw != nil {
				fmt.Fprintln(tw, strings.Join(k.row(d.AsMap()), "\t"))
			} else if err := p.print(d); err != nil {
				return err
			}
			printed++
		}
		if page.GetNextCursor() == "" || printed >= limit {
			break
		}
		q.Cursor = page.GetNextCursor()
	}
	if tw == nil {
		return nil
	}
	if printed > 0 { // no header over nothing
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	switch {
	case total == 0:
		fmt.Fprintf(cmd.ErrOrStderr(), "no %s match\n", k.what)
	case int64(printed) < total:
		fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d %s shown (--limit for more)\n", printed, total, k.what)
	default:
		fmt.Fprintf(cmd.ErrOrStderr(), "%d %s\n", total, k.what)
	}
	return nil
}

// searchError explains a server without search.
func searchError(c *apiClient, err error) error {
	if isCode(err, codes.Unimplemented) {
		return fmt.Errorf("the Kite server at %s has no search: it needs a repository (standalone has one; otherwise set repository.elasticsearch.urls)", c.addr)
	}
	return c.apiError(err)
}

// parseWhen reads --since and --until: empty, a duration back from now
// (with d for days and w for weeks), or an RFC 3339 time or date.
func parseWhen(flag, s string, now time.Time) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if d, err := parseAgo(s); err == nil {
		return timestamppb.New(now.Add(-d)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return timestamppb.New(t), nil
		}
	}
	return nil, fmt.Errorf("%s %q: give a duration back from now (30m, 24h, 7d, 2w) or a time (2026-01-02, 2026-01-02T15:04:05Z)", flag, s)
}

// parseAgo reads a duration with Go's units plus d (days) and w (weeks).
func parseAgo(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("not a duration: %q", s)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("not a duration: %q", s)
	}
	return d, nil
}

func str(d map[string]any, key string) string {
	switch v := d[key].(type) {
	case nil:
		return "-"
	case string:
		if v == "" {
			return "-"
		}
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

func when(d map[string]any, key string) string {
	s, _ := d[key].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func millis(d map[string]any, key string) string {
	v, ok := d[key].(float64)
	if !ok {
		return "-"
	}
	return humanDuration(time.Duration(v) * time.Millisecond)
}

func newStatsCmd() *cobra.Command {
	cmd := group("stats", "Statistics over executions on the Kite server")
	cf := addClientFlags(cmd, true)
	cmd.AddCommand(newStatsExecutionsCmd(cf))
	return cmd
}

func newStatsExecutionsCmd(cf *clientFlags) *cobra.Command {
	var (
		since, until, interval, splitBy string
		top                             int
	)
	cmd := &cobra.Command{
		Use:   "executions [QUERY]",
		Short: "Print executions per interval by state, the top flows and namespaces, and duration percentiles",
		Long: `Print a text histogram of the executions matching QUERY (all by default) per
--interval since --since, split by state (or --split-by another field), then the
most frequent flows and namespaces, and the 50th, 95th and 99th percentiles of
their duration. With --output json or yaml, the server's answer as it is.`,
		Example: `  kite stats executions --since 7d --interval 1d
  kite stats executions 'namespace:prod*' --since 24h --interval 1h
  kite stats executions --since 30d --interval 1w --split-by flow_id`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			req := &kitev1.SearchServiceAggregateRequest{Kind: kitev1.SearchKind_SEARCH_KIND_EXECUTIONS, SplitBy: splitBy,
				Terms: []string{"flow_id", "namespace"}, TermsSize: int32(top), PercentilesField: "duration", Percents: []float64{50, 95, 99}}
			if len(args) == 1 {
				req.Query = args[0]
			}
			var err error
			if req.Since, err = parseWhen("--since", since, now); err != nil {
				return err
			}
			if req.Until, err = parseWhen("--until", until, now); err != nil {
				return err
			}
			iv, err := parseAgo(interval)
			if err != nil || iv < time.Second {
				return fmt.Errorf("--interval %q: give a duration of at least 1s (1h, 1d, 1w)", interval)
			}
			req.IntervalSeconds = int64(iv / time.Second)
			c, err := cf.dial()
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			ctx, cancel := c.unary(cmd.Context())
			defer cancel()
			res, err := c.search.Aggregate(ctx, req)
			if err != nil {
				return searchError(c, err)
			}
			if cf.output != outputTable {
				return (&printer{w: cmd.OutOrStdout(), format: cf.output}).print(res)
			}
			printStats(cmd.OutOrStdout(), res, iv)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "7d", "the histogram's start: a duration back from now (24h, 7d) or a time")
	f.StringVar(&until, "until", "", "the histogram's end (default now)")
	f.StringVar(&interval, "interval", "1d", "the width of a bar: 1m, 1h, 1d, 1w …")
	f.StringVar(&splitBy, "split-by", "state", "the field whose values split each bar")
	f.IntVar(&top, "top", 5, "how many flows and namespaces to list")
	return cmd
}

// printStats prints an aggregation: one bar per bucket, each value of the
// split its own letter, a legend, then the top values and percentiles.
func printStats(w io.Writer, res *kitev1.SearchServiceAggregateResponse, iv time.Duration) {
	const width = 40
	totals := map[string]int64{}
	var most int64
	for _, b := range res.GetBuckets() {
		most = max(most, b.GetCount())
		for k, n := range b.GetSplit() {
			totals[k] += n
		}
	}
	values := make([]string, 0, len(totals))
	for k := range totals {
		values = append(values, k)
	}
	slices.SortFunc(values, func(a, b string) int {
		if totals[a] != totals[b] {
			return int(totals[b] - totals[a])
		}
		return strings.Compare(a, b)
	})
	marks := map[string]string{}
	used := map[string]bool{}
	for _, v := range values {
		m := "#"
		for _, r := range v {
			c := string(r)
			if !used[c] && strings.TrimSpace(c) != "" {
				m = c
				break
			}
		}
		used[m] = true
		marks[v] = m
	}
	layout := "2006-01-02 15:04"
	if iv%(24*time.Hour) == 0 {
		layout = "2006-01-02"
	}
	fmt.Fprintf(w, "%d executions\n", res.GetCount())
	for _, b := range res.GetBuckets() {
		var bar strings.Builder
		for _, v := range values {
			n := b.GetSplit()[v]
			if n == 0 || most == 0 {
				continue
			}
			cells := max(1, int(math.Round(float64(n)*width/float64(most))))
			bar.WriteString(strings.Repeat(marks[v], cells))
		}
		var parts []string
		for _, v := range values {
			if n := b.GetSplit()[v]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", v, n))
			}
		}
		fmt.Fprintf(w, "%s  %-*s %6d  %s\n", b.GetStart().AsTime().Local().Format(layout), width, bar.String(), b.GetCount(), strings.Join(parts, ", "))
	}
	if len(values) > 0 {
		var legend []string
		for _, v := range values {
			legend = append(legend, marks[v]+" "+v)
		}
		fmt.Fprintf(w, "legend: %s\n", strings.Join(legend, "  "))
	}
	for _, t := range res.GetTerms() {
		var parts []string
		for _, v := range t.GetValues() {
			parts = append(parts, fmt.Sprintf("%s (%d)", v.GetValue(), v.GetCount()))
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "top %s: %s\n", t.GetField(), strings.Join(parts, ", "))
		}
	}
	if ps := res.GetPercentiles(); len(ps) > 0 {
		var parts []string
		for _, p := range ps {
			parts = append(parts, fmt.Sprintf("p%g %s", p.GetPercent(), humanDuration(time.Duration(p.GetValue())*time.Millisecond)))
		}
		fmt.Fprintf(w, "duration: %s\n", strings.Join(parts, ", "))
	}
}
