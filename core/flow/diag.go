package flow

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalidFlow is wrapped by every error that reports problems in a flow's
// source. errors.As on *Diagnostics gives the located problems.
var ErrInvalidFlow = errors.New("invalid flow")

// Diagnostic is one problem in a flow source.
type Diagnostic struct {
	File   string
	Line   int
	Column int
	// Path is where in the flow the problem is ("tasks[1].then[0].message").
	Path    string
	Message string
	// Unsupported marks problems that come from a feature Kite does not
	// support yet, as opposed to a mistake in the flow.
	Unsupported bool
	// Warning marks a problem that does not make the flow invalid: it fails
	// only the task that meets it at run time (an expression that does not
	// parse, as in Kestra). Parser.Strict makes warnings errors.
	Warning bool
}

// String formats the diagnostic the way compilers do:
// file:line:column: path: message.
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		b.WriteString(d.File)
		b.WriteByte(':')
	}
	if d.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", d.Line, d.Column)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if d.Warning {
		b.WriteString("warning: ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is every problem found in one flow source, sorted by position.
// It is returned as an error that wraps ErrInvalidFlow.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalidFlow) true.
func (ds Diagnostics) Unwrap() error { return ErrInvalidFlow }

// OnlyUnsupported reports whether every error (warnings aside) is an
// unsupported feature.
func (ds Diagnostics) OnlyUnsupported() bool {
	n := 0
	for _, d := range ds {
		if d.Warning {
			continue
		}
		if !d.Unsupported {
			return false
		}
		n++
	}
	return n > 0
}

// Errors returns the diagnostics that are not warnings.
func (ds Diagnostics) Errors() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if !d.Warning {
			out = append(out, d)
		}
	}
	return out
}

func (ds Diagnostics) sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Line != ds[j].Line {
			return ds[i].Line < ds[j].Line
		}
		return ds[i].Column < ds[j].Column
	})
}
