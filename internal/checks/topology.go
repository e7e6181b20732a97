package checks

import (
	"slices"

	"github.com/bulkhead-k8s/bulkhead/internal/probing"
)

// Topology is what the run set up: tenants, their namespaces, and the probe
// pods in them. Expectations derive from it.
type Topology struct {
	Tenants []Tenant
	Probes  []ProbePod
}

// Tenant is a set of namespaces that belong together.
type Tenant struct {
	Name       string
	Namespaces []string
	// Isolated tenants are expected to be protected by policy. A tenant that
	// is not isolated (the control namespace) is the positive control: paths
	// into and out of it must work wherever the other end allows them.
	Isolated bool
	// Reference is true for tenants bulkhead created from its fixtures.
	Reference bool
	// Sentinel marks bulkhead's own isolated namespace: its policy is the
	// reference default-deny and no negative control ever opens it, so if it
	// is reachable the CNI does not enforce NetworkPolicy. It takes part in
	// the network matrix but is not a tenant under test.
	Sentinel bool
	// AllowedTo lists tenants this tenant is expected to reach (ingress at
	// the other end and egress here both allowed). Same-tenant traffic is
	// always expected allowed.
	AllowedTo []string
	// Identities act as the tenant in API checks.
	Identities []Identity
}

// Identity is one way of acting as a tenant against the API server.
type Identity struct {
	// User is the username: impersonated for users, and
	// system:serviceaccount:NS:NAME for ServiceAccounts.
	User   string
	Groups []string
	// ServiceAccount is "namespace/name" when the identity is a
	// ServiceAccount; checks may then also act with its own token from
	// inside a pod.
	ServiceAccount string
}

// ServiceAccountIdentity returns the identity of a ServiceAccount.
func ServiceAccountIdentity(namespace, name string) Identity {
	return Identity{
		User:           "system:serviceaccount:" + namespace + ":" + name,
		Groups:         []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
		ServiceAccount: namespace + "/" + name,
	}
}

// String names the identity for evidence.
func (i Identity) String() string {
	if i.ServiceAccount != "" {
		return "serviceaccount " + i.ServiceAccount
	}
	return "user " + i.User
}

// ProbePod is one running probe pod and how to reach it.
type ProbePod struct {
	Tenant    string
	Namespace string
	Name      string
	Node      string
	IP        string
	// Service is the name of the Service that selects only this pod.
	Service   string
	ClusterIP string
	// DNSName is the Service's fully qualified DNS name.
	DNSName string
}

// Pod is the pod as the probe runner addresses it.
func (p ProbePod) Pod() probing.Pod { return probing.Pod{Namespace: p.Namespace, Name: p.Name} }

// Tenant returns the tenant named name.
func (t Topology) Tenant(name string) (Tenant, bool) {
	for _, tn := range t.Tenants {
		if tn.Name == name {
			return tn, true
		}
	}
	return Tenant{}, false
}

// TenantOfNamespace returns the tenant a namespace belongs to.
func (t Topology) TenantOfNamespace(ns string) (Tenant, bool) {
	for _, tn := range t.Tenants {
		if slices.Contains(tn.Namespaces, ns) {
			return tn, true
		}
	}
	return Tenant{}, false
}

// ProbesOf returns the probe pods of one tenant.
func (t Topology) ProbesOf(tenant string) []ProbePod {
	var out []ProbePod
	for _, p := range t.Probes {
		if p.Tenant == tenant {
			out = append(out, p)
		}
	}
	return out
}

// Isolated returns the isolated tenants under test (the sentinel excluded).
func (t Topology) Isolated() []Tenant {
	var out []Tenant
	for _, tn := range t.Tenants {
		if tn.Isolated && !tn.Sentinel {
			out = append(out, tn)
		}
	}
	return out
}

// Unprotected returns the tenants that are not isolated (control namespaces).
func (t Topology) Unprotected() []Tenant {
	var out []Tenant
	for _, tn := range t.Tenants {
		if !tn.Isolated {
			out = append(out, tn)
		}
	}
	return out
}

// FlowAllowed reports whether traffic from tenant src to tenant dst is
// expected to pass: same tenant, both unprotected, or declared in AllowedTo.
// An isolated tenant and an unprotected one never talk unless declared:
// the isolated side's policy (egress or ingress) must block it.
func (t Topology) FlowAllowed(src, dst string) bool {
	if src == dst {
		return true
	}
	s, okS := t.Tenant(src)
	d, okD := t.Tenant(dst)
	if !okS || !okD {
		return false
	}
	if !s.Isolated && !d.Isolated {
		return true
	}
	return slices.Contains(s.AllowedTo, dst)
}
