package strictyaml

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type inner struct {
	Key    string            `json:"key"`
	Values []string          `json:"values,omitempty" want:"a label value"`
	Labels map[string]string `json:"labels,omitempty"`
}

type outer struct {
	Name    string   `json:"name" want:"a tenant name"`
	Names   []string `json:"names,omitempty" want:"a namespace name"`
	Count   int      `json:"count,omitempty"`
	Small   uint8    `json:"small,omitempty"`
	On      bool     `json:"on,omitempty"`
	Seconds *int64   `json:"seconds,omitempty"`
	Inner   inner    `json:"inner,omitempty"`
	Sel     *inner   `json:"sel,omitempty"`
	Items   []inner  `json:"items,omitempty"`
	Skipped string   `json:"-"`
	embedded
}

type embedded struct {
	Extra string `json:"extra,omitempty"`
}

func decode(t *testing.T, doc string) (outer, *Doc, error) {
	t.Helper()
	var o outer
	d, err := Decode("f.yaml", []byte(doc), &o)
	return o, d, err
}

func TestStringsAreWhatYAML12Reads(t *testing.T) {
	o, _, err := decode(t, "name: y\nnames: [x, y, z, n, yes, no, on, off, 2024-01-01, \"0123\", 'true', 12:30]\ninner: {key: on}\nextra: Yes\n")
	require.NoError(t, err)
	assert.Equal(t, "y", o.Name)
	assert.Equal(t, []string{"x", "y", "z", "n", "yes", "no", "on", "off", "2024-01-01", "0123", "true", "12:30"}, o.Names)
	assert.Equal(t, "on", o.Inner.Key)
	assert.Equal(t, "Yes", o.Extra, "embedded structs are flattened like encoding/json")
}

func TestNonStringsWhereStringsAreExpected(t *testing.T) {
	cases := map[string]struct{ doc, want string }{
		"boolean":        {"names: [a, true]\n", `f.yaml:1:12: names[1]: true is a boolean where a namespace name is expected; quote it ("true")`},
		"capital bool":   {"name: False\n", `f.yaml:1:7: name: False is a boolean where a tenant name is expected; quote it ("False")`},
		"octal-looking":  {"names:\n- 0123\n", `f.yaml:2:3: names[0]: 0123 is a number where a namespace name is expected; quote it ("0123")`},
		"float":          {"name: 1e3\n", `f.yaml:1:7: name: 1e3 is a number where a tenant name is expected; quote it ("1e3")`},
		"hex":            {"name: 0x1f\n", `0x1f is a number where a tenant name is expected; quote it ("0x1f")`},
		"infinity":       {"name: .inf\n", `.inf is a number`},
		"null":           {"name: null\n", `f.yaml:1:7: name: null is null where a tenant name is expected; quote it ("null")`},
		"tilde":          {"names: [~]\n", `names[0]: ~ is null where a namespace name is expected; quote it ("~")`},
		"empty":          {"name:\n", `f.yaml:1:6: name: no value where a tenant name is expected`},
		"default noun":   {"inner: {key: 1}\n", `f.yaml:1:14: inner.key: 1 is a number where a string is expected; quote it ("1")`},
		"map value":      {"inner: {labels: {a: off, b: 0}}\n", `f.yaml:1:29: inner.labels["b"]: 0 is a number where a string is expected; quote it ("0")`},
		"list element":   {"inner: {values: [1.5]}\n", `inner.values[0]: 1.5 is a number where a label value is expected; quote it ("1.5")`},
		"map key":        {"inner: {labels: {true: a}}\n", `f.yaml:1:18: inner.labels: true is a boolean where a key is expected; quote it ("true")`},
		"list as string": {"name: [a]\n", `f.yaml:1:7: name: a list where a tenant name is expected`},
		"custom tag":     {"name: !secret a\n", `name: tag !secret is not supported`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := decode(t, c.doc)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestNumbersAndBooleans(t *testing.T) {
	o, _, err := decode(t, "count: 0123\nsmall: +7\non: TRUE\nseconds: -30\n")
	require.NoError(t, err)
	assert.Equal(t, 123, o.Count, "decimal, not octal")
	assert.Equal(t, uint8(7), o.Small)
	assert.True(t, o.On)
	require.NotNil(t, o.Seconds)
	assert.Equal(t, int64(-30), *o.Seconds)

	cases := map[string]struct{ doc, want string }{
		"quoted number": {"count: \"2\"\n", `f.yaml:1:8: count: "2" is a string where a whole number is expected; write it without quotes`},
		"word":          {"count: two\n", `count: two is a string where a whole number is expected`},
		"hex":           {"count: 0x1f\n", `count: 0x1f: write the number in decimal digits`},
		"float":         {"count: 1.5\n", `count: 1.5 is a number where a whole number is expected`},
		"overflow":      {"small: 300\n", `small: 300 is out of range`},
		"negative uint": {"small: -1\n", `small: -1 is out of range`},
		"yes":           {"on: yes\n", `f.yaml:1:5: on: yes is a string where true or false is expected`},
		"quoted bool":   {"on: \"true\"\n", `on: "true" is a string where true or false is expected`},
		"tagged bool":   {"on: !!bool maybe\n", `on: maybe is a boolean where true or false is expected`},
		"null pointer":  {"seconds: ~\n", `seconds: ~ is null where a whole number is expected`},
		"mapping":       {"count: {a: 1}\n", `count: a mapping where a whole number is expected`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := decode(t, c.doc)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestEmptyValuesOfListsAndMappings(t *testing.T) {
	o, _, err := decode(t, "names:\ninner:\nsel:\nitems: []\n")
	require.NoError(t, err)
	assert.Nil(t, o.Names)
	assert.Nil(t, o.Items, "an empty list is no list")
	require.NotNil(t, o.Sel, "an empty mapping is still given (a selector that selects everything)")
	assert.Equal(t, inner{}, *o.Sel)
}

func TestStructureErrors(t *testing.T) {
	cases := map[string]struct{ doc, want string }{
		"unknown field":       {"name: a\ncolour: red\n", `f.yaml:2:1: colour: unknown field "colour" (want one of name, names, count, small, on, seconds, inner, sel, items, extra)`},
		"nested unknown":      {"items:\n- key: a\n  bogus: 1\n", `f.yaml:3:3: items[0].bogus: unknown field "bogus" (want one of key, values, labels)`},
		"case matters":        {"Name: a\n", `unknown field "Name"`},
		"ignored field":       {"Skipped: a\n", `unknown field "Skipped"`},
		"twice":               {"name: a\nnames: [b]\nname: c\n", `f.yaml:3:1: "name" is given twice (first on line 1)`},
		"map key twice":       {"inner: {labels: {a: x, a: y}}\n", `inner.labels: "a" is given twice`},
		"alias":               {"name: &n a\nextra: *n\n", `f.yaml:2:8: extra: aliases (*n) are not supported`},
		"merge":               {"inner: &i {key: a}\nsel:\n  <<: *i\n", `merge keys (<<) are not supported`},
		"scalar for struct":   {"inner: a\n", `f.yaml:1:8: inner: a is a string where a mapping is expected`},
		"string for list":     {"names: team-a\n", `names: team-a is a string where a list is expected; for a list of one, write [team-a]`},
		"list for a document": {"- a\n", `f.yaml:1:1: a list where a mapping is expected`},
		"second document":     {"name: a\n---\nname: b\n", `f.yaml:3:1: a second YAML document`},
		"syntax":              {"name: a\n  names: [x]\n", `f.yaml:2: not valid YAML: mapping values are not allowed in this context`},
		"empty":               {"", `f.yaml: the file is empty`},
		"comments only":       {"# nothing\n", `f.yaml: the file is empty`},
		"lone surrogate":      {"name: \"\\udc00\"\n", `not valid YAML: found invalid Unicode character escape code`},
		"invalid UTF-8":       {"names: [a]\nname: a\xffb\n", `f.yaml:2:8: not valid YAML`},
		"control character":   {"names: [a]\nname: a\x01b\n", `f.yaml:2:8: not valid YAML: control characters are not allowed`},
		"escaped control":     {"name: \"a\\x01b\"\n", `f.yaml:1:7: name: "a\x01b" holds U+0001, which is not printable text`},
		"line separator":      {"name: \"a\\u2028b\"\n", `name: "a\u2028b" holds U+2028, which is not printable text`},
		"escaped key":         {"inner: {labels: {\"\\x7f\": a}}\n", `inner.labels: key "\x7f" holds U+007F, which is not printable text`},
		"unknown anchor":      {"name: a\nnames: [b, *nope]\n", `f.yaml:2:12: not valid YAML: unknown anchor 'nope' referenced`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := decode(t, c.doc)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestEveryProblemIsReportedInFileOrder(t *testing.T) {
	_, _, err := decode(t, "names: [a, true]\ncount: x\nname: 0\nbogus: 1\n")
	var es Errors
	require.True(t, errors.As(err, &es))
	require.Len(t, es, 4)
	for i, line := range []int{1, 2, 3, 4} {
		assert.Equal(t, line, es[i].Line, es[i].Error())
	}
	assert.Equal(t, "names[1]", es[0].Path)
}

func TestPositionsOfFieldsForValidation(t *testing.T) {
	_, d, err := decode(t, "name: a\nitems:\n- key: a\n- key: b\n  labels: {x.y/z: v}\n")
	require.NoError(t, err)
	line, col := d.At("items[1].key")
	assert.Equal(t, []int{4, 8}, []int{line, col})
	line, col = d.At(`items[1].labels["x.y/z"]`)
	assert.Equal(t, []int{5, 19}, []int{line, col})
	line, col = d.At("items[0].values")
	assert.Equal(t, []int{3, 3}, []int{line, col}, "a missing field is placed at its parent")
	assert.Equal(t, "f.yaml:4:3: items[1]: something is wrong", d.Errorf("items[1]", "something is wrong").Error())
	line, _ = d.At("nowhere")
	assert.Equal(t, 1, line, "an unknown top-level path is placed at the document")
}

func TestDecodeWantsAPointer(t *testing.T) {
	_, err := Decode("", []byte("a: b\n"), outer{})
	require.Error(t, err)
}

func TestErrorWithoutFileOrPosition(t *testing.T) {
	assert.Equal(t, "line 3, column 4: a: m", (&Error{Line: 3, Column: 4, Path: "a", Msg: "m"}).Error())
	assert.Equal(t, "line 3: m", (&Error{Line: 3, Msg: "m"}).Error())
	assert.Equal(t, "f: m", (&Error{File: "f", Msg: "m"}).Error())
	assert.Equal(t, "m", (&Error{Msg: "m"}).Error())
	assert.NoError(t, Errors(nil).Err())
}
