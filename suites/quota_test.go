package suites

import (
	"testing"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/quota"
)

// TestQuota runs the quota checks on the reference tenants, then each of
// the area's negative controls (internal/checks/quota/faults.go): a fault
// injected into tenant b that the checks must catch.
func TestQuota(t *testing.T) {
	feats := checkFeatures(quota.Checks())
	feats = append(feats, negativeFeatures(checks.Quota, quota.NegativeControls())...)
	testenv.Test(t, feats...)
}
