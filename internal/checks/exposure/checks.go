// Package exposure holds the checks that tenants cannot publish what they
// run beyond their namespace, nor reach the nodes: Services on node ports
// and load balancers, externalIPs (CVE-2020-8554), ExternalName aliases of
// other tenants' Services (CVE-2021-25740), each tried by server-side
// dry-run as every tenant identity that may create Services; and the data
// path from tenant pods to the nodes' kubelet, API server and node ports.
package exposure

import "github.com/bulkhead-k8s/bulkhead/internal/checks"

// Check IDs of the exposure area.
const (
	IDNodePorts    = "EXP-001"
	IDExternalIPs  = "EXP-002"
	IDExternalName = "EXP-003"
	IDNodeAccess   = "EXP-004"
)

// Checks returns the exposure checks.
func Checks() []checks.Check {
	dryRun := checks.CreatesNothing("server-side dry-run requests as the tenant")
	return []checks.Check{
		{ID: IDNodePorts, Area: checks.Exposure, Run: runNodePorts, Creates: dryRun},
		{ID: IDExternalIPs, Area: checks.Exposure, Run: runExternalIPs, Creates: dryRun},
		{ID: IDExternalName, Area: checks.Exposure, Run: runExternalName, Creates: dryRun},
		{
			ID: IDNodeAccess, Area: checks.Exposure, Run: runNodes, Lane: checks.LaneNodes,
			Creates: []checks.Footprint{{Where: checks.OwnNamespaces, Kinds: []string{"Pod", "Service"},
				What:     "a NodePort Service in the control namespace and the probe pod behind it, which answers only this run's token",
				Lifetime: "the seconds its probe rounds take (published once its pod is Ready); deleted before the check ends",
				OffWith:  "--no-node-ports"}},
		},
	}
}
