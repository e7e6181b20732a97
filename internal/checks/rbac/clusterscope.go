package rbac

import (
	"slices"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// ClusterScoped are the cluster-scoped resources RBAC-002 tries, with the
// API that serves them.
var ClusterScoped = []apisweep.Resource{
	apisweep.Nodes, apisweep.Namespaces,
	{Version: "v1", Resource: "persistentvolumes", Kind: "PersistentVolume"},
	apisweep.ClusterRoles,
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings", Kind: "ClusterRoleBinding"},
	{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions", Kind: "CustomResourceDefinition"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations", Kind: "ValidatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations", Kind: "MutatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies", Kind: "ValidatingAdmissionPolicy"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings", Kind: "ValidatingAdmissionPolicyBinding"},
	apisweep.CSRs,
	{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses", Kind: "StorageClass"},
}

// clusterWrites and clusterReads are the verbs RBAC-002 tries.
var (
	clusterWrites = []string{"create", "update", "patch", "delete"}
	clusterReads  = []string{"get", "list", "watch"}
)

// ClusterScopePlan (RBAC-002): no identity of an isolated tenant writes any
// of ClusterScoped the API server serves; reference tenants, whose policy
// grants no cluster-scoped read, cannot read them either. Each denial rests
// on two controls: the same verb and resource getting past authorization
// as PositiveControl (the path exists), and the identity being authorized
// for a request its grant allows in its own namespace (it is no
// misspelled or rights-less identity).
func ClusterScopePlan(s apisweep.Scope) []apisweep.Attempt {
	check := IDClusterScope
	served, _ := ServedClusterScoped(s.ClusterResources)
	var out []apisweep.Attempt
	for _, t := range s.Actors() {
		for _, id := range t.Identities {
			for _, res := range served {
				verbs := clusterWrites
				if t.Reference {
					verbs = append(slices.Clone(clusterReads), clusterWrites...)
				}
				for _, verb := range verbs {
					req := apisweep.ResourceRequest(res, verb, "", clusterObjectName(s, t, res, verb), s.Labels())
					out = append(out, s.Test(check, t, id, req, apisweep.ExpectDenied, reports.Target{Kind: res.GroupResource()},
						apisweep.ActsKey(id), apisweep.AdminKey(apisweep.RightOf(req))))
				}
			}
			if c, ok := s.OwnControl(check, t, id); ok {
				out = append(out, c)
			}
		}
	}
	for _, res := range served {
		for _, verb := range append(slices.Clone(clusterReads), clusterWrites...) {
			req := apisweep.ResourceRequest(res, verb, "", s.Absent(), s.Labels())
			out = append(out, s.AdminControl(check, req, reports.Target{Kind: res.GroupResource()}))
		}
	}
	return out
}

// ServedClusterScoped returns those of ClusterScoped the API server serves
// (at the version it serves), and names the ones it does not.
func ServedClusterScoped(discovered []apisweep.Resource) (served []apisweep.Resource, missing []string) {
	versions := map[string]string{}
	for _, r := range discovered {
		versions[r.GroupResource()] = r.Version
	}
	for _, r := range ClusterScoped {
		v, ok := versions[r.GroupResource()]
		if !ok {
			missing = append(missing, r.GroupResource())
			continue
		}
		r.Version = v
		served = append(served, r)
	}
	return served, missing
}

// clusterObjectName is the object a cluster-scoped request addresses:
// reads of nodes and namespaces address real ones (another tenant's
// namespace), everything else an object that does not exist.
func clusterObjectName(s apisweep.Scope, t checks.Tenant, res apisweep.Resource, verb string) string {
	if verb != "get" {
		return s.Absent()
	}
	switch res {
	case apisweep.Nodes:
		if s.Node != "" {
			return s.Node
		}
	case apisweep.Namespaces:
		if o := s.Others(t); len(o) > 0 {
			return o[0].Namespace
		}
	}
	return s.Absent()
}
