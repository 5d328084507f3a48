package embedded

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/kiteflow/kite/core/query"
	"github.com/kiteflow/kite/core/repository"
)

// A kind's documents live in these tables (KIND is the kind's name):
//
//	KIND         rid INTEGER PRIMARY KEY, id TEXT UNIQUE, version, doc (the
//	             JSON as written), labels (the pairs, sorted, "\n"-joined),
//	             text_hash (of the Text fields), and one column f_NAME per
//	             queryable field: TEXT for Keyword and Enum, INTEGER for
//	             Date (Unix milliseconds), Duration (milliseconds) and Bool
//	             (0/1), NUMERIC for Number, and for a Text field an INTEGER
//	             that is 1 when the field is not empty (for field:*). Empty
//	             strings are stored as NULL, so that field:* is IS NOT NULL.
//	KIND_labels  (pair, rid): the "KEY=value" pairs of the Labels field, for
//	             kinds that have one.
//	KIND_fts     an FTS5 table of the Text fields (rowid = rid), contentless,
//	             for kinds that have some.
//
// Deleted documents are not kept in KIND: a delete leaves a row in
// tombstones (kind, id, version), so searches need no deleted flag and can
// be answered from indexes alone. meta (key, value) holds the generation,
// the schema's digest and when the database was created.

// ftsTokenizer splits Text fields into words: Unicode letters and digits
// (and '_', which Elasticsearch's standard analyzer also keeps inside words,
// so hello_world is one word), case-folded, with diacritics removed.
const ftsTokenizer = `unicode61 tokenchars '_'`

var identRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// column is the SQL column of a queryable field.
type column struct {
	field *query.Field
	name  string // f_NAME
	text  int    // the index of a Text field in table.textCols, else -1
	// docID: the field holds the document's id (docIDFields), so the
	// unique index on id serves it, and it has no index of its own.
	docID bool
}

// docIDFields are the Keyword fields that hold the document id, by the
// kinds' contract (an execution's id is its document's).
var docIDFields = map[repository.Kind]string{repository.Executions: "id", repository.TaskRuns: "id"}

// table is the SQL of one kind.
type table struct {
	kind   repository.Kind
	schema *query.Schema
	name   string // the kind, quoted
	labels string // the labels table, quoted ("" when the kind has no Labels field)
	fts    string // the FTS5 table, quoted ("" when the kind has no Text field)

	columns  []*column // every queryable field but the Labels one, in schema order
	byField  map[string]*column
	colIndex map[string]int // field name → index in columns
	time     *column        // TimeField(kind)
	labelsF  *query.Field   // the Labels field, or nil
	textCols []*query.Field // the Text fields, in FTS column order

	ddl []string

	// Statements of the write path; [n] of a list writes n rows.
	insertRows    []string // documents, returning rid, id; n <= insertChunk
	update        string
	deleteRow     string
	insertLabels  []string // label pairs; n <= maxRowsInsert
	deleteLabel   string
	insertFTSRows []string // full text; n <= maxRowsInsert
	deleteFTS     string
}

// maxRowsInsert is how many label pairs or full-text rows one statement
// inserts at most.
const maxRowsInsert = 64

// rowsStatements returns [n]: head followed by n times row, comma-separated,
// then tail, for 1 <= n <= maxN ([0] is "").
func rowsStatements(head, row, tail string, maxN int) []string {
	out := make([]string, maxN+1)
	for n := 1; n <= maxN; n++ {
		out[n] = head + row + strings.Repeat(", "+row, n-1) + tail
	}
	return out
}

func quote(ident string) string { return `"` + ident + `"` }

func newTable(kind repository.Kind) (*table, error) {
	s := repository.Schema(kind)
	if s == nil {
		return nil, fmt.Errorf("no schema for kind %q", kind)
	}
	if !identRE.MatchString(string(kind)) {
		return nil, fmt.Errorf("kind %q is not a valid table name", kind)
	}
	t := &table{kind: kind, schema: s, name: quote(string(kind)), byField: map[string]*column{}, colIndex: map[string]int{}}
	cols := []string{"rid INTEGER PRIMARY KEY", "id TEXT NOT NULL UNIQUE", "version INTEGER NOT NULL",
		"doc TEXT NOT NULL", "labels TEXT", "text_hash INTEGER"}
	timeName := repository.TimeField(kind)
	for _, f := range s.Fields {
		if !identRE.MatchString(f.Name) {
			return nil, fmt.Errorf("%s field %q is not a valid column name", kind, f.Name)
		}
		if f.Type == query.Labels {
			if t.labelsF != nil {
				return nil, fmt.Errorf("%s has two Labels fields", kind)
			}
			t.labelsF = f
			continue
		}
		c := &column{field: f, name: "f_" + f.Name, text: -1, docID: docIDFields[kind] == f.Name && f.Type == query.Keyword}
		t.colIndex[f.Name] = len(t.columns)
		t.columns = append(t.columns, c)
		t.byField[f.Name] = c
		if f.Type == query.Text {
			c.text = len(t.textCols)
			t.textCols = append(t.textCols, f)
		}
		if f.Name == timeName {
			t.time = c
		}
		cols = append(cols, c.name+" "+sqlType(f.Type))
	}
	if t.time == nil || t.time.field.Type != query.Date {
		return nil, fmt.Errorf("%s has no Date field %q (its TimeField)", kind, timeName)
	}
	t.ddl = append(t.ddl, fmt.Sprintf("CREATE TABLE %s (\n\t%s\n)", t.name, strings.Join(cols, ",\n\t")))
	t.ddl = append(t.ddl, t.indexes()...)
	if t.labelsF != nil {
		t.labels = quote(string(kind) + "_labels")
		t.ddl = append(t.ddl, fmt.Sprintf("CREATE TABLE %s (pair TEXT NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY (pair, rid)) WITHOUT ROWID", t.labels))
		t.insertLabels = rowsStatements(fmt.Sprintf("INSERT OR IGNORE INTO %s (pair, rid) VALUES ", t.labels), "(?, ?)", "", maxRowsInsert)
		t.deleteLabel = fmt.Sprintf("DELETE FROM %s WHERE pair = ? AND rid = ?", t.labels)
	}
	if len(t.textCols) > 0 {
		t.fts = quote(string(kind) + "_fts")
		names := make([]string, len(t.textCols))
		for i, f := range t.textCols {
			names[i] = f.Name
		}
		t.ddl = append(t.ddl, fmt.Sprintf("CREATE VIRTUAL TABLE %s USING fts5(%s, content='', contentless_delete=1, tokenize=%q)",
			t.fts, strings.Join(names, ", "), ftsTokenizer))
		t.insertFTSRows = rowsStatements(fmt.Sprintf("INSERT INTO %s (rowid, %s) VALUES ", t.fts, strings.Join(names, ", ")),
			"(?"+strings.Repeat(", ?", len(names))+")", "", maxRowsInsert)
		t.deleteFTS = fmt.Sprintf("DELETE FROM %s WHERE rowid = ?", t.fts)
	}

	names := []string{"id", "version", "doc", "labels", "text_hash"}
	for _, c := range t.columns {
		names = append(names, c.name)
	}
	t.insertRows = rowsStatements(fmt.Sprintf("INSERT INTO %s (%s) VALUES ", t.name, strings.Join(names, ", ")),
		"(?"+strings.Repeat(", ?", len(names)-1)+")", " RETURNING rid, id", insertChunk)
	sets := make([]string, 0, len(names)-1)
	for _, n := range names[1:] {
		sets = append(sets, n+" = ?")
	}
	t.update = fmt.Sprintf("UPDATE %s SET %s WHERE rid = ?", t.name, strings.Join(sets, ", "))
	t.deleteRow = fmt.Sprintf("DELETE FROM %s WHERE rid = ?", t.name)
	return t, nil
}

func sqlType(t query.FieldType) string {
	switch t {
	case query.Keyword, query.Enum:
		return "TEXT"
	case query.Number:
		return "NUMERIC"
	default: // Date, Duration, Bool, Text (presence)
		return "INTEGER"
	}
}

// indexes returns the CREATE INDEX statements of a kind:
//
//   - the time column, then the covering columns (below);
//   - every Keyword and Enum column, then the time column (equality plus a
//     time range, and hits in the default order, from the index), then the
//     covering columns;
//   - every Duration column (the slowest first).
//
// The covering columns are the namespace, the flow id, the Enum fields
// (state, level, type) and the Duration ones: what dashboards filter,
// split and measure by. Carried in every index, they let a query such as
// state:FAILED and namespace:prod* with a histogram by state, the top
// flows or the percentiles of durations read the index alone, never the
// rows.
//
// Each index costs every write (a few µs a document), so other Date and
// Number columns have none: their ranges and sorts apply to the rows that
// the other conditions select. Indexes other than the time column's are
// partial, without NULLs, so a document without the field costs nothing
// to them; SQLite uses a partial index for any comparison on its column,
// which implies NOT NULL.
func (t *table) indexes() []string {
	var out []string
	add := func(name string, cols []string, partial string) {
		s := fmt.Sprintf("CREATE INDEX %s ON %s (%s)", quote(string(t.kind)+"_"+name), t.name, strings.Join(cols, ", "))
		if partial != "" {
			s += " WHERE " + partial + " IS NOT NULL"
		}
		out = append(out, s)
	}
	var cover []string
	for _, c := range t.columns {
		switch {
		case c.field.Type == query.Enum, c.field.Type == query.Duration,
			c.field.Type == query.Keyword && (c.field.Name == "namespace" || c.field.Name == "flow_id"):
			cover = append(cover, c.name)
		}
	}
	without := func(name string) []string {
		return slices.DeleteFunc(slices.Clone(cover), func(c string) bool { return c == name })
	}
	add(t.time.field.Name, append([]string{t.time.name}, cover...), "")
	for _, c := range t.columns {
		switch {
		case c == t.time, c.docID:
		case c.field.Type == query.Keyword || c.field.Type == query.Enum:
			add(c.field.Name, append([]string{c.name, t.time.name}, without(c.name)...), c.name)
		case c.field.Type == query.Duration:
			add(c.field.Name, []string{c.name}, c.name)
		}
	}
	return out
}

func (t *table) insertMany(n int) string { return t.insertRows[n] }

// tables are the tables of every kind.
type tables map[repository.Kind]*table

func newTables() (tables, error) {
	ts := tables{}
	for _, k := range repository.Kinds {
		t, err := newTable(k)
		if err != nil {
			return nil, err
		}
		ts[k] = t
	}
	return ts, nil
}

// metaDDL creates the tables that are not a kind's.
var metaDDL = []string{
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
	"CREATE TABLE tombstones (kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID",
}

// ddl returns every statement that creates the database's schema, in order.
func (ts tables) ddl() []string {
	out := slices.Clone(metaDDL)
	for _, k := range repository.Kinds {
		out = append(out, ts[k].ddl...)
	}
	return out
}

// schemaID identifies the schema (a digest of its DDL): a database created
// with another one is created anew (a new generation, rebuilt from Kafka),
// so a change of repository.Schema needs no migration.
func (ts tables) schemaID() string {
	h := sha256.New()
	for _, s := range ts.ddl() {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
