package suites

import (
	"context"
	"fmt"
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
			waitPaths(ctx, t, tenantPaths(t, sp.Name), false)
		})
	}
	// Injected faults must be in effect before the check runs, or a pass
	// would prove nothing about the check. Policy is programmed per pod (per
	// Cilium endpoint, node by node): wait for every pod of the tenant.
	for _, sp := range specs {
		waitPaths(ctx, t, tenantPaths(t, sp.Name), true)
	}
}

// tenantPaths are the TCP paths, by pod IP, between the control namespace's
// first probe and every probe of the tenants, both ways: reachable only when
// each of those pods' ingress and egress policy lets the control through.
func tenantPaths(t *testing.T, tenants ...string) []network.Path {
	t.Helper()
	top := h.session.Env().Topology
	ctl := top.ProbesOf(fixtures.TenantControl)
	require.NotEmpty(t, ctl)
	var paths []network.Path
	for _, tenant := range tenants {
		pods := top.ProbesOf(tenant)
		require.NotEmpty(t, pods, "probes of tenant %s", tenant)
		for _, p := range pods {
			paths = append(paths,
				network.Path{Src: ctl[0], Dst: p, Protocol: wire.TCP, Via: network.ViaPodIP, Allowed: true},
				network.Path{Src: p, Dst: ctl[0], Protocol: wire.TCP, Via: network.ViaPodIP, Allowed: true})
		}
	}
	return paths
}

// waitPaths polls the paths until every one is reachable (or every one is
// blocked), or a minute passes.
func waitPaths(ctx context.Context, t *testing.T, paths []network.Path, reachable bool) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		rs, err := network.ProbeOnce(ctx, h.session.Env(), paths)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, r := range rs {
			if (r.Last().Last.Outcome == wire.Reachable) != reachable {
				last = fmt.Sprintf("%s: %s", r.Path, r.Last().Observed)
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "waiting for %d paths to be reachable=%v (last: %s)", len(paths), reachable, last)
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
