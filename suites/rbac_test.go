package suites

import (
	"testing"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/rbac"
)

func TestRBAC(t *testing.T) {
	feats := checkFeatures(rbac.Checks())
	feats = append(feats, negativeFeatures(checks.RBAC, rbac.NegativeControls())...)
	testenv.Test(t, feats...)
}
