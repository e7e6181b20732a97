package rbac

import (
	"net/http"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// grantedRole is what the cross-tenant grants bind: rights every
// authenticated user holds, so Kubernetes' escalation check never refuses
// it, and a refusal can only be about the subject. A tenant that may bind
// it to outsiders may bind any role it holds to them the same way.
const grantedRole = "system:basic-user"

// outsider is a subject outside a tenant, as a RoleBinding names it.
type outsider struct {
	subject map[string]any
	// words name it in evidence: "Group system:authenticated".
	words string
}

// outsiders are the subjects tenant t must not bind roles to in its own
// namespaces: every authenticated user, anonymous requests, every
// ServiceAccount, and another tenant's group (or user) and ServiceAccount.
func outsiders(s apisweep.Scope, t checks.Tenant) []outsider {
	group := func(name string) outsider {
		return outsider{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name}, "Group " + name}
	}
	user := func(name string) outsider {
		return outsider{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}, "User " + name}
	}
	out := []outsider{group("system:authenticated"), user("system:anonymous"), group("system:unauthenticated"), group("system:serviceaccounts")}
	for _, o := range s.Top.Isolated() {
		if o.Name == t.Name || len(o.Namespaces) == 0 {
			continue
		}
		var theirs, sa *outsider
		for _, id := range o.Identities {
			if ns, name, ok := strings.Cut(id.ServiceAccount, "/"); ok {
				if sa == nil {
					sa = &outsider{map[string]any{"kind": "ServiceAccount", "name": name, "namespace": ns}, "ServiceAccount " + id.ServiceAccount + " (tenant " + o.Name + ")"}
				}
				continue
			}
			if theirs == nil {
				g := user(id.User)
				for _, grp := range id.Groups {
					if !strings.HasPrefix(grp, "system:") {
						g = group(grp)
						break
					}
				}
				g.words += " (tenant " + o.Name + ")"
				theirs = &g
			}
		}
		if sa == nil {
			sa = &outsider{map[string]any{"kind": "ServiceAccount", "name": "default", "namespace": o.Namespaces[0]}, "ServiceAccount " + o.Namespaces[0] + "/default (tenant " + o.Name + ")"}
		}
		if theirs != nil {
			out = append(out, *theirs)
		}
		out = append(out, *sa)
		break // one other tenant shows it; more add nothing
	}
	return out
}

// grantRequest creates (dry-run) a RoleBinding of grantedRole in ns to
// subject.
func grantRequest(s apisweep.Scope, ns string, subject map[string]any, words string) apisweep.Request {
	body := apisweep.Body(map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": "bulkhead-grant-" + s.RunID, "namespace": ns, "labels": s.Labels()},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": grantedRole},
		"subjects": []map[string]any{subject},
	})
	return apisweep.Request{Verb: "create", Res: apisweep.RoleBindings, Namespace: ns, Method: http.MethodPost,
		Path: apisweep.RoleBindings.Collection(ns) + "?fieldManager=bulkhead", Body: body, DryRun: true,
		Label: "ClusterRole " + grantedRole + " to " + words}
}

// CrossTenantGrantPlan (RBAC-005): no identity of a tenant may bind roles
// in its own namespace to subjects outside its tenant. Kubernetes admits
// such a binding (dry-run) whenever the identity may create RoleBindings
// there and holds the role's rights, so only an admission policy (or a
// grant without RoleBindings) refuses it. Each refusal rests on the same
// binding to the identity itself being admitted, where its grant holds
// RoleBindings (so the body and the role are not what is refused), else on
// a request its grant allows.
func CrossTenantGrantPlan(s apisweep.Scope) []apisweep.Attempt {
	check := IDCrossTenantGrant
	var out []apisweep.Attempt
	for _, t := range s.Actors() {
		for _, id := range t.Identities {
			own := apisweep.OwnNamespace(t, id)
			proof := s.Proof(id, own, rightCreate(apisweep.RoleBindings))
			for _, o := range outsiders(s, t) {
				a := s.Test(check, t, id, grantRequest(s, own, o.subject, o.words), apisweep.ExpectRefused,
					reports.Target{Tenant: t.Name, Namespace: own, Kind: "rolebindings", Name: o.words}, proof)
				// The access review would allow creating RoleBindings to a
				// tenant admin; what matters is whether the binding is admitted.
				a.Review = false
				out = append(out, a)
			}
			self := grantRequest(s, own, subjectOf(id), "the identity itself")
			out = append(out, s.ControlIfHeld(check, t, id, self, apisweep.ExpectAdmitted,
				reports.Target{Tenant: t.Name, Namespace: own, Kind: "rolebindings", Name: id.User})...)
			if c, ok := s.OwnControl(check, t, id); ok {
				out = append(out, c)
			}
		}
	}
	return out
}
