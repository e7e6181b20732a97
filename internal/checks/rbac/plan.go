package rbac

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Via is how the real request of an attempt reaches the API server.
type Via string

const (
	// ViaNone: no real request (the access review is the evidence).
	ViaNone Via = ""
	// ViaImpersonation: from bulkhead's process, impersonating the identity.
	ViaImpersonation Via = "impersonation"
	// ViaPod: from inside a pod, with the ServiceAccount's own token.
	ViaPod Via = "in-pod"
	// ViaAnonymous: from inside a pod without a token (Request.Auth says
	// whether no credentials or an invalid token are sent).
	ViaAnonymous Via = "in-pod-anonymous"
	// ViaAdmin: from bulkhead's process impersonating PositiveControl, a
	// synthetic identity in system:masters (positive controls for requests
	// no tenant may make). Only reads and server-side dry-run writes go
	// this way (processClients refuses anything else).
	ViaAdmin Via = "admin"
)

// PositiveControl is the synthetic identity that makes the positive
// controls of requests no tenant may make (cluster-scoped writes, CSR
// approval, nodes/proxy): bulkhead impersonates it, so those controls show
// the request path works whatever the runner itself may do (the
// least-privilege runner ClusterRole grants impersonation of users and
// groups for exactly this and for acting as tenants). In system:masters
// every request gets past authorization; writes are server-side dry-runs
// and the one request through nodes/proxy is GET /healthz.
var PositiveControl = checks.Identity{User: "bulkhead:positive-control", Groups: []string{"system:masters", "system:authenticated"}}

func (v Via) describe() string {
	switch v {
	case ViaImpersonation:
		return "by bulkhead impersonating the identity"
	case ViaPod:
		return "from inside a pod with the ServiceAccount's own token"
	case ViaAnonymous:
		return "from inside a pod without a token"
	case ViaAdmin:
		return "by bulkhead impersonating " + PositiveControl.User + " (groups " + strings.Join(PositiveControl.Groups, ", ") + ")"
	}
	return "(none)"
}

// Attempt is one thing an identity tries and what it must show.
type Attempt struct {
	// Check is the ID of the check the attempt belongs to.
	Check string
	Role  reports.Role
	// Tenant acting ("" for bulkhead itself).
	Tenant   string
	Identity checks.Identity
	// Review asks a SubjectAccessReview for Identity.
	Review bool
	// Via is how the real request is made (ViaNone: none).
	Via Via
	// Auth is how an anonymous pod authenticates (AuthNone, AuthInvalid).
	Auth wire.APIAuth
	Req  Request
	// Expect is what the attempt must show.
	Expect Expect
	// Target is what is tried, for evidence.
	Target reports.Target
	// Canary is the fingerprint of the canary value the answer must (or
	// must not) hold.
	Canary string
	// IfReviewAllows marks a positive control that only counts when the
	// access review allows it: the identity's own grant decides which of
	// its own-namespace requests prove the path works.
	IfReviewAllows bool
	// Note explains something about the attempt for evidence.
	Note string
}

// Scope is what plans are made from: the run's tenants and what the
// sweep found and set up.
type Scope struct {
	RunID string
	Top   checks.Topology
	// Resources are the namespaced resources the API server serves
	// (discovery, preferred versions, no subresources).
	Resources []Resource
	// ClusterResources are the cluster-scoped resources checked here that
	// the API server serves.
	ClusterResources []Resource
	// Node is a node name for nodes/proxy.
	Node string
	// Canaries by tenant.
	Canaries map[string]fixtures.Canary
	// CanaryPods are the pods (by tenant) that mount the tenant's canary.
	CanaryPods map[string]string
	// TokenPods are the in-pod paths: ServiceAccount ("ns/name") to the
	// name of a pod in its namespace that runs as it with its own token.
	TokenPods map[string]string
	// AnonymousPod is a pod without a token ("ns/name"), or empty.
	AnonymousPod string
	// AnonymousTenant is the tenant whose namespace holds AnonymousPod.
	AnonymousTenant string
	// Admin is bulkhead's own user name (the runner, who impersonates
	// PositiveControl), for evidence.
	Admin string
}

// absent is the name of objects that do not exist: object requests
// address it, so a 404 means authorization let the request through.
func (s Scope) absent() string { return "bulkhead-absent-" + s.RunID }

func (s Scope) labels() map[string]string { return fixtures.CommonLabels(s.RunID) }

// actors are the isolated tenants that have identities, in topology order.
func (s Scope) actors() []checks.Tenant {
	var out []checks.Tenant
	for _, t := range s.Top.Tenants {
		if t.Isolated && len(t.Identities) > 0 && len(t.Namespaces) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// others are the namespaces of the run that tenant t does not own, with
// their tenant.
func (s Scope) others(t checks.Tenant) []nsOf {
	var out []nsOf
	for _, o := range s.Top.Tenants {
		if o.Name == t.Name {
			continue
		}
		for _, ns := range o.Namespaces {
			if !slices.Contains(t.Namespaces, ns) {
				out = append(out, nsOf{tenant: o.Name, ns: ns})
			}
		}
	}
	return out
}

type nsOf struct{ tenant, ns string }

// realVia is how identity id makes real requests: from inside its pod with
// its own token when there is one, else through impersonation.
func (s Scope) realVia(id checks.Identity) (Via, string) {
	if id.ServiceAccount == "" {
		return ViaImpersonation, ""
	}
	if _, ok := s.TokenPods[id.ServiceAccount]; ok {
		return ViaPod, ""
	}
	return ViaImpersonation, "no pod with this ServiceAccount's own token (bulkhead only starts pods in namespaces it owns): real requests impersonate it"
}

// attempt builds an attempt of tenant t's identity id.
func (s Scope) attempt(check string, role reports.Role, t checks.Tenant, id checks.Identity, req Request, expect Expect, target reports.Target) Attempt {
	via, note := s.realVia(id)
	if req.Method == "" && req.Exec == nil {
		via, note = ViaNone, ""
	}
	if via == ViaImpersonation && hasImpersonation(req.Headers) {
		// bulkhead already impersonates this identity; that cannot be nested.
		via, note = ViaNone, "the identity acts through bulkhead's own impersonation, which cannot be nested: the access review is the evidence"
		req.Method, req.Path, req.Headers = "", "", nil
	}
	if req.Exec != nil && via == ViaPod {
		// A pod cannot open an exec stream through the probe; it sends the
		// same request without the upgrade (authorization comes first).
		req = execWithoutStream(req)
	}
	if target.Address == "" {
		target.Address = req.Address()
	}
	return Attempt{Check: check, Role: role, Tenant: t.Name, Identity: id, Review: true, Via: via,
		Req: req, Expect: expect, Target: target, Note: note}
}

func hasImpersonation(h map[string][]string) bool {
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "impersonate-") {
			return true
		}
	}
	return false
}

// admin builds a positive control made as PositiveControl, the synthetic
// identity in system:masters that bulkhead impersonates.
func (s Scope) admin(check string, req Request, target reports.Target) Attempt {
	if target.Address == "" {
		target.Address = req.Address()
	}
	runner := s.Admin
	if runner == "" {
		runner = "bulkhead's own identity"
	}
	return Attempt{Check: check, Role: reports.RoleControl, Identity: PositiveControl, Via: ViaAdmin,
		Req: req, Expect: ExpectAuthorized, Target: target,
		Note: "positive control by a synthetic identity in system:masters, impersonated by " + runner +
			", so it does not depend on the runner's own privileges; writes are server-side dry-run"}
}

func (s Scope) tenantOfNamespace(ns string) string {
	if t, ok := s.Top.TenantOfNamespace(ns); ok {
		return t.Name
	}
	return ""
}

// ownNamespace is where an identity of t acts as itself: its
// ServiceAccount's namespace, or the tenant's first namespace.
func ownNamespace(t checks.Tenant, id checks.Identity) string {
	if ns, _, ok := strings.Cut(id.ServiceAccount, "/"); ok && slices.Contains(t.Namespaces, ns) {
		return ns
	}
	return t.Namespaces[0]
}

// CrossNamespacePlan (RBAC-001): every identity of every isolated tenant
// tries every verb on every namespaced resource in every namespace of the
// run it does not own; the same in its own namespace, where its grant
// allows it, is the positive control.
func CrossNamespacePlan(s Scope, check string) []Attempt {
	var out []Attempt
	for _, t := range s.actors() {
		for _, id := range t.Identities {
			for _, o := range s.others(t) {
				for _, res := range s.Resources {
					for _, verb := range MatrixVerbs {
						req := ResourceRequest(res, verb, o.ns, s.absent(), s.labels())
						out = append(out, s.attempt(check, reports.RoleTest, t, id, req, ExpectDenied,
							reports.Target{Tenant: o.tenant, Namespace: o.ns, Kind: res.GroupResource()}))
					}
				}
			}
			own := ownNamespace(t, id)
			for _, res := range s.Resources {
				for _, verb := range MatrixVerbs {
					req := ResourceRequest(res, verb, own, s.absent(), s.labels())
					a := s.attempt(check, reports.RoleControl, t, id, req, ExpectAuthorized,
						reports.Target{Tenant: t.Name, Namespace: own, Kind: res.GroupResource()})
					a.IfReviewAllows = true
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// ClusterScoped are the cluster-scoped resources RBAC-002 tries, with the
// API that serves them.
var ClusterScoped = []Resource{
	Nodes, Namespaces,
	{Version: "v1", Resource: "persistentvolumes", Kind: "PersistentVolume"},
	ClusterRoles,
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings", Kind: "ClusterRoleBinding"},
	{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions", Kind: "CustomResourceDefinition"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations", Kind: "ValidatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations", Kind: "MutatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies", Kind: "ValidatingAdmissionPolicy"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings", Kind: "ValidatingAdmissionPolicyBinding"},
	CSRs,
	{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses", Kind: "StorageClass"},
}

// clusterWrites and clusterReads are the verbs RBAC-002 tries.
var (
	clusterWrites = []string{"create", "update", "patch", "delete"}
	clusterReads  = []string{"get", "list", "watch"}
)

// ClusterScopePlan (RBAC-002): no identity of an isolated tenant writes any
// of ClusterResources; reference tenants, whose policy grants no
// cluster-scoped read, cannot read them either. Positive controls: the
// same requests as PositiveControl get past authorization, and
// every identity can make a request its grant allows (a self access
// review), so its denials are not failures to authenticate.
func ClusterScopePlan(s Scope, check string) []Attempt {
	var out []Attempt
	for _, t := range s.actors() {
		for _, id := range t.Identities {
			for _, res := range s.ClusterResources {
				verbs := clusterWrites
				if t.Reference {
					verbs = append(slices.Clone(clusterReads), clusterWrites...)
				}
				for _, verb := range verbs {
					req := ResourceRequest(res, verb, "", clusterObjectName(s, t, res, verb), s.labels())
					out = append(out, s.attempt(check, reports.RoleTest, t, id, req, ExpectDenied,
						reports.Target{Kind: res.GroupResource()}))
				}
			}
			ssar := Request{Verb: "create", Res: SARs, Method: http.MethodPost, Path: SARs.collection(""),
				Body: jsonBody(map[string]any{"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
					"spec": map[string]any{"resourceAttributes": map[string]any{"namespace": ownNamespace(t, id), "verb": "get", "resource": "pods"}}})}
			out = append(out, s.attempt(check, reports.RoleControl, t, id, ssar, ExpectAuthorized, reports.Target{Kind: SARs.GroupResource()}))
		}
	}
	for _, res := range s.ClusterResources {
		for _, verb := range append(slices.Clone(clusterReads), clusterWrites...) {
			req := ResourceRequest(res, verb, "", s.absent(), s.labels())
			out = append(out, s.admin(check, req, reports.Target{Kind: res.GroupResource()}))
		}
	}
	return out
}

// clusterObjectName is the object a cluster-scoped request addresses:
// reads of nodes and namespaces address real ones (another tenant's
// namespace), everything else an object that does not exist.
func clusterObjectName(s Scope, t checks.Tenant, res Resource, verb string) string {
	if verb != "get" {
		return s.absent()
	}
	switch res {
	case Nodes:
		if s.Node != "" {
			return s.Node
		}
	case Namespaces:
		if o := s.others(t); len(o) > 0 {
			return o[0].ns
		}
	}
	return s.absent()
}

// Known ClusterRoles that grant (much) more than a tenant admin holds.
var escalationTargets = []string{"cluster-admin", "admin"}

// EscalationPlan (RBAC-003): tenants cannot bind or create roles beyond
// their own grant, use the bind, escalate, impersonate and approve verbs,
// mint tokens for other tenants' ServiceAccounts, or reach nodes/proxy.
// Positive controls: binding and creating roles within their grant and
// minting their own ServiceAccount's token work; PositiveControl gets
// through to nodes/proxy and CSR approval.
func EscalationPlan(s Scope, check string) []Attempt {
	var out []Attempt
	for _, t := range s.actors() {
		for _, id := range t.Identities {
			own := ownNamespace(t, id)
			test := func(req Request, target reports.Target) Attempt {
				return s.attempt(check, reports.RoleTest, t, id, req, ExpectDenied, target)
			}
			// realOnly: the access review for "create rolebindings/roles"
			// would allow it (the tenant manages its own RBAC); escalation
			// prevention must refuse the request itself, so the real request
			// carries the test, and the bind and escalate verbs are asked on
			// their own.
			realOnly := func(req Request, target reports.Target) Attempt {
				a := test(req, target)
				a.Review = false
				return a
			}
			control := func(req Request, target reports.Target) Attempt {
				a := s.attempt(check, reports.RoleControl, t, id, req, ExpectAuthorized, target)
				a.IfReviewAllows = true
				return a
			}
			ownTarget := reports.Target{Tenant: t.Name, Namespace: own}

			// Binding powerful ClusterRoles in its own namespace.
			for _, cr := range escalationTargets {
				out = append(out,
					realOnly(roleBindingRequest(s, own, "ClusterRole", cr), withKind(ownTarget, "rolebindings", cr)),
					test(ReviewOnly(ClusterRoles, "bind", "", own, cr), withKind(ownTarget, "clusterroles", cr)))
			}
			// Creating Roles that hold more than the tenant does.
			out = append(out, realOnly(roleRequest(s, own, "everything", []map[string]any{{"apiGroups": []string{"*"}, "resources": []string{"*"}, "verbs": []string{"*"}}}),
				withKind(ownTarget, "roles", "")))
			if t.Reference {
				// The reference tenant-admin Role only reads NetworkPolicies.
				out = append(out, realOnly(roleRequest(s, own, "networkpolicy writer", []map[string]any{{"apiGroups": []string{"networking.k8s.io"}, "resources": []string{"networkpolicies"}, "verbs": []string{"create", "delete"}}}),
					withKind(ownTarget, "roles", "")))
			}
			out = append(out,
				test(ReviewOnly(Roles, "escalate", "", own, ""), withKind(ownTarget, "roles", "")),
				test(ReviewOnly(ClusterRoles, "escalate", "", "", ""), reports.Target{Kind: "clusterroles.rbac.authorization.k8s.io"}),
				test(ReviewOnly(ClusterRoles, "bind", "", "", "cluster-admin"), reports.Target{Kind: "clusterroles.rbac.authorization.k8s.io", Name: "cluster-admin"}))

			// Impersonation: as the tenant's ServiceAccount a real request
			// with Impersonate-* headers; a user acts through bulkhead's
			// impersonation already, which cannot be nested.
			for _, imp := range impersonations(s, t) {
				req := imp.review
				req.Method, req.Path = http.MethodGet, ConfigMaps.collection(own)+"?limit=1"
				req.Headers = imp.headers
				out = append(out, test(req, imp.target))
			}

			// Tokens of other tenants' ServiceAccounts; its own
			// ServiceAccount's token is the control for that path.
			for _, o := range s.actors() {
				for _, oid := range o.Identities {
					ns, name, ok := strings.Cut(oid.ServiceAccount, "/")
					if !ok {
						continue
					}
					target := reports.Target{Tenant: o.Name, Namespace: ns, Name: name, Kind: "serviceaccounts/token"}
					if o.Name == t.Name {
						out = append(out, control(TokenRequest(ns, name), target))
					} else {
						out = append(out, test(TokenRequest(ns, name), target))
					}
				}
			}

			// Approving certificate signing requests.
			out = append(out,
				test(csrApproval(s), reports.Target{Kind: "certificatesigningrequests/approval", Name: s.absent()}),
				test(ReviewOnly(Signers, "approve", "", "", "kubernetes.io/kube-apiserver-client"), reports.Target{Kind: "signers.certificates.k8s.io", Name: "kubernetes.io/kube-apiserver-client"}))

			// The kubelet API through nodes/proxy.
			if s.Node != "" {
				out = append(out,
					test(nodeProxy(s.Node), reports.Target{Kind: "nodes/proxy", Name: s.Node}),
					test(ReviewOnly(Nodes, "create", "proxy", "", s.Node), reports.Target{Kind: "nodes/proxy", Name: s.Node}))
			}

			// Positive controls: what the tenant's grant allows.
			out = append(out,
				control(roleBindingRequest(s, own, "Role", "tenant-admin"), withKind(ownTarget, "rolebindings", "tenant-admin")),
				control(roleRequest(s, own, "subset of the tenant's grant", []map[string]any{{"apiGroups": []string{""}, "resources": []string{"configmaps"}, "verbs": []string{"get"}}}),
					withKind(ownTarget, "roles", "")))
		}
	}
	out = append(out, s.admin(check, csrApproval(s), reports.Target{Kind: "certificatesigningrequests/approval", Name: s.absent()}))
	if s.Node != "" {
		out = append(out, s.admin(check, nodeProxy(s.Node), reports.Target{Kind: "nodes/proxy", Name: s.Node}))
	}
	return out
}

func withKind(t reports.Target, kind, name string) reports.Target {
	t.Kind, t.Name = kind, name
	return t
}

// roleBindingRequest creates (dry-run) a RoleBinding in ns to a role, for
// a subject that does not exist.
func roleBindingRequest(s Scope, ns, kind, role string) Request {
	name := "bulkhead-escalation-" + s.RunID
	body := jsonBody(map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": s.labels()},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
		"subjects": []map[string]any{{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bulkhead:" + s.RunID + ":nobody"}},
	})
	return Request{Verb: "create", Res: RoleBindings, Namespace: ns, Method: http.MethodPost,
		Path: RoleBindings.collection(ns) + "?fieldManager=bulkhead", Body: body, DryRun: true, Label: "roleRef " + kind + " " + role}
}

// roleRequest creates (dry-run) a Role in ns with rules.
func roleRequest(s Scope, ns, label string, rules []map[string]any) Request {
	body := jsonBody(map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
		"metadata": map[string]any{"name": "bulkhead-escalation-" + s.RunID, "namespace": ns, "labels": s.labels()},
		"rules":    rules,
	})
	return Request{Verb: "create", Res: Roles, Namespace: ns, Method: http.MethodPost,
		Path: Roles.collection(ns) + "?fieldManager=bulkhead", Body: body, DryRun: true, Label: "rules: " + label}
}

// TokenRequest mints (dry-run) a token for ServiceAccount ns/name.
func TokenRequest(ns, name string) Request {
	body := jsonBody(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"spec": map[string]any{"expirationSeconds": 600}})
	return Request{Verb: "create", Res: ServiceAccounts, Subresource: "token", Namespace: ns, Name: name,
		Method: http.MethodPost, Path: ServiceAccounts.object(ns, name, "token"), Body: body, DryRun: true}
}

// csrApproval approves (dry-run) a CSR that does not exist: authorization
// comes first, so 403 is a deny and 404 a way through.
func csrApproval(s Scope) Request {
	name := s.absent()
	body := jsonBody(map[string]any{"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"request": "", "signerName": "kubernetes.io/kube-apiserver-client", "usages": []string{"client auth"}},
		"status":   map[string]any{"conditions": []map[string]any{{"type": "Approved", "status": "True", "reason": "bulkhead", "message": "must be refused"}}}})
	return Request{Verb: "update", Res: CSRs, Subresource: "approval", Name: name, Method: http.MethodPut,
		Path: CSRs.object("", name, "approval"), Body: body, DryRun: true}
}

func nodeProxy(node string) Request {
	return Request{Verb: "get", Res: Nodes, Subresource: "proxy", Name: node, Method: http.MethodGet,
		Path: Nodes.object("", node, "proxy") + "/healthz"}
}

type impersonation struct {
	review  Request
	headers map[string][]string
	target  reports.Target
}

// impersonations are the identities a tenant tries to become: another
// tenant's user and ServiceAccount, and the system:masters group.
func impersonations(s Scope, t checks.Tenant) []impersonation {
	var out []impersonation
	for _, o := range s.actors() {
		if o.Name == t.Name {
			continue
		}
		for _, oid := range o.Identities {
			if ns, name, ok := strings.Cut(oid.ServiceAccount, "/"); ok {
				out = append(out, impersonation{
					review:  ReviewOnly(ServiceAccounts, "impersonate", "", ns, name),
					headers: map[string][]string{"Impersonate-User": {oid.User}},
					target:  reports.Target{Tenant: o.Name, Namespace: ns, Name: name, Kind: "serviceaccounts"},
				})
				continue
			}
			out = append(out, impersonation{
				review:  ReviewOnly(Users, "impersonate", "", "", oid.User),
				headers: map[string][]string{"Impersonate-User": {oid.User}},
				target:  reports.Target{Tenant: o.Name, Name: oid.User, Kind: "users"},
			})
		}
		break // one other tenant shows it; more add nothing
	}
	nobody := "bulkhead:" + s.RunID + ":nobody"
	out = append(out, impersonation{
		review:  ReviewOnly(Groups, "impersonate", "", "", "system:masters"),
		headers: map[string][]string{"Impersonate-User": {nobody}, "Impersonate-Group": {"system:masters"}},
		target:  reports.Target{Name: "system:masters", Kind: "groups"},
	})
	return out
}

// anonymousRequests are requests an anonymous client must not get
// answered.
func anonymousRequests(ns string) []Request {
	var out []Request
	for _, p := range []string{"/api", "/apis", "/api/v1", "/apis/apps/v1", "/openapi/v2", "/openapi/v3", "/metrics", "/logs/", "/debug/pprof/"} {
		out = append(out, Request{Verb: "get", NonResourcePath: p, Method: http.MethodGet, Path: p})
	}
	for _, r := range []struct {
		res Resource
		ns  string
	}{{Namespaces, ""}, {Nodes, ""}, {Secrets, ""}, {Secrets, ns}, {Pods, ns}, {ConfigMaps, ns}, {ClusterRoles, ""}} {
		out = append(out, ResourceRequest(r.res, "list", r.ns, "", nil))
	}
	cm := ResourceRequest(ConfigMaps, "create", ns, "bulkhead-anonymous", nil)
	ssar := Request{Verb: "create", Res: SARs, Method: http.MethodPost, Path: SARs.collection(""),
		Body: jsonBody(map[string]any{"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
			"spec": map[string]any{"resourceAttributes": map[string]any{"verb": "get", "resource": "pods"}}})}
	return append(out, cm, ssar)
}

// publicPaths are served to everyone by default (system:public-info-viewer;
// the service account issuer discovery documents are public on many
// clusters by design): any answer from them is the positive control.
var publicPaths = []string{"/version", "/healthz", "/livez", "/readyz", "/.well-known/openid-configuration", "/openid/v1/jwks"}

// AnonymousIdentity is who an API server says a request without
// credentials comes from.
var AnonymousIdentity = checks.Identity{User: "system:anonymous", Groups: []string{"system:unauthenticated"}}

// AnonymousPlan (RBAC-004): from inside a pod without a token (in
// bulkhead's own control namespace, which every run has), nothing
// beyond the public endpoints answers: no credentials is refused (401, or
// 403 for system:anonymous), an invalid token is unauthenticated (401).
// Positive controls: the public endpoints answer the same pod (the API
// server is reachable and speaks TLS to it), and a pod with a token of the
// same namespace gets /api.
func AnonymousPlan(s Scope, check string) []Attempt {
	if s.AnonymousPod == "" {
		return nil
	}
	ns, _, _ := strings.Cut(s.AnonymousPod, "/")
	// The pod runs in bulkhead's own namespace; the namespaced requests
	// aim at a tenant under test where there is one.
	target := ns
	if acts := s.actors(); len(acts) > 0 {
		target = acts[0].Namespaces[0]
	}
	var out []Attempt
	for _, auth := range []wire.APIAuth{wire.AuthNone, wire.AuthInvalid} {
		id, expect, review := AnonymousIdentity, ExpectRejected, true
		if auth == wire.AuthInvalid {
			id, expect, review = checks.Identity{User: "(invalid bearer token)"}, ExpectUnauthenticated, false
		}
		for _, req := range anonymousRequests(target) {
			out = append(out, Attempt{Check: check, Role: reports.RoleTest, Tenant: s.AnonymousTenant, Identity: id,
				Review: review, Via: ViaAnonymous, Auth: auth, Req: req, Expect: expect,
				Target: reports.Target{Tenant: s.tenantOfNamespace(req.Namespace), Namespace: req.Namespace, Kind: kindOf(req), Address: req.Address()}})
		}
	}
	for _, p := range publicPaths {
		req := Request{Verb: "get", NonResourcePath: p, Method: http.MethodGet, Path: p}
		out = append(out, Attempt{Check: check, Role: reports.RoleControl, Tenant: s.AnonymousTenant, Identity: AnonymousIdentity,
			Via: ViaAnonymous, Auth: wire.AuthNone, Req: req, Expect: ExpectAnswered, Target: reports.Target{Address: req.Address()},
			Note: "public endpoint: any answer shows the API server is reachable from the pod"})
	}
	// The same pod's namespace with a token: /api is served to
	// authenticated clients, so the anonymous refusals are about credentials.
	var sas []string
	for sa := range s.TokenPods {
		if sans, _, _ := strings.Cut(sa, "/"); sans == ns {
			sas = append(sas, sa)
		}
	}
	slices.Sort(sas)
	t, _ := s.Top.TenantOfNamespace(ns)
	for _, sa := range sas {
		sans, name, _ := strings.Cut(sa, "/")
		req := Request{Verb: "get", NonResourcePath: "/api", Method: http.MethodGet, Path: "/api"}
		out = append(out, s.attempt(check, reports.RoleControl, t, checks.ServiceAccountIdentity(sans, name), req, ExpectAuthorized, reports.Target{Address: "/api"}))
	}
	return out
}

func kindOf(r Request) string {
	if r.NonResourcePath != "" {
		return "non-resource"
	}
	return r.Res.GroupResource()
}

// execWithoutStream turns an exec stream into the plain POST a pod can
// send: authorization comes before the upgrade, so 403 is a deny and 400
// "Upgrade request required" a way through.
func execWithoutStream(r Request) Request {
	e := r.Exec
	r.Exec = nil
	r.Method = http.MethodPost
	r.Path = Pods.object(e.Namespace, e.Pod, "exec") + "?" + url.Values{
		"container": {checks.ProbeContainer}, "command": {"/probe", "api"}, "stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"},
	}.Encode()
	return r
}

// PodStreamRequests are the ways into a pod's container other than exec
// streams: exec, attach and port-forward without the stream upgrade, with
// POST (create) and GET (get, what WebSocket clients send).
func PodStreamRequests(ns, pod string) []Request {
	q := map[string]url.Values{
		"exec":        {"container": {checks.ProbeContainer}, "command": {"/probe", "version"}, "stdout": {"true"}},
		"attach":      {"container": {checks.ProbeContainer}, "stdout": {"true"}},
		"portforward": {"ports": {fmt.Sprint(wire.PortTCP)}},
	}
	var out []Request
	for _, sub := range []string{"exec", "attach", "portforward"} {
		for _, m := range []struct{ method, verb string }{{http.MethodPost, "create"}, {http.MethodGet, "get"}} {
			out = append(out, Request{Verb: m.verb, Res: Pods, Subresource: sub, Namespace: ns, Name: pod,
				Method: m.method, Path: Pods.object(ns, pod, sub) + "?" + q[sub].Encode()})
		}
	}
	return out
}
