// Package podsecurity holds the checks that tenants cannot break out to the
// node or publish on it: Pod Security admission on tenant namespaces (tried
// by server-side dry-run and through workload controllers, as each tenant
// identity), the namespace labels that set it, Service exposure (node
// ports, load balancers, externalIPs, ExternalName aliases of other
// tenants), and the data path from tenant pods to the nodes' ports.
package podsecurity

import "github.com/bulkhead-k8s/bulkhead/internal/checks"

// Check IDs of the podsecurity area. PSA-0xx are Pod Security admission,
// EXP-0xx exposure on and reachability of the nodes.
const (
	IDPodAdmission = "PSA-001"
	IDWorkloads    = "PSA-002"
	IDRelabel      = "PSA-003"
	IDNodePorts    = "EXP-001"
	IDExternalIPs  = "EXP-002"
	IDExternalName = "EXP-003"
	IDNodeAccess   = "EXP-004"
)

// Checks returns the podsecurity checks.
func Checks() []checks.Check {
	return []checks.Check{
		{
			ID: IDPodAdmission, Area: checks.PodSecurity,
			Run: runPodAdmission,

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDWorkloads, Area: checks.PodSecurity,
			Slow: true,
			Run:  runWorkloads,

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.FirstNamespace, Kinds: []string{"Deployment", "Job"}, What: "two Deployments and two Jobs per tenant, as the tenant (the restricted-compliant ones start one pod each, the others none)", Lifetime: checks.DuringCheck}},
		},
		{
			ID: IDRelabel, Area: checks.PodSecurity,
			Run: runRelabel,

			Creates: checks.CreatesNothing("server-side dry-run patches"),
		},
		{
			ID: IDNodePorts, Area: checks.PodSecurity,
			Run: runNodePorts,

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDExternalIPs, Area: checks.PodSecurity,
			Run: runExternalIPs,

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDExternalName, Area: checks.PodSecurity,
			Run: runExternalName,

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDNodeAccess, Area: checks.PodSecurity,
			Run: runNodes,

			Creates: []checks.Footprint{{Where: checks.OwnNamespaces, Kinds: []string{"Service"}, What: "a NodePort Service for a probe pod in the control namespace", Lifetime: checks.DuringCheck}},
		},
	}
}
