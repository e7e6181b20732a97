package network

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
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
				{Check: IDDNS, Names: func(env *checks.Env) []string { return []string{env.TenantNamespace(fixtures.TenantB) + "/probe-"} }},
				{Check: IDCrossTenant, Verdict: reports.Unproven, Names: func(env *checks.Env) []string {
					return []string{"not shown", env.TenantNamespace(fixtures.TenantB) + "/probe-0 answers"}
				}, Assert: onlyPathsOfUnproven(fixtures.TenantB)},
			},
		},
		{
			// A target that answers nobody: every "blocked" into it would
			// pass on a cluster without isolation too. Its paths are
			// unproven (and so are those from its only peer, whose own
			// traffic nothing shows to work); every other path stays
			// proven; nothing leaked.
			Fault:  "tenant b's probe-0 drops all incoming traffic",
			Inject: dropIngress(fixtures.TenantB, 0),
			Expect: []checks.Expectation{
				{Check: IDCrossTenant, Verdict: reports.Unproven, Names: func(env *checks.Env) []string {
					return []string{"not shown", probeName(env, fixtures.TenantB, 0) + " answers tcp/pod-ip"}
				}, Assert: onlyPathsOfDeadTargetUnproven(fixtures.TenantB, 0)},
				{Check: IDSameTenant, Names: func(env *checks.Env) []string {
					return []string{"-> " + probeName(env, fixtures.TenantB, 0) + " tcp/pod-ip"}
				}},
			},
		},
		{
			// A leak that comes and goes: every counted round counts, so
			// one round in which the policy was there is a failure, and the
			// reason says which round.
			Fault:  "tenants a and b allow all traffic every other 2 seconds",
			Inject: flapTenants(4*time.Second, fixtures.TenantA, fixtures.TenantB),
			Expect: []checks.Expectation{{Check: IDCrossTenant, Names: leakNames(fixtures.TenantA, fixtures.TenantB), Assert: leaksCiteTheirRounds}},
		},
	}
}

// probeName is "namespace/name" of a tenant's i-th probe pod.
func probeName(env *checks.Env, tenant string, i int) string {
	pods := env.Topology.ProbesOf(tenant)
	if i >= len(pods) {
		return fmt.Sprintf("(no probe pod %d in tenant %s)", i, tenant)
	}
	return pods[i].Namespace + "/" + pods[i].Name
}

// leakNames: the failing reason names a path from tenant src to tenant dst.
func leakNames(src, dst string) func(env *checks.Env) []string {
	return func(env *checks.Env) []string {
		return []string{env.TenantNamespace(src) + "/probe-", "-> " + env.TenantNamespace(dst) + "/probe-"}
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

// onlyPathsOfDeadTargetUnproven: the paths into the tenant's i-th pod are
// unproven naming it; paths from it and into its peers stay proven (it
// still sends); only paths from a pod whose every peer is the dead one may
// be unproven besides; nothing leaked.
func onlyPathsOfDeadTargetUnproven(tenant string, i int) func(env *checks.Env, res reports.CheckResult) []string {
	return func(env *checks.Env, res reports.CheckResult) []string {
		dead := probeName(env, tenant, i)
		var problems []string
		into := 0
		for _, o := range res.Observations {
			if o.Role != reports.RoleTest {
				continue
			}
			src, dst := o.Actor.Namespace+"/"+o.Actor.Pod, o.Target.Namespace+"/"+o.Target.Name
			switch {
			case o.Failed():
				problems = append(problems, "nothing leaked, yet: "+checks.DescribeOne(o))
			case dst == dead:
				into++
				if o.Status != reports.StatusUnproven || !strings.Contains(o.Why, dead+" answers") {
					problems = append(problems, "a path into the dead target must be unproven naming it: "+checks.DescribeOne(o))
				}
			case o.Status == reports.StatusUnproven && !(o.Actor.Tenant == tenant && strings.Contains(o.Why, src+" reaches a pod")):
				problems = append(problems, "a path the dead target does not take part in became unproven: "+checks.DescribeOne(o))
			}
		}
		if into == 0 {
			problems = append(problems, "no path into "+dead+" was tested")
		}
		return problems
	}
}

// leaksCiteTheirRounds: every leak is an observed connection of a counted
// round, and the reason names a round.
func leaksCiteTheirRounds(env *checks.Env, res reports.CheckResult) []string {
	var problems []string
	rounds := map[int]bool{}
	for _, o := range res.Observations {
		if !o.Leak() {
			continue
		}
		rounds[o.Round] = true
		if o.Observed != ObservedReachable || o.Round == 0 {
			problems = append(problems, "a leak must be a connection observed in a round: "+checks.DescribeOne(o))
		}
	}
	cited := false
	for r := range rounds {
		cited = cited || strings.Contains(res.Reason, fmt.Sprintf("round %d)", r))
	}
	if !cited {
		problems = append(problems, fmt.Sprintf("the reason cites none of the leaking rounds %v", slices.Sorted(maps.Keys(rounds))))
	}
	return problems
}

// OpenTenants adds an allow-all policy to each tenant and waits until the
// leak is observable; Restore removes them and waits until the isolation
// is back. Policy is programmed per pod (per Cilium endpoint, node by
// node), so both waits cover every pod of the tenants.
func OpenTenants(names ...string) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		applier := kube.NewApplier(env.Kube)
		objs, err := allowAll(env, names)
		if err != nil {
			return nil, err
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

// allowAll renders the allow-all policy of each tenant.
func allowAll(env *checks.Env, names []string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, n := range names {
		o, err := fixtures.RenderAllowAll(env.RunID, fixtures.TenantSpec{Name: n, Namespace: env.TenantNamespace(n), Isolated: true})
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

// flapTenants applies each tenant's allow-all policy and removes it again,
// half a period each, until Restore; it returns once a leak between the
// first two tenants was seen (the flapping works on this cluster).
// Restore stops the flapping, removes the policies and waits until the
// isolation is back.
func flapTenants(period time.Duration, names ...string) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		applier := kube.NewApplier(env.Kube)
		objs, err := allowAll(env, names)
		if err != nil {
			return nil, err
		}
		fctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan error, 1)
		go func() {
			var err error
			for open := true; fctx.Err() == nil && err == nil; open = !open {
				if open {
					err = applier.Create(fctx, objs...)
				} else {
					for _, o := range objs {
						err = errors.Join(err, applier.Delete(fctx, o))
					}
				}
				env.Logger().Debug("negative control: allow-all flapped", "open", open, "err", err)
				select {
				case <-fctx.Done():
				case <-time.After(period / 2):
				}
			}
			if fctx.Err() != nil {
				err = nil // stopped while a call was in flight
			}
			done <- err
		}()
		restore := func(ctx context.Context) error {
			stop()
			errs := []error{<-done}
			for _, o := range objs {
				errs = append(errs, applier.Delete(ctx, o))
			}
			errs = append(errs, waitControlPaths(ctx, env, names, false))
			return errors.Join(errs...)
		}
		a, b := env.Topology.ProbesOf(names[0]), env.Topology.ProbesOf(names[1])
		if len(a) == 0 || len(b) == 0 {
			return restore, fmt.Errorf("tenants %s and %s need probe pods", names[0], names[1])
		}
		return restore, waitOnce(ctx, env, Path{Src: a[0], Dst: b[0], Protocol: wire.TCP, Via: ViaPodIP, Allowed: true})
	}
}

// waitOnce probes p until it connects once, or a minute passes.
func waitOnce(ctx context.Context, env *checks.Env, p Path) error {
	deadline := time.Now().Add(time.Minute)
	for {
		rs, err := ProbeOnce(ctx, env, []Path{p})
		if err == nil && rs[0].Last().Last.Outcome == wire.Reachable {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never connected in a minute", p)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dropIngress makes the tenant's i-th probe pod drop every incoming packet
// with a CiliumNetworkPolicy ingress deny (a NetworkPolicy cannot: they
// only add what is allowed), and waits until its peer no longer reaches it;
// Restore removes the policy and waits until the peer reaches it again.
func dropIngress(tenant string, i int) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		pods := env.Topology.ProbesOf(tenant)
		if len(pods) < 2 || i >= len(pods) {
			return nil, fmt.Errorf("tenant %s needs two probe pods, has %d", tenant, len(pods))
		}
		dead, peer := pods[i], pods[(i+1)%len(pods)]
		deny := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cilium.io/v2",
			"kind":       "CiliumNetworkPolicy",
			"metadata": map[string]any{
				"name":      "bulkhead-negative-control-drop-" + dead.Name,
				"namespace": dead.Namespace,
				"labels":    toAny(fixtures.With(fixtures.CommonLabels(env.RunID), fixtures.LabelTenant, tenant, fixtures.LabelRole, "negative-control")),
			},
			"spec": map[string]any{
				"endpointSelector": map[string]any{"matchLabels": map[string]any{"bulkhead.dev/probe": dead.Name}},
				"ingressDeny":      []any{map[string]any{"fromEntities": []any{"all"}}},
			},
		}}
		path := []Path{{Src: peer, Dst: dead, Protocol: wire.TCP, Via: ViaPodIP, Allowed: true}}
		applier := kube.NewApplier(env.Kube)
		restore := func(ctx context.Context) error {
			if err := applier.Delete(ctx, deny); err != nil {
				return err
			}
			return WaitPaths(ctx, env, path, true)
		}
		if err := applier.Create(ctx, deny); err != nil {
			return restore, err
		}
		return restore, WaitPaths(ctx, env, path, false)
	}
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// lockTenant deletes the tenant's allow policies, leaving its default deny
// alone: its own pods cannot reach each other nor DNS. Restore creates them
// again.
func lockTenant(name string) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		applier := kube.NewApplier(env.Kube)
		all, err := fixtures.RenderTenant(env.RunID, fixtures.TenantSpec{Name: name, Namespace: env.TenantNamespace(name), Isolated: true})
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
