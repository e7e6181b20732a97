package apisweep

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
)

// Resource is an API resource as discovery names it.
type Resource struct {
	Group    string
	Version  string
	Resource string
	Kind     string
	// Namespaced resources live in namespaces.
	Namespaced bool
}

// GroupResource names the resource the way RBAC messages and kubectl do:
// "secrets", "deployments.apps".
func (r Resource) GroupResource() string {
	if r.Group == "" {
		return r.Resource
	}
	return r.Resource + "." + r.Group
}

// APIVersion is the apiVersion of the resource's objects.
func (r Resource) APIVersion() string {
	if r.Group == "" {
		return r.Version
	}
	return r.Group + "/" + r.Version
}

// Collection is the path of the resource's collection in namespace ns
// (cluster-scoped when ns is empty).
func (r Resource) Collection(ns string) string {
	var b strings.Builder
	if r.Group == "" {
		b.WriteString("/api/" + r.Version)
	} else {
		b.WriteString("/apis/" + r.Group + "/" + r.Version)
	}
	if ns != "" {
		b.WriteString("/namespaces/" + url.PathEscape(ns))
	}
	b.WriteString("/" + r.Resource)
	return b.String()
}

// Object is the path of one object (and optionally a subresource of it).
func (r Resource) Object(ns, name, sub string) string {
	p := r.Collection(ns) + "/" + url.PathEscape(name)
	if sub != "" {
		p += "/" + sub
	}
	return p
}

// Core resources used by the checks.
var (
	Secrets         = Resource{Version: "v1", Resource: "secrets", Kind: "Secret", Namespaced: true}
	Pods            = Resource{Version: "v1", Resource: "pods", Kind: "Pod", Namespaced: true}
	ConfigMaps      = Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}
	ServiceAccounts = Resource{Version: "v1", Resource: "serviceaccounts", Kind: "ServiceAccount", Namespaced: true}
	Nodes           = Resource{Version: "v1", Resource: "nodes", Kind: "Node"}
	Namespaces      = Resource{Version: "v1", Resource: "namespaces", Kind: "Namespace"}
	Roles           = Resource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles", Kind: "Role", Namespaced: true}
	RoleBindings    = Resource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings", Kind: "RoleBinding", Namespaced: true}
	ClusterRoles    = Resource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles", Kind: "ClusterRole"}
	CSRs            = Resource{Group: "certificates.k8s.io", Version: "v1", Resource: "certificatesigningrequests", Kind: "CertificateSigningRequest"}
	Signers         = Resource{Group: "certificates.k8s.io", Version: "v1", Resource: "signers"}
	Users           = Resource{Version: "v1", Resource: "users"}
	Groups          = Resource{Version: "v1", Resource: "groups"}
	SARs            = Resource{Group: "authorization.k8s.io", Version: "v1", Resource: "selfsubjectaccessreviews", Kind: "SelfSubjectAccessReview"}
)

// MatrixVerbs are tried on every namespaced resource of another tenant.
var MatrixVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// Request is one thing an identity may try: the authorization attributes a
// SubjectAccessReview asks about and, when Method is set, the real HTTP
// request that exercises them.
type Request struct {
	// Authorization attributes.
	Verb        string
	Res         Resource
	Subresource string
	Namespace   string
	Name        string
	// NonResourcePath is set for non-resource requests ("/api", "/metrics").
	NonResourcePath string

	// The real request; Method is empty when there is none (a verb no
	// request carries on its own, like bind or escalate).
	Method  string
	Path    string
	Body    json.RawMessage
	DryRun  bool
	Watch   bool
	Headers map[string][]string
	// Exec, when set, is a real exec stream (from bulkhead's process only):
	// the probe in the pod fingerprints File.
	Exec *ExecSpec

	// Label says what is special about this attempt ("roleRef ClusterRole
	// cluster-admin"); it is shown after the verb and resource.
	Label string
}

// ExecSpec is an exec into a probe container that fingerprints a file.
type ExecSpec struct {
	Namespace string
	Pod       string
	File      string
}

// Describe names the attempt for evidence: "list secrets", "create
// rolebindings.rbac.authorization.k8s.io (roleRef ClusterRole admin)",
// "get /api".
func (r Request) Describe() string {
	var s string
	switch {
	case r.NonResourcePath != "":
		s = r.Verb + " " + r.NonResourcePath
	default:
		s = r.Verb + " " + r.Res.GroupResource()
		if r.Subresource != "" {
			s = r.Verb + " " + r.Res.GroupResource() + "/" + r.Subresource
		}
	}
	if r.Label != "" {
		s += " (" + r.Label + ")"
	}
	return s
}

// Address is the real request as a user would write it, or the attributes
// when there is no real request.
func (r Request) Address() string {
	switch {
	case r.Exec != nil:
		return r.Res.Object(r.Namespace, r.Name, "exec")
	case r.Method != "":
		p := r.Path
		if r.DryRun {
			p += map[bool]string{true: "&", false: "?"}[strings.Contains(p, "?")] + "dryRun=All"
		}
		return r.Method + " " + p
	case r.NonResourcePath != "":
		return r.NonResourcePath
	case r.Name != "":
		return r.Res.Object(r.Namespace, r.Name, r.Subresource)
	}
	return r.Res.Collection(r.Namespace)
}

// Attributes are the request's SubjectAccessReview attributes.
func (r Request) Attributes() (*authorizationv1.ResourceAttributes, *authorizationv1.NonResourceAttributes) {
	if r.NonResourcePath != "" {
		return nil, &authorizationv1.NonResourceAttributes{Path: r.NonResourcePath, Verb: r.Verb}
	}
	return &authorizationv1.ResourceAttributes{
		Namespace: r.Namespace, Verb: r.Verb, Group: r.Res.Group, Version: r.Res.Version,
		Resource: r.Res.Resource, Subresource: r.Subresource, Name: r.Name,
	}, nil
}

// minimalObject is the smallest object of a resource: authorization happens
// before validation, so a 403 to it proves the deny, and anything else
// (201, 400, 422) proves the request got past authorization.
func minimalObject(res Resource, ns, name string, labels map[string]string) json.RawMessage {
	meta := map[string]any{"name": name}
	if ns != "" {
		meta["namespace"] = ns
	}
	if len(labels) > 0 {
		meta["labels"] = labels
	}
	kind := res.Kind
	if kind == "" {
		kind = strings.TrimSuffix(res.Resource, "s")
	}
	obj := map[string]any{"apiVersion": res.APIVersion(), "kind": kind, "metadata": meta}
	if res.Group == "rbac.authorization.k8s.io" && strings.HasSuffix(res.Resource, "bindings") {
		// A binding without a roleRef makes RBAC's escalation check fail
		// with a 500 once authorization has let it through; bind the role
		// every authenticated user holds (system:basic-user), for nobody.
		obj["roleRef"] = map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:basic-user"}
		obj["subjects"] = []map[string]any{{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name + ":nobody"}}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return b
}

// ResourceRequest builds the real request for one of MatrixVerbs on res in
// namespace ns (cluster scope when empty). Object verbs address name, which
// need not exist: a 404 then means authorization allowed the request.
// Writes are server-side dry-runs.
func ResourceRequest(res Resource, verb, ns, name string, labels map[string]string) Request {
	r := Request{Verb: verb, Res: res, Namespace: ns}
	switch verb {
	case "get":
		r.Name, r.Method, r.Path = name, http.MethodGet, res.Object(ns, name, "")
	case "list":
		r.Method, r.Path = http.MethodGet, res.Collection(ns)+"?limit=1"
	case "watch":
		r.Method, r.Path, r.Watch = http.MethodGet, res.Collection(ns)+"?watch=1&timeoutSeconds=1", true
	case "create":
		r.Method, r.Path, r.DryRun = http.MethodPost, res.Collection(ns)+"?fieldManager=bulkhead", true
		r.Body = minimalObject(res, ns, name, labels)
	case "update":
		r.Name, r.Method, r.Path, r.DryRun = name, http.MethodPut, res.Object(ns, name, "")+"?fieldManager=bulkhead", true
		r.Body = minimalObject(res, ns, name, labels)
	case "patch":
		r.Name, r.Method, r.Path, r.DryRun = name, http.MethodPatch, res.Object(ns, name, "")+"?fieldManager=bulkhead", true
		r.Body = json.RawMessage(`{}`)
	case "delete":
		r.Name, r.Method, r.Path, r.DryRun = name, http.MethodDelete, res.Object(ns, name, ""), true
	default:
		panic(fmt.Sprintf("ResourceRequest: verb %q has no request of its own", verb))
	}
	return r
}

// ReviewOnly is a request that only a SubjectAccessReview can ask about.
func ReviewOnly(res Resource, verb, sub, ns, name string) Request {
	return Request{Verb: verb, Res: res, Subresource: sub, Namespace: ns, Name: name}
}

// Body marshals v for a request body.
func Body(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
