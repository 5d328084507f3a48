package elasticsearch

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

// The flavors of search server.
const (
	FlavorElasticsearch = "elasticsearch"
	FlavorOpenSearch    = "opensearch"
)

// Config is the connection to the cluster and the shape of Kite's indices.
// The zero value of every field but URLs is usable: New fills in the
// defaults documented here.
type Config struct {
	// URLs of the cluster's nodes, e.g. https://es.example:9200. Default
	// http://localhost:9200.
	URLs []string
	// Flavor is "elasticsearch" (8.x, the default) or "opensearch" (2.x,
	// from 2.4: point in time searches).
	Flavor string
	// Username and Password authenticate with HTTP basic auth; APIKey (an
	// Elasticsearch API key, base64) replaces them.
	Username, Password, APIKey string
	// CACertFile is a PEM file of the certificate authorities to trust for
	// https URLs (default: the system's).
	CACertFile string
	// InsecureSkipVerify accepts any server certificate (tests only).
	InsecureSkipVerify bool
	// IndexPrefix starts the name of every index and index template Kite
	// creates. Default "kite-".
	IndexPrefix string
	// Retention deletes the daily indices of logs and events once their
	// whole day is older than this (checked at start and hourly); 0 keeps
	// them.
	Retention time.Duration
	// Shards is the number of primary shards of each index (default 1);
	// Replicas the replicas of each shard, taken as given (0: none).
	Shards, Replicas int
	// BulkWorkers is the number of bulk requests a Write sends at once
	// (default 2); FlushBytes the size a bulk request grows to before it is
	// sent (default 5 MB); FlushInterval sends a partly filled bulk request
	// after this long (default 1s; Write sends its last request as soon as
	// it has queued every document).
	BulkWorkers   int
	FlushBytes    int
	FlushInterval time.Duration
	// RetryTimeout bounds how long Write retries the documents that the
	// cluster could not take (overloaded, down) before it gives up with an
	// error wrapping repository.ErrUnavailable. Default 1m.
	RetryTimeout time.Duration
	// Transport sends the HTTP requests (tests); default a clone of
	// http.DefaultTransport with the TLS settings above.
	Transport http.RoundTripper

	now func() time.Time // the clock (tests); default time.Now
}

const (
	defaultURL           = "http://localhost:9200"
	defaultPrefix        = "kite-"
	defaultBulkWorkers   = 2
	defaultFlushBytes    = 5 << 20
	defaultFlushInterval = time.Second
	defaultRetryTimeout  = time.Minute
	// maxFlushBytes stays under the servers' default http.max_content_length (100 MB).
	maxFlushBytes = 90 << 20
)

// indexPrefixChars are what an index name may hold and that our daily
// index patterns can extend safely: lowercase, no wildcard, no separator.
var indexPrefixChars = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// withDefaults returns c with every unset field given its default.
func (c Config) withDefaults() Config {
	if len(c.URLs) == 0 {
		c.URLs = []string{defaultURL}
	}
	if c.Flavor == "" {
		c.Flavor = FlavorElasticsearch
	}
	if c.IndexPrefix == "" {
		c.IndexPrefix = defaultPrefix
	}
	if c.Shards == 0 {
		c.Shards = 1
	}
	if c.BulkWorkers == 0 {
		c.BulkWorkers = defaultBulkWorkers
	}
	if c.FlushBytes == 0 {
		c.FlushBytes = defaultFlushBytes
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = defaultFlushInterval
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = defaultRetryTimeout
	}
	return c
}

// Validate returns every problem of c (with defaults applied) at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for i, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(fmt.Sprintf("urls[%d]", i), "%q is not an http:// or https:// URL", u)
		}
	}
	if c.Flavor != FlavorElasticsearch && c.Flavor != FlavorOpenSearch {
		bad("flavor", "%q is not one of %s, %s", c.Flavor, FlavorElasticsearch, FlavorOpenSearch)
	}
	if c.APIKey != "" && (c.Username != "" || c.Password != "") {
		bad("api_key", "set either an API key or a username and password, not both")
	}
	if !indexPrefixChars.MatchString(c.IndexPrefix) || len(c.IndexPrefix) > 100 {
		bad("index_prefix", "%q must be at most 100 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", c.IndexPrefix)
	}
	if c.Retention < 0 {
		bad("retention", "must not be negative, got %s", c.Retention)
	}
	if c.Shards < 1 {
		bad("shards", "must be at least 1, got %d", c.Shards)
	}
	if c.Replicas < 0 {
		bad("replicas", "must not be negative, got %d", c.Replicas)
	}
	if c.BulkWorkers < 1 {
		bad("bulk_workers", "must be at least 1, got %d", c.BulkWorkers)
	}
	if c.FlushBytes < 1 || c.FlushBytes > maxFlushBytes {
		bad("flush_bytes", "must be between 1 and %d, got %d", maxFlushBytes, c.FlushBytes)
	}
	if c.FlushInterval < 0 {
		bad("flush_interval", "must not be negative, got %s", c.FlushInterval)
	}
	if c.RetryTimeout < 0 {
		bad("retry_timeout", "must not be negative, got %s", c.RetryTimeout)
	}
	return errors.Join(errs...)
}
