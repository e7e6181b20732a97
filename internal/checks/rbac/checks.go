// Package rbac holds the API authorization checks: what a tenant's
// identities (a user acting through impersonation, and a ServiceAccount
// acting from inside a pod with its own token) can do outside their own
// namespace, at cluster scope, and by escalating, and what an anonymous
// client inside a pod can do. Each check plans its attempts (one file per
// check); the API sweep (package apisweep) tries them all in one pass.
package rbac

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
)

// Check IDs.
const (
	IDCrossNamespace = "RBAC-001"
	IDClusterScope   = "RBAC-002"
	IDEscalation     = "RBAC-003"
	IDAnonymous      = "RBAC-004"
	// IDCrossTenantGrant is RBAC-005: a tenant binding roles in its own
	// namespace to subjects outside it.
	IDCrossTenantGrant = "RBAC-005"
)

func init() {
	apisweep.Register(
		apisweep.Planner{Check: IDCrossNamespace, Plan: CrossNamespacePlan, Notes: crossNamespaceNotes},
		apisweep.Planner{Check: IDClusterScope, Plan: ClusterScopePlan, Notes: clusterScopeNotes},
		apisweep.Planner{Check: IDEscalation, Plan: EscalationPlan},
		apisweep.Planner{Check: IDAnonymous, Plan: AnonymousPlan, Notes: anonymousNotes},
		apisweep.Planner{Check: IDCrossTenantGrant, Plan: CrossTenantGrantPlan},
	)
}

// Checks returns the rbac checks.
func Checks() []checks.Check {
	return []checks.Check{
		{
			ID: IDCrossNamespace, Area: checks.RBAC,
			Slow: true,
			Run:  apisweep.SliceRun(IDCrossNamespace, "no isolated tenant with identities in this run"),

			Creates: apisweep.Footprint,
		},
		{
			ID: IDClusterScope, Area: checks.RBAC,
			Run: apisweep.SliceRun(IDClusterScope, "no isolated tenant with identities in this run"),

			Creates: apisweep.Footprint,
		},
		{
			ID: IDEscalation, Area: checks.RBAC,
			Run: apisweep.SliceRun(IDEscalation, "no isolated tenant with identities in this run"),

			Creates: apisweep.Footprint,
		},
		{
			ID: IDAnonymous, Area: checks.RBAC,
			Run: apisweep.SliceRun(IDAnonymous, "no control namespace in this run to run a pod without a token in"),

			Creates: apisweep.Footprint,
		},
		{
			ID: IDCrossTenantGrant, Area: checks.RBAC,
			Run: apisweep.SliceRun(IDCrossTenantGrant, "no isolated tenant with identities in this run"),

			Creates: apisweep.Footprint,
		},
	}
}

func crossNamespaceNotes(s apisweep.Scope, _ *apisweep.Sweep) []string {
	return []string{fmt.Sprintf("%d namespaced resources discovered and tried with %s: %s",
		len(s.Resources), strings.Join(apisweep.MatrixVerbs, ", "), apisweep.ResourceNames(s.Resources))}
}

func clusterScopeNotes(s apisweep.Scope, _ *apisweep.Sweep) []string {
	if _, missing := ServedClusterScoped(s.ClusterResources); len(missing) > 0 {
		return []string{"not served by this cluster, not tried: " + strings.Join(missing, ", ")}
	}
	return nil
}

func anonymousNotes(_ apisweep.Scope, sw *apisweep.Sweep) []string {
	var out []string
	for _, pod := range slices.Sorted(maps.Keys(sw.Pods)) {
		if f := sw.Pods[pod]; !f.TokenMounted {
			out = append(out, fmt.Sprintf("pod %s has no ServiceAccount token mounted; TLS %s", pod, f.TLS))
		}
	}
	return out
}
