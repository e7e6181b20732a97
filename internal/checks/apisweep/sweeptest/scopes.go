// Package sweeptest builds API sweep scopes for unit tests of the checks
// that plan on the sweep: the reference run and a bring-your-own run.
package sweeptest

import (
	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
)

// Run is the run ID of the scopes.
const Run = "k3x9q"

// Deployments is a namespaced resource of a group other than the core one.
var Deployments = apisweep.Resource{Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment", Namespaced: true}

// clusterScoped are what a minimal API server serves at cluster scope.
var clusterScoped = []apisweep.Resource{{Version: "v1", Resource: "namespaces", Kind: "Namespace"}, {Version: "v1", Resource: "nodes", Kind: "Node"}}

// Reference is a run with reference tenants a and b (a user and a
// ServiceAccount each), the unprotected control namespace, two probe pods
// per tenant, and the sweep's pods and canaries.
func Reference() apisweep.Scope {
	top := checks.Topology{}
	for _, name := range []string{"a", "b"} {
		ns := fixtures.NamespaceFor(Run, name)
		top.Tenants = append(top.Tenants, checks.Tenant{Name: name, Namespaces: []string{ns}, Isolated: true, Reference: true,
			Identities: []checks.Identity{
				{User: fixtures.TenantUser(Run, name), Groups: []string{fixtures.TenantGroup(Run, name), "system:authenticated"}},
				checks.ServiceAccountIdentity(ns, fixtures.ProbeServiceAccount),
			}})
		for i := range 2 {
			top.Probes = append(top.Probes, checks.ProbePod{Tenant: name, Namespace: ns, Name: "probe-" + string(rune('0'+i)), Node: "node-1"})
		}
	}
	top.Tenants = append(top.Tenants, checks.Tenant{Name: "control", Namespaces: []string{fixtures.NamespaceFor(Run, "control")}, Reference: true})
	s := apisweep.Scope{RunID: Run, Top: top, Node: "node-1", Runner: "kubernetes-admin",
		Resources:        []apisweep.Resource{apisweep.Secrets, apisweep.Pods, apisweep.ConfigMaps, Deployments},
		ClusterResources: clusterScoped,
		Canaries:         map[string]fixtures.Canary{}, CanaryPods: map[string]string{}, TokenPods: map[string]string{}}
	for _, name := range []string{"a", "b"} {
		ns := fixtures.NamespaceFor(Run, name)
		s.Canaries[name] = fixtures.Canary{Tenant: name, Namespace: ns, Name: "bulkhead-canary-x", Key: "value", Fingerprint: "fp-" + name}
		s.CanaryPods[name] = "bulkhead-api-x"
		s.TokenPods[ns+"/"+fixtures.ProbeServiceAccount] = "bulkhead-api-x"
	}
	// bulkhead's own pods in the control namespace.
	ctl := fixtures.NamespaceFor(Run, "control")
	s.AnonymousPod, s.AnonymousTenant = ctl+"/bulkhead-anon-x", "control"
	s.TokenPods[ctl+"/"+fixtures.ProbeServiceAccount] = "bulkhead-api-x"
	return s
}

// BYO is a run against tenants bulkhead did not create: blue (two
// namespaces) and green, each with a user only, bulkhead's probe pods in
// their namespaces, no canaries and no API probe pods there; bulkhead's own
// control namespace holds its anonymous and token pods.
func BYO() apisweep.Scope {
	top := checks.Topology{}
	for _, tn := range []struct {
		name string
		nss  []string
	}{{"blue", []string{"byo-blue-web", "byo-blue-api"}}, {"green", []string{"byo-green"}}} {
		top.Tenants = append(top.Tenants, checks.Tenant{Name: tn.name, Namespaces: tn.nss, Isolated: true,
			Identities: []checks.Identity{{User: "byo-" + tn.name + "-dev", Groups: []string{"byo-" + tn.name + "-devs", "system:authenticated"}}}})
		for _, ns := range tn.nss {
			for i := range 2 {
				top.Probes = append(top.Probes, checks.ProbePod{Tenant: tn.name, Namespace: ns, Name: "bulkhead-probe-" + Run + "-" + string(rune('0'+i))})
			}
		}
	}
	ctl := fixtures.NamespaceFor(Run, "control")
	top.Tenants = append(top.Tenants,
		checks.Tenant{Name: "control", Namespaces: []string{ctl}, Reference: true},
		checks.Tenant{Name: "sentinel", Namespaces: []string{fixtures.NamespaceFor(Run, "sentinel")}, Isolated: true, Reference: true, Sentinel: true})
	s := apisweep.Scope{RunID: Run, Top: top, Node: "node-1", Runner: "system:serviceaccount:runner:runner",
		Resources:        []apisweep.Resource{apisweep.Secrets, apisweep.Pods, apisweep.ConfigMaps},
		ClusterResources: clusterScoped,
		Canaries:         map[string]fixtures.Canary{}, CanaryPods: map[string]string{},
		TokenPods: map[string]string{ctl + "/" + fixtures.ProbeServiceAccount: "bulkhead-api-x"}}
	s.AnonymousPod, s.AnonymousTenant = ctl+"/bulkhead-anon-x", "control"
	return s
}
