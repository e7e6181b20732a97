package preflight

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShippedClusterRoleExpands(t *testing.T) {
	perms, err := ForRun()
	require.NoError(t, err)
	have := map[string]bool{}
	for _, p := range perms {
		have[p.String()] = true
	}
	for _, want := range []string{"create namespaces", "create pods/exec", "impersonate users", "create subjectaccessreviews.authorization.k8s.io", "list nodes"} {
		assert.True(t, have[want], "the runner ClusterRole must grant %q", want)
	}
}

func TestFromClusterRoleRejectsGarbage(t *testing.T) {
	_, err := FromClusterRole([]byte("rules: [{apiGroups: [''], resources: [pods], verbs: [get], colour: red}]"))
	require.Error(t, err)
}
