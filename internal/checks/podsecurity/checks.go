// Package podsecurity holds the checks that tenants cannot run pods that
// break out to the node: Pod Security admission on tenant namespaces, tried
// by server-side dry-run and through workload controllers as every tenant
// identity that may create them, and the namespace labels that set it.
package podsecurity

import "github.com/bulkhead-k8s/bulkhead/internal/checks"

// Check IDs of the podsecurity area.
const (
	IDPodAdmission = "PSA-001"
	IDWorkloads    = "PSA-002"
	IDRelabel      = "PSA-003"
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

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.FirstNamespace, Kinds: []string{"Deployment", "Job"}, What: "two Deployments and two Jobs per tenant, as the tenant; their pods can never run (a scheduling gate, a node selector no node has, a command that exits at once), and the restricted-compliant ones get one such pod each", Lifetime: checks.DuringCheck}},
		},
		{
			ID: IDRelabel, Area: checks.PodSecurity,
			Run: runRelabel,

			Creates: checks.CreatesNothing("server-side dry-run patches"),
		},
	}
}
