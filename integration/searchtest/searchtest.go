// Package searchtest gives integration tests a real OpenSearch: the one that `make test`
// starts with integration/opensearch/opensearch.sh (OpenSearch 2.19, one node on
// 127.0.0.1, plain HTTP without security).
//
// Tests call URL to get its address. Under plain `go test` no node runs and those tests
// skip with a reason; under `make test` (KITE_REAL_OPENSEARCH=1) a missing node fails them
// instead, so CI never passes by skipping. The node is shared by every test of the run:
// a test uses indices of its own, named after the test.
package searchtest

import (
	"os"
	"strings"
	"testing"
)

// The environment that integration/opensearch/with-opensearch.sh sets.
const (
	EnvReal = "KITE_REAL_OPENSEARCH" // "1": the real OpenSearch must be there
	EnvURL  = "KITE_OPENSEARCH_URL"  // base URL, e.g. http://127.0.0.1:41234
)

// URL returns the real OpenSearch's base URL (no trailing slash) from KITE_OPENSEARCH_URL.
// When the variable is empty it skips the test, unless KITE_REAL_OPENSEARCH=1 says the
// node was started, in which case it fails it.
func URL(tb testing.TB) string {
	tb.Helper()
	url := strings.TrimRight(strings.TrimSpace(os.Getenv(EnvURL)), "/")
	switch {
	case url != "":
		return url
	case os.Getenv(EnvReal) == "1":
		tb.Fatalf("%s=1 but %s is empty: the real OpenSearch was not started (integration/opensearch/opensearch.sh start)", EnvReal, EnvURL)
	default:
		tb.Skip("real OpenSearch not started: run make test, or integration/opensearch/with-opensearch.sh go test ...")
	}
	return ""
}
