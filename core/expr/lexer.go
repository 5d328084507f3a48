package expr

import (
	"errors"
	"fmt"

	"github.com/alecthomas/participle/v2/lexer"
)

// The lexer is participle's stateful lexer. Template text is lexed in the
// Root state; "{{" and "{%" push the Print and Tag states, which hold the
// expression rules and pop on "}}" and "%}". A "{" inside an expression pushes
// the Brace state so that "}}" closing a map literal ({'a': {'b': 1}}) is not
// taken for the end of the block. Comments and raw blocks are single tokens.
//
// No rule fails: text matches anything in Root and the last expression rule
// (Bad) matches any single character, so every problem surfaces in the parser
// with a position and a message a person can act on.

// exprRules are the tokens of an expression, shared by every expression state.
var exprRules = []lexer.Rule{
	{Name: "String", Pattern: `"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'`},
	{Name: "BadString", Pattern: `["']`},
	{Name: "Float", Pattern: `\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+`},
	{Name: "Int", Pattern: `\d+`},
	{Name: "Ident", Pattern: `[A-Za-z_][A-Za-z0-9_]*`},
	{Name: "LBrace", Pattern: `\{`, Action: lexer.Push("Brace")},
	{Name: "Op", Pattern: `\?\?\?|\?\?|\.\.|==|!=|<=|>=|[-+*/%~<>()\[\],:.?|=!}]`},
	{Name: "Bad", Pattern: `(?s:.)`},
}

func withRules(head []lexer.Rule, tail []lexer.Rule) []lexer.Rule {
	out := make([]lexer.Rule, 0, len(head)+len(tail))
	out = append(out, head...)
	return append(out, tail...)
}

var whitespace = lexer.Rule{Name: "whitespace", Pattern: `\s+`}

// templateLexer lexes a whole template.
var templateLexer = lexer.MustStateful(lexer.Rules{
	"Root": {
		{Name: "Comment", Pattern: `\{#(?s:.*?)#\}`},
		{Name: "CommentOpen", Pattern: `\{#`},
		{Name: "Raw", Pattern: `\{%-?\s*raw\s*-?%\}(?s:.*?)\{%-?\s*endraw\s*-?%\}|\{%-?\s*verbatim\s*-?%\}(?s:.*?)\{%-?\s*endverbatim\s*-?%\}`},
		{Name: "RawOpen", Pattern: `\{%-?\s*(?:raw|verbatim)\s*-?%\}`},
		{Name: "PrintOpen", Pattern: `\{\{-?`, Action: lexer.Push("Print")},
		{Name: "TagOpen", Pattern: `\{%-?`, Action: lexer.Push("Tag")},
		{Name: "Text", Pattern: `[^{]+|\{`},
	},
	"Print": withRules([]lexer.Rule{whitespace, {Name: "PrintClose", Pattern: `-?\}\}`, Action: lexer.Pop()}}, exprRules),
	"Tag":   withRules([]lexer.Rule{whitespace, {Name: "TagClose", Pattern: `-?%\}`, Action: lexer.Pop()}}, exprRules),
	"Brace": withRules([]lexer.Rule{whitespace, {Name: "RBrace", Pattern: `\}`, Action: lexer.Pop()}}, exprRules),
})

// exprLexer lexes a bare expression (Engine.Eval).
var exprLexer = lexer.MustStateful(lexer.Rules{
	"Root":  withRules([]lexer.Rule{whitespace}, exprRules),
	"Brace": withRules([]lexer.Rule{whitespace, {Name: "RBrace", Pattern: `\}`, Action: lexer.Pop()}}, exprRules),
})

// tokKind is the lexer-independent kind of a token.
type tokKind uint8

const (
	tEOF tokKind = iota
	tText
	tComment
	tCommentOpen
	tRaw
	tRawOpen
	tPrintOpen
	tPrintClose
	tTagOpen
	tTagClose
	tString
	tBadString
	tFloat
	tInt
	tIdent
	tLBrace
	tRBrace
	tOp
	tBad
)

var kindByName = map[string]tokKind{
	"Text": tText, "Comment": tComment, "CommentOpen": tCommentOpen, "Raw": tRaw, "RawOpen": tRawOpen,
	"PrintOpen": tPrintOpen, "PrintClose": tPrintClose, "TagOpen": tTagOpen, "TagClose": tTagClose,
	"String": tString, "BadString": tBadString, "Float": tFloat, "Int": tInt, "Ident": tIdent,
	"LBrace": tLBrace, "RBrace": tRBrace, "Op": tOp, "Bad": tBad,
}

func kindTable(def *lexer.StatefulDefinition) map[lexer.TokenType]tokKind {
	out := map[lexer.TokenType]tokKind{lexer.EOF: tEOF}
	for name, tt := range def.Symbols() {
		if k, ok := kindByName[name]; ok {
			out[tt] = k
		}
	}
	return out
}

var (
	templateKinds = kindTable(templateLexer)
	exprKinds     = kindTable(exprLexer)
)

// token is a lexed token with its 1-based position and byte offset.
type token struct {
	kind   tokKind
	val    string
	line   int
	col    int
	offset int
}

func (t token) pos() srcPos { return srcPos{Line: t.line, Column: t.col, Offset: t.offset} }

// describe names a token for an error message.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tText:
		return "text"
	case tString:
		return "string " + t.val
	default:
		return fmt.Sprintf("%q", t.val)
	}
}

// tokenize lexes src with def into tokens, ending with an EOF token.
func tokenize(def *lexer.StatefulDefinition, kinds map[lexer.TokenType]tokKind, src string) ([]token, error) {
	lx, err := def.LexString("", src)
	if err != nil {
		return nil, fmt.Errorf("lexing: %w", err)
	}
	toks := make([]token, 0, 16)
	for {
		t, err := lx.Next()
		if err != nil {
			// Unreachable with the rules above; kept so a rule change fails cleanly.
			var le *lexer.Error
			if errors.As(err, &le) {
				return nil, &SyntaxError{Line: le.Pos.Line, Column: le.Pos.Column, Msg: le.Msg}
			}
			return nil, &SyntaxError{Line: 1, Column: 1, Msg: err.Error()}
		}
		tok := token{kind: kinds[t.Type], val: t.Value, line: t.Pos.Line, col: t.Pos.Column, offset: t.Pos.Offset}
		toks = append(toks, tok)
		switch tok.kind {
		case tEOF:
			return toks, nil
		case tCommentOpen, tRawOpen, tBadString, tBad:
			// The parser fails at this token at the latest, so lexing stops:
			// each of these would rescan the rest of the input again.
			return append(toks, token{kind: tEOF, line: tok.line, col: tok.col + 1, offset: tok.offset + len(tok.val)}), nil
		}
	}
}
