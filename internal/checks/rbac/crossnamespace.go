package rbac

import (
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// CrossNamespacePlan (RBAC-001): every identity of every isolated tenant
// tries every verb on every namespaced resource in every namespace of the
// run it does not own; the same in its own namespace, where its grant
// allows it, is the positive control.
func CrossNamespacePlan(s apisweep.Scope) []apisweep.Attempt {
	check := IDCrossNamespace
	var out []apisweep.Attempt
	for _, t := range s.Actors() {
		for _, id := range t.Identities {
			for _, o := range s.Others(t) {
				for _, res := range s.Resources {
					for _, verb := range apisweep.MatrixVerbs {
						req := apisweep.ResourceRequest(res, verb, o.Namespace, s.Absent(), s.Labels())
						out = append(out, s.Try(check, reports.RoleTest, t, id, req, apisweep.ExpectDenied,
							reports.Target{Tenant: o.Tenant, Namespace: o.Namespace, Kind: res.GroupResource()}))
					}
				}
			}
			own := apisweep.OwnNamespace(t, id)
			for _, res := range s.Resources {
				for _, verb := range apisweep.MatrixVerbs {
					req := apisweep.ResourceRequest(res, verb, own, s.Absent(), s.Labels())
					a := s.Try(check, reports.RoleControl, t, id, req, apisweep.ExpectAuthorized,
						reports.Target{Tenant: t.Name, Namespace: own, Kind: res.GroupResource()})
					a.IfReviewAllows = true
					out = append(out, a)
				}
			}
		}
	}
	return out
}
