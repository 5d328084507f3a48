// Package elasticsearch is Kite's repository on Elasticsearch 8 or
// OpenSearch 2 (repository.Sink and repository.Repository), through
// github.com/elastic/go-elasticsearch/v8.
//
// Indices (IndexPrefix, default "kite-", starts every name):
//
//	kite-executions, kite-task-runs, kite-flows, kite-triggers   one index per kind
//	kite-logs-YYYY.MM.DD, kite-events-YYYY.MM.DD                 daily, by the document's time (UTC)
//	kite-meta                                                    the generation
//
// Each has a composable index template of the same name with an explicit
// mapping derived from repository.Schema (dynamic: false, so stored-only
// fields such as inputs and outputs stay in _source without being
// indexed). A Kibana data view over kite-executions (time field start) or
// kite-logs-* (time field time) needs nothing more.
//
// Writes use the bulk API with external versions (Doc.Version), so a
// replayed or reordered write never regresses a document. Searches page
// with a point in time and search_after; ties are broken by the document's
// id, which every document also carries, indexed but left out of _source,
// in the field doc_id.
package elasticsearch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"go.uber.org/zap"

	"github.com/kiteflow/kite/core/repository"
)

// responseTimeout bounds the wait for an answer's headers.
const responseTimeout = 2 * time.Minute

// clientRetryWait is the client's first wait before it sends a request
// again (doubling up to 2s); tests shorten it.
var clientRetryWait = 50 * time.Millisecond

var (
	_ repository.Sink       = (*Store)(nil)
	_ repository.Repository = (*Store)(nil)
)

// Store is the repository on one cluster. It is safe for concurrent use.
type Store struct {
	cfg Config
	es  *elasticsearch.Client
	log *zap.Logger
	now func() time.Time

	stop      context.CancelFunc // stops the retention loop
	wg        sync.WaitGroup     // the retention loop
	closeOnce sync.Once
}

// New connects to the cluster, checks that it answers, and creates or
// updates Kite's index templates and indices (idempotent: several
// instances may start at once). With Retention set, it deletes expired
// daily indices now and every hour until Close.
func New(ctx context.Context, cfg Config, logger *zap.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("elasticsearch config: %w", err)
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = zap.NewNop()
	}
	rt, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: cfg.URLs,
		Username:  cfg.Username,
		Password:  cfg.Password,
		APIKey:    cfg.APIKey,
		Transport: rt,
		// The client retries requests that met an overloaded or restarting
		// node a few times itself; Write retries longer (RetryTimeout).
		RetryOnStatus: []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout},
		MaxRetries:    3,
		RetryBackoff:  func(attempt int) time.Duration { return min(clientRetryWait<<attempt, 2*time.Second) },
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client for %s: %w", strings.Join(cfg.URLs, ", "), err)
	}
	s := &Store{cfg: cfg, es: es, log: logger.Named("elasticsearch"), now: time.Now}
	if cfg.now != nil {
		s.now = cfg.now
	}
	if err := s.ping(ctx); err != nil {
		return nil, err
	}
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	if _, err := s.Generation(ctx); err != nil {
		return nil, err
	}
	loopCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if cfg.Retention > 0 {
		s.wg.Add(1)
		go s.retentionLoop(loopCtx)
	}
	return s, nil
}

// Close stops the retention loop. It is idempotent; the Store must not be
// used afterwards.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		s.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.es.Close(ctx) // only marks the client closed
	})
	return nil
}

// Refresh makes every document written so far visible to searches. Write
// does not wait for that (the cluster refreshes every second); tests and
// acceptance suites call Refresh between writing and searching.
func (s *Store) Refresh(ctx context.Context) error {
	names := make([]string, 0, len(repository.Kinds))
	for _, k := range repository.Kinds {
		names = append(names, s.searchIndex(k))
	}
	q := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}}
	status, body, err := s.call(ctx, http.MethodPost, "/"+strings.Join(names, ",")+"/_refresh", q, nil)
	if err != nil {
		return fmt.Errorf("refreshing Kite's indices: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("refreshing Kite's indices: %w", apiError(status, body))
	}
	return nil
}

// ping checks that the cluster answers, with an error naming its URLs.
func (s *Store) ping(ctx context.Context) error {
	where := strings.Join(s.cfg.URLs, ", ")
	status, body, err := s.call(ctx, http.MethodGet, "/", nil, nil)
	if err != nil {
		if strings.Contains(err.Error(), "not Elasticsearch") && s.cfg.Flavor == FlavorElasticsearch {
			return fmt.Errorf("elasticsearch at %s: the server is not Elasticsearch; for OpenSearch set flavor: %s: %w", where, FlavorOpenSearch, err)
		}
		return fmt.Errorf("elasticsearch: cannot reach %s: %w", where, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("elasticsearch at %s: %w", where, apiError(status, body))
	}
	var info struct {
		ClusterName string `json:"cluster_name"`
		Version     struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return fmt.Errorf("elasticsearch at %s: decoding its info: %w", where, err)
	}
	isOpenSearch := info.Version.Distribution == "opensearch"
	if isOpenSearch != (s.cfg.Flavor == FlavorOpenSearch) {
		s.log.Warn("the cluster's distribution does not match the configured flavor",
			zap.String("distribution", info.Version.Distribution), zap.String("flavor", s.cfg.Flavor))
	}
	s.log.Info("connected", zap.Strings("urls", s.cfg.URLs), zap.String("cluster", info.ClusterName),
		zap.String("version", info.Version.Number), zap.String("flavor", s.cfg.Flavor))
	return nil
}

// call sends one request and reads the whole answer. err is set only when
// no answer came (it then wraps repository.ErrUnavailable, or is the
// context's error); every HTTP status is the caller's to judge.
func (s *Store) call(ctx context.Context, method, path string, q url.Values, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return 0, nil, fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(js)
	}
	u := path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	res, err := s.es.Perform(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, fmt.Errorf("%s %s: %w: %w", method, path, repository.ErrUnavailable, err)
	}
	defer func() { _ = res.Body.Close() }()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w: %w", method, path, repository.ErrUnavailable, err)
	}
	return res.StatusCode, data, nil
}

// httpError is an error answer of the cluster.
type httpError struct {
	Status int
	Type   string // e.g. version_conflict_engine_exception
	Reason string
}

func (e *httpError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Reason)
	}
	return fmt.Sprintf("HTTP %d: %s: %s", e.Status, e.Type, e.Reason)
}

// Unwrap makes an overloaded or failing cluster's answers
// repository.ErrUnavailable.
func (e *httpError) Unwrap() error {
	if e.Status == http.StatusTooManyRequests || e.Status >= 500 {
		return repository.ErrUnavailable
	}
	return nil
}

// errorBody is the error answer's JSON.
type errorBody struct {
	Type      string       `json:"type"`
	Reason    string       `json:"reason"`
	RootCause []errorBody  `json:"root_cause"`
	CausedBy  *errorBody   `json:"caused_by"`
	Failed    []shardError `json:"failed_shards"`
}

type shardError struct {
	Reason *errorBody `json:"reason"`
}

// apiError turns an error answer into an *httpError with the most telling
// reason: the root cause's, and what caused it.
func apiError(status int, body []byte) error {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	e := &httpError{Status: status}
	if json.Unmarshal(body, &env) != nil || len(env.Error) == 0 {
		e.Reason = strings.TrimSpace(string(truncate(body, 500)))
		return e
	}
	var eb errorBody
	if json.Unmarshal(env.Error, &eb) != nil {
		e.Reason = strings.Trim(string(truncate(env.Error, 500)), `"`) // some answers have "error": "text"
		return e
	}
	top := eb
	if len(eb.RootCause) > 0 && eb.RootCause[0].Reason != "" {
		top = eb.RootCause[0]
	}
	e.Type, e.Reason = top.Type, top.Reason
	cause := eb.CausedBy
	for _, f := range eb.Failed {
		if f.Reason != nil && f.Reason.CausedBy != nil {
			cause = f.Reason.CausedBy
			break
		}
	}
	if cause != nil && cause.Reason != "" && cause.Reason != e.Reason {
		e.Reason += ": " + cause.Reason
	}
	return e
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// errType is the type of an error answer, "" when err is not one.
func errType(err error) string {
	var he *httpError
	if errors.As(err, &he) {
		return he.Type
	}
	return ""
}

// newTransport returns the HTTP transport: cfg.Transport or a clone of
// http.DefaultTransport with the TLS settings, and, for OpenSearch, the
// product header that the client insists on.
func newTransport(cfg Config) (http.RoundTripper, error) {
	rt := cfg.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = max(16, 2*cfg.BulkWorkers)
		// A node that takes a connection but never answers must not hold
		// a Write or a search forever when the caller set no deadline.
		t.ResponseHeaderTimeout = responseTimeout
		if cfg.CACertFile != "" || cfg.InsecureSkipVerify {
			tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // asked for by the configuration, for tests
			if cfg.CACertFile != "" {
				pem, err := os.ReadFile(cfg.CACertFile)
				if err != nil {
					return nil, fmt.Errorf("elasticsearch ca_cert_file: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("elasticsearch ca_cert_file: %s holds no PEM certificate", cfg.CACertFile)
				}
				tc.RootCAs = pool
			}
			t.TLSClientConfig = tc
		}
		rt = t
	}
	if cfg.Flavor == FlavorOpenSearch {
		rt = openSearchTransport{next: rt}
	}
	return rt, nil
}

// openSearchTransport lets the Elasticsearch client talk to OpenSearch.
// The client checks that the first successful answer carries
// "X-Elastic-Product: Elasticsearch", which OpenSearch does not send; and,
// when ELASTIC_CLIENT_APIVERSIONING is set, it sends a vendor media type
// that OpenSearch refuses.
type openSearchTransport struct{ next http.RoundTripper }

func (t openSearchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if isVendorType(req.Header.Get("Content-Type")) || isVendorType(req.Header.Get("Accept")) {
		req = req.Clone(req.Context())
		for _, h := range []string{"Content-Type", "Accept"} {
			if v := req.Header.Get(h); isVendorType(v) {
				req.Header.Set(h, plainType(v))
			}
		}
	}
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if res.Header == nil {
		res.Header = http.Header{}
	}
	if res.Header.Get("X-Elastic-Product") == "" {
		res.Header.Set("X-Elastic-Product", "Elasticsearch")
	}
	return res, nil
}

func isVendorType(v string) bool { return strings.Contains(v, "vnd.elasticsearch") }

// plainType is the standard media type for a vendor one.
func plainType(v string) string {
	if strings.Contains(v, "ndjson") {
		return "application/x-ndjson"
	}
	return "application/json"
}
