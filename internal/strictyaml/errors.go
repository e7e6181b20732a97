package strictyaml

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem at a place in a YAML file.
type Error struct {
	// File names the file ("" when the input had no name).
	File string
	// Line and Column (1-based) of the node the problem is about; 0 when
	// YAML does not know it.
	Line, Column int
	// Path is the field, as tenants[1].namespaces[2] or
	// probes.nodeSelector["kubernetes.io/os"]; "" for the document as a
	// whole (a syntax error, an empty file).
	Path string
	Msg  string
	// Document: the problem is with the document as a whole (not valid
	// YAML, empty, a second document, not a mapping); Path is "".
	Document bool
}

// Error reads like a compiler's, "tenants.yaml:7:5: tenants[1].name: msg",
// or "line 7, column 5: ..." when the input has no file name.
func (e *Error) Error() string {
	var where string
	switch {
	case e.File != "" && e.Line > 0 && e.Column > 0:
		where = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
	case e.File != "" && e.Line > 0:
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	case e.File != "":
		where = e.File
	case e.Line > 0 && e.Column > 0:
		where = fmt.Sprintf("line %d, column %d", e.Line, e.Column)
	case e.Line > 0:
		where = fmt.Sprintf("line %d", e.Line)
	}
	var b strings.Builder
	if where != "" {
		b.WriteString(where + ": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors are the problems of one file, in the order they appear in it.
type Errors []*Error

// Error is one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns es sorted by position, or nil when there is none.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return es
}
