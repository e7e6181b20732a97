package rbac

import (
	"net/http"
	"slices"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// answered.
func anonymousRequests(ns string) []apisweep.Request {
	var out []apisweep.Request
	for _, p := range []string{"/api", "/apis", "/api/v1", "/apis/apps/v1", "/openapi/v2", "/openapi/v3", "/metrics", "/logs/", "/debug/pprof/"} {
		out = append(out, apisweep.Request{Verb: "get", NonResourcePath: p, Method: http.MethodGet, Path: p})
	}
	for _, r := range []struct {
		res apisweep.Resource
		ns  string
	}{{apisweep.Namespaces, ""}, {apisweep.Nodes, ""}, {apisweep.Secrets, ""}, {apisweep.Secrets, ns}, {apisweep.Pods, ns}, {apisweep.ConfigMaps, ns}, {apisweep.ClusterRoles, ""}} {
		out = append(out, apisweep.ResourceRequest(r.res, "list", r.ns, "", nil))
	}
	cm := apisweep.ResourceRequest(apisweep.ConfigMaps, "create", ns, "bulkhead-anonymous", nil)
	ssar := apisweep.Request{Verb: "create", Res: apisweep.SARs, Method: http.MethodPost, Path: apisweep.SARs.Collection(""),
		Body: apisweep.Body(map[string]any{"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
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
func AnonymousPlan(s apisweep.Scope) []apisweep.Attempt {
	check := IDAnonymous
	if s.AnonymousPod == "" {
		return nil
	}
	ns, _, _ := strings.Cut(s.AnonymousPod, "/")
	// The pod runs in bulkhead's own namespace; the namespaced requests
	// aim at a tenant under test where there is one.
	target := ns
	if acts := s.Actors(); len(acts) > 0 {
		target = acts[0].Namespaces[0]
	}
	// Every refusal rests on the pod reaching the API server (the public
	// endpoints answer it) and on a token being what makes the difference
	// (the same namespace's pod with one is served /api).
	reach := "the API server answers pod " + s.AnonymousPod + " on its public endpoints"
	served := "a pod with a ServiceAccount token in " + ns + " is served /api"
	var out []apisweep.Attempt
	for _, auth := range []wire.APIAuth{wire.AuthNone, wire.AuthInvalid} {
		id, expect, review := AnonymousIdentity, apisweep.ExpectRejected, true
		if auth == wire.AuthInvalid {
			id, expect, review = checks.Identity{User: "(invalid bearer token)"}, apisweep.ExpectUnauthenticated, false
		}
		for _, req := range anonymousRequests(target) {
			out = append(out, apisweep.Attempt{Check: check, Role: reports.RoleTest, Tenant: s.AnonymousTenant, Identity: id,
				Review: review, Via: apisweep.ViaAnonymous, Auth: auth, Req: req, Expect: expect, Needs: []string{reach, served},
				Target: reports.Target{Tenant: s.TenantOfNamespace(req.Namespace), Namespace: req.Namespace, Kind: kindOf(req), Address: req.Address()}})
		}
	}
	for _, p := range publicPaths {
		req := apisweep.Request{Verb: "get", NonResourcePath: p, Method: http.MethodGet, Path: p}
		out = append(out, apisweep.Attempt{Check: check, Role: reports.RoleControl, Tenant: s.AnonymousTenant, Identity: AnonymousIdentity,
			Via: apisweep.ViaAnonymous, Auth: wire.AuthNone, Req: req, Expect: apisweep.ExpectAnswered, Target: reports.Target{Address: req.Address()},
			Proves: []string{reach}, Note: "public endpoint: any answer shows the API server is reachable from the pod"})
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
		req := apisweep.Request{Verb: "get", NonResourcePath: "/api", Method: http.MethodGet, Path: "/api"}
		a := s.Try(check, reports.RoleControl, t, checks.ServiceAccountIdentity(sans, name), req, apisweep.ExpectAuthorized, reports.Target{Address: "/api"})
		a.Proves = []string{served}
		out = append(out, a)
	}
	return out
}

func kindOf(r apisweep.Request) string {
	if r.NonResourcePath != "" {
		return "non-resource"
	}
	return r.Res.GroupResource()
}
