package query

import (
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// The lexer is participle's (as in core/expr); the parser is hand-written,
// because what a token means depends on where it stands: "and" is an
// operator between terms and a value nowhere, a ":" ends a field name in
// term position and is part of the value after it (id:abc:def,
// start > 2026-01-02T03:04:05Z). The lexer therefore cuts values at every
// ":" and the parser joins the pieces that touch (no whitespace between).
//
// No rule fails: Bad matches any character the others leave (a backslash at
// the very end), so every problem surfaces in the parser with a column and a
// message.
//
// The rules start with different characters (but String and Quote), so
// their order only matters for speed: the most frequent first.
var queryLexer = lexer.MustSimple([]lexer.SimpleRule{
	{Name: "Space", Pattern: `[\t\n\f\r ]+`},
	{Name: "Word", Pattern: `(?:\\(?s:.)|[^\t\n\f\r ()<>=:"\\])+`},
	{Name: "Colon", Pattern: `:`},
	{Name: "String", Pattern: `"(?:\\(?s:.)|[^"\\])*"`},
	{Name: "LParen", Pattern: `\(`},
	{Name: "RParen", Pattern: `\)`},
	{Name: "Op", Pattern: `[<>]=?|=`},
	{Name: "Quote", Pattern: `"`}, // a quote that is never closed
	{Name: "Bad", Pattern: `(?s:.)`},
})

// tokKind is the lexer-independent kind of a token.
type tokKind uint8

const (
	tEOF tokKind = iota
	tSpace
	tString
	tQuote
	tOp
	tLParen
	tRParen
	tColon
	tWord
	tBad
)

var tokKinds = func() map[lexer.TokenType]tokKind {
	byName := map[string]tokKind{
		"Space": tSpace, "String": tString, "Quote": tQuote, "Op": tOp, "LParen": tLParen,
		"RParen": tRParen, "Colon": tColon, "Word": tWord, "Bad": tBad,
	}
	out := map[lexer.TokenType]tokKind{lexer.EOF: tEOF}
	for name, tt := range queryLexer.Symbols() {
		if k, ok := byName[name]; ok {
			out[tt] = k
		}
	}
	return out
}()

// token is a lexed token (never Space): its text as written, where it
// starts and whether whitespace or the start of the input precedes it.
type token struct {
	kind tokKind
	val  string
	pos  Pos
}

// end is the byte offset just past the token.
func (t token) end() int { return t.pos.Offset + len(t.val) }

// tokenize lexes a query into tokens without whitespace, ending with an EOF
// token. It stops at the first Quote or Bad token: the parser fails there
// at the latest.
func tokenize(src string) ([]token, error) {
	lx, err := queryLexer.LexString("", src)
	if err != nil {
		return nil, &Error{Pos: Pos{Column: 1}, Msg: err.Error()}
	}
	toks := make([]token, 0, 16)
	col, off := 1, 0 // col is the column at byte offset off
	at := func(o int) Pos {
		if o > off {
			col += utf8.RuneCountInString(src[off:o])
			off = o
		}
		return Pos{Offset: o, Column: col}
	}
	for {
		t, err := lx.Next()
		if err != nil {
			// Unreachable with the rules above (Bad matches anything).
			return nil, &Error{Pos: at(t.Pos.Offset), Msg: err.Error()}
		}
		k := tokKinds[t.Type]
		if k == tSpace {
			continue
		}
		tok := token{kind: k, val: t.Value, pos: at(t.Pos.Offset)}
		if k == tEOF {
			tok.pos = at(len(src))
		}
		toks = append(toks, tok)
		switch k {
		case tEOF:
			return toks, nil
		case tQuote, tBad:
			return append(toks, token{kind: tEOF, pos: at(len(src))}), nil
		}
	}
}
