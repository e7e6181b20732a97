package config

import (
	"os"
	"path/filepath"
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
		"empty":                 {"", "empty"},
		"not yaml":              {"tenants: [a: {", "not a valid tenant config"},
		"syntax error line":     {head + "tenants:\n- name: a\n   namespaces: [x]\n", "line"},
		"unknown field":         {head + "tenants:\n- name: a\n  namespaces: [x]\n  colour: red\n- name: b\n  namespaces: [y]\n", `unknown field "colour"`},
		"wrong kind":            {"apiVersion: v1\nkind: ConfigMap\ntenants: []\n", "apiVersion/kind"},
		"one tenant":            {head + "tenants:\n- name: a\n  namespaces: [x]\n", "at least two tenants"},
		"no name":               {head + "tenants:\n- namespaces: [x]\n- name: b\n  namespaces: [y]\n", "tenants[0]: name is required"},
		"bad name":              {head + "tenants:\n- name: Team_A\n  namespaces: [x]\n- name: b\n  namespaces: [y]\n", "lowercase DNS label"},
		"duplicate":             {head + "tenants:\n- name: a\n  namespaces: [x]\n- name: a\n  namespaces: [y]\n", "defined twice"},
		"no namespaces":         {head + "tenants:\n- name: a\n- name: b\n  namespaces: [y]\n", "give namespaces or namespaceSelector"},
		"both":                  {head + "tenants:\n- name: a\n  namespaces: [x]\n  namespaceSelector: {matchLabels: {t: a}}\n- name: b\n  namespaces: [y]\n", "not both"},
		"empty selector":        {head + "tenants:\n- name: a\n  namespaceSelector: {}\n- name: b\n  namespaces: [y]\n", "every namespace"},
		"shared namespace":      {head + "tenants:\n- name: a\n  namespaces: [x]\n- name: b\n  namespaces: [x]\n", "also listed under tenant a"},
		"unknown flow":          {head + "tenants:\n- name: a\n  namespaces: [x]\n  allowedTo: [c]\n- name: b\n  namespaces: [y]\n", `unknown tenant "c"`},
		"bad service account":   {head + "tenants:\n- name: a\n  namespaces: [x]\n  identities: {serviceAccounts: [deployer]}\n- name: b\n  namespaces: [y]\n", "want namespace/name"},
		"reserved name":         {head + "tenants:\n- name: control\n  namespaces: [x]\n- name: b\n  namespaces: [y]\n", "reserved"},
		"too many probes":       {head + "tenants:\n- name: a\n  namespaces: [x]\n- name: b\n  namespaces: [y]\nprobes: {perNamespace: 9}\n", "perNamespace"},
		"bad selector operator": {head + "tenants:\n- name: a\n  namespaceSelector: {matchExpressions: [{key: t, operator: Near}]}\n- name: b\n  namespaces: [y]\n", "namespaceSelector"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tenants.yaml")
	require.NoError(t, os.WriteFile(p, []byte("kind: Nope\n"), 0o644))
	_, err := Load(p)
	require.ErrorContains(t, err, p)
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "no such file")
}
