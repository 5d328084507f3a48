package expr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// srcPos is a position within a template or expression source: 1-based line
// and column (in runes) and the 0-based byte offset.
type srcPos struct {
	Line, Column, Offset int
}

// SyntaxError is a template or expression that does not parse. Line and
// Column are 1-based and count within the source string given to Parse.
type SyntaxError struct {
	Line   int
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Position is where the error is, within the source given to Parse.
func (e *SyntaxError) Position() (line, column int) { return e.Line, e.Column }

// Detail is the message without the position.
func (e *SyntaxError) Detail() string { return e.Msg }

func syntaxErrorf(p srcPos, format string, args ...any) *SyntaxError {
	return &SyntaxError{Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)}
}

// ErrLimit is wrapped by errors caused by a render limit (output size,
// recursion depth, range size, loop iterations).
var ErrLimit = errors.New("render limit exceeded")

// RenderError is a failure while rendering one block of a template. Block is
// the source of the failing "{{ … }}" or "{% … %}" block (shortened when
// long); Line and Column locate the failing sub-expression in the template.
type RenderError struct {
	Block  string
	Line   int
	Column int
	Err    error
}

func (e *RenderError) Error() string {
	return fmt.Sprintf("rendering %q: %v (line %d, column %d)", e.Block, e.Err, e.Line, e.Column)
}

func (e *RenderError) Unwrap() error { return e.Err }

// UndefinedError is an access to something that does not exist: a missing
// variable or map key, a list index out of range, or an attribute of null or
// of a scalar. Under "??", "default", "is defined" and "is null" it counts as
// null instead of failing.
type UndefinedError struct {
	// Path is the expression that could not be resolved, e.g. outputs.t1.
	Path string
	// Msg describes the failure; empty means a missing variable.
	Msg string
}

func (e *UndefinedError) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	return fmt.Sprintf("missing variable %q", e.Path)
}

func isUndefined(err error) bool {
	var u *UndefinedError
	return errors.As(err, &u)
}

// posError carries the position of the sub-expression that failed up to the
// block, which turns it into a RenderError.
type posError struct {
	pos srcPos
	err error
}

func (e *posError) Error() string { return e.err.Error() }
func (e *posError) Unwrap() error { return e.err }

func atPos(p srcPos, err error) error {
	var pe *posError
	if errors.As(err, &pe) {
		return err
	}
	return &posError{pos: p, err: err}
}

func errorAt(p srcPos, format string, args ...any) error {
	return &posError{pos: p, err: fmt.Errorf(format, args...)}
}

// blockError wraps err, raised while evaluating block, as a RenderError.
func blockError(b *block, err error) error {
	line, col := b.pos.Line, b.pos.Column
	var pe *posError
	if errors.As(err, &pe) {
		line, col = pe.pos.Line, pe.pos.Column
		err = pe.err
	}
	return &RenderError{Block: b.snippet(), Line: line, Column: col, Err: err}
}

// block is the source of one "{{ … }}" or "{% … %}" block, for errors.
type block struct {
	src string
	pos srcPos
}

const maxSnippet = 120

func (b *block) snippet() string {
	if len(b.src) <= maxSnippet {
		return b.src
	}
	cut := maxSnippet
	for cut > 0 && !isRuneStart(b.src[cut]) {
		cut--
	}
	return b.src[:cut] + "…"
}

func isRuneStart(c byte) bool { return c&0xC0 != 0x80 }

// quoteKey renders a map key for a path in an error message.
func quoteKey(k string) string {
	if isIdent(k) {
		return "." + k
	}
	return "[" + singleQuote(k) + "]"
}

func singleQuote(s string) string {
	q := strconv.Quote(s)
	q = q[1 : len(q)-1]
	q = strings.ReplaceAll(q, `\"`, `"`)
	q = strings.ReplaceAll(q, `'`, `\'`)
	return "'" + q + "'"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}
