package suites

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/exposure"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func TestExposure(t *testing.T) {
	feats := checkFeatures(exposure.Checks())
	feats = append(feats, negativeFeatures(checks.Exposure, exposure.NegativeControls())...)
	feats = append(feats, withoutNodePorts())
	testenv.Test(t, feats...)
}

// withoutNodePorts runs EXP-004 as --no-node-ports does: it publishes no
// NodePort, says so, and is not proven for node ports (nothing about them
// was evaluated), while the kubelet and API server targets are still
// probed and proven.
func withoutNodePorts() types.Feature {
	return features.New("EXP-004 with --no-node-ports publishes no NodePort").
		WithLabel(labelArea, string(checks.Exposure)).
		WithLabel(labelCheck, exposure.IDNodeAccess).
		Assess("no NodePort, said so, not proven", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			env := h.session.Env().Derive()
			env.Allow.NoNodePorts = true
			res := checks.Execute(ctx, mustCheck(t, exposure.Checks(), exposure.IDNodeAccess), env)
			t.Logf("%s with --no-node-ports: %s: %.600s", res.ID, res.Verdict, res.Reason)
			require.Equal(t, reports.Unproven, res.Verdict, res.Reason)
			assert.Contains(t, res.Reason, "--no-node-ports")
			assert.Contains(t, strings.Join(res.Notes, "\n"), "NodePort: not published (--no-node-ports)")
			tests := 0
			for _, o := range res.Observations {
				assert.NotContains(t, o.Method, exposure.PortNodePort, "no node port probed: %s", checks.DescribeOne(o))
				if o.Role == reports.RoleTest {
					tests++
					assert.True(t, o.Passed(), "the other node targets are still proven: %s", checks.DescribeOne(o))
				}
			}
			assert.Positive(t, tests)
			return ctx
		}).Feature()
}
