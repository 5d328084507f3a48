package searchtest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiteflow/kite/integration/searchtest"
)

// TestRealOpenSearch checks that the server `make test` starts is OpenSearch 2.19.
func TestRealOpenSearch(t *testing.T) {
	url := searchtest.URL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s/: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/: %s", url, resp.Status)
	}
	var info struct {
		Version struct {
			Distribution string `json:"distribution"`
			Number       string `json:"number"`
		} `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatalf("decoding GET %s/: %v", url, err)
	}
	if info.Version.Distribution != "opensearch" {
		t.Errorf("version.distribution = %q, want %q", info.Version.Distribution, "opensearch")
	}
	if !strings.HasPrefix(info.Version.Number, "2.19") {
		t.Errorf("version.number = %q, want 2.19.x", info.Version.Number)
	}
}

func TestURLSkipsWithoutRealOpenSearch(t *testing.T) {
	t.Setenv(searchtest.EnvReal, "")
	t.Setenv(searchtest.EnvURL, "")
	var skipped bool
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		searchtest.URL(t)
		t.Error("URL returned without the server's address")
	})
	if !skipped {
		t.Error("URL did not skip with KITE_REAL_OPENSEARCH and KITE_OPENSEARCH_URL unset")
	}
}
