package embedded

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// sortKey is one key of a search's order.
type sortKey struct {
	col  *column
	desc bool
}

// Search implements repository.Repository. Hits are ordered by the
// request's sort (missing values last, either way, as in Elasticsearch),
// then by document id ascending; the cursor holds the last hit's sort
// values and id (keyset pagination), so a page never repeats or skips a
// hit whatever is written meanwhile, and a digest of the request, so a
// cursor given to another search is repository.ErrBadCursor.
func (x *Index) Search(ctx context.Context, req repository.SearchRequest) (repository.SearchResult, error) {
	t, err := x.table(req.Kind)
	if err != nil {
		return repository.SearchResult{}, err
	}
	keys, err := t.sortKeys(req.Sort)
	if err != nil {
		return repository.SearchResult{}, err
	}
	where, args, err := t.where(req.Query, req.Since, req.Until)
	if err != nil {
		return repository.SearchResult{}, err
	}
	size := req.Size
	if size <= 0 {
		size = repository.DefaultSize
	}
	size = min(size, repository.MaxSize)
	digest := requestDigest(req, keys)

	pageWhere, pageArgs := where, args
	if req.Cursor != "" {
		cur, err := decodeCursor(req.Cursor, digest, keys)
		if err != nil {
			return repository.SearchResult{}, err
		}
		after, afterArgs := t.after(keys, cur)
		pageWhere = where + " AND " + after
		pageArgs = append(append([]any(nil), args...), afterArgs...)
	}

	cols := make([]string, 0, len(keys)+2)
	cols = append(cols, t.name+".id", t.name+".doc")
	order := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		cols = append(cols, t.col(k.col))
		if k.desc {
			order = append(order, t.col(k.col)+" DESC")
		} else {
			order = append(order, t.col(k.col)+" ASC NULLS LAST")
		}
	}
	order = append(order, t.name+".id ASC")
	page := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT %d",
		strings.Join(cols, ", "), t.name, pageWhere, strings.Join(order, ", "), size+1)

	var res repository.SearchResult
	err = x.read(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE %s", t.name, where), args...).Scan(&res.Total); err != nil {
			return fmt.Errorf("counting: %w", err)
		}
		rows, err := tx.QueryContext(ctx, page, pageArgs...)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		var last cursor
		for rows.Next() {
			if len(res.Hits) == size {
				res.Cursor = encodeCursor(last)
				break
			}
			var id, doc string
			vals := make([]any, len(keys))
			dest := []any{&id, &doc}
			for i := range vals {
				dest = append(dest, &vals[i])
			}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			res.Hits = append(res.Hits, json.RawMessage(doc))
			last = cursor{Digest: digest, Values: vals, ID: id}
		}
		return rows.Err()
	})
	if err != nil {
		return repository.SearchResult{}, fmt.Errorf("searching %s: %w", req.Kind, err)
	}
	return res, nil
}

// read runs f in a read-only transaction: one snapshot of the database.
func (x *Index) read(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := x.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return f(tx)
}

func (x *Index) table(k repository.Kind) (*table, error) {
	t, ok := x.tables[k]
	if !ok {
		return nil, fmt.Errorf("%w: unknown kind %q", repository.ErrInvalidRequest, k)
	}
	return t, nil
}

// sortKeys checks a request's sort; none is the time field, descending.
func (t *table) sortKeys(sorts []repository.Sort) ([]sortKey, error) {
	if len(sorts) == 0 {
		return []sortKey{{col: t.time, desc: true}}, nil
	}
	keys := make([]sortKey, 0, len(sorts))
	for _, s := range sorts {
		if f := t.schema.Field(s.Field); f != nil && f.Type == query.Labels {
			return nil, fmt.Errorf("%w: cannot sort by %s: a labels field", repository.ErrInvalidRequest, s.Field)
		}
		c, ok := t.byField[s.Field]
		if !ok {
			return nil, fmt.Errorf("%w: cannot sort by %q: %s has no such field (fields: %s)",
				repository.ErrInvalidRequest, s.Field, t.kind, fieldNames(t.schema))
		}
		if c.field.Type == query.Text {
			return nil, fmt.Errorf("%w: cannot sort by %s: a text field", repository.ErrInvalidRequest, s.Field)
		}
		keys = append(keys, sortKey{col: c, desc: s.Desc})
	}
	return keys, nil
}

// cursor is where a page ended.
type cursor struct {
	Digest string `json:"d"`
	Values []any  `json:"v"` // the last hit's sort values (int64, float64, string or nil)
	ID     string `json:"i"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c) // strings, numbers and nulls
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, digest string, keys []sortKey) (cursor, error) {
	bad := func(why string) (cursor, error) {
		return cursor{}, fmt.Errorf("%w: %s", repository.ErrBadCursor, why)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return bad("not a cursor")
	}
	var c cursor
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&c); err != nil {
		return bad("not a cursor")
	}
	if c.Digest != digest {
		return bad("it was issued for another search")
	}
	if len(c.Values) != len(keys) {
		return bad("it does not fit the sort")
	}
	for i, v := range c.Values {
		if v == nil {
			continue
		}
		var ok bool
		switch keys[i].col.field.Type {
		case query.Keyword, query.Enum:
			_, ok = v.(string)
		case query.Number:
			var n json.Number
			if n, ok = v.(json.Number); ok {
				var err error
				c.Values[i], err = number(n)
				ok = err == nil
			}
		default: // integers
			var n json.Number
			if n, ok = v.(json.Number); ok {
				var err error
				c.Values[i], err = n.Int64()
				ok = err == nil
			}
		}
		if !ok {
			return bad("it does not fit the sort")
		}
	}
	return c, nil
}

// after is the condition of the hits after the cursor in the order of
// keys then id ascending, with NULLs last in either direction:
//
//	k1 after v1 OR (k1 IS v1 AND (k2 after v2 OR (k2 IS v2 AND id > last)))
//
// where "k after v" is k < v (descending) or k > v (ascending), or k IS
// NULL; nothing is after a NULL but NULLs, which IS matches.
func (t *table) after(keys []sortKey, c cursor) (string, []any) {
	var b strings.Builder
	var args []any
	for i, k := range keys {
		col := t.col(k.col)
		v := c.Values[i]
		b.WriteString("(")
		if v != nil {
			op := " > ?"
			if k.desc {
				op = " < ?"
			}
			b.WriteString(col + op + " OR " + col + " IS NULL OR ")
			args = append(args, v)
		}
		b.WriteString("(" + col + " IS ? AND ")
		args = append(args, v)
	}
	b.WriteString(t.name + ".id > ?")
	args = append(args, c.ID)
	b.WriteString(strings.Repeat("))", len(keys)))
	return b.String(), args
}

// requestDigest identifies what a search asks, but its page size, cursor
// and instants: the bounds of its time range and the dates in its query.
// Those are often relative to the time of the request (now-1d, the last
// hour), so they move from one page to the next; a keyset cursor stays
// correct when they do.
func requestDigest(req repository.SearchRequest, keys []sortKey) string {
	var b strings.Builder
	b.WriteString(string(req.Kind))
	b.WriteString("|")
	fingerprint(&b, req.Query)
	b.WriteString("|")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s:%t,", k.col.field.Name, k.desc)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// fingerprint writes a canonical form of a query (positions aside).
func fingerprint(b *strings.Builder, n query.Node) {
	field := func(f *query.Field) string {
		if f == nil {
			return ""
		}
		return f.Name
	}
	switch n := n.(type) {
	case nil:
		b.WriteString("*")
	case *query.And:
		b.WriteString("and(")
		for _, t := range n.Terms {
			fingerprint(b, t)
			b.WriteString(",")
		}
		b.WriteString(")")
	case *query.Or:
		b.WriteString("or(")
		for _, t := range n.Terms {
			fingerprint(b, t)
			b.WriteString(",")
		}
		b.WriteString(")")
	case *query.Not:
		b.WriteString("not(")
		fingerprint(b, n.X)
		b.WriteString(")")
	case *query.Match:
		text := n.Text
		if n.Field != nil && n.Field.Type == query.Date {
			text = "" // an instant, maybe relative to now
		}
		fmt.Fprintf(b, "match(%s,%q,%d,%q,%s,%t)", field(n.Field), n.Label, n.Kind, text,
			strconv.FormatUint(math.Float64bits(n.Number), 16), n.Bool)
	case *query.Exists:
		fmt.Fprintf(b, "exists(%s,%q)", field(n.Field), n.Label)
	case *query.Range:
		fmt.Fprintf(b, "range(%s,%d,%s)", field(n.Field), n.Op, // not Time, maybe relative to now
			strconv.FormatUint(math.Float64bits(n.Number), 16))
	case *query.FullText:
		fmt.Fprintf(b, "text(%d,%q", n.Kind, n.Text)
		for _, f := range n.Fields {
			b.WriteString("," + field(f))
		}
		b.WriteString(")")
	default:
		fmt.Fprintf(b, "%T", n)
	}
}
