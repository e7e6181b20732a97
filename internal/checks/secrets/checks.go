// Package secrets holds the checks that tenants cannot get at each other's
// secrets: by the API (a random canary Secret in each reference tenant,
// named in evidence only by the fingerprint of its value), through each
// other's pods (exec, attach, port-forward), by minting each other's
// ServiceAccount tokens, and that pods only get a ServiceAccount token when
// they ask for one. SEC-001 and SEC-002 read the API sweep of the rbac area
// (same identities, same pods, one pass).
package secrets

import (
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/rbac"
)

// Check IDs of the secrets area.
const (
	IDRead         = rbac.IDSecretRead
	IDThroughPods  = rbac.IDSecretPods
	IDTokenHygiene = "SEC-003"
)

// Checks returns the secrets checks.
func Checks() []checks.Check {
	return []checks.Check{
		{
			ID: IDRead, Area: checks.Secrets,
			Title:  "Tenants cannot read other tenants' Secrets through the API",
			Proves: "No identity of a tenant gets, lists (plainly, by field or label selector, in the namespace or across all namespaces) or watches another tenant's canary Secret: the access review denies and the real request is refused by authorization with 403, while the owning tenant reads its own canary and sees its value's fingerprint (positive control). The value itself never leaves the cluster.",
			Run:    rbac.SliceRun(IDRead, "no two isolated tenants with identities in this run"),

			Creates: rbac.SweepFootprint,
		},
		{
			ID: IDThroughPods, Area: checks.Secrets,
			Title:  "Tenants cannot reach other tenants' secrets through their pods or ServiceAccounts",
			Proves: "No identity of a tenant may exec, attach or port-forward into another tenant's pods (including the pod that mounts its canary) or mint a token for its ServiceAccount, while the owning tenant's user execs into its own canary pod and reads the canary's fingerprint (a tenant bulkhead did not create gets no canary: its user execs into its own probe pod), and its identities get through to their own pod where their grant allows it and mint their own token (positive controls).",
			Run:    rbac.SliceRun(IDThroughPods, "no two isolated tenants with identities in this run"),

			Creates: rbac.SweepFootprint,
		},
		{
			ID: IDTokenHygiene, Area: checks.Secrets,
			Title:  "Pods get a ServiceAccount token only when they ask for one",
			Proves: "Tenant probe pods have no ServiceAccount token mounted, and a pod created with the tenant's ServiceAccount without asking for a token is admitted without one, while a pod that asks for a token gets it (positive controls: a pod admitted (dry-run) in the tenant's namespace with its ServiceAccount, or its namespace's default one, and bulkhead's API probe pods, seen from inside, including one in bulkhead's own control namespace); namespaces whose default ServiceAccount hands tokens to every pod are reported.",
			Run:    tokenHygiene,

			Creates: rbac.SweepFootprint,
		},
	}
}
