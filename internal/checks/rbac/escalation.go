package rbac

import (
	"net/http"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// ClusterRoles that grant (much) more than a tenant admin holds: binding
// one in its own namespace gains what the identity does not hold, unless
// it already holds all of it there.
var escalationTargets = []string{"cluster-admin", "admin"}

// EscalationPlan (RBAC-003): escalation is gaining a right the identity
// does not hold. Tenants cannot bind roles, or create roles, holding more
// than they do in their own namespace; use the bind, escalate or
// impersonate verbs (at cluster scope, on other tenants' users and
// ServiceAccounts, system:masters); mint tokens for other tenants'
// ServiceAccounts; approve certificate signing requests; or reach the
// kubelet API through nodes/proxy. A tenant admin binding a role it holds
// entirely (admin, when it is admin in its namespace) gains nothing:
// Kubernetes' escalation check allows exactly that, and so does this
// check. Positive controls: binding and creating roles within its grant
// and minting its own ServiceAccount's token (where its grant holds
// them), a request its grant allows (for the rest), and PositiveControl
// getting through to nodes/proxy and CSR approval.
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

			// Binding powerful ClusterRoles in its own namespace: the review
			// asks the bind verb, the real request binds it (dry-run) to the
			// identity itself.
			for _, cr := range escalationTargets {
				out = append(out, test(bindRequest(s, id, own, "ClusterRole", cr), apisweep.ExpectNoEscalation,
					withKind(ownTarget, "rolebindings", cr), bindProof))
			}
			// Creating Roles that hold more than the tenant does: the review
			// asks the escalate verb, the real request creates it (dry-run).
			out = append(out,
				test(escalateRequest(s, own, "every right", []map[string]any{{"apiGroups": []string{"*"}, "resources": []string{"*"}, "verbs": []string{"*"}}}),
					apisweep.ExpectNoEscalation, withKind(ownTarget, "roles", ""), roleProof),
				test(escalateRequest(s, own, "networkpolicy writer", []map[string]any{{"apiGroups": []string{"networking.k8s.io"}, "resources": []string{"networkpolicies"}, "verbs": []string{"create", "delete"}}}),
					apisweep.ExpectNoEscalation, withKind(ownTarget, "roles", ""), roleProof))
			out = append(out,
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
			ownToken, tokenProof := s.OwnTokenControl(check, t, id)
			out = append(out, ownToken...)
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
			within := "ClusterRole system:basic-user (rights every authenticated user holds)"
			binding := roleBindingRequest(s, id, own, "ClusterRole", "system:basic-user", within)
			if t.Reference {
				binding = roleBindingRequest(s, id, own, "Role", "tenant-admin", "Role tenant-admin (its own grant)")
			}
			out = append(out, s.ControlIfHeld(check, t, id, binding, apisweep.ExpectAuthorized, withKind(ownTarget, "rolebindings", ""))...)
			rules := []map[string]any{}
			if s.May(id, own, actors.Get("configmaps")) {
				rules = append(rules, map[string]any{"apiGroups": []string{""}, "resources": []string{"configmaps"}, "verbs": []string{"get"}})
			}
			out = append(out, s.ControlIfHeld(check, t, id, roleRequest(s, own, "within its grant", rules), apisweep.ExpectAuthorized, withKind(ownTarget, "roles", ""))...)
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

// bindRequest is binding ClusterRole (or Role) role in ns to the identity
// itself: the access review asks the bind verb on the role, the real
// request creates the RoleBinding (dry-run), which escalation prevention
// refuses unless the identity holds every right of the role there.
func bindRequest(s apisweep.Scope, id checks.Identity, ns, kind, role string) apisweep.Request {
	req := roleBindingRequest(s, id, ns, kind, role, kind+" "+role)
	req.Verb, req.Res, req.Name = "bind", apisweep.ClusterRoles, role
	if kind == "Role" {
		req.Res = apisweep.Roles
	}
	req.Label = "by creating a RoleBinding to " + kind + " " + role + " in its namespace"
	return req
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

// escalateRequest is creating a Role with rules in ns: the access review
// asks the escalate verb, the real request creates it (dry-run), which
// escalation prevention refuses unless the identity holds every rule.
func escalateRequest(s apisweep.Scope, ns, label string, rules []map[string]any) apisweep.Request {
	req := roleRequest(s, ns, label, rules)
	req.Verb = "escalate"
	req.Label = "by creating a Role holding " + label
	return req
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
