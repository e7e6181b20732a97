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
			Title: "Pod Security restricted rejects privileged and host-access pods",
			Proves: "Every tenant identity is refused, by Pod Security admission at level restricted and for the reason tried, a pod that is privileged, mounts a hostPath, shares the host network/PID/IPC namespaces, binds a hostPort, adds capabilities, " +
				"allows privilege escalation, runs as root, or runs unconfined by seccomp, AppArmor or SELinux, while the same identities may create a compliant pod (positive control).",
			Run: runPodAdmission,

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDWorkloads, Area: checks.PodSecurity,
			Title:  "Pod Security also rejects pods created by workload controllers",
			Proves: "A tenant's Deployment and Job with a forbidden pod template get no pod: the controller's pod creation is rejected by Pod Security (a FailedCreate event quoting the violation), while the same workloads with a compliant template create their pod (positive control).",
			Slow:   true,
			Run:    runWorkloads,

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.FirstNamespace, Kinds: []string{"Deployment", "Job"}, What: "two Deployments and two Jobs per tenant, as the tenant (the restricted-compliant ones start one pod each, the others none)", Lifetime: checks.DuringCheck}},
		},
		{
			ID: IDRelabel, Area: checks.PodSecurity,
			Title:  "Tenants cannot weaken Pod Security on their namespace",
			Proves: "No tenant identity can change the Pod Security labels of its own namespace (to privileged, removed, or pinned to an old version), while it can patch labels of objects in the namespace and an administrator's identical patch is admitted (positive controls).",
			Run:    runRelabel,

			Creates: checks.CreatesNothing("server-side dry-run patches"),
		},
		{
			ID: IDNodePorts, Area: checks.PodSecurity,
			Title:  "Tenants cannot publish Services on node ports or load balancers",
			Proves: "Every tenant identity is refused a NodePort and a LoadBalancer Service, by its quota (services.nodeports=0, services.loadbalancers=0) or an admission policy (the evidence says which), while it may create a ClusterIP Service (positive control).",
			Run:    runNodePorts,

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDExternalIPs, Area: checks.PodSecurity,
			Title:  "Tenants cannot set externalIPs on Services (CVE-2020-8554)",
			Proves: "Every tenant identity is refused a Service with spec.externalIPs, on creation and by updating a Service it owns, by an admission policy, while it may create a plain ClusterIP Service and patch its own Service (positive controls).",
			Run:    runExternalIPs,

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDExternalName, Area: checks.PodSecurity,
			Title:  "Tenants cannot alias another tenant's Service with ExternalName",
			Proves: "No tenant identity can create an ExternalName Service whose name points at another tenant's Service DNS name (which a shared proxy would follow into the other tenant), while it may alias its own Service (positive control).",
			Run:    runExternalName,

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDNodeAccess, Area: checks.PodSecurity,
			Title:  "Tenant pods cannot reach the nodes' kubelet, API server and NodePorts",
			Proves: "No tenant pod can open a TCP connection to the kubelet (10250, 10255) on any node address, the API server on its node address, or another namespace's NodePort on any node, while pods in the unprotected control namespace reach the same listening ports (positive control).",
			Run:    runNodes,

			Creates: []checks.Footprint{{Where: checks.OwnNamespaces, Kinds: []string{"Service"}, What: "a NodePort Service for a probe pod in the control namespace", Lifetime: checks.DuringCheck}},
		},
	}
}
