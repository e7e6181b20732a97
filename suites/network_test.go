package suites

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/network"
)

func TestNetwork(t *testing.T) {
	feats := checkFeatures(network.Checks())
	feats = append(feats, negativeFeatures(checks.Network, network.NegativeControls())...)
	testenv.Test(t, feats...)
}

// negativeEnv is the run's env with its own memo and a short settle
// phase: the fault is already in effect when the check runs.
func negativeEnv() *checks.Env { return checks.NegativeEnv(h.session.Env()) }

// openTenants adds an allow-all policy to each tenant and waits until the
// leak is observable; t.Cleanup removes the policies and waits until the
// isolation is back, so later features see the reference tenants again.
func openTenants(ctx context.Context, t *testing.T, names ...string) {
	t.Helper()
	restore, err := network.OpenTenants(names...)(ctx, h.session.Env())
	if restore != nil {
		t.Cleanup(func() { assert.NoError(t, restore(context.Background())) })
	}
	require.NoError(t, err)
}

// tenantPaths are the TCP paths, by pod IP, between the control namespace's
// first probe and every probe of the tenants, both ways: reachable only when
// each of those pods' ingress and egress policy lets the control through.
func tenantPaths(t *testing.T, tenants ...string) []network.Path {
	t.Helper()
	paths := network.ControlPaths(h.session.Env(), tenants...)
	require.NotEmpty(t, paths)
	return paths
}

// waitPaths polls the paths until every one is reachable (or every one is
// blocked), or a minute passes.
func waitPaths(ctx context.Context, t *testing.T, paths []network.Path, reachable bool) {
	t.Helper()
	require.NoError(t, network.WaitPaths(ctx, h.session.Env(), paths, reachable))
}

func namespaceOf(t *testing.T, tenant string) string {
	t.Helper()
	tn, ok := h.session.Env().Topology.Tenant(tenant)
	require.True(t, ok, "tenant %s in this run", tenant)
	return tn.Namespaces[0]
}
