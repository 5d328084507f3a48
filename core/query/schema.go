package query

// FieldType is what a field holds, which decides the values and operators
// a query may use on it.
type FieldType int

// The field types.
const (
	// Keyword: an exact string (ids, namespaces, flow ids). field:value,
	// field:prefix*, field:*.
	Keyword FieldType = iota
	// Enum: a keyword with a closed set of values (Field.Values), matched
	// case-insensitively in queries and stored in canonical spelling.
	Enum
	// Text: full text (log messages, flow sources, errors): words and
	// phrases, a trailing * for a word prefix.
	Text
	// Number: an integer or decimal; ranges.
	Number
	// Date: an instant, stored as RFC 3339 in UTC; ranges with absolute
	// or relative (now-1d) bounds.
	Date
	// Duration: milliseconds, stored as an integer; ranges with Go or
	// ISO-8601 durations (10s, 1m30s, PT10S) or plain milliseconds.
	Duration
	// Labels: key/value pairs queried as labels.KEY:value. Stored twice:
	// as objects {key, value} under the field's name, and as keyword
	// pairs "KEY=value" in LabelPairsField, which is what queries use.
	Labels
	// Bool: true or false (field:true).
	Bool
)

func (t FieldType) String() string {
	return [...]string{"keyword", "enum", "text", "number", "date", "duration", "labels", "bool"}[t]
}

// LabelPairsField is the document field that holds a Labels field's pairs
// as "KEY=value" keywords.
const LabelPairsField = "label_pairs"

// Field is a queryable field of a document.
type Field struct {
	// Name is the field's name in queries and in documents.
	Name string
	Type FieldType
	// Values are the canonical values of an Enum field.
	Values []string
	// Doc says what the field holds (docs/search.md, error messages).
	Doc string
}

// Schema is the queryable fields of one kind of document.
type Schema struct {
	// Kind names what is searched, for errors ("executions").
	Kind   string
	Fields []*Field
	// FullText names the Text fields that bare words search; none means
	// bare words are an error.
	FullText []string
}

// Field returns the field with the given name, nil when there is none.
func (s *Schema) Field(name string) *Field {
	for _, f := range s.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Names returns the names of the queryable fields, in schema order (for
// "unknown field" errors).
func (s *Schema) Names() []string {
	out := make([]string, 0, len(s.Fields))
	for _, f := range s.Fields {
		if f.Type == Labels {
			out = append(out, f.Name+".KEY")
			continue
		}
		out = append(out, f.Name)
	}
	return out
}
