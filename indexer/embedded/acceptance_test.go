package embedded

import (
	"testing"

	"github.com/kiteflow/kite/core/repository"
	"github.com/kiteflow/kite/core/repository/repotest"
)

func TestAcceptance(t *testing.T) {
	repotest.Run(t, func(t *testing.T) (repository.Sink, repository.Repository) {
		x := openTest(t, Config{})
		return x, x
	})
}
