// Package embedded is the repository of standalone Kite: the documents of
// every kind in an SQLite database in the data dir (modernc.org/sqlite,
// pure Go), searched with the same query language and semantics as
// Elasticsearch (indexer/elasticsearch): queries compile to SQL over
// indexed columns, full text goes through FTS5, hits are paged with
// keyset cursors, and aggregations count the rows a query selects in Go.
//
// One connection writes (one transaction per Write, in WAL mode); a pool of
// read-only connections searches concurrently with it, each search reading
// one snapshot. The database is a projection of Kafka: a database created
// anew (a new data dir, a deleted file, a schema of another version of
// Kite) has a new generation and is rebuilt by the indexer.
package embedded

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/kiteflow/kite/core/repository"
)

var (
	_ repository.Sink       = (*Index)(nil)
	_ repository.Repository = (*Index)(nil)
)

// Config configures the index.
type Config struct {
	// Dir holds the database, Dir/index.db (Dir is created if needed).
	Dir string
	// Retention deletes logs and events whose time is older than this,
	// every minute; 0 keeps them forever.
	Retention time.Duration
	// Now is the clock (time.Now when nil): the default end of a
	// histogram and the reference of the retention.
	Now func() time.Time
}

// FileName is the database's file in Config.Dir.
const FileName = "index.db"

const (
	checkpointInterval = 500 * time.Millisecond
	walBackstopPages   = 16384 // 64 MiB of 4 KiB pages
	purgeInterval      = time.Minute
	purgeChunk         = 5000 // rows deleted per transaction, so that writes wait little
	busyTimeout        = 10 * time.Second
)

// Index is the embedded repository. It is safe for concurrent use.
type Index struct {
	path   string
	cfg    Config
	log    *zap.Logger
	tables tables
	w      *sql.DB // one connection: the writer
	r      *sql.DB // read-only connections: searches
	ckpt   *sql.DB // one connection: checkpoints the WAL into the database
	gen    string

	// tombstones says, per kind, whether tombstones may exist, so that
	// writes of new documents skip looking for one when none can.
	tombstones map[repository.Kind]*atomic.Bool
	// dirty says that a write committed since the last checkpoint.
	dirty atomic.Bool

	// stmts are the writer's statements, prepared once on its connection
	// and bound to each write's transaction: preparing them in every
	// transaction was a fifth of the index's time under load.
	stmtsMu sync.Mutex
	stmts   map[string]*sql.Stmt

	stop      context.CancelFunc
	loops     sync.WaitGroup // retain and checkpoint
	closeOnce sync.Once
	closeErr  error
}

// Open opens the index in cfg.Dir, creating it (and a new generation) when
// there is none, and starts its background work (checkpoints of the WAL,
// the retention) until Close.
func Open(ctx context.Context, cfg Config, logger *zap.Logger) (*Index, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded index: no directory")
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("embedded index: negative retention %s", cfg.Retention)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if err := registerAgg(); err != nil {
		return nil, fmt.Errorf("embedded index: registering %s: %w", aggFunc, err)
	}
	ts, err := newTables()
	if err != nil {
		return nil, fmt.Errorf("embedded index: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded index: creating %s: %w", cfg.Dir, err)
	}
	x := &Index{
		path: filepath.Join(cfg.Dir, FileName), cfg: cfg, log: logger.Named("embedded_index"), tables: ts,
		tombstones: map[repository.Kind]*atomic.Bool{}, stmts: map[string]*sql.Stmt{},
	}
	for _, k := range repository.Kinds {
		x.tombstones[k] = &atomic.Bool{}
	}
	if err := x.open(ctx); err != nil {
		return nil, err
	}
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	x.stop = stop
	x.loops.Go(func() { x.retain(loopCtx) })
	x.loops.Go(func() { x.checkpoint(loopCtx) })
	return x, nil
}

// open opens the database, creating its schema when it is new or of
// another schema version.
func (x *Index) open(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		if err := x.connect(); err != nil {
			return err
		}
		gen, schema, err := x.readMeta(ctx)
		if err == nil && gen == "" {
			if err = x.create(ctx); err == nil {
				gen, schema, err = x.readMeta(ctx)
			}
		}
		if err != nil {
			x.closeDBs()
			return err
		}
		if schema == x.tables.schemaID() {
			x.gen = gen
			break
		}
		// A database of another schema is a projection that another
		// version of Kite made: start anew, and the indexer rebuilds it.
		x.closeDBs()
		if attempt > 0 {
			return fmt.Errorf("embedded index: %s has schema %s after being created anew", x.path, schema)
		}
		x.log.Warn("the index has another schema: creating it anew (the indexer rebuilds it from Kafka)",
			zap.String("path", x.path), zap.String("schema", schema), zap.String("want_schema", x.tables.schemaID()),
			zap.String("generation", gen))
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(x.path + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("embedded index: removing the old index: %w", err)
			}
		}
	}
	for _, k := range repository.Kinds {
		var n int
		if err := x.r.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM tombstones WHERE kind = ?)", string(k)).Scan(&n); err != nil {
			x.closeDBs()
			return fmt.Errorf("embedded index: reading tombstones: %w", err)
		}
		x.tombstones[k].Store(n == 1)
	}
	x.log.Info("index open", zap.String("path", x.path), zap.String("generation", x.gen))
	return nil
}

// connect opens the writer, the readers and the checkpointer.
func (x *Index) connect() error {
	dsn := func(readOnly bool, extra ...string) string {
		q := url.Values{}
		q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
		q.Set("_journal_mode", "WAL")
		// NORMAL in WAL mode: a commit survives a crash of Kite, not
		// always a crash of the machine; the index is a projection that
		// the indexer can rebuild from Kafka.
		q.Set("_synchronous", "NORMAL")
		q.Add("_pragma", "temp_store(MEMORY)")
		for _, p := range extra {
			q.Add("_pragma", p)
		}
		if readOnly {
			q.Set("_query_only", "1")
		} else {
			q.Set("_txlock", "immediate") // a write transaction takes the lock when it begins, not on its first write
		}
		return x.path + "?" + q.Encode()
	}
	// The writer leaves checkpoints to x.checkpoint, on another connection
	// (and so another CPU), unless the WAL grows past 64 MiB.
	w, err := sql.Open("sqlite", dsn(false, "cache_size(-65536)", fmt.Sprintf("wal_autocheckpoint(%d)", walBackstopPages)))
	if err != nil {
		return fmt.Errorf("embedded index: opening %s: %w", x.path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.Ping(); err != nil {
		_ = w.Close()
		return fmt.Errorf("embedded index: opening %s: %w", x.path, err)
	}
	r, err := sql.Open("sqlite", dsn(true, "cache_size(-32768)"))
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("embedded index: opening %s: %w", x.path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(0)
	c, err := sql.Open("sqlite", dsn(false, "cache_size(-2048)"))
	if err != nil {
		_ = w.Close()
		_ = r.Close()
		return fmt.Errorf("embedded index: opening %s: %w", x.path, err)
	}
	c.SetMaxOpenConns(1)
	c.SetConnMaxIdleTime(0)
	x.w, x.r, x.ckpt = w, r, c
	return nil
}

func (x *Index) closeDBs() {
	_ = x.ckpt.Close()
	_ = x.r.Close()
	_ = x.w.Close()
}

// readMeta returns the generation and schema of the database; an empty
// generation for a database without tables.
func (x *Index) readMeta(ctx context.Context) (gen, schema string, err error) {
	var n int
	if err := x.w.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").Scan(&n); err != nil {
		return "", "", fmt.Errorf("embedded index: reading %s: %w", x.path, err)
	}
	if n == 0 {
		return "", "", nil
	}
	rows, err := x.w.QueryContext(ctx, "SELECT key, value FROM meta")
	if err != nil {
		return "", "", fmt.Errorf("embedded index: reading the generation: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return "", "", fmt.Errorf("embedded index: reading the generation: %w", err)
		}
		switch k {
		case "generation":
			gen = v
		case "schema":
			schema = v
		}
	}
	if err := rows.Err(); err != nil {
		return "", "", fmt.Errorf("embedded index: reading the generation: %w", err)
	}
	if gen == "" {
		return "", "", fmt.Errorf("embedded index: %s has no generation", x.path)
	}
	return gen, schema, nil
}

// create creates the schema and a new generation in an empty database.
func (x *Index) create(ctx context.Context) error {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	gen := hex.EncodeToString(b[:])
	tx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("embedded index: creating the schema: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, s := range x.tables.ddl() {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("embedded index: creating the schema: %s: %w", s, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('generation', ?), ('schema', ?), ('created', ?)",
		gen, x.tables.schemaID(), x.cfg.Now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("embedded index: writing the generation: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("embedded index: creating the schema: %w", err)
	}
	x.log.Info("index created", zap.String("path", x.path), zap.String("generation", gen))
	return nil
}

// Generation implements repository.Sink: an id made when the database was
// created.
func (x *Index) Generation(ctx context.Context) (string, error) { return x.gen, nil }

// Close stops the retention and closes the database. It is idempotent.
func (x *Index) Close() error {
	x.closeOnce.Do(func() {
		x.stop()
		x.loops.Wait()
		// No PRAGMA optimize (ANALYZE): the planner's choices without
		// statistics are the ones the queries were checked with (EXPLAIN
		// QUERY PLAN), and do not change with the data.
		x.stmtsMu.Lock()
		for _, st := range x.stmts {
			_ = st.Close()
		}
		x.stmts = nil // prepareStmts stores no more
		x.stmtsMu.Unlock()
		errC, errR, errW := x.ckpt.Close(), x.r.Close(), x.w.Close()
		if err := errors.Join(errC, errR, errW); err != nil {
			x.closeErr = fmt.Errorf("embedded index: closing %s: %w", x.path, err)
		}
	})
	return x.closeErr
}

// retain purges old logs and events every purgeInterval (the first time
// one interval after Open) until ctx ends.
func (x *Index) retain(ctx context.Context) {
	if x.cfg.Retention == 0 {
		return
	}
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := x.Purge(ctx, x.cfg.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			x.log.Warn("purging old logs and events", zap.Error(err))
		case n > 0:
			x.log.Info("purged old logs and events", zap.Int64("documents", n))
		}
	}
}

// checkpoint copies the WAL's pages into the database after writes, every
// checkpointInterval, without blocking the writer (PASSIVE), so that
// Write does not pay for it (the copy and its fsync) and the WAL stays
// small.
func (x *Index) checkpoint(ctx context.Context) {
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !x.dirty.Swap(false) {
			continue
		}
		if _, err := x.ckpt.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil && ctx.Err() == nil {
			x.log.Warn("checkpointing the index", zap.Error(err))
		}
	}
}

// Purge deletes the logs and events whose time is before now minus the
// retention (none when the retention is 0) and returns how many it
// deleted. It deletes in small transactions, so writes go on meanwhile.
func (x *Index) Purge(ctx context.Context, now time.Time) (int64, error) {
	if x.cfg.Retention == 0 {
		return 0, nil
	}
	cutoff := now.Add(-x.cfg.Retention).UnixMilli()
	var total int64
	for _, k := range []repository.Kind{repository.Logs, repository.Events} {
		t := x.tables[k]
		for {
			n, err := x.purgeChunk(ctx, t, cutoff)
			total += n
			if err != nil {
				return total, fmt.Errorf("purging %s: %w", k, err)
			}
			if n < purgeChunk {
				break
			}
		}
	}
	return total, nil
}

func (x *Index) purgeChunk(ctx context.Context, t *table, cutoff int64) (int64, error) {
	tx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE IF NOT EXISTS purge (rid INTEGER PRIMARY KEY)"); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM temp.purge"); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO temp.purge (rid) SELECT rid FROM %s WHERE %s < ? LIMIT %d",
		t.name, t.time.name, purgeChunk), cutoff)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	stmts := []string{fmt.Sprintf("DELETE FROM %s WHERE rid IN (SELECT rid FROM temp.purge)", t.name)}
	if t.fts != "" {
		stmts = append(stmts, fmt.Sprintf("DELETE FROM %s WHERE rowid IN (SELECT rid FROM temp.purge)", t.fts))
	}
	if t.labels != "" {
		stmts = append(stmts, fmt.Sprintf("DELETE FROM %s WHERE rid IN (SELECT rid FROM temp.purge)", t.labels))
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}
