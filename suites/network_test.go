package suites

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/network"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func TestNetwork(t *testing.T) {
	feats := checkFeatures(network.Checks())
	feats = append(feats, negativeOneTenantOpen(), negativeBothTenantsOpen())
	testenv.Test(t, feats...)
}

// negativeOneTenantOpen opens tenant b completely. Tenant a still denies, so
// a<->b stays blocked (both ends must agree), but b is now reachable from the
// unprotected namespace and reaches it: the ingress and egress checks must
// fail and name b's pods.
func negativeOneTenantOpen() types.Feature {
	return negativeControl(checks.Network, "tenant b allows all traffic").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			openTenants(ctx, t, fixtures.TenantB)
			return ctx
		}).
		Assess("tenant ingress and egress checks fail naming tenant b's pods", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			env := negativeEnv()
			nsB, nsC := namespaceOf(t, fixtures.TenantB), namespaceOf(t, fixtures.TenantControl)
			all := network.Checks()

			ingress := failsUnderFault(ctx, t, all, network.IDTenantIngress, env)
			assert.Contains(t, ingress.Reason, nsC+"/probe-", "names the source in the control namespace")
			assert.Contains(t, ingress.Reason, "-> "+nsB+"/probe-", "names tenant b's pod as the leaking target")
			assert.NotContains(t, ingress.Reason, "positive control failed")

			egress := failsUnderFault(ctx, t, all, network.IDTenantEgress, env)
			assert.Contains(t, egress.Reason, nsB+"/probe-")
			assert.Contains(t, egress.Reason, "-> "+nsC+"/probe-")

			cross := checks.Execute(ctx, mustCheck(t, all, network.IDCrossTenant), env)
			assert.Equal(t, reports.Pass, cross.Verdict, "tenant a's own policy still blocks a<->b: %s", cross.Reason)
			return ctx
		}).Feature()
}

// negativeBothTenantsOpen opens tenants a and b: now cross-tenant traffic
// flows and the cross-tenant check must fail naming a<->b pairs in both
// directions.
func negativeBothTenantsOpen() types.Feature {
	return negativeControl(checks.Network, "tenants a and b allow all traffic").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			openTenants(ctx, t, fixtures.TenantA, fixtures.TenantB)
			return ctx
		}).
		Assess("the cross-tenant check fails naming the leaking pairs", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			env := negativeEnv()
			nsA, nsB := namespaceOf(t, fixtures.TenantA), namespaceOf(t, fixtures.TenantB)
			cross := failsUnderFault(ctx, t, network.Checks(), network.IDCrossTenant, env)
			assert.Contains(t, cross.Reason, nsA+"/probe-0 -> "+nsB+"/probe-")
			leaks := 0
			for _, o := range cross.Observations {
				if o.Role == reports.RoleTest && !o.OK {
					leaks++
					assert.Equal(t, "reachable", o.Observed, "a leak is an observed connection")
					assert.NotEqual(t, o.Actor.Tenant, o.Target.Tenant)
				}
			}
			// Every cross-tenant path leaks: 2 pods x 2 pods x 2 directions x
			// 3 address kinds x the protocols probed.
			perPair := 3 * len(protocolsOf(cross))
			assert.Equal(t, 2*2*2*perPair, leaks, "every a<->b path should leak")
			return ctx
		}).Feature()
}

// negativeEnv is the run's env with its own memo and a short enforcement
// wait: the leak is already in effect when the check runs.
func negativeEnv() *checks.Env {
	env := h.session.Env().Derive()
	env.Timing.Enforcement = 5 * time.Second
	return env
}

// openTenants adds an allow-all policy to each tenant and waits until the
// leak is observable; t.Cleanup removes the policies and waits until the
// isolation is back, so later features see the reference tenants again.
func openTenants(ctx context.Context, t *testing.T, names ...string) {
	t.Helper()
	run := h.session.RunID()
	var specs []fixtures.TenantSpec
	for _, n := range names {
		specs = append(specs, fixtures.TenantSpec{Name: n, Namespace: namespaceOf(t, n), Isolated: true})
	}
	for _, sp := range specs {
		objs, err := fixtures.RenderAllowAll(run, sp)
		require.NoError(t, err)
		require.NoError(t, h.session.CreateObjects(ctx, objs...))
		t.Cleanup(func() {
			ctx := context.Background()
			for _, o := range objs {
				assert.NoError(t, h.session.Applier().Delete(ctx, o))
			}
			waitPath(ctx, t, controlTo(t, sp.Name), false)
		})
	}
	// Injected faults must be in effect before the check runs, or a pass
	// would prove nothing about the check.
	for _, sp := range specs {
		waitPath(ctx, t, controlTo(t, sp.Name), true)
	}
}

// controlTo is the TCP path from the control namespace's first probe to the
// tenant's first probe, by pod IP.
func controlTo(t *testing.T, tenant string) network.Path {
	t.Helper()
	top := h.session.Env().Topology
	src, dst := top.ProbesOf(fixtures.TenantControl), top.ProbesOf(tenant)
	require.NotEmpty(t, src)
	require.NotEmpty(t, dst)
	return network.Path{Src: src[0], Dst: dst[0], Protocol: wire.TCP, Via: network.ViaPodIP, Allowed: true}
}

// waitPath polls one path until it is reachable (or blocked), or a minute passes.
func waitPath(ctx context.Context, t *testing.T, p network.Path, reachable bool) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		rs, err := network.ProbeOnce(ctx, h.session.Env(), []network.Path{p})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = rs[0].Observed
		return (rs[0].Last.Outcome == wire.Reachable) == reachable, nil
	})
	require.NoError(t, err, "waiting for %s to be reachable=%v (last: %s)", p, reachable, last)
}

func namespaceOf(t *testing.T, tenant string) string {
	t.Helper()
	tn, ok := h.session.Env().Topology.Tenant(tenant)
	require.True(t, ok, "tenant %s in this run", tenant)
	return tn.Namespaces[0]
}

func protocolsOf(res reports.CheckResult) []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range res.Observations {
		p, _, _ := strings.Cut(o.Method, "/")
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
