package elasticsearch

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kiteflow/kite/core/repository"
)

// retentionEvery is how often expired daily indices are looked for.
const retentionEvery = time.Hour

// deleteBatch bounds the indices one delete request names (URL length).
const deleteBatch = 50

// retentionLoop deletes expired daily indices now and every hour until ctx
// ends. Failures are logged: the next round tries again.
func (s *Store) retentionLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		deleted, err := s.deleteExpired(ctx, s.now())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Warn("deleting expired indices failed", zap.Error(err))
		case len(deleted) > 0:
			s.log.Info("deleted expired indices", zap.Strings("indices", deleted), zap.Duration("retention", s.cfg.Retention))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deleteExpired deletes the daily indices of logs and events whose whole
// day ended before now - Retention, and returns their names.
func (s *Store) deleteExpired(ctx context.Context, now time.Time) ([]string, error) {
	if s.cfg.Retention <= 0 {
		return nil, nil
	}
	var expired []string
	for _, k := range []repository.Kind{repository.Logs, repository.Events} {
		names, err := s.indices(ctx, s.searchIndex(k))
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			day, ok := indexDay(name, s.index(k)+"-")
			if ok && s.expired(day, now) {
				expired = append(expired, name)
			}
		}
	}
	var deleted []string
	for batch := range slices.Chunk(expired, deleteBatch) {
		q := url.Values{"ignore_unavailable": {"true"}} // another instance may have been first
		status, data, err := s.call(ctx, http.MethodDelete, "/"+strings.Join(batch, ","), q, nil)
		if err != nil {
			return deleted, fmt.Errorf("deleting expired indices: %w", err)
		}
		if status != http.StatusOK {
			return deleted, fmt.Errorf("deleting expired indices %s: %w", strings.Join(batch, ","), apiError(status, data))
		}
		deleted = append(deleted, batch...)
	}
	return deleted, nil
}

// expired tells whether the daily index of time t is past the retention
// at now: its whole day ended before now - Retention.
func (s *Store) expired(t, now time.Time) bool {
	if s.cfg.Retention <= 0 {
		return false
	}
	t = t.UTC()
	dayEnd := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Add(24 * time.Hour)
	return !dayEnd.After(now.Add(-s.cfg.Retention))
}

// indexDay is the day a daily index holds, when name is base followed by a
// date.
func indexDay(name, base string) (time.Time, bool) {
	suffix, ok := strings.CutPrefix(name, base)
	if !ok {
		return time.Time{}, false
	}
	day, err := time.Parse(dayLayout, suffix)
	return day, err == nil
}
