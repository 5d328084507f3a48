package tasks

import (
	"context"
	"fmt"
	"time"

	"github.com/kiteflow/kite/core/flow"
)

// runSleep is Kestra's Sleep task: it waits for duration, or until ctx is
// done (a kill or the task's timeout), which fails the attempt.
func runSleep(ctx context.Context, rc *RunContext) (*Result, error) {
	v, err := rc.Render(ctx, "duration")
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("duration: required property is not set")
	}
	d, err := toDuration("duration", v)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return &Result{}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("sleep of %s interrupted: %w", flow.FormatDuration(d), ctx.Err())
	}
}
