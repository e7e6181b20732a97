package rbac

import (
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// CrossNamespacePlan (RBAC-001): every identity of every isolated tenant
// tries every verb on every namespaced resource in every namespace of the
// run it does not own. The same request in its own namespace, where its
// grant holds it, is the control its denial rests on; a denial of a
// request its grant does not hold rests on another request it may make.
func CrossNamespacePlan(s apisweep.Scope) []apisweep.Attempt {
	check := IDCrossNamespace
	var out []apisweep.Attempt
	for _, t := range s.Actors() {
		for _, id := range t.Identities {
			own := apisweep.OwnNamespace(t, id)
			for _, o := range s.Others(t) {
				for _, res := range s.Resources {
					for _, verb := range apisweep.MatrixVerbs {
						req := apisweep.ResourceRequest(res, verb, o.Namespace, s.Absent(), s.Labels())
						out = append(out, s.Test(check, t, id, req, apisweep.ExpectDenied,
							reports.Target{Tenant: o.Tenant, Namespace: o.Namespace, Kind: res.GroupResource()},
							s.Proof(id, own, apisweep.RightOf(req))))
					}
				}
			}
			for _, res := range s.Resources {
				for _, verb := range apisweep.MatrixVerbs {
					req := apisweep.ResourceRequest(res, verb, own, s.Absent(), s.Labels())
					out = append(out, s.ControlIfHeld(check, t, id, req, apisweep.ExpectAuthorized,
						reports.Target{Tenant: t.Name, Namespace: own, Kind: res.GroupResource()})...)
				}
			}
		}
	}
	return out
}
