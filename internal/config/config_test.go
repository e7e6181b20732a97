package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const good = `
apiVersion: bulkhead.dev/v1alpha1
kind: TenantConfig
tenants:
- name: team-a
  namespaces: [team-a-web, team-a-api]
  identities:
    users: [{name: alice, groups: [team-a]}]
    serviceAccounts: [team-a-web/deployer]
  allowedTo: [shared]
- name: team-b
  namespaceSelector:
    matchLabels: {tenant: team-b}
- name: shared
  namespaces: [shared]
probes:
  nodeSelector: {kubernetes.io/os: linux}
`

func TestParseGood(t *testing.T) {
	f, err := Parse([]byte(good))
	require.NoError(t, err)
	require.Len(t, f.Tenants, 3)
	assert.Equal(t, []string{"team-a-web", "team-a-api"}, f.Tenants[0].Namespaces)
	assert.Equal(t, "team-b", f.Tenants[1].NamespaceSelector.MatchLabels["tenant"])
	assert.Equal(t, 2, f.Probes.PerNamespace, "defaults to two probes per namespace: one cannot prove paths into it")
	assert.False(t, f.Probes.Services, "only pods in tenant namespaces unless asked")
}

func TestParseRejectsBadInput(t *testing.T) {
	head := "apiVersion: bulkhead.dev/v1alpha1\nkind: TenantConfig\n"
	cases := map[string]struct{ doc, want string }{
		"empty":                 {"", "the file is empty"},
		"not yaml":              {"tenants: [a: {", "line 1: not valid YAML"},
		"syntax error line":     {head + "tenants:\n- name: a\n   namespaces: [x]\n", "line 5: not valid YAML"},
		"unknown field":         {head + "tenants:\n- name: a\n  namespaces: [x]\n  colour: red\n- name: b\n  namespaces: [y]\n", `line 6, column 3: tenants[0].colour: unknown field "colour" (want one of name, namespaces, namespaceSelector, identities, allowedTo)`},
		"wrong kind":            {"apiVersion: v1\nkind: ConfigMap\ntenants: []\n", `line 2, column 7: kind: want TenantConfig, got "ConfigMap"`},
		"one tenant":            {head + "tenants:\n- name: a\n  namespaces: [x]\n", "line 4, column 1: tenants: need at least two tenants"},
		"no name":               {head + "tenants:\n- namespaces: [x]\n- name: b\n  namespaces: [y]\n", "line 4, column 3: tenants[0].name: name is required"},
		"bad name":              {head + "tenants:\n- name: Team_A\n  namespaces: [x]\n- name: b\n  namespaces: [y]\n", "line 4, column 9: tenants[0].name: name \"Team_A\" must be a lowercase DNS label"},
		"duplicate":             {head + "tenants:\n- name: a\n  namespaces: [x]\n- name: a\n  namespaces: [y]\n", `line 6, column 9: tenants[1].name: tenant "a" is defined twice (first as tenants[0])`},
		"no namespaces":         {head + "tenants:\n- name: a\n- name: b\n  namespaces: [y]\n", "line 4, column 3: tenants[0]: give namespaces or namespaceSelector"},
		"both":                  {head + "tenants:\n- name: a\n  namespaces: [x]\n  namespaceSelector: {matchLabels: {t: a}}\n- name: b\n  namespaces: [y]\n", "tenants[0].namespaceSelector: give namespaces or namespaceSelector, not both"},
		"empty selector":        {head + "tenants:\n- name: a\n  namespaceSelector: {}\n- name: b\n  namespaces: [y]\n", "line 5, column 22: tenants[0].namespaceSelector: an empty namespaceSelector would select every namespace"},
		"no selector value":     {head + "tenants:\n- name: a\n  namespaceSelector:\n- name: b\n  namespaces: [y]\n", "tenants[0].namespaceSelector: an empty namespaceSelector would select every namespace"},
		"shared namespace":      {head + "tenants:\n- name: a\n  namespaces: [x]\n- name: b\n  namespaces: [x]\n", "line 7, column 16: tenants[1].namespaces[0]: namespace x is also listed under tenant a"},
		"unknown flow":          {head + "tenants:\n- name: a\n  namespaces: [x]\n  allowedTo: [c]\n- name: b\n  namespaces: [y]\n", `line 6, column 15: tenants[0].allowedTo[0]: allowedTo names unknown tenant "c"`},
		"bad service account":   {head + "tenants:\n- name: a\n  namespaces: [x]\n  identities: {serviceAccounts: [deployer]}\n- name: b\n  namespaces: [y]\n", "tenants[0].identities.serviceAccounts[0]: serviceAccount \"deployer\": want namespace/name"},
		"reserved name":         {head + "tenants:\n- name: control\n  namespaces: [x]\n- name: b\n  namespaces: [y]\n", "tenants[0].name: the name \"control\" is reserved"},
		"too many probes":       {head + "tenants:\n- name: a\n  namespaces: [x]\n- name: b\n  namespaces: [y]\nprobes: {perNamespace: 9}\n", "line 8, column 24: probes.perNamespace: 9, want 1 to 4"},
		"bad selector operator": {head + "tenants:\n- name: a\n  namespaceSelector: {matchExpressions: [{key: t, operator: Near}]}\n- name: b\n  namespaces: [y]\n", "tenants[0].namespaceSelector: "},
		"namespace too long":    {head + "tenants:\n- name: a\n  namespaces: [" + strings.Repeat("a", 64) + "]\n- name: b\n  namespaces: [y]\n", "tenants[0].namespaces[0]: namespace \"" + strings.Repeat("a", 64) + "\" is not a valid namespace name: must be no more than 63 characters"},
		"user without name":     {head + "tenants:\n- name: a\n  namespaces: [x]\n  identities: {users: [{groups: [g]}]}\n- name: b\n  namespaces: [y]\n", "tenants[0].identities.users[0].name: name is required"},
		"bad node selector":     {head + "tenants:\n- name: a\n  namespaces: [x]\n- name: b\n  namespaces: [y]\nprobes: {nodeSelector: {\"a b\": c}}\n", `probes.nodeSelector["a b"]: a b: c is not a valid node label`},
		"bad toleration":        {head + "tenants:\n- name: a\n  namespaces: [x]\n- name: b\n  namespaces: [y]\nprobes: {tolerations: [{key: k, operator: Maybe, effect: Never}]}\n", `probes.tolerations[0].operator: operator "Maybe": want Equal, Exists, Lt or Gt`},
		"bad pull secret":       {head + "tenants:\n- name: a\n  namespaces: [x]\n- name: b\n  namespaces: [y]\nprobes: {imagePullSecret: Not_A_Name}\n", `probes.imagePullSecret: "Not_A_Name" is not a valid Secret name`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// names as the network-policy test tools use them: y is YAML 1.1's
// boolean, a plain string in YAML 1.2.
func TestYAML11BooleansAreNames(t *testing.T) {
	doc := func(lastTenant string) []byte {
		return []byte(`
apiVersion: bulkhead.dev/v1alpha1
kind: TenantConfig
tenants:
- {name: x, namespaces: [x]}
- {name: y, namespaces: [y, yes, n, no], identities: {users: [{name: on, groups: [off]}]}}
- {name: z, namespaces: [z, "0123", 'true', "null"], allowedTo: [y]}
` + lastTenant + `
probes:
  nodeSelector: {kubernetes.io/os: linux, example.com/enabled: "true", y: n}
  tolerations: [{key: dedicated, operator: Equal, value: "yes", effect: NoSchedule, tolerationSeconds: 30}]
  services: true
`)
	}
	_, err := Parse(doc(`- {name: "0123", namespaces: [2024-01-01], namespaceSelector: ~}`))
	require.Error(t, err, "namespaceSelector: ~ is an empty selector next to namespaces")
	assert.Contains(t, err.Error(), "tenants[3].namespaceSelector: give namespaces or namespaceSelector, not both")
	f, err := Parse(doc(`- {name: "0123", namespaces: [2024-01-01]}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"y", "yes", "n", "no"}, f.Tenants[1].Namespaces)
	assert.Equal(t, "on", f.Tenants[1].Identities.Users[0].Name)
	assert.Equal(t, []string{"off"}, f.Tenants[1].Identities.Users[0].Groups)
	assert.Equal(t, []string{"z", "0123", "true", "null"}, f.Tenants[2].Namespaces)
	assert.Equal(t, []string{"y"}, f.Tenants[2].AllowedTo)
	assert.Equal(t, "0123", f.Tenants[3].Name)
	assert.Equal(t, []string{"2024-01-01"}, f.Tenants[3].Namespaces, "a date is text in YAML 1.2")
	assert.Equal(t, map[string]string{"kubernetes.io/os": "linux", "example.com/enabled": "true", "y": "n"}, f.Probes.NodeSelector)
	require.Len(t, f.Probes.Tolerations, 1)
	assert.Equal(t, "yes", f.Probes.Tolerations[0].Value)
	assert.Equal(t, int64(30), *f.Probes.Tolerations[0].TolerationSeconds)
	assert.True(t, f.Probes.Services)
}

// A boolean, null or number where a name is expected is an error naming
// file, line, column and field, never the text "true" or "83".
func TestLoadErrorsNameFileLineColumnAndField(t *testing.T) {
	head := "apiVersion: bulkhead.dev/v1alpha1\nkind: TenantConfig\ntenants:\n- {name: a, namespaces: [a]}\n"
	cases := map[string]struct{ doc, want string }{
		"boolean namespace": {head + "- name: b\n  namespaces: [x, y,\n    true]\n",
			`tenants.yaml:7:5: tenants[1].namespaces[2]: true is a boolean where a namespace name is expected; quote it ("true")`},
		"number namespace": {head + "- name: b\n  namespaces:\n  - 0123\n",
			`tenants.yaml:7:5: tenants[1].namespaces[0]: 0123 is a number where a namespace name is expected; quote it ("0123")`},
		"float tenant name": {head + "- name: 1e3\n  namespaces: [b]\n",
			`tenants.yaml:5:9: tenants[1].name: 1e3 is a number where a tenant name is expected; quote it ("1e3")`},
		"null namespace": {head + "- name: b\n  namespaces: [~]\n",
			`tenants.yaml:6:16: tenants[1].namespaces[0]: ~ is null where a namespace name is expected; quote it ("~")`},
		"hex group": {head + "- name: b\n  namespaces: [b]\n  identities:\n    users:\n    - {name: bob, groups: [0x1f]}\n",
			`tenants.yaml:9:28: tenants[1].identities.users[0].groups[0]: 0x1f is a number where a group name is expected; quote it ("0x1f")`},
		"boolean label value": {head + "- name: b\n  namespaceSelector:\n    matchLabels: {tenant: true}\n",
			`tenants.yaml:7:27: tenants[1].namespaceSelector.matchLabels["tenant"]: true is a boolean where a string is expected; quote it ("true")`},
		"boolean selector value": {head + "- name: b\n  namespaceSelector:\n    matchExpressions: [{key: t, operator: In, values: [on, off, false]}]\n",
			`tenants.yaml:7:65: tenants[1].namespaceSelector.matchExpressions[0].values[2]: false is a boolean where a string is expected; quote it ("false")`},
		"boolean node selector": {head + "- {name: b, namespaces: [b]}\nprobes:\n  nodeSelector:\n    example.com/enabled: true\n",
			`tenants.yaml:8:26: probes.nodeSelector["example.com/enabled"]: true is a boolean where a label value is expected; quote it ("true")`},
		"boolean toleration value": {head + "- {name: b, namespaces: [b]}\nprobes:\n  tolerations:\n  - {key: dedicated, value: true}\n",
			`tenants.yaml:8:29: probes.tolerations[0].value: true is a boolean where a string is expected; quote it ("true")`},
		"number pull secret": {head + "- {name: b, namespaces: [b]}\nprobes: {imagePullSecret: 1234}\n",
			`tenants.yaml:6:27: probes.imagePullSecret: 1234 is a number where a Secret name is expected; quote it ("1234")`},
		"quoted number": {head + "- {name: b, namespaces: [b]}\nprobes: {perNamespace: \"2\"}\n",
			`tenants.yaml:6:24: probes.perNamespace: "2" is a string where a whole number is expected; write it without quotes`},
		"yes for a boolean": {head + "- {name: b, namespaces: [b]}\nprobes: {services: yes}\n",
			`tenants.yaml:6:20: probes.services: yes is a string where true or false is expected`},
		"unknown field": {head + "- {name: b, namespaces: [b]}\nbogus: 1\n",
			`tenants.yaml:6:1: bogus: unknown field "bogus" (want one of apiVersion, kind, tenants, probes)`},
		"unknown field in a selector": {head + "- name: b\n  namespaceSelector: {matchLabel: {t: b}}\n",
			`tenants.yaml:6:23: tenants[1].namespaceSelector.matchLabel: unknown field "matchLabel" (want one of matchLabels, matchExpressions)`},
		"field twice": {head + "- name: b\n  namespaces: [b]\n  name: c\n",
			`tenants.yaml:7:3: tenants[1]: "name" is given twice (first on line 5)`},
		"validation": {head + "- name: b\n  namespaces: [b, A_b]\n",
			`tenants.yaml:6:19: tenants[1].namespaces[1]: namespace "A_b" is not a valid namespace name`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "tenants.yaml")
			require.NoError(t, os.WriteFile(p, []byte(c.doc), 0o644))
			_, err := Load(p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), filepath.Dir(p)+"/"+c.want)
		})
	}
}

func TestEveryErrorIsReported(t *testing.T) {
	_, err := Parse([]byte("apiVersion: bulkhead.dev/v1alpha1\nkind: TenantConfig\ntenants:\n- {name: a, namespaces: [true]}\n- {name: B, namespaces: [b]}\nprobes: {perNamespace: 7}\n"))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 1, "decoding errors come first: validation of a half-read file would mislead")
	assert.Contains(t, lines[0], "line 4, column 26: tenants[0].namespaces[0]: true is a boolean")
	_, err = Parse([]byte("apiVersion: bulkhead.dev/v1alpha1\nkind: TenantConfig\ntenants:\n- {name: a, namespaces: [x]}\n- {name: B, namespaces: [b]}\nprobes: {perNamespace: 7}\n"))
	require.Error(t, err)
	lines = strings.Split(err.Error(), "\n")
	require.Len(t, lines, 2, err.Error())
	assert.Contains(t, lines[0], "line 5, column 10: tenants[1].name")
	assert.Contains(t, lines[1], "line 6, column 24: probes.perNamespace")
}

func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tenants.yaml")
	require.NoError(t, os.WriteFile(p, []byte("kind: Nope\n"), 0o644))
	_, err := Load(p)
	require.ErrorContains(t, err, p)
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "no such file")
}
