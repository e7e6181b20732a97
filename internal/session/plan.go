package session

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/runs"
)

// Footprint is what a run's set-up creates, whatever checks it runs: the
// declaration `bulkhead run --help` and README show next to the checks'.
// TestFootprintCoversWhatTheRunRenders keeps it in step with the manifests.
var Footprint = []checks.Footprint{
	{Where: checks.TenantNamespaces, Kinds: []string{"Pod"}, Lifetime: checks.WholeRun,
		What:    "with --config: probe Pods bulkhead-probe-<run>-<n> (probes.perNamespace per namespace, default 2; Pod Security restricted, no ServiceAccount token, 5m CPU and 16Mi requested)",
		OffWith: "none, they are where the probes run from (fewer with probes.perNamespace)"},
	{Where: checks.TenantNamespaces, Kinds: []string{"Service"}, Lifetime: checks.WholeRun,
		What:    "with --config: a ClusterIP Service per probe Pod, of the same name, only if the config says probes.services: true",
		OffWith: "probes.services: false, the default"},
	{Where: checks.OwnNamespaces, Kinds: []string{"Namespace", "ServiceAccount", "NetworkPolicy", "Role", "RoleBinding", "ResourceQuota", "LimitRange", "Pod", "Service", "Lease"},
		Lifetime: checks.WholeRun,
		What: "namespaces bh-<run>-control (no policy: the positive control) and bh-<run>-sentinel (bulkhead's default-deny policy), " +
			"and without --config the reference tenants bh-<run>-a and bh-<run>-b; in them ServiceAccounts, NetworkPolicies, a tenant-admin Role and RoleBindings, " +
			"ResourceQuotas and LimitRanges, probe Pods and their Services, and the run's Lease (" + runs.LeaseName + ", in bh-<run>-control)"},
	{Where: checks.ClusterScoped, Kinds: []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}, Lifetime: checks.WholeRun,
		What: "ValidatingAdmissionPolicies bulkhead-<run>-deny-external-ips and bulkhead-<run>-deny-foreign-externalname with their bindings, which select only the run's own isolated namespaces"},
}

// Plan is what a run would create before its checks start, by namespace.
type Plan struct {
	RunID      string
	Namespaces []PlannedNamespace
	// ClusterScoped are the run's cluster-scoped objects ("Kind name").
	ClusterScoped []string
}

// PlannedNamespace is one namespace a run would put objects into.
type PlannedNamespace struct {
	Name, Tenant string
	// Own: bulkhead creates the namespace for this run and deletes it,
	// with everything in it, at the end.
	Own bool
	// Under test: a namespace of a tenant the checks are about (a
	// reference tenant or a tenant of the config).
	UnderTest bool
	// Identities: its tenant has identities, so checks acting as the
	// tenant work here; First: it is its tenant's first namespace.
	Identities, First bool
	// Objects are what the run's set-up creates in it ("Kind name").
	Objects []string
}

// MakePlan says what a session with opts would create when it starts,
// reading the cluster only to resolve a tenant config's namespaces
// (nothing is created, not even as a dry-run; without a config the
// cluster is not read at all). Probe pods are not assigned to nodes.
func MakePlan(ctx context.Context, opts Options) (*Plan, error) {
	opts.defaults()
	if err := fixtures.ValidateRunID(opts.RunID); err != nil {
		return nil, err
	}
	if opts.BYO != nil && opts.Clients == nil {
		return nil, errors.New("plan: a tenant config needs the cluster to resolve its namespaces")
	}
	s := &Session{opts: opts}
	p := &Plan{RunID: s.opts.RunID}
	policies, err := fixtures.RenderRunPolicies(s.opts.RunID)
	if err != nil {
		return nil, err
	}
	p.ClusterScoped = describe(policies)
	own := s.opts.Tenants
	if s.opts.BYO != nil {
		own = fixtures.OwnTenants(s.opts.RunID)
	}
	probes := map[string][]string{}
	for _, sp := range s.referenceProbes(own, []string{""}) {
		objs, err := fixtures.RenderProbe(sp)
		if err != nil {
			return nil, err
		}
		probes[sp.Namespace] = append(probes[sp.Namespace], describe(objs)...)
	}
	for _, t := range own {
		objs, err := fixtures.RenderTenant(s.opts.RunID, t)
		if err != nil {
			return nil, err
		}
		pn := PlannedNamespace{Name: t.Namespace, Tenant: t.Name, Own: true, First: true,
			UnderTest:  s.opts.BYO == nil && t.Isolated && !t.Sentinel,
			Identities: t.Isolated && !t.Sentinel && s.opts.BYO == nil,
			Objects:    append(describe(objs), probes[t.Namespace]...)}
		if t.Name == fixtures.TenantControl {
			pn.Objects = append(pn.Objects, "Lease "+runs.LeaseName)
		}
		p.Namespaces = append(p.Namespaces, pn)
	}
	if s.opts.BYO == nil {
		return p, nil
	}
	resolved, err := s.resolveTenants(ctx, s.opts.BYO)
	if err != nil {
		return nil, err
	}
	tenants := byoTenants(s.opts.BYO, resolved)
	byNS := map[string][]string{}
	for _, sp := range s.byoProbes(s.opts.BYO, tenants, []string{""}, 0) {
		objs, err := fixtures.RenderProbe(sp)
		if err != nil {
			return nil, err
		}
		byNS[sp.Namespace] = append(byNS[sp.Namespace], describe(objs)...)
	}
	for _, t := range tenants {
		for i, ns := range t.Namespaces {
			p.Namespaces = append(p.Namespaces, PlannedNamespace{Name: ns, Tenant: t.Name, UnderTest: true,
				Identities: len(t.Identities) > 0, First: i == 0, Objects: byNS[ns]})
		}
	}
	return p, nil
}

func describe(objs []*unstructured.Unstructured) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = fmt.Sprintf("%s %s", o.GetKind(), o.GetName())
	}
	return out
}
