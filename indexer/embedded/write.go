package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/kiteflow/kite/core/repository"
)

// prepared is a document ready to be written: its JSON and columns
// computed before the transaction, which then holds the write lock for
// SQL only.
type prepared struct {
	t      *table
	doc    repository.Doc
	raw    []byte
	row    *row
	reason string // why it is rejected; "" to write it
}

// Write implements repository.Sink: one transaction for the batch. A
// document is written only when its version is above the stored one (a
// live document's, or a tombstone's); a document that cannot be stored
// (unknown kind, no id, Source not a JSON object, a field of the wrong
// type) is rejected and the others are written.
func (x *Index) Write(ctx context.Context, docs []repository.Doc) ([]repository.Rejected, error) {
	batch := x.prepareAll(docs)
	var rejected []repository.Rejected
	keep := batch[:0]
	for _, p := range batch {
		if p.reason != "" {
			rejected = append(rejected, repository.Rejected{Doc: p.doc, Reason: p.reason})
			continue
		}
		keep = append(keep, p)
	}
	batch = keep
	if len(batch) == 0 {
		return rejected, nil
	}
	tx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("writing %d documents: %w", len(batch), err)
	}
	defer func() { _ = tx.Rollback() }()
	w := &writer{ctx: ctx, tx: tx, x: x, stmts: map[string]*sql.Stmt{}, known: map[repository.Kind]map[string]*stored{}}
	defer w.close()
	if err := w.load(batch); err != nil {
		return nil, fmt.Errorf("writing %d documents: reading their versions: %w", len(batch), err)
	}
	for _, p := range batch {
		if err := w.write(p); err != nil {
			return nil, fmt.Errorf("writing %s %s (version %d): %w", p.doc.Kind, p.doc.ID, p.doc.Version, err)
		}
	}
	if err := w.flush(); err != nil {
		return nil, fmt.Errorf("writing %d documents: %w", len(batch), err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("writing %d documents: commit: %w", len(batch), err)
	}
	x.dirty.Store(true)
	x.prepareStmts(ctx, w.unprepared)
	return rejected, nil
}

// prepareAll prepares documents, on every CPU for a large batch.
func (x *Index) prepareAll(docs []repository.Doc) []prepared {
	out := make([]prepared, len(docs))
	workers := min(runtime.GOMAXPROCS(0), len(docs)/128)
	if workers <= 1 {
		for i, d := range docs {
			out[i] = x.prepare(d)
		}
		return out
	}
	var wg sync.WaitGroup
	per := (len(docs) + workers - 1) / workers
	for lo := 0; lo < len(docs); lo += per {
		hi := min(lo+per, len(docs))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				out[i] = x.prepare(docs[i])
			}
		})
	}
	wg.Wait()
	return out
}

// prepare marshals and extracts a document.
func (x *Index) prepare(d repository.Doc) prepared {
	reject := func(reason string) prepared { return prepared{doc: d, reason: reason} }
	t, ok := x.tables[d.Kind]
	if !ok {
		return reject(fmt.Sprintf("unknown kind %q", d.Kind))
	}
	if d.ID == "" {
		return reject("no document id")
	}
	p := prepared{t: t, doc: d}
	if d.Delete {
		return p
	}
	if d.Source == nil {
		return reject("no source (and not a delete)")
	}
	raw, err := json.Marshal(d.Source)
	if err != nil {
		return reject(fmt.Sprintf("the source is not JSON: %v", err))
	}
	r, err := t.extract(raw)
	if err != nil {
		return reject(err.Error())
	}
	p.raw, p.row = raw, r
	return p
}

// stored is what the write path knows of a document id: its live row and
// its tombstone, either or both absent.
type stored struct {
	live    bool
	rid     int64
	version int64
	labels  string // the row's pairs, "\n"-joined
	hash    any    // the row's text_hash: int64 or nil

	tomb        bool
	tombVersion int64

	pending bool // in writer.pending: its rid is not known yet
}

// writer writes the documents of one transaction, with its statements
// prepared once.
type writer struct {
	ctx   context.Context
	tx    *sql.Tx
	x     *Index
	stmts map[string]*sql.Stmt
	// unprepared are the queries not prepared on the connection yet.
	unprepared []string
	known      map[repository.Kind]map[string]*stored // every id of the batch

	// pending are new documents of one kind not inserted yet: they are
	// inserted insertChunk at a time, with multi-row statements, which
	// saves most of the cost of a statement per row.
	pending []prepared
}

// insertChunk is how many new documents one statement inserts at most.
const insertChunk = 32

func (w *writer) close() {
	for _, s := range w.stmts {
		_ = s.Close()
	}
}

func (w *writer) stmt(query string) (*sql.Stmt, error) {
	if s, ok := w.stmts[query]; ok {
		return s, nil
	}
	var s *sql.Stmt
	if shared := w.x.preparedStmt(query); shared != nil {
		s = w.tx.StmtContext(w.ctx, shared)
	} else {
		// The writer's one connection is the transaction's: the statement
		// is prepared on the connection itself once the transaction ends.
		var err error
		if s, err = w.tx.PrepareContext(w.ctx, query); err != nil {
			return nil, fmt.Errorf("preparing %q: %w", query, err)
		}
		w.unprepared = append(w.unprepared, query)
	}
	w.stmts[query] = s
	return s, nil
}

// preparedStmt returns query as prepared on the writer's connection; nil
// when it is not yet.
func (x *Index) preparedStmt(query string) *sql.Stmt {
	x.stmtsMu.Lock()
	defer x.stmtsMu.Unlock()
	return x.stmts[query]
}

// prepareStmts prepares queries on the writer's connection for the next
// transactions. It must not run while a transaction holds the connection.
func (x *Index) prepareStmts(ctx context.Context, queries []string) {
	for _, q := range queries {
		if x.preparedStmt(q) != nil {
			continue
		}
		// Not under stmtsMu: the connection may be another write's, which
		// looks statements up meanwhile.
		s, err := x.w.PrepareContext(ctx, q)
		if err != nil {
			continue // prepared in the next transaction again
		}
		x.stmtsMu.Lock()
		if _, ok := x.stmts[q]; ok || x.stmts == nil {
			_ = s.Close() // prepared meanwhile, or the index closed
		} else {
			x.stmts[q] = s
		}
		x.stmtsMu.Unlock()
	}
}

func (w *writer) exec(query string, args ...any) (sql.Result, error) {
	s, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(w.ctx, args...)
}

// lookupChunk is how many ids one query of load reads.
const lookupChunk = 250

// load reads what is stored of the batch's ids: a few queries of many ids
// rather than one per document.
func (w *writer) load(batch []prepared) error {
	ids := map[repository.Kind][]string{}
	for _, p := range batch {
		k := p.t.kind
		if w.known[k] == nil {
			w.known[k] = map[string]*stored{}
		}
		if _, ok := w.known[k][p.doc.ID]; !ok {
			w.known[k][p.doc.ID] = &stored{}
			ids[k] = append(ids[k], p.doc.ID)
		}
	}
	for k, ids := range ids {
		t := w.x.tables[k]
		known := w.known[k]
		inList := "(?" + strings.Repeat(", ?", lookupChunk-1) + ")"
		liveQ := fmt.Sprintf("SELECT id, rid, version, labels, text_hash FROM %s WHERE id IN %s", t.name, inList)
		tombQ := "SELECT id, version FROM tombstones WHERE kind = ? AND id IN " + inList
		for lo := 0; lo < len(ids); lo += lookupChunk {
			args := make([]any, lookupChunk)
			for i := range args {
				args[i] = ids[min(lo+i, len(ids)-1)] // the last id repeated fills the list
			}
			err := w.query(liveQ, args, func(rows *sql.Rows) error {
				var id string
				var labels sql.NullString
				var s stored
				if err := rows.Scan(&id, &s.rid, &s.version, &labels, &s.hash); err != nil {
					return err
				}
				st := known[id]
				st.live, st.rid, st.version, st.labels, st.hash = true, s.rid, s.version, labels.String, s.hash
				return nil
			})
			if err != nil {
				return err
			}
			if !w.x.tombstones[k].Load() {
				continue
			}
			err = w.query(tombQ, append([]any{string(k)}, args...), func(rows *sql.Rows) error {
				var id string
				var v int64
				if err := rows.Scan(&id, &v); err != nil {
					return err
				}
				known[id].tomb, known[id].tombVersion = true, v
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *writer) query(q string, args []any, each func(*sql.Rows) error) error {
	s, err := w.stmt(q)
	if err != nil {
		return err
	}
	rows, err := s.QueryContext(w.ctx, args...)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

const (
	upsertTombstone = "INSERT INTO tombstones (kind, id, version) VALUES (?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version"
	deleteTombstone = "DELETE FROM tombstones WHERE kind = ? AND id = ?"
)

func (w *writer) write(p prepared) error {
	t, d := p.t, p.doc
	st := w.known[t.kind][d.ID]
	if st.pending || (len(w.pending) > 0 && w.pending[0].t != t) {
		if err := w.flush(); err != nil {
			return err
		}
	}
	switch {
	case st.live && d.Version <= st.version, !st.live && st.tomb && d.Version <= st.tombVersion:
		return nil // outdated
	case d.Delete:
		if st.live {
			if err := w.unindex(t, st); err != nil {
				return err
			}
			if _, err := w.exec(t.deleteRow, st.rid); err != nil {
				return err
			}
		}
		// Keep the version even when the document never was here, so that
		// the write it deletes, arriving later, stays deleted.
		w.x.tombstones[t.kind].Store(true)
		if _, err := w.exec(upsertTombstone, string(t.kind), d.ID, d.Version); err != nil {
			return err
		}
		*st = stored{tomb: true, tombVersion: d.Version}
		return nil
	case st.live:
		args := columnArgs(p)
		args = append(args[1:], st.rid) // all but the id, then the rid
		res, err := w.exec(t.update, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("updating row %d: %d rows updated", st.rid, n)
		}
		if err := w.index(t, p.row, st); err != nil {
			return err
		}
		st.version = d.Version
		return nil
	}
	if st.tomb {
		if _, err := w.exec(deleteTombstone, string(t.kind), d.ID); err != nil {
			return err
		}
		st.tomb = false
	}
	st.live, st.version, st.pending = true, d.Version, true
	w.pending = append(w.pending, p)
	if len(w.pending) == insertChunk {
		return w.flush()
	}
	return nil
}

// flush inserts the pending documents, their label pairs and their full
// text.
func (w *writer) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	t := w.pending[0].t
	known := w.known[t.kind]
	args := make([]any, 0, len(w.pending)*(6+len(t.columns)))
	for _, p := range w.pending {
		args = append(args, columnArgs(p)...)
	}
	err := w.query(t.insertMany(len(w.pending)), args, func(rows *sql.Rows) error {
		var rid int64
		var id string
		if err := rows.Scan(&rid, &id); err != nil {
			return err
		}
		st := known[id]
		st.rid, st.pending = rid, false
		return nil
	})
	if err != nil {
		return err
	}
	var pairs, texts []any
	for _, p := range w.pending {
		st := known[p.doc.ID]
		if st.pending {
			return fmt.Errorf("inserting %s: no row id returned", p.doc.ID)
		}
		for _, pair := range p.row.pairs {
			pairs = append(pairs, pair, st.rid)
		}
		st.labels = p.row.labels
		if p.row.textHash != nil {
			texts = append(append(texts, st.rid), p.row.texts...)
		}
		st.hash = p.row.textHash
	}
	w.pending = w.pending[:0]
	if err := w.execMany(t.insertLabels, pairs, 2); err != nil {
		return err
	}
	return w.execMany(t.insertFTSRows, texts, 1+len(t.textCols))
}

// execMany runs stmts[n] (which inserts n rows of width arguments) over
// args, as few times as it can.
func (w *writer) execMany(stmts []string, args []any, width int) error {
	for len(args) > 0 {
		n := min(len(args)/width, len(stmts)-1)
		if _, err := w.exec(stmts[n], args[:n*width]...); err != nil {
			return err
		}
		args = args[n*width:]
	}
	return nil
}

// columnArgs are the values of table.insert's columns: the id, then the
// columns table.update sets.
func columnArgs(p prepared) []any {
	r := p.row
	args := make([]any, 0, 5+len(r.values)+1)
	var labels any
	if r.labels != "" {
		labels = r.labels
	}
	args = append(args, p.doc.ID, p.doc.Version, string(p.raw), labels, r.textHash)
	return append(args, r.values...)
}

// index replaces the label pairs and the full text of a row, when they
// changed, and records the new ones in st.
func (w *writer) index(t *table, r *row, st *stored) error {
	if t.labels != "" && st.labels != r.labels {
		for _, p := range splitPairs(st.labels) {
			if _, err := w.exec(t.deleteLabel, p, st.rid); err != nil {
				return err
			}
		}
		args := make([]any, 0, 2*len(r.pairs))
		for _, p := range r.pairs {
			args = append(args, p, st.rid)
		}
		if err := w.execMany(t.insertLabels, args, 2); err != nil {
			return err
		}
		st.labels = r.labels
	}
	if t.fts != "" && st.hash != r.textHash {
		if st.hash != nil {
			if _, err := w.exec(t.deleteFTS, st.rid); err != nil {
				return err
			}
		}
		if r.textHash != nil {
			if _, err := w.exec(t.insertFTSRows[1], append([]any{st.rid}, r.texts...)...); err != nil {
				return err
			}
		}
		st.hash = r.textHash
	}
	return nil
}

// unindex removes the label pairs and the full text of a row.
func (w *writer) unindex(t *table, st *stored) error {
	if t.labels != "" {
		for _, p := range splitPairs(st.labels) {
			if _, err := w.exec(t.deleteLabel, p, st.rid); err != nil {
				return err
			}
		}
	}
	if t.fts != "" && st.hash != nil {
		if _, err := w.exec(t.deleteFTS, st.rid); err != nil {
			return err
		}
	}
	return nil
}

func splitPairs(labels string) []string {
	if labels == "" {
		return nil
	}
	return strings.Split(labels, "\n")
}
