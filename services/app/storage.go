package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/kiteflow/kite/core/storage"
	"github.com/kiteflow/kite/core/storage/local"
	storagegcs "github.com/kiteflow/kite/storage-gcs"
)

// Storage types.
const (
	StorageLocal = "local"
	StorageGCS   = "gcs"
)

// StorageConfig chooses and configures internal storage, where the bytes of
// files live: FILE inputs, task output files, and values too large to
// travel inside Kafka records.
type StorageConfig struct {
	// Type is local (default: a folder of this machine) or gcs.
	Type string `yaml:"type"`
	// Local configures type local.
	Local LocalStorageConfig `yaml:"local"`
	// GCS configures type gcs.
	GCS storagegcs.Config `yaml:"gcs"`
	// MaxInlineBytes is the largest JSON size of a task's outputs (or an
	// execution's inputs) carried inside Kafka records; larger values are
	// stored as files and travel as references (claim-check). Default
	// 256 KiB; it must stay well under the topics' max.message.bytes.
	MaxInlineBytes int `yaml:"max_inline_bytes"`
	// Retention deletes files older than this (checked hourly by the
	// scheduler role). 0 keeps them until their execution's files are
	// purged.
	Retention time.Duration `yaml:"retention"`
}

// LocalStorageConfig is the local filesystem storage.
type LocalStorageConfig struct {
	// Dir holds the files. Default <data_dir>/storage. Every process of a
	// distributed install must see the same folder: use gcs otherwise.
	Dir string `yaml:"dir"`
}

func defaultStorage() StorageConfig {
	return StorageConfig{Type: StorageLocal, MaxInlineBytes: 256 << 10, GCS: storagegcs.Defaults()}
}

func (s StorageConfig) validate() []error {
	var errs []error
	switch s.Type {
	case StorageLocal:
	case StorageGCS:
		if err := s.GCS.Validate(); err != nil {
			for _, e := range unjoin(err) {
				errs = append(errs, fmt.Errorf("gcs.%w", e))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("type: %q is not one of local, gcs", s.Type))
	}
	if s.MaxInlineBytes < 1024 || s.MaxInlineBytes > 900<<10 {
		errs = append(errs, fmt.Errorf("max_inline_bytes: %d is not between 1024 and 921600 (a Kafka record is at most about 1 MB)", s.MaxInlineBytes))
	}
	if s.Retention < 0 {
		errs = append(errs, errors.New("retention: must not be negative"))
	}
	return errs
}

// initStorage opens internal storage.
func (a *App) initStorage(ctx context.Context) (service, error) {
	sc := a.cfg.Storage
	var (
		store storage.Storage
		err   error
	)
	switch sc.Type {
	case StorageGCS:
		store, err = storagegcs.New(ctx, sc.GCS)
		if err != nil {
			return nil, fmt.Errorf("internal storage on GCS (bucket %s): %w", sc.GCS.Bucket, err)
		}
		a.log.Info("internal storage on GCS", zap.String("bucket", sc.GCS.Bucket), zap.String("prefix", sc.GCS.Prefix))
	default:
		dir := sc.Local.Dir
		if dir == "" {
			dir = filepath.Join(a.cfg.DataDir, "storage")
		}
		store, err = local.New(dir)
		if err != nil {
			return nil, fmt.Errorf("internal storage in %s: %w", dir, err)
		}
		a.log.Info("internal storage in a local folder", zap.String("dir", dir))
	}
	a.store = store
	return runFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return store.Close()
	}), nil
}

// storageRetentionEvery is how often the scheduler role deletes expired files.
const storageRetentionEvery = time.Hour

// initStorageRetention deletes files older than storage.retention, hourly
// (planned only when the retention is set).
// Deleting is idempotent, so several schedulers doing it do no harm.
func (a *App) initStorageRetention(ctx context.Context) (service, error) {
	return runFunc(func(ctx context.Context) error {
		t := time.NewTicker(storageRetentionEvery)
		defer t.Stop()
		for {
			n, err := storage.Expire(ctx, a.store, time.Now().Add(-a.cfg.Storage.Retention))
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				a.log.Warn("deleting expired files failed; trying again later", zap.Error(err))
			case n > 0:
				a.log.Info("expired files deleted", zap.Int("files", n), zap.Duration("retention", a.cfg.Storage.Retention))
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}), nil
}
