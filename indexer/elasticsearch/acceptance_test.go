package elasticsearch

import (
	"testing"

	"github.com/kiteflow/kite/core/repository"
	"github.com/kiteflow/kite/core/repository/repotest"
)

// TestAcceptance runs the repository acceptance suite on the real
// OpenSearch (skipped without one), each subtest with indices of its own.
func TestAcceptance(t *testing.T) {
	repotest.Run(t, func(t *testing.T) (repository.Sink, repository.Repository) {
		s := newTestStore(t, Config{})
		return s, s
	})
}
