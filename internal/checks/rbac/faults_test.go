package rbac_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/all"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Every rbac and secrets check has a negative control that makes it fail
// (a check that passes whatever the cluster does proves nothing), and
// every fault of the two areas expects something of a registered check.
func TestEveryAPICheckHasANegativeControl(t *testing.T) {
	reg := all.Registry()
	failing := map[string]bool{}
	for _, nc := range all.NegativeControls() {
		assert.NotNil(t, nc.Inject, nc.Fault)
		assert.NotEmpty(t, nc.Expect, nc.Fault)
		for _, e := range nc.Expect {
			_, ok := reg.Get(e.Check)
			assert.True(t, ok, "%q expects unknown check %s", nc.Fault, e.Check)
			if e.Want() == reports.Fail {
				failing[e.Check] = true
			}
		}
	}
	for _, c := range reg.All() {
		if c.Area != checks.RBAC && c.Area != checks.Secrets {
			continue
		}
		assert.True(t, failing[c.ID] || c.NoNegativeControl != "", "%s has no fault that makes it fail, and no NoNegativeControl reason", c.ID)
	}
}
