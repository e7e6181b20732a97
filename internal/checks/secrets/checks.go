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
			Run: rbac.SliceRun(IDRead, "no two isolated tenants with identities in this run"),

			Creates: rbac.SweepFootprint,
		},
		{
			ID: IDThroughPods, Area: checks.Secrets,
			Run: rbac.SliceRun(IDThroughPods, "no two isolated tenants with identities in this run"),

			Creates: rbac.SweepFootprint,
		},
		{
			ID: IDTokenHygiene, Area: checks.Secrets,
			Run: tokenHygiene,

			Creates: rbac.SweepFootprint,
		},
	}
}
