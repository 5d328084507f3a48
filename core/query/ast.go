// Package query is Kite's one search language: a Kibana-style (KQL) query
// string, parsed once into an AST with positions, checked against the
// fields of what is searched (a Schema), and compiled by each repository
// implementation (Elasticsearch DSL in indexer/elasticsearch, SQL in
// indexer/embedded). docs/search.md describes the language for users.
//
//	state:FAILED and namespace:prod* and not flow_id:test
//	labels.team:(data or ml) and duration >= 10s and start > now-1d
//	"connection refused" or timeout*
//	error:*
//
// Parse returns a tree whose leaves are typed for their field: a Match on a
// keyword field holds the exact value or a wildcard pattern, a Range on a
// date field holds the resolved time, on a duration field milliseconds.
// Compilers never see an unknown field or a value of the wrong type.
package query

import "time"

// Pos is where a node starts in the query string: Offset in bytes from 0,
// Column in characters from 1 (what errors show).
type Pos struct {
	Offset int
	Column int
}

// Node is a node of the query tree: *And, *Or, *Not, *Match, *Exists,
// *Range or *FullText. A nil Node matches every document.
type Node interface {
	Position() Pos
	node()
}

// And matches documents that every term matches (at least two terms).
type And struct {
	At    Pos
	Terms []Node
}

// Or matches documents that any term matches (at least two terms).
// field:(a or b) parses into an Or of two Matches on field.
type Or struct {
	At    Pos
	Terms []Node
}

// Not matches documents that X does not match.
type Not struct {
	At Pos
	X  Node
}

// ValueKind says how a Match value compares.
type ValueKind int

const (
	// Exact: the field equals Text (keyword, enum, number fields); on a
	// text field, the analyzed words of Text all occur (a match query).
	Exact ValueKind = iota
	// Phrase: a quoted value. On keyword fields the same as Exact (but *
	// and ? are literal); on text fields the words occur in this order.
	Phrase
	// Wildcard: Text holds * (any run of characters, possibly empty)
	// and/or ? (one character) as wildcards; every other character is
	// literal. Only on keyword and label fields, and on text fields as a
	// word prefix (a single trailing *). On an enum field a pattern is
	// expanded into the values it matches (state:RETR* is an Or of
	// state=RETRYING and state=RETRIED), so compilers never see it.
	Wildcard
)

// Match is field:value. On number, date, duration and bool fields Kind is
// always Exact and the typed value (Number, Time, Bool) is what compares.
type Match struct {
	At    Pos
	Field *Field // the schema field
	// Label is the label key for labels.KEY:value (Field.Type is Labels).
	Label string
	Kind  ValueKind
	// Text is the unescaped value; for an Enum field, its canonical
	// spelling (state:failed is FAILED).
	Text string
	// Number is Text as a number, for Number fields (and Duration fields
	// given a number: milliseconds).
	Number float64
	// Time is the instant, for Date fields (field:2026-01-02T03:04:05Z).
	Time time.Time
	// Bool is the value of a Bool field.
	Bool bool
}

// Exists is field:* — the field has a value (for labels.KEY:*, the label
// is set).
type Exists struct {
	At    Pos
	Field *Field
	Label string
}

// RangeOp is a comparison.
type RangeOp int

// The comparisons of a Range.
const (
	GT  RangeOp = iota // >
	GTE                // >=
	LT                 // <
	LTE                // <=
)

func (o RangeOp) String() string {
	return [...]string{">", ">=", "<", "<="}[o]
}

// Range is field > value, field >= value, field < value or field <= value,
// on Number, Date and Duration fields.
type Range struct {
	At    Pos
	Field *Field
	Op    RangeOp
	// Number is the bound of a Number field, or of a Duration field in
	// milliseconds (10s is 10000).
	Number float64
	// Time is the bound of a Date field: an absolute time, or one relative
	// to the now given to Parse (now-1d, now-15m, now).
	Time time.Time
}

// FullText is a bare word, phrase or word prefix, searched in the schema's
// full-text fields (Schema.FullText): log messages, flow sources, errors.
type FullText struct {
	At   Pos
	Kind ValueKind // Exact (a word), Phrase, or Wildcard (a word prefix)
	Text string
	// Fields are the schema's full-text fields the value is searched in,
	// any of them matching.
	Fields []*Field
}

func (n *And) Position() Pos      { return n.At }
func (n *Or) Position() Pos       { return n.At }
func (n *Not) Position() Pos      { return n.At }
func (n *Match) Position() Pos    { return n.At }
func (n *Exists) Position() Pos   { return n.At }
func (n *Range) Position() Pos    { return n.At }
func (n *FullText) Position() Pos { return n.At }

func (*And) node()      {}
func (*Or) node()       {}
func (*Not) node()      {}
func (*Match) node()    {}
func (*Exists) node()   {}
func (*Range) node()    {}
func (*FullText) node() {}
