package actors

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDeniedSubjectOfEscalationPrevention(t *testing.T) {
	msg := `rolebindings.rbac.authorization.k8s.io "x" is forbidden: user "alice" (groups=["team-a" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:` + "\n{APIGroups:[\"*\"]}"
	assert.Equal(t, "alice", DeniedSubject(msg))
	assert.True(t, DeniesIdentity(msg, alice))
	assert.False(t, DeniesIdentity(msg, ci))
}
