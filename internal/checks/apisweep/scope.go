package apisweep

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

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
	// Grants says which rights the identities hold (the identity model);
	// plans make own-namespace controls only of what a grant holds.
	Grants Grants
	// Runner is bulkhead's own user name (the runner, who impersonates
	// PositiveControl), for evidence.
	Runner string
}

// Absent is the name of objects that do not exist: object requests
// address it, so a 404 means authorization let the request through.
func (s Scope) Absent() string { return "bulkhead-absent-" + s.RunID }

func (s Scope) Labels() map[string]string { return fixtures.CommonLabels(s.RunID) }

// Actors are the isolated tenants that have identities, in topology order.
func (s Scope) Actors() []checks.Tenant {
	var out []checks.Tenant
	for _, t := range s.Top.Tenants {
		if t.Isolated && len(t.Identities) > 0 && len(t.Namespaces) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// Others are the namespaces of the run that tenant t does not own, with
// their tenant.
func (s Scope) Others(t checks.Tenant) []Foreign {
	var out []Foreign
	for _, o := range s.Top.Tenants {
		if o.Name == t.Name {
			continue
		}
		for _, ns := range o.Namespaces {
			if !slices.Contains(t.Namespaces, ns) {
				out = append(out, Foreign{Tenant: o.Name, Namespace: ns})
			}
		}
	}
	return out
}

// Foreign is a namespace of another tenant.
type Foreign struct{ Tenant, Namespace string }

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

// Try builds an attempt of tenant t's identity id.
func (s Scope) Try(check string, role reports.Role, t checks.Tenant, id checks.Identity, req Request, expect Expect, target reports.Target) Attempt {
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

// AsPositiveControl builds a positive control made as PositiveControl, the synthetic
// identity in system:masters that bulkhead impersonates.
func (s Scope) AsPositiveControl(check string, req Request, target reports.Target) Attempt {
	if target.Address == "" {
		target.Address = req.Address()
	}
	runner := s.Runner
	if runner == "" {
		runner = "bulkhead's own identity"
	}
	return Attempt{Check: check, Role: reports.RoleControl, Identity: PositiveControl, Via: ViaAdmin,
		Req: req, Expect: ExpectAuthorized, Target: target,
		Note: "positive control by a synthetic identity in system:masters, impersonated by " + runner +
			", so it does not depend on the runner's own privileges; writes are server-side dry-run"}
}

func (s Scope) TenantOfNamespace(ns string) string {
	if t, ok := s.Top.TenantOfNamespace(ns); ok {
		return t.Name
	}
	return ""
}

// OwnNamespace is where an identity of t acts as itself: its
// ServiceAccount's namespace, or the tenant's first namespace.
func OwnNamespace(t checks.Tenant, id checks.Identity) string {
	if ns, _, ok := strings.Cut(id.ServiceAccount, "/"); ok && slices.Contains(t.Namespaces, ns) {
		return ns
	}
	return t.Namespaces[0]
}

// TokenRequest mints (dry-run) a token for ServiceAccount ns/name.
func TokenRequest(ns, name string) Request {
	body := Body(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"spec": map[string]any{"expirationSeconds": 600}})
	return Request{Verb: "create", Res: ServiceAccounts, Subresource: "token", Namespace: ns, Name: name,
		Method: http.MethodPost, Path: ServiceAccounts.Object(ns, name, "token"), Body: body, DryRun: true}
}

// execWithoutStream turns an exec stream into the plain POST a pod can
// send: authorization comes before the upgrade, so 403 is a deny and 400
// "Upgrade request required" a way through.
func execWithoutStream(r Request) Request {
	e := r.Exec
	r.Exec = nil
	r.Method = http.MethodPost
	r.Path = Pods.Object(e.Namespace, e.Pod, "exec") + "?" + url.Values{
		"container": {checks.ProbeContainer}, "command": {"/probe", "api"}, "stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"},
	}.Encode()
	return r
}
