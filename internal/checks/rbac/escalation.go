package rbac

import (
	"net/http"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Known ClusterRoles that grant (much) more than a tenant admin holds.
var escalationTargets = []string{"cluster-admin", "admin"}

// EscalationPlan (RBAC-003): tenants cannot bind or create roles beyond
// their own grant, use the bind, escalate, impersonate and approve verbs,
// mint tokens for other tenants' ServiceAccounts, or reach nodes/proxy.
// Positive controls: binding and creating roles within their grant and
// minting their own ServiceAccount's token (where the grant holds them), a
// request its grant allows, and PositiveControl getting through to
// nodes/proxy and CSR approval.
func EscalationPlan(s apisweep.Scope) []apisweep.Attempt {
	check := IDEscalation
	var out []apisweep.Attempt
	for _, t := range s.Actors() {
		for _, id := range t.Identities {
			own := apisweep.OwnNamespace(t, id)
			acts := apisweep.ActsKey(id)
			test := func(req apisweep.Request, expect apisweep.Expect, target reports.Target, needs ...string) apisweep.Attempt {
				return s.Test(check, t, id, req, expect, target, needs...)
			}
			bindProof := s.Proof(id, own, rightCreate(apisweep.RoleBindings))
			roleProof := s.Proof(id, own, rightCreate(apisweep.Roles))
			ownTarget := reports.Target{Tenant: t.Name, Namespace: own}

			// Binding powerful ClusterRoles in its own namespace, and creating
			// Roles that hold more than the tenant does: the access review of
			// "create" would allow it (the tenant manages its own RBAC), so
			// the real request carries the test (escalation prevention must
			// refuse it), and the bind and escalate verbs are asked on their
			// own.
			realOnly := func(req apisweep.Request, target reports.Target, needs string) apisweep.Attempt {
				a := test(req, apisweep.ExpectDenied, target, needs)
				a.Review = false
				return a
			}
			for _, cr := range escalationTargets {
				out = append(out,
					realOnly(roleBindingRequest(s, id, own, "ClusterRole", cr, "ClusterRole "+cr), withKind(ownTarget, "rolebindings", cr), bindProof),
					test(apisweep.ReviewOnly(apisweep.ClusterRoles, "bind", "", own, cr), apisweep.ExpectDenied, withKind(ownTarget, "clusterroles", cr), bindProof))
			}
			out = append(out, realOnly(roleRequest(s, own, "everything", []map[string]any{{"apiGroups": []string{"*"}, "resources": []string{"*"}, "verbs": []string{"*"}}}),
				withKind(ownTarget, "roles", ""), roleProof))
			if t.Reference {
				// The reference tenant-admin Role only reads NetworkPolicies.
				out = append(out, realOnly(roleRequest(s, own, "networkpolicy writer", []map[string]any{{"apiGroups": []string{"networking.k8s.io"}, "resources": []string{"networkpolicies"}, "verbs": []string{"create", "delete"}}}),
					withKind(ownTarget, "roles", ""), roleProof))
			}
			out = append(out,
				test(apisweep.ReviewOnly(apisweep.Roles, "escalate", "", own, ""), apisweep.ExpectDenied, withKind(ownTarget, "roles", ""), roleProof),
				test(apisweep.ReviewOnly(apisweep.ClusterRoles, "escalate", "", "", ""), apisweep.ExpectDenied, reports.Target{Kind: "clusterroles.rbac.authorization.k8s.io"}, acts),
				test(apisweep.ReviewOnly(apisweep.ClusterRoles, "bind", "", "", "cluster-admin"), apisweep.ExpectDenied, reports.Target{Kind: "clusterroles.rbac.authorization.k8s.io", Name: "cluster-admin"}, acts))

			// Impersonation: as the tenant's ServiceAccount a real request
			// with Impersonate-* headers; a user acts through bulkhead's
			// impersonation already, which cannot be nested.
			for _, imp := range impersonations(s, t) {
				req := imp.review
				req.Method, req.Path = http.MethodGet, apisweep.ConfigMaps.Collection(own)+"?limit=1"
				req.Headers = imp.headers
				out = append(out, test(req, apisweep.ExpectDenied, imp.target, acts))
			}

			// Tokens of other tenants' ServiceAccounts; its own tenant's
			// ServiceAccount's token, where its grant holds it, is the
			// control for that path.
			tokenProof := acts
			for _, oid := range t.Identities {
				if ns, name, ok := strings.Cut(oid.ServiceAccount, "/"); ok {
					req := apisweep.TokenRequest(ns, name)
					if s.May(id, ns, apisweep.RightOf(req)) {
						out = append(out, s.Control(check, t, id, req, apisweep.ExpectAuthorized,
							reports.Target{Tenant: t.Name, Namespace: ns, Name: name, Kind: "serviceaccounts/token"}))
						tokenProof = apisweep.MayKey(id, ns, apisweep.RightOf(req))
					}
					break
				}
			}
			for _, o := range s.Actors() {
				if o.Name == t.Name {
					continue
				}
				for _, oid := range o.Identities {
					if ns, name, ok := strings.Cut(oid.ServiceAccount, "/"); ok {
						out = append(out, test(apisweep.TokenRequest(ns, name), apisweep.ExpectDenied,
							reports.Target{Tenant: o.Name, Namespace: ns, Name: name, Kind: "serviceaccounts/token"}, tokenProof))
					}
				}
			}

			// Approving certificate signing requests.
			approval := csrApproval(s)
			out = append(out,
				test(approval, apisweep.ExpectDenied, reports.Target{Kind: "certificatesigningrequests/approval", Name: s.Absent()},
					acts, apisweep.AdminKey(apisweep.RightOf(approval))),
				test(apisweep.ReviewOnly(apisweep.Signers, "approve", "", "", "kubernetes.io/kube-apiserver-client"), apisweep.ExpectDenied,
					reports.Target{Kind: "signers.certificates.k8s.io", Name: "kubernetes.io/kube-apiserver-client"}, acts))

			// The kubelet API through nodes/proxy.
			if s.Node != "" {
				proxy := nodeProxy(s.Node)
				out = append(out,
					test(proxy, apisweep.ExpectDenied, reports.Target{Kind: "nodes/proxy", Name: s.Node}, acts, apisweep.AdminKey(apisweep.RightOf(proxy))),
					test(apisweep.ReviewOnly(apisweep.Nodes, "create", "proxy", "", s.Node), apisweep.ExpectDenied, reports.Target{Kind: "nodes/proxy", Name: s.Node}, acts))
			}

			// Positive controls: binding and creating roles within its
			// grant, where it holds those rights; a request its grant allows.
			binding := roleBindingRequest(s, id, own, "Role", "tenant-admin", "Role tenant-admin")
			out = append(out, s.ControlIfHeld(check, t, id, binding, apisweep.ExpectAuthorized, withKind(ownTarget, "rolebindings", ""))...)
			rules := []map[string]any{{"apiGroups": []string{""}, "resources": []string{"configmaps"}, "verbs": []string{"get"}}}
			out = append(out, s.ControlIfHeld(check, t, id, roleRequest(s, own, "subset of the tenant's grant", rules), apisweep.ExpectAuthorized, withKind(ownTarget, "roles", ""))...)
			if c, ok := s.OwnControl(check, t, id); ok {
				out = append(out, c)
			}
		}
	}
	out = append(out, s.AdminControl(check, csrApproval(s), reports.Target{Kind: "certificatesigningrequests/approval", Name: s.Absent()}))
	if s.Node != "" {
		out = append(out, s.AdminControl(check, nodeProxy(s.Node), reports.Target{Kind: "nodes/proxy", Name: s.Node}))
	}
	return out
}

func rightCreate(res apisweep.Resource) actors.Right {
	return actors.Right{Verb: "create", Group: res.Group, Resource: res.Resource}
}

func withKind(t reports.Target, kind, name string) reports.Target {
	t.Kind, t.Name = kind, name
	return t
}

// subjectOf is the RoleBinding subject of an identity.
func subjectOf(id checks.Identity) map[string]any {
	if ns, name, ok := strings.Cut(id.ServiceAccount, "/"); ok {
		return map[string]any{"kind": "ServiceAccount", "name": name, "namespace": ns}
	}
	return map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": id.User}
}

// roleBindingRequest creates (dry-run) a RoleBinding in ns to a role, for
// the identity itself (a subject of its own tenant).
func roleBindingRequest(s apisweep.Scope, id checks.Identity, ns, kind, role, label string) apisweep.Request {
	body := apisweep.Body(map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": "bulkhead-escalation-" + s.RunID, "namespace": ns, "labels": s.Labels()},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
		"subjects": []map[string]any{subjectOf(id)},
	})
	return apisweep.Request{Verb: "create", Res: apisweep.RoleBindings, Namespace: ns, Method: http.MethodPost,
		Path: apisweep.RoleBindings.Collection(ns) + "?fieldManager=bulkhead", Body: body, DryRun: true, Label: "roleRef " + label}
}

// roleRequest creates (dry-run) a Role in ns with rules.
func roleRequest(s apisweep.Scope, ns, label string, rules []map[string]any) apisweep.Request {
	body := apisweep.Body(map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
		"metadata": map[string]any{"name": "bulkhead-escalation-" + s.RunID, "namespace": ns, "labels": s.Labels()},
		"rules":    rules,
	})
	return apisweep.Request{Verb: "create", Res: apisweep.Roles, Namespace: ns, Method: http.MethodPost,
		Path: apisweep.Roles.Collection(ns) + "?fieldManager=bulkhead", Body: body, DryRun: true, Label: "rules: " + label}
}

// csrApproval approves (dry-run) a CSR that does not exist: authorization
// comes first, so 403 is a deny and 404 a way through.
func csrApproval(s apisweep.Scope) apisweep.Request {
	name := s.Absent()
	body := apisweep.Body(map[string]any{"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"request": "", "signerName": "kubernetes.io/kube-apiserver-client", "usages": []string{"client auth"}},
		"status":   map[string]any{"conditions": []map[string]any{{"type": "Approved", "status": "True", "reason": "bulkhead", "message": "must be refused"}}}})
	return apisweep.Request{Verb: "update", Res: apisweep.CSRs, Subresource: "approval", Name: name, Method: http.MethodPut,
		Path: apisweep.CSRs.Object("", name, "approval"), Body: body, DryRun: true}
}

func nodeProxy(node string) apisweep.Request {
	return apisweep.Request{Verb: "get", Res: apisweep.Nodes, Subresource: "proxy", Name: node, Method: http.MethodGet,
		Path: apisweep.Nodes.Object("", node, "proxy") + "/healthz"}
}

type impersonation struct {
	review  apisweep.Request
	headers map[string][]string
	target  reports.Target
}

// impersonations are the identities a tenant tries to become: another
// tenant's user and ServiceAccount, and the system:masters group.
func impersonations(s apisweep.Scope, t checks.Tenant) []impersonation {
	var out []impersonation
	for _, o := range s.Actors() {
		if o.Name == t.Name {
			continue
		}
		for _, oid := range o.Identities {
			if ns, name, ok := strings.Cut(oid.ServiceAccount, "/"); ok {
				out = append(out, impersonation{
					review:  apisweep.ReviewOnly(apisweep.ServiceAccounts, "impersonate", "", ns, name),
					headers: map[string][]string{"Impersonate-User": {oid.User}},
					target:  reports.Target{Tenant: o.Name, Namespace: ns, Name: name, Kind: "serviceaccounts"},
				})
				continue
			}
			out = append(out, impersonation{
				review:  apisweep.ReviewOnly(apisweep.Users, "impersonate", "", "", oid.User),
				headers: map[string][]string{"Impersonate-User": {oid.User}},
				target:  reports.Target{Tenant: o.Name, Name: oid.User, Kind: "users"},
			})
		}
		break // one other tenant shows it; more add nothing
	}
	nobody := "bulkhead:" + s.RunID + ":nobody"
	out = append(out, impersonation{
		review:  apisweep.ReviewOnly(apisweep.Groups, "impersonate", "", "", "system:masters"),
		headers: map[string][]string{"Impersonate-User": {nobody}, "Impersonate-Group": {"system:masters"}},
		target:  reports.Target{Name: "system:masters", Kind: "groups"},
	})
	return out
}
