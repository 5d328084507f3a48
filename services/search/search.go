// Package search is the SearchService of the public gRPC API, over a
// repository.Repository (the embedded index in standalone, Elasticsearch or
// OpenSearch when distributed).
package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
	kitev1 "github.com/kiteflow/kite/proto/gen/kite/v1"
	"github.com/kiteflow/kite/services/rpcstatus"
)

// Server implements kitev1.SearchServiceServer.
type Server struct {
	kitev1.UnimplementedSearchServiceServer
	repo repository.Repository
	log  *zap.Logger
	now  func() time.Time
}

// New returns the SearchService over repo.
func New(repo repository.Repository, logger *zap.Logger) *Server {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Server{repo: repo, log: logger.Named("search"), now: time.Now}
}

var kinds = map[kitev1.SearchKind]repository.Kind{
	kitev1.SearchKind_SEARCH_KIND_EXECUTIONS: repository.Executions,
	kitev1.SearchKind_SEARCH_KIND_TASK_RUNS:  repository.TaskRuns,
	kitev1.SearchKind_SEARCH_KIND_EVENTS:     repository.Events,
	kitev1.SearchKind_SEARCH_KIND_LOGS:       repository.Logs,
	kitev1.SearchKind_SEARCH_KIND_FLOWS:      repository.Flows,
	kitev1.SearchKind_SEARCH_KIND_TRIGGERS:   repository.Triggers,
}

// SearchExecutions implements kitev1.SearchServiceServer.
func (s *Server) SearchExecutions(ctx context.Context, req *kitev1.SearchServiceSearchExecutionsRequest) (*kitev1.SearchServiceSearchExecutionsResponse, error) {
	page, err := s.search(ctx, repository.Executions, req.GetSearch())
	return &kitev1.SearchServiceSearchExecutionsResponse{Page: page}, err
}

// SearchTaskRuns implements kitev1.SearchServiceServer.
func (s *Server) SearchTaskRuns(ctx context.Context, req *kitev1.SearchServiceSearchTaskRunsRequest) (*kitev1.SearchServiceSearchTaskRunsResponse, error) {
	page, err := s.search(ctx, repository.TaskRuns, req.GetSearch())
	return &kitev1.SearchServiceSearchTaskRunsResponse{Page: page}, err
}

// SearchEvents implements kitev1.SearchServiceServer.
func (s *Server) SearchEvents(ctx context.Context, req *kitev1.SearchServiceSearchEventsRequest) (*kitev1.SearchServiceSearchEventsResponse, error) {
	page, err := s.search(ctx, repository.Events, req.GetSearch())
	return &kitev1.SearchServiceSearchEventsResponse{Page: page}, err
}

// SearchLogs implements kitev1.SearchServiceServer.
func (s *Server) SearchLogs(ctx context.Context, req *kitev1.SearchServiceSearchLogsRequest) (*kitev1.SearchServiceSearchLogsResponse, error) {
	page, err := s.search(ctx, repository.Logs, req.GetSearch())
	return &kitev1.SearchServiceSearchLogsResponse{Page: page}, err
}

// SearchFlows implements kitev1.SearchServiceServer.
func (s *Server) SearchFlows(ctx context.Context, req *kitev1.SearchServiceSearchFlowsRequest) (*kitev1.SearchServiceSearchFlowsResponse, error) {
	page, err := s.search(ctx, repository.Flows, req.GetSearch())
	return &kitev1.SearchServiceSearchFlowsResponse{Page: page}, err
}

// parse parses a query string into INVALID_ARGUMENT with the column.
func (s *Server) parse(kind repository.Kind, field, q string) (query.Node, error) {
	return s.parseAt(kind, field, q, s.now())
}

func (s *Server) parseAt(kind repository.Kind, field, q string, now time.Time) (query.Node, error) {
	n, err := query.Parse(q, repository.Schema(kind), now)
	if err != nil {
		return nil, rpcstatus.BadRequest("invalid query", rpcstatus.Violation(field, err.Error()))
	}
	return n, nil
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// A cursor of the API is the time relative dates were resolved at for the
// first page, then the repository's cursor: "now-1d" means the same
// instant on every page of one walk, so the pages are of one search.
func wrapCursor(now time.Time, cursor string) string {
	if cursor == "" {
		return ""
	}
	return strconv.FormatInt(now.UnixNano(), 36) + "." + cursor
}

func unwrapCursor(c string) (time.Time, string, bool) {
	at, cursor, ok := strings.Cut(c, ".")
	n, err := strconv.ParseInt(at, 36, 64)
	if !ok || err != nil || cursor == "" {
		return time.Time{}, "", false
	}
	return time.Unix(0, n), cursor, true
}

func (s *Server) search(ctx context.Context, kind repository.Kind, q *kitev1.SearchQuery) (*kitev1.SearchPage, error) {
	now, cursor := s.now(), ""
	if c := q.GetCursor(); c != "" {
		var ok bool
		if now, cursor, ok = unwrapCursor(c); !ok {
			return nil, rpcstatus.BadRequest("invalid cursor", rpcstatus.Violation("search.cursor", "not a cursor of this API: start again without it"))
		}
	}
	n, err := s.parseAt(kind, "search.query", q.GetQuery(), now)
	if err != nil {
		return nil, err
	}
	req := repository.SearchRequest{Kind: kind, Query: n, Since: timeOf(q.GetSince()), Until: timeOf(q.GetUntil()),
		Size: int(q.GetSize()), Cursor: cursor}
	schema := repository.Schema(kind)
	for i, sf := range q.GetSort() {
		f := schema.Field(sf.GetField())
		if f == nil || f.Type == query.Text || f.Type == query.Labels {
			return nil, rpcstatus.BadRequest("invalid sort", rpcstatus.Violation(fmt.Sprintf("search.sort[%d].field", i),
				fmt.Sprintf("%q is not a sortable field of %s; sortable: %v", sf.GetField(), kind, sortable(schema))))
		}
		req.Sort = append(req.Sort, repository.Sort{Field: f.Name, Desc: sf.GetDescending()})
	}
	if q.GetSize() < 0 {
		return nil, rpcstatus.BadRequest("invalid size", rpcstatus.Violation("search.size", "must not be negative"))
	}
	res, err := s.repo.Search(ctx, req)
	if err != nil {
		return nil, s.fail(err, "search.cursor")
	}
	page := &kitev1.SearchPage{Total: res.Total, NextCursor: wrapCursor(now, res.Cursor)}
	for _, h := range res.Hits {
		var m map[string]any
		if err := json.Unmarshal(h, &m); err != nil {
			return nil, status.Errorf(codes.Internal, "decoding a %s document: %v", kind, err)
		}
		st, err := structpb.NewStruct(m)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "converting a %s document: %v", kind, err)
		}
		page.Documents = append(page.Documents, st)
	}
	return page, nil
}

func sortable(s *query.Schema) []string {
	var out []string
	for _, f := range s.Fields {
		if f.Type != query.Text && f.Type != query.Labels {
			out = append(out, f.Name)
		}
	}
	return out
}

// fail maps repository errors to gRPC statuses.
func (s *Server) fail(err error, cursorField string) error {
	switch {
	case errors.Is(err, repository.ErrBadCursor):
		return rpcstatus.BadRequest("invalid cursor", rpcstatus.Violation(cursorField, "invalid or expired cursor: start again without it"))
	case errors.Is(err, repository.ErrInvalidRequest):
		return rpcstatus.BadRequest(err.Error())
	case errors.Is(err, repository.ErrUnavailable):
		return status.Errorf(codes.Unavailable, "search is unavailable: %v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	s.log.Error("search failed", zap.Error(err))
	return status.Errorf(codes.Internal, "search failed: %v", err)
}

// Aggregate implements kitev1.SearchServiceServer.
func (s *Server) Aggregate(ctx context.Context, req *kitev1.SearchServiceAggregateRequest) (*kitev1.SearchServiceAggregateResponse, error) {
	kind, ok := kinds[req.GetKind()]
	if !ok {
		return nil, rpcstatus.BadRequest("invalid kind", rpcstatus.Violation("kind", "is required: EXECUTIONS, TASK_RUNS, EVENTS, LOGS, FLOWS or TRIGGERS"))
	}
	n, err := s.parse(kind, "query", req.GetQuery())
	if err != nil {
		return nil, err
	}
	ar := repository.AggregateRequest{Kind: kind, Query: n, Since: timeOf(req.GetSince()), Until: timeOf(req.GetUntil())}
	if iv := req.GetIntervalSeconds(); iv != 0 {
		if iv < 0 {
			return nil, rpcstatus.BadRequest("invalid interval", rpcstatus.Violation("interval_seconds", "must be positive"))
		}
		if req.GetSince() == nil {
			return nil, rpcstatus.BadRequest("a histogram needs since", rpcstatus.Violation("since", "is required with interval_seconds"))
		}
		if ar.Until.IsZero() {
			ar.Until = s.now()
		}
		ar.Histogram = &repository.DateHistogram{Interval: time.Duration(iv) * time.Second, SplitBy: req.GetSplitBy()}
	} else if req.GetSplitBy() != "" {
		return nil, rpcstatus.BadRequest("split_by needs a histogram", rpcstatus.Violation("split_by", "is only used with interval_seconds"))
	}
	for _, f := range req.GetTerms() {
		ar.Terms = append(ar.Terms, repository.Terms{Field: f, Size: int(req.GetTermsSize())})
	}
	if f := req.GetPercentilesField(); f != "" {
		ps := req.GetPercents()
		if len(ps) == 0 {
			ps = []float64{50, 95, 99}
		}
		for i, p := range ps {
			if p <= 0 || p > 100 {
				return nil, rpcstatus.BadRequest("invalid percent", rpcstatus.Violation(fmt.Sprintf("percents[%d]", i), "must be in (0, 100]"))
			}
		}
		ar.Percentiles = &repository.Percentiles{Field: f, Percents: ps}
	}
	res, err := s.repo.Aggregate(ctx, ar)
	if err != nil {
		return nil, s.fail(err, "")
	}
	out := &kitev1.SearchServiceAggregateResponse{Count: res.Count}
	for _, b := range res.Buckets {
		out.Buckets = append(out.Buckets, &kitev1.HistogramBucket{Start: timestamppb.New(b.Start), Count: b.Count, Split: b.Split})
	}
	for _, t := range ar.Terms {
		ts := &kitev1.Terms{Field: t.Field}
		for _, tc := range res.Terms[t.Field] {
			ts.Values = append(ts.Values, &kitev1.TermCount{Value: tc.Value, Count: tc.Count})
		}
		out.Terms = append(out.Terms, ts)
	}
	if ar.Percentiles != nil {
		ps := slices.Clone(ar.Percentiles.Percents)
		for _, p := range ps {
			if v, ok := res.Percentiles[p]; ok {
				out.Percentiles = append(out.Percentiles, &kitev1.Percentile{Percent: p, Value: v})
			}
		}
	}
	return out, nil
}
