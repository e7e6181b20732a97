// Package strictyaml decodes the YAML files people write for bulkhead (the
// tenant config, waivers) into Go structs, so that what the file says is
// what bulkhead acts on, and every mistake is named by file, line, column
// and field:
//
//	tenants.yaml:7:5: tenants[1].namespaces[2]: true is a boolean where a namespace name is expected; quote it ("true")
//
// The rule, for every field:
//
//   - Values are read as YAML 1.2 (go.yaml.in/yaml/v3): y, n, yes, no, on
//     and off are plain strings, as are dates.
//   - Where a string is expected, a plain true/false, null/~ or number
//     (123, 0123, 1e3, 0x1f, .inf) is an error, not silently turned into
//     the text "true" or "83": the value must be quoted. Where a number or
//     a boolean is expected, a string (a quoted "2", yes) is an error.
//   - An empty value (nothing after the colon, null, ~) is an empty list or
//     mapping where one is expected, and an error where a string, number
//     or boolean is.
//   - Field names are the json tags of the Go types, matched exactly;
//     unknown and repeated fields are errors. Anchors, aliases, merge keys,
//     custom tags and a second document are errors.
//
// A field's `want:"a namespace name"` tag names what a string field holds
// in messages ("a string" otherwise).
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Doc is a decoded file: where each field was written, for messages about
// it (see Errorf).
type Doc struct {
	file string
	at   map[string]pos
}

type pos struct{ line, col int }

// At returns where the field at path was written, or where the nearest
// enclosing field that was written starts (a missing field is reported at
// its parent); 0, 0 when nothing is known.
func (d *Doc) At(path string) (line, col int) {
	for {
		if p, ok := d.at[path]; ok {
			return p.line, p.col
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			if p, ok := d.at[""]; ok && path != "" {
				return p.line, p.col
			}
			return 0, 0
		}
		path = path[:i]
	}
}

// Errorf returns an error about the field at path, at its position (see At).
func (d *Doc) Errorf(path, format string, args ...any) *Error {
	line, col := d.At(path)
	return &Error{File: d.file, Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Decode reads data, a single YAML document, into out (a pointer to a
// struct) by the rules of the package comment. file names the input in
// errors ("" for none). On error, out may be partly filled; the error is
// Errors, every problem found, in file order.
func Decode(file string, data []byte, out any) (*Doc, error) {
	doc := &Doc{file: file, at: map[string]pos{}}
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return doc, fmt.Errorf("strictyaml: decode into %T, want a non-nil pointer", out)
	}
	d := &decoder{doc: doc}
	root := d.parse(data)
	if root != nil {
		d.value(root, rv.Elem(), "", "")
	}
	return doc, d.errs.Err()
}

type decoder struct {
	doc  *Doc
	errs Errors
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.doc.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...), Document: path == ""})
}

// yamlLine finds the line in go.yaml.in/yaml/v3's syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse returns the document's root node, or nil after recording why not.
func (d *decoder) parse(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) || err == nil && (len(doc.Content) == 0 || isNull(doc.Content[0]) && doc.Content[0].Value == "") {
		d.errs = append(d.errs, &Error{File: d.doc.file, Msg: "the file is empty", Document: true})
		return nil
	}
	if err != nil {
		d.syntax(err, data)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		at := &next
		if len(next.Content) > 0 {
			at = next.Content[0]
		}
		d.fail(at, "", "a second YAML document (after ---): the file holds one")
		return nil
	case !errors.Is(err, io.EOF):
		d.syntax(err, data)
		return nil
	}
	return doc.Content[0]
}

// parserProblems are go.yaml.in/yaml/v3's parser (not scanner) errors,
// whose "line N" counts from 0 (its scanner errors count from 1). The
// line is where the construct the parser was in began.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

var unknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)

func (d *decoder) syntax(err error, data []byte) {
	e := &Error{File: d.doc.file, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Document: true}
	// Errors go.yaml.in/yaml/v3 gives no line for: find the place.
	if m := unknownAnchor.FindStringSubmatch(err.Error()); m != nil {
		e.Line, e.Column = find(data, regexp.MustCompile(`\*`+regexp.QuoteMeta(m[1])+`([\s,\]}]|$)`).FindIndex(data))
	}
	if strings.Contains(err.Error(), "control characters are not allowed") || strings.Contains(err.Error(), "UTF-8") {
		for i, r := range string(data) {
			if r == utf8.RuneError || !yamlChar(r) {
				e.Line, e.Column = find(data, []int{i})
				break
			}
		}
	}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		if parserProblems[m[2]] {
			e.Line++
		}
		// At the end of the input, the parser counts a line the file does not have.
		e.Line = min(e.Line, bytes.Count(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))+1)
		e.Msg = "not valid YAML: " + m[2]
	}
	d.errs = append(d.errs, e)
}

// find is the line and column of the byte at loc[0] (0, 0 for no loc).
func find(data []byte, loc []int) (line, col int) {
	if loc == nil {
		return 0, 0
	}
	before := data[:loc[0]]
	line = bytes.Count(before, []byte("\n")) + 1
	return line, utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
}

// yamlChar: the characters YAML allows in a file.
func yamlChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
		r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
}

// textChar: the characters a value may hold: what YAML allows in a file,
// without the line and paragraph separators and the byte order mark, which
// YAML would read as line breaks or drop when the value is written back.
func textChar(r rune) bool {
	return yamlChar(r) && r != 0x85 && r != 0x2028 && r != 0x2029 && r != 0xfeff
}

// badChar is the first character of s a value may not hold.
func badChar(s string) (rune, bool) {
	for _, r := range s {
		if !textChar(r) {
			return r, true
		}
	}
	return 0, false
}

// Tags as go.yaml.in/yaml/v3 resolves them (Node.ShortTag).
const (
	tagStr       = "!!str"
	tagBool      = "!!bool"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagNull      = "!!null"
	tagTimestamp = "!!timestamp"
	tagMerge     = "!!merge"
	tagSeq       = "!!seq"
	tagMap       = "!!map"
)

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull }

// isString: a quoted scalar, or a plain one YAML 1.2 reads as text. Dates
// are text in YAML 1.2 (the timestamp type is YAML 1.1's).
func isString(n *yaml.Node) bool {
	t := n.ShortTag()
	return n.Kind == yaml.ScalarNode && (t == tagStr || t == tagTimestamp)
}

var standardTags = map[string]bool{tagStr: true, tagBool: true, tagInt: true, tagFloat: true,
	tagNull: true, tagTimestamp: true, tagMerge: true, tagSeq: true, tagMap: true}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path, want string) {
	d.doc.at[path] = pos{n.Line, n.Column}
	if n.Kind == yaml.AliasNode {
		d.fail(n, path, "aliases (*%s) are not supported: write the value out", n.Value)
		return
	}
	if t := n.ShortTag(); !standardTags[t] {
		d.fail(n, path, "tag %s is not supported", t)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) && !isContainer(v.Type().Elem()) {
			d.mismatch(n, path, noun(v.Type().Elem(), want))
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path, want)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.list(n, v, path, want)
	case reflect.Map:
		d.mapping(n, v, path, want)
	case reflect.String:
		if !isString(n) {
			d.mismatch(n, path, noun(v.Type(), want), quoteIt(n))
			return
		}
		if !utf8.ValidString(n.Value) {
			d.fail(n, path, "%s is not valid UTF-8 text", show(n))
			return
		}
		if r, bad := badChar(n.Value); bad {
			d.fail(n, path, "%s holds %U, which is not printable text", show(n), r)
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tagBool || err != nil {
			d.mismatch(n, path, noun(v.Type(), want))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !d.isDecimal(n, path, v.Type(), want) {
			return
		}
		i, err := strconv.ParseInt(n.Value, 10, v.Type().Bits())
		if err != nil {
			d.fail(n, path, "%s is out of range for a whole number here", show(n))
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !d.isDecimal(n, path, v.Type(), want) {
			return
		}
		u, err := strconv.ParseUint(strings.TrimPrefix(n.Value, "+"), 10, v.Type().Bits())
		if err != nil {
			d.fail(n, path, "%s is out of range for a whole number of at least 0 here", show(n))
			return
		}
		v.SetUint(u)
	default:
		d.fail(n, path, "bulkhead cannot read a %s here (a bug: please report it)", v.Type())
	}
}

var decimal = regexp.MustCompile(`^[-+]?[0-9]+$`)

func (d *decoder) isDecimal(n *yaml.Node, path string, t reflect.Type, want string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tagInt {
		hint := ""
		if isString(n) && decimal.MatchString(n.Value) {
			hint = "; write it without quotes"
		}
		d.mismatch(n, path, noun(t, want), hint)
		return false
	}
	if !decimal.MatchString(n.Value) {
		d.fail(n, path, "%s: write the number in decimal digits", show(n))
		return false
	}
	return true
}

func isContainer(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Map:
		return true
	}
	return false
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return // nothing after the colon: an empty mapping
	}
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, path, "a mapping")
		return
	}
	fields := fieldsOf(v.Type())
	d.entries(n, path, func(name string, k, val *yaml.Node) {
		f, ok := fields.byName[name]
		if !ok {
			d.fail(k, join(path, name), "unknown field %q (want one of %s)", name, strings.Join(fields.names, ", "))
			return
		}
		d.value(val, v.FieldByIndex(f.index), join(path, name), f.want)
	})
}

// entries calls each for every entry of mapping n whose key reads (see key).
func (d *decoder) entries(n *yaml.Node, path string, each func(name string, k, v *yaml.Node)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if name, ok := d.key(n.Content[i], path, seen); ok {
			each(name, n.Content[i], n.Content[i+1])
		}
	}
}

// key reads a mapping key: a string, given once.
func (d *decoder) key(k *yaml.Node, path string, seen map[string]*yaml.Node) (string, bool) {
	switch {
	case k.Kind == yaml.AliasNode:
		d.fail(k, path, "aliases (*%s) are not supported: write the key out", k.Value)
		return "", false
	case k.Kind == yaml.ScalarNode && k.ShortTag() == tagMerge:
		d.fail(k, path, "merge keys (<<) are not supported: write the fields out")
		return "", false
	case !isString(k):
		d.mismatch(k, path, "a key", quoteIt(k))
		return "", false
	case !utf8.ValidString(k.Value):
		d.fail(k, path, "key %s is not valid UTF-8 text", show(k))
		return "", false
	}
	if r, bad := badChar(k.Value); bad {
		d.fail(k, path, "key %s holds %U, which is not printable text", show(k), r)
		return "", false
	}
	if first, dup := seen[k.Value]; dup {
		d.fail(k, path, "%q is given twice (first on line %d)", k.Value, first.Line)
		return "", false
	}
	seen[k.Value] = k
	return k.Value, true
}

func (d *decoder) list(n *yaml.Node, v reflect.Value, path, want string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if isString(n) {
			hint = fmt.Sprintf("; for a list of one, write [%s]", n.Value)
		}
		d.mismatch(n, path, "a list", hint)
		return
	}
	if len(n.Content) == 0 {
		return // an empty list is no list
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), want)
	}
	v.Set(s)
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path, want string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, path, "a mapping")
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.fail(n, path, "bulkhead cannot read a %s here (a bug: please report it)", t)
		return
	}
	if len(n.Content) == 0 {
		return // an empty mapping is no mapping
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	d.entries(n, path, func(name string, _, val *yaml.Node) {
		elem := reflect.New(t.Elem()).Elem()
		d.value(val, elem, path+"["+strconv.Quote(name)+"]", want)
		m.SetMapIndex(reflect.ValueOf(name).Convert(t.Key()), elem)
	})
	v.Set(m)
}

// mismatch reports a node that is not what the field holds (want).
func (d *decoder) mismatch(n *yaml.Node, path, want string, hint ...string) {
	var msg string
	switch {
	case isNull(n) && n.Value == "":
		msg = "no value where " + want + " is expected"
	case n.Kind == yaml.ScalarNode:
		msg = fmt.Sprintf("%s is %s where %s is expected", show(n), describe(n), want)
	default:
		msg = fmt.Sprintf("%s where %s is expected", describe(n), want)
	}
	d.fail(n, path, "%s%s", msg, strings.Join(hint, ""))
}

// quoteIt is the hint for a plain scalar YAML did not read as a string.
func quoteIt(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || isNull(n) && n.Value == "" {
		return ""
	}
	return fmt.Sprintf("; quote it (%q)", n.Value)
}

// describe says what YAML read a node as.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case tagBool:
		return "a boolean"
	case tagInt, tagFloat:
		return "a number"
	case tagNull:
		return "null"
	case tagStr, tagTimestamp:
		return "a string"
	}
	return "a " + n.ShortTag() + " value"
}

// show is a scalar as written (quoted if it was), shortened.
func show(n *yaml.Node) string {
	v := n.Value
	if r := []rune(v); len(r) > 60 {
		v = string(r[:57]) + "..."
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 || !utf8.ValidString(v) || strings.ContainsAny(v, "\n\t") {
		return strconv.Quote(v)
	}
	return v
}

// noun is what a field of type t holds, for messages.
func noun(t reflect.Type, want string) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	}
	if want != "" {
		return want
	}
	return "a string"
}

type field struct {
	index []int
	want  string
}

type fieldSet struct {
	byName map[string]field
	names  []string // in declaration order, for messages
}

var fieldCache sync.Map // reflect.Type -> fieldSet

// fieldsOf lists the fields of a struct type by their json names, as
// encoding/json does (untagged embedded structs are flattened).
func fieldsOf(t reflect.Type) fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(fieldSet)
	}
	fs := fieldSet{byName: map[string]field{}}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), index...), i)
			if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, idx)
				continue
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if _, dup := fs.byName[name]; dup {
				continue
			}
			fs.byName[name] = field{index: idx, want: sf.Tag.Get("want")}
			fs.names = append(fs.names, name)
		}
	}
	walk(t, nil)
	fieldCache.Store(t, fs)
	return fs
}
