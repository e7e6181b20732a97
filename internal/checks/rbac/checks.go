package rbac

import (
	"context"
	"fmt"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// SweepFootprint is what the API sweep (shared by the rbac checks and
// SEC-001..003) puts into the cluster, only into namespaces bulkhead created.
var SweepFootprint = []checks.Footprint{{Where: checks.OwnNamespaces, Kinds: []string{"Secret", "Pod", "NetworkPolicy", "CiliumNetworkPolicy"},
	What:     "per reference tenant a canary Secret, an API probe pod with its ServiceAccount's token and an egress policy to the API server; two API probe pods in the control namespace",
	Lifetime: "while the API sweep runs; deleted when it ends"}}

// Checks returns the rbac checks.
func Checks() []checks.Check {
	return []checks.Check{
		{
			ID: IDCrossNamespace, Area: checks.RBAC,
			Title:  "Tenants cannot read or change resources in other tenants' namespaces",
			Proves: "For every namespaced resource the API server discovers, no identity of a tenant (its user, impersonated, and its ServiceAccount, from inside a pod with its own token) may get, list, watch, create, update, patch or delete in a namespace it does not own: the access review denies and the real request (writes as server-side dry-run) is refused by authorization with 403, while the same requests in its own namespace get through wherever its grant allows them (positive control).",
			Slow:   true,
			Run:    SliceRun(IDCrossNamespace, "no isolated tenant with identities in this run"),

			Creates: SweepFootprint,
		},
		{
			ID: IDClusterScope, Area: checks.RBAC,
			Title:  "Tenants cannot change cluster-scoped resources or read what the reference policy denies",
			Proves: "No identity of a tenant may create, update, patch or delete nodes, namespaces, persistent volumes, cluster roles and bindings, CRDs, admission webhook and policy configurations, CSRs or storage classes, and a reference tenant may not read them either, while the same requests get past authorization as bulkhead's synthetic positive-control identity (bulkhead:positive-control in system:masters, impersonated; writes as server-side dry-run) and every tenant identity is authenticated and authorized for what it holds (positive controls).",
			Run:    SliceRun(IDClusterScope, "no isolated tenant with identities in this run"),

			Creates: SweepFootprint,
		},
		{
			ID: IDEscalation, Area: checks.RBAC,
			Title:  "Tenants cannot escalate their privileges",
			Proves: "No identity of a tenant may bind cluster-admin or admin in its own namespace, create a Role holding more than it does, use the bind, escalate or impersonate verbs (users, system:masters, other ServiceAccounts), mint a token for another tenant's ServiceAccount, approve certificate signing requests or reach the kubelet through nodes/proxy, while it can bind and create roles within its grant and mint its own ServiceAccount's token, and the synthetic positive-control identity (bulkhead:positive-control in system:masters, impersonated) reaches nodes/proxy (GET /healthz) and CSR approval (dry-run) (positive controls).",
			Run:    SliceRun(IDEscalation, "no isolated tenant with identities in this run"),

			Creates: SweepFootprint,
		},
		{
			ID: IDAnonymous, Area: checks.RBAC,
			Title:  "Unauthenticated requests from pods are rejected",
			Proves: "From inside a pod without a token (in bulkhead's own control namespace, which every run has: credentials, not the namespace, decide), requests without credentials (system:anonymous) and with an invalid token get nothing beyond the public health and version endpoints: discovery, resources (in a tenant's namespace and cluster-wide), metrics, debug endpoints and writes are refused (401/403), while the public endpoints answer the same pod and a pod with a token of the same namespace gets /api (positive controls).",
			Run:    SliceRun(IDAnonymous, "no control namespace in this run to run a pod without a token in"),

			Creates: SweepFootprint,
		},
	}
}

// SliceRun builds a check's Run from the shared sweep: the check's slice of
// its results, skipped when the run has nothing to test.
func SliceRun(id, skipWhy string) func(context.Context, *checks.Env) checks.Outcome {
	return func(ctx context.Context, env *checks.Env) checks.Outcome {
		sw, err := Shared(ctx, env)
		if err != nil {
			return checks.Outcome{Err: fmt.Errorf("run the API sweep: %w", err)}
		}
		out := sw.Outcome(id)
		if !hasTest(out.Observations) {
			return checks.Outcome{Skip: skipWhy, Notes: out.Notes}
		}
		return out
	}
}

func hasTest(obs []reports.Observation) bool {
	for _, o := range obs {
		if o.Role == reports.RoleTest {
			return true
		}
	}
	return false
}
