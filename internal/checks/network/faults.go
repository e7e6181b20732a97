package network

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// NegativeControls are the faults that must make the network checks fail,
// injected into the run's reference tenants a and b.
func NegativeControls() []checks.NegativeControl {
	return []checks.NegativeControl{
		{
			// b open, a still denying: a<->b stays blocked (both ends must
			// agree), but b is reachable from the unprotected namespace and
			// reaches it.
			Fault:  "tenant b allows all traffic",
			Inject: OpenTenants(fixtures.TenantB),
			Expect: []checks.Expectation{
				{Check: IDTenantIngress, Names: leakNames(fixtures.TenantControl, fixtures.TenantB)},
				{Check: IDTenantEgress, Names: leakNames(fixtures.TenantB, fixtures.TenantControl)},
				{Check: IDCrossTenant, Verdict: reports.Pass},
			},
		},
		{
			Fault:  "tenants a and b allow all traffic",
			Inject: OpenTenants(fixtures.TenantA, fixtures.TenantB),
			Expect: []checks.Expectation{{Check: IDCrossTenant, Names: leakNames(fixtures.TenantA, fixtures.TenantB), Assert: everyCrossPathLeaks}},
		},
		{
			// A tenant whose own policy denies even its own pods: that is
			// where the broken control belongs (NET-004, NET-005); the
			// blocked paths into b prove nothing now, and nothing leaked.
			Fault:  "tenant b denies its own pods' traffic and DNS",
			Inject: lockTenant(fixtures.TenantB),
			Expect: []checks.Expectation{
				{Check: IDSameTenant, Names: leakNames(fixtures.TenantB, fixtures.TenantB)},
				{Check: IDDNS, Names: func(env *checks.Env) []string { return []string{namespace(env, fixtures.TenantB) + "/probe-"} }},
				{Check: IDCrossTenant, Verdict: reports.Unproven, Names: func(env *checks.Env) []string {
					return []string{"not shown", namespace(env, fixtures.TenantB) + "/probe-0 answers"}
				}, Assert: onlyPathsOfUnproven(fixtures.TenantB)},
			},
		},
	}
}

func namespace(env *checks.Env, tenant string) string {
	t, ok := env.Topology.Tenant(tenant)
	if !ok || len(t.Namespaces) == 0 {
		return "(no tenant " + tenant + ")"
	}
	return t.Namespaces[0]
}

// leakNames: the failing reason names a path from tenant src to tenant dst.
func leakNames(src, dst string) func(env *checks.Env) []string {
	return func(env *checks.Env) []string {
		return []string{namespace(env, src) + "/probe-", "-> " + namespace(env, dst) + "/probe-"}
	}
}

// everyCrossPathLeaks: with both tenants open, every a<->b path in every
// counted round connected.
func everyCrossPathLeaks(env *checks.Env, res reports.CheckResult) []string {
	var problems []string
	tests, leaks := 0, 0
	for _, o := range res.Observations {
		if o.Role != reports.RoleTest {
			continue
		}
		tests++
		if o.Leak() {
			leaks++
			if o.Observed != ObservedReachable {
				problems = append(problems, "a leak must be an observed connection: "+checks.DescribeOne(o))
			}
		}
	}
	if tests == 0 || leaks != tests {
		problems = append(problems, fmt.Sprintf("%d of %d cross-tenant path rounds leaked, want all", leaks, tests))
	}
	return problems
}

// onlyPathsOfUnproven: the unproven paths are those into or out of tenant;
// every other tenant's paths stay proven.
func onlyPathsOfUnproven(tenant string) func(env *checks.Env, res reports.CheckResult) []string {
	return func(env *checks.Env, res reports.CheckResult) []string {
		var problems []string
		for _, o := range res.Observations {
			if o.Role != reports.RoleTest {
				continue
			}
			touches := o.Actor.Tenant == tenant || o.Target.Tenant == tenant
			if o.Failed() {
				problems = append(problems, "nothing leaked, yet: "+checks.DescribeOne(o))
			}
			if o.Status == reports.StatusUnproven && !touches {
				problems = append(problems, "a path of another tenant became unproven: "+checks.DescribeOne(o))
			}
		}
		return problems
	}
}

// OpenTenants adds an allow-all policy to each tenant and waits until the
// leak is observable; Restore removes them and waits until the isolation
// is back. Policy is programmed per pod (per Cilium endpoint, node by
// node), so both waits cover every pod of the tenants.
func OpenTenants(names ...string) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		applier := fixtures.NewApplier(env.Kube)
		var objs []*unstructured.Unstructured
		for _, n := range names {
			o, err := fixtures.RenderAllowAll(env.RunID, fixtures.TenantSpec{Name: n, Namespace: namespace(env, n), Isolated: true})
			if err != nil {
				return nil, err
			}
			objs = append(objs, o...)
		}
		restore := func(ctx context.Context) error {
			var errs []error
			for _, o := range objs {
				errs = append(errs, applier.Delete(ctx, o))
			}
			errs = append(errs, waitControlPaths(ctx, env, names, false))
			return errors.Join(errs...)
		}
		if err := applier.Create(ctx, objs...); err != nil {
			return restore, err
		}
		return restore, waitControlPaths(ctx, env, names, true)
	}
}

// lockTenant deletes the tenant's allow policies, leaving its default deny
// alone: its own pods cannot reach each other nor DNS. Restore creates them
// again.
func lockTenant(name string) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		applier := fixtures.NewApplier(env.Kube)
		all, err := fixtures.RenderTenant(env.RunID, fixtures.TenantSpec{Name: name, Namespace: namespace(env, name), Isolated: true})
		if err != nil {
			return nil, err
		}
		var allows []*unstructured.Unstructured
		for _, o := range all {
			if o.GetKind() == "NetworkPolicy" && (o.GetName() == "allow-same-namespace" || o.GetName() == "allow-dns-egress") {
				allows = append(allows, o)
			}
		}
		if len(allows) != 2 {
			return nil, fmt.Errorf("tenant %s: found %d of its 2 allow policies in the fixtures", name, len(allows))
		}
		restore := func(ctx context.Context) error {
			if err := applier.Create(ctx, allows...); err != nil {
				return err
			}
			return waitTenantPaths(ctx, env, name, true)
		}
		for _, o := range allows {
			if err := applier.Delete(ctx, o); err != nil {
				return restore, err
			}
		}
		return restore, waitTenantPaths(ctx, env, name, false)
	}
}

// waitControlPaths polls ControlPaths until every one is reachable (or
// every one blocked), or a minute passes.
func waitControlPaths(ctx context.Context, env *checks.Env, tenants []string, reachable bool) error {
	return WaitPaths(ctx, env, ControlPaths(env, tenants...), reachable)
}

// ControlPaths are the TCP pod-IP paths between the control namespace's
// first probe and every probe of the tenants, both ways: reachable only
// when each of those pods' ingress and egress policy lets the control
// through.
func ControlPaths(env *checks.Env, tenants ...string) []Path {
	ctl := env.Topology.ProbesOf(fixtures.TenantControl)
	if len(ctl) == 0 {
		return nil
	}
	var paths []Path
	for _, tenant := range tenants {
		for _, p := range env.Topology.ProbesOf(tenant) {
			paths = append(paths,
				Path{Src: ctl[0], Dst: p, Protocol: wire.TCP, Via: ViaPodIP, Allowed: true},
				Path{Src: p, Dst: ctl[0], Protocol: wire.TCP, Via: ViaPodIP, Allowed: true})
		}
	}
	return paths
}

// waitTenantPaths polls the TCP pod-IP paths between the tenant's own pods.
func waitTenantPaths(ctx context.Context, env *checks.Env, tenant string, reachable bool) error {
	pods := env.Topology.ProbesOf(tenant)
	var paths []Path
	for _, a := range pods {
		for _, b := range pods {
			if a != b {
				paths = append(paths, Path{Src: a, Dst: b, Protocol: wire.TCP, Via: ViaPodIP, Allowed: true})
			}
		}
	}
	return WaitPaths(ctx, env, paths, reachable)
}

// WaitPaths probes paths once a second until every one is reachable (or
// every one is blocked), or a minute passes.
func WaitPaths(ctx context.Context, env *checks.Env, paths []Path, reachable bool) error {
	if len(paths) == 0 {
		return errors.New("no paths to wait for")
	}
	deadline := time.Now().Add(time.Minute)
	last := "not probed yet"
	for {
		rs, err := ProbeOnce(ctx, env, paths)
		if err == nil {
			done := true
			for _, r := range rs {
				if l := r.Last(); (l.Last.Outcome == wire.Reachable) != reachable {
					done, last = false, fmt.Sprintf("%s: %s", r.Path, l.Observed)
					break
				}
			}
			if done {
				return nil
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %d paths to be reachable=%v (last: %s)", len(paths), reachable, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
