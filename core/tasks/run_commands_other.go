//go:build !unix

package tasks

import (
	"context"
	"fmt"
	"runtime"
)

// runCommands needs Unix process groups to end a command and its children.
func runCommands(context.Context, *RunContext) (*Result, error) {
	return nil, fmt.Errorf("the commands task is not supported on %s", runtime.GOOS)
}
