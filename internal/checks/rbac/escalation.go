package rbac

import (
	"net/http"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Known apisweep.ClusterRoles that grant (much) more than a tenant admin holds.
var escalationTargets = []string{"cluster-admin", "admin"}

// EscalationPlan (RBAC-003): tenants cannot bind or create roles beyond
// their own grant, use the bind, escalate, impersonate and approve verbs,
// mint tokens for other tenants' apisweep.ServiceAccounts, or reach nodes/proxy.
// Positive controls: binding and creating roles within their grant and
// minting their own ServiceAccount's token work; apisweep.PositiveControl gets
// through to nodes/proxy and CSR approval.
func EscalationPlan(s apisweep.Scope) []apisweep.Attempt {
	check := IDEscalation
	var out []apisweep.Attempt
	for _, t := range s.Actors() {
		for _, id := range t.Identities {
			own := apisweep.OwnNamespace(t, id)
			test := func(req apisweep.Request, target reports.Target) apisweep.Attempt {
				return s.Try(check, reports.RoleTest, t, id, req, apisweep.ExpectDenied, target)
			}
			// realOnly: the access review for "create rolebindings/roles"
			// would allow it (the tenant manages its own RBAC); escalation
			// prevention must refuse the request itself, so the real request
			// carries the test, and the bind and escalate verbs are asked on
			// their own.
			realOnly := func(req apisweep.Request, target reports.Target) apisweep.Attempt {
				a := test(req, target)
				a.Review = false
				return a
			}
			control := func(req apisweep.Request, target reports.Target) apisweep.Attempt {
				a := s.Try(check, reports.RoleControl, t, id, req, apisweep.ExpectAuthorized, target)
				a.IfReviewAllows = true
				return a
			}
			ownTarget := reports.Target{Tenant: t.Name, Namespace: own}

			// Binding powerful apisweep.ClusterRoles in its own namespace.
			for _, cr := range escalationTargets {
				out = append(out,
					realOnly(roleBindingRequest(s, own, "ClusterRole", cr), withKind(ownTarget, "rolebindings", cr)),
					test(apisweep.ReviewOnly(apisweep.ClusterRoles, "bind", "", own, cr), withKind(ownTarget, "clusterroles", cr)))
			}
			// Creating apisweep.Roles that hold more than the tenant does.
			out = append(out, realOnly(roleRequest(s, own, "everything", []map[string]any{{"apiGroups": []string{"*"}, "resources": []string{"*"}, "verbs": []string{"*"}}}),
				withKind(ownTarget, "roles", "")))
			if t.Reference {
				// The reference tenant-admin Role only reads NetworkPolicies.
				out = append(out, realOnly(roleRequest(s, own, "networkpolicy writer", []map[string]any{{"apiGroups": []string{"networking.k8s.io"}, "resources": []string{"networkpolicies"}, "verbs": []string{"create", "delete"}}}),
					withKind(ownTarget, "roles", "")))
			}
			out = append(out,
				test(apisweep.ReviewOnly(apisweep.Roles, "escalate", "", own, ""), withKind(ownTarget, "roles", "")),
				test(apisweep.ReviewOnly(apisweep.ClusterRoles, "escalate", "", "", ""), reports.Target{Kind: "clusterroles.rbac.authorization.k8s.io"}),
				test(apisweep.ReviewOnly(apisweep.ClusterRoles, "bind", "", "", "cluster-admin"), reports.Target{Kind: "clusterroles.rbac.authorization.k8s.io", Name: "cluster-admin"}))

			// Impersonation: as the tenant's ServiceAccount a real request
			// with Impersonate-* headers; a user acts through bulkhead's
			// impersonation already, which cannot be nested.
			for _, imp := range impersonations(s, t) {
				req := imp.review
				req.Method, req.Path = http.MethodGet, apisweep.ConfigMaps.Collection(own)+"?limit=1"
				req.Headers = imp.headers
				out = append(out, test(req, imp.target))
			}

			// Tokens of other tenants' apisweep.ServiceAccounts; its own
			// ServiceAccount's token is the control for that path.
			for _, o := range s.Actors() {
				for _, oid := range o.Identities {
					ns, name, ok := strings.Cut(oid.ServiceAccount, "/")
					if !ok {
						continue
					}
					target := reports.Target{Tenant: o.Name, Namespace: ns, Name: name, Kind: "serviceaccounts/token"}
					if o.Name == t.Name {
						out = append(out, control(apisweep.TokenRequest(ns, name), target))
					} else {
						out = append(out, test(apisweep.TokenRequest(ns, name), target))
					}
				}
			}

			// Approving certificate signing requests.
			out = append(out,
				test(csrApproval(s), reports.Target{Kind: "certificatesigningrequests/approval", Name: s.Absent()}),
				test(apisweep.ReviewOnly(apisweep.Signers, "approve", "", "", "kubernetes.io/kube-apiserver-client"), reports.Target{Kind: "signers.certificates.k8s.io", Name: "kubernetes.io/kube-apiserver-client"}))

			// The kubelet API through nodes/proxy.
			if s.Node != "" {
				out = append(out,
					test(nodeProxy(s.Node), reports.Target{Kind: "nodes/proxy", Name: s.Node}),
					test(apisweep.ReviewOnly(apisweep.Nodes, "create", "proxy", "", s.Node), reports.Target{Kind: "nodes/proxy", Name: s.Node}))
			}

			// Positive controls: what the tenant's grant allows.
			out = append(out,
				control(roleBindingRequest(s, own, "Role", "tenant-admin"), withKind(ownTarget, "rolebindings", "tenant-admin")),
				control(roleRequest(s, own, "subset of the tenant's grant", []map[string]any{{"apiGroups": []string{""}, "resources": []string{"configmaps"}, "verbs": []string{"get"}}}),
					withKind(ownTarget, "roles", "")))
		}
	}
	out = append(out, s.AsPositiveControl(check, csrApproval(s), reports.Target{Kind: "certificatesigningrequests/approval", Name: s.Absent()}))
	if s.Node != "" {
		out = append(out, s.AsPositiveControl(check, nodeProxy(s.Node), reports.Target{Kind: "nodes/proxy", Name: s.Node}))
	}
	return out
}

func withKind(t reports.Target, kind, name string) reports.Target {
	t.Kind, t.Name = kind, name
	return t
}

// roleBindingRequest creates (dry-run) a RoleBinding in ns to a role, for
// a subject that does not exist.
func roleBindingRequest(s apisweep.Scope, ns, kind, role string) apisweep.Request {
	name := "bulkhead-escalation-" + s.RunID
	body := apisweep.Body(map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": s.Labels()},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
		"subjects": []map[string]any{{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bulkhead:" + s.RunID + ":nobody"}},
	})
	return apisweep.Request{Verb: "create", Res: apisweep.RoleBindings, Namespace: ns, Method: http.MethodPost,
		Path: apisweep.RoleBindings.Collection(ns) + "?fieldManager=bulkhead", Body: body, DryRun: true, Label: "roleRef " + kind + " " + role}
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
