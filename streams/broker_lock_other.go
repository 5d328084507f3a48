//go:build !unix

package streams

import (
	"fmt"
	"os"
)

// lockDataDir only creates dir: advisory locking is implemented for unix.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating broker data dir: %w", err)
	}
	return nil, nil
}
