package rbac

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

const run = "k3x9q"

func forbidden(user, verb, res string) wire.APIResult {
	return wire.APIResult{Code: 403, Reason: "Forbidden",
		Message: res + ` is forbidden: User "` + user + `" cannot ` + verb + ` resource "` + res + `" in API group "" in the namespace "x"`}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		r    wire.APIResult
		want Class
	}{
		{wire.APIResult{Error: "dial tcp: i/o timeout"}, ClassNoAnswer},
		{wire.APIResult{Code: 200}, ClassAllowed},
		{wire.APIResult{Code: 201}, ClassAllowed},
		{wire.APIResult{Code: 401, Reason: "Unauthorized"}, ClassUnauthenticated},
		{forbidden("u", "list", "secrets"), ClassAuthzDenied},
		{wire.APIResult{Code: 403, Message: `forbidden: User "system:anonymous" cannot get path "/api"`}, ClassAuthzDenied},
		{wire.APIResult{Code: 403, Message: `rolebindings.rbac.authorization.k8s.io "x" is forbidden: user "u" (groups=["g"]) is attempting to grant RBAC permissions not currently held:` + "\n{APIGroups:[\"*\"]}"}, ClassEscalation},
		{wire.APIResult{Code: 403, Message: `pods "x" is forbidden: violates PodSecurity "restricted:latest"`}, ClassAdmission},
		{wire.APIResult{Code: 403, Message: `admission webhook "x" denied the request`}, ClassAdmission},
		{wire.APIResult{Code: 404, Reason: "NotFound"}, ClassNotFound},
		{wire.APIResult{Code: 400, Message: "Upgrade request required"}, ClassUpgradeRequired},
		{wire.APIResult{Code: 422, Reason: "Invalid"}, ClassRejected},
		{wire.APIResult{Code: 405}, ClassRejected},
		{wire.APIResult{Code: 500}, ClassServerError},
		{wire.APIResult{Code: 503}, ClassServerError},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, Classify(c.r), "%d %s", c.r.Code, c.r.Message)
	}
}

func TestJudge(t *testing.T) {
	denied := &Review{Denied: false, Allowed: false}
	allowed := &Review{Allowed: true, Reason: `RBAC: allowed by RoleBinding "tenant-admin/ns"`}
	deny := Attempt{Review: true, Via: ViaImpersonation, Expect: ExpectDenied}
	res := func(r wire.APIResult) *wire.APIResult { return &r }

	v := Judge(deny, denied, res(forbidden("u", "list", "secrets")))
	assert.True(t, v.OK, v.Observed)
	assert.Equal(t, "denied", v.Observed)
	assert.Contains(t, v.Detail, "access review: denied")
	assert.Contains(t, v.Detail, "HTTP 403 Forbidden")

	for name, c := range map[string]struct {
		rev      *Review
		ans      wire.APIResult
		observed string
	}{
		"review allows":      {allowed, forbidden("u", "list", "secrets"), "allowed by access review"},
		"404 is not a pass":  {denied, wire.APIResult{Code: 404}, "authorized, not found (HTTP 404)"},
		"500 is not a pass":  {denied, wire.APIResult{Code: 500}, "server error (HTTP 500)"},
		"401 proves nothing": {denied, wire.APIResult{Code: 401}, "unauthenticated (HTTP 401)"},
		"admission 403":      {denied, wire.APIResult{Code: 403, Message: "exceeded quota"}, "forbidden by admission, after authorization (HTTP 403)"},
		"422 got through":    {denied, wire.APIResult{Code: 422}, "authorized, then rejected (HTTP 422)"},
		"created":            {denied, wire.APIResult{Code: 201}, "allowed (HTTP 201)"},
		"no answer":          {denied, wire.APIResult{Error: "EOF"}, "no answer"},
		"review failed":      {&Review{Err: "boom"}, forbidden("u", "list", "secrets"), "access review failed"},
	} {
		v := Judge(deny, c.rev, &c.ans)
		assert.False(t, v.OK, name)
		assert.Equal(t, c.observed, v.Observed, name)
	}
	assert.Equal(t, "not tried", Judge(deny, denied, nil).Observed)
	assert.Equal(t, "not reviewed", Judge(deny, nil, res(forbidden("u", "get", "x"))).Observed)

	// A review-only attempt needs no answer; a request-only one no review.
	v = Judge(Attempt{Review: true, Via: ViaNone, Expect: ExpectDenied}, denied, nil)
	assert.True(t, v.OK)
	esc := Judge(Attempt{Via: ViaPod, Expect: ExpectDenied}, nil, res(wire.APIResult{Code: 403, Message: "is attempting to grant RBAC permissions not currently held"}))
	assert.True(t, esc.OK)
	assert.Equal(t, "denied (escalation prevention)", esc.Observed)

	ctl := Attempt{Review: true, Via: ViaPod, Expect: ExpectAuthorized}
	for _, code := range []int{200, 201, 404, 405, 409, 422} {
		assert.True(t, Judge(ctl, allowed, res(wire.APIResult{Code: code})).OK, "control %d", code)
	}
	assert.True(t, Judge(ctl, allowed, res(wire.APIResult{Code: 400, Message: "Upgrade request required"})).OK)
	assert.True(t, Judge(ctl, allowed, res(wire.APIResult{Code: 403, Message: "violates PodSecurity"})).OK, "admission comes after authorization")
	assert.False(t, Judge(ctl, allowed, res(forbidden("u", "get", "x"))).OK)
	assert.False(t, Judge(ctl, denied, res(wire.APIResult{Code: 200})).OK)
	assert.False(t, Judge(ctl, allowed, res(wire.APIResult{Code: 401})).OK)
	assert.False(t, Judge(ctl, allowed, res(wire.APIResult{Code: 500})).OK)

	fp := "0123456789ab"
	canary := Attempt{Review: true, Via: ViaPod, Expect: ExpectCanary, Canary: fp}
	assert.True(t, Judge(canary, allowed, res(wire.APIResult{Code: 200, SecretValues: []string{"x", fp}})).OK)
	v = Judge(canary, allowed, res(wire.APIResult{Code: 200, SecretValues: []string{"x"}}))
	assert.False(t, v.OK)
	assert.Contains(t, v.Observed, "canary not in the answer")
	leak := Judge(Attempt{Review: true, Via: ViaPod, Expect: ExpectDenied, Canary: fp}, allowed, res(wire.APIResult{Code: 200, SecretValues: []string{fp}}))
	assert.False(t, leak.OK)
	assert.Equal(t, "allowed (HTTP 200): canary value returned", leak.Observed, "what came back outranks what the review said")
	assert.Contains(t, leak.Detail, "access review: allowed")
	assert.Contains(t, leak.Detail, "holds the canary (value fingerprint "+fp+")")

	anon := Attempt{Via: ViaAnonymous, Expect: ExpectRejected}
	assert.True(t, Judge(anon, nil, res(wire.APIResult{Code: 401})).OK)
	assert.True(t, Judge(anon, nil, res(wire.APIResult{Code: 403, Message: `forbidden: User "system:anonymous" cannot get path "/api"`})).OK)
	assert.False(t, Judge(anon, nil, res(wire.APIResult{Code: 200})).OK)
	inv := Attempt{Via: ViaAnonymous, Expect: ExpectUnauthenticated}
	assert.True(t, Judge(inv, nil, res(wire.APIResult{Code: 401})).OK)
	assert.False(t, Judge(inv, nil, res(wire.APIResult{Code: 403, Message: `forbidden: User "x" cannot get path "/api"`})).OK)
	ans := Attempt{Via: ViaAnonymous, Expect: ExpectAnswered}
	assert.True(t, Judge(ans, nil, res(wire.APIResult{Code: 401})).OK)
	assert.False(t, Judge(ans, nil, res(wire.APIResult{Error: "timeout"})).OK)
}

func TestResourceRequests(t *testing.T) {
	deploy := Resource{Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment", Namespaced: true}
	labels := fixtures.CommonLabels(run)
	cases := map[string]struct {
		r              Request
		method, path   string
		dryRun, watch  bool
		name, body     string
		describe, addr string
	}{
		"get":    {r: ResourceRequest(Secrets, "get", "b", "x", labels), method: "GET", path: "/api/v1/namespaces/b/secrets/x", name: "x", describe: "get secrets"},
		"list":   {r: ResourceRequest(deploy, "list", "b", "x", labels), method: "GET", path: "/apis/apps/v1/namespaces/b/deployments?limit=1", describe: "list deployments.apps"},
		"watch":  {r: ResourceRequest(deploy, "watch", "b", "x", labels), method: "GET", path: "/apis/apps/v1/namespaces/b/deployments?watch=1&timeoutSeconds=1", watch: true},
		"create": {r: ResourceRequest(deploy, "create", "b", "x", labels), method: "POST", path: "/apis/apps/v1/namespaces/b/deployments?fieldManager=bulkhead", dryRun: true, body: `"kind":"Deployment"`, addr: "POST /apis/apps/v1/namespaces/b/deployments?fieldManager=bulkhead&dryRun=All"},
		"update": {r: ResourceRequest(deploy, "update", "b", "x", labels), method: "PUT", path: "/apis/apps/v1/namespaces/b/deployments/x?fieldManager=bulkhead", dryRun: true, name: "x", body: `"apiVersion":"apps/v1"`},
		"patch":  {r: ResourceRequest(deploy, "patch", "b", "x", labels), method: "PATCH", path: "/apis/apps/v1/namespaces/b/deployments/x?fieldManager=bulkhead", dryRun: true, name: "x", body: `{}`},
		"delete": {r: ResourceRequest(Nodes, "delete", "", "n1", labels), method: "DELETE", path: "/api/v1/nodes/n1", dryRun: true, name: "n1", addr: "DELETE /api/v1/nodes/n1?dryRun=All"},
	}
	for name, c := range cases {
		assert.Equal(t, c.method, c.r.Method, name)
		assert.Equal(t, c.path, c.r.Path, name)
		assert.Equal(t, c.dryRun, c.r.DryRun, name)
		assert.Equal(t, c.watch, c.r.Watch, name)
		assert.Equal(t, c.name, c.r.Name, name)
		assert.Contains(t, string(c.r.Body), c.body, name)
		if c.describe != "" {
			assert.Equal(t, c.describe, c.r.Describe(), name)
		}
		if c.addr != "" {
			assert.Equal(t, c.addr, c.r.Address(), name)
		}
		ra, nra := c.r.Attributes()
		require.NotNil(t, ra, name)
		assert.Nil(t, nra)
		assert.Equal(t, name, ra.Verb)
		assert.Equal(t, c.r.Res.Group, ra.Group)
	}
	var body map[string]any
	require.NoError(t, json.Unmarshal(cases["create"].r.Body, &body))
	meta := body["metadata"].(map[string]any)
	assert.Equal(t, "b", meta["namespace"])
	assert.Equal(t, run, meta["labels"].(map[string]any)[fixtures.LabelRun])
	assert.Panics(t, func() { ResourceRequest(Secrets, "bind", "b", "x", nil) })

	nr := Request{Verb: "get", NonResourcePath: "/api", Method: "GET", Path: "/api"}
	ra, nra := nr.Attributes()
	assert.Nil(t, ra)
	assert.Equal(t, "/api", nra.Path)
	assert.Equal(t, "get /api", nr.Describe())
	assert.Equal(t, "impersonate groups", ReviewOnly(Groups, "impersonate", "", "", "system:masters").Describe())
	tr := TokenRequest("b", "sa")
	assert.Equal(t, "create serviceaccounts/token", tr.Describe())
	assert.Equal(t, "/api/v1/namespaces/b/serviceaccounts/sa/token", tr.Path)
}

func TestDiscoveryFilters(t *testing.T) {
	lists := []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "pods", Namespaced: true, Kind: "Pod"}, {Name: "pods/exec", Namespaced: true}, {Name: "secrets", Namespaced: true, Kind: "Secret"},
			{Name: "nodes", Kind: "Node"}, {Name: "namespaces", Kind: "Namespace"}, {Name: "events", Namespaced: true, Kind: "Event"},
		}},
		{GroupVersion: "events.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "events", Namespaced: true, Kind: "Event"}}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{{Name: "deployments", Namespaced: true, Kind: "Deployment"}, {Name: "deployments/scale", Namespaced: true}}},
		{GroupVersion: "rbac.authorization.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "clusterroles", Kind: "ClusterRole"}}},
		{GroupVersion: "storage.k8s.io/v1beta1", APIResources: []metav1.APIResource{{Name: "storageclasses", Kind: "StorageClass"}}},
	}
	got := NamespacedResources(lists)
	var names []string
	for _, r := range got {
		names = append(names, r.GroupResource())
		assert.True(t, r.Namespaced)
	}
	assert.Equal(t, []string{"events", "pods", "secrets", "deployments.apps", "events.events.k8s.io"}, names)

	served, missing := ServedClusterScoped(lists)
	var s []string
	for _, r := range served {
		s = append(s, r.GroupResource()+"@"+r.Version)
	}
	assert.Equal(t, []string{"nodes@v1", "namespaces@v1", "clusterroles.rbac.authorization.k8s.io@v1", "storageclasses.storage.k8s.io@v1beta1"}, s)
	assert.Contains(t, missing, "customresourcedefinitions.apiextensions.k8s.io")
	assert.True(t, serves(lists, "apps/v1", "deployments"))
	assert.False(t, serves(lists, "cilium.io/v2", "ciliumnetworkpolicies"))
}

// scope is a run with reference tenants a and b (a user and a
// ServiceAccount each), the unprotected control namespace, two probe pods
// per tenant, and the sweep's pods and canaries.
func scope(t *testing.T) Scope {
	t.Helper()
	top := checks.Topology{}
	for _, name := range []string{"a", "b"} {
		ns := fixtures.NamespaceFor(run, name)
		top.Tenants = append(top.Tenants, checks.Tenant{Name: name, Namespaces: []string{ns}, Isolated: true, Reference: true,
			Identities: []checks.Identity{
				{User: fixtures.TenantUser(run, name), Groups: []string{fixtures.TenantGroup(run, name), "system:authenticated"}},
				checks.ServiceAccountIdentity(ns, fixtures.ProbeServiceAccount),
			}})
		for i := range 2 {
			top.Probes = append(top.Probes, checks.ProbePod{Tenant: name, Namespace: ns, Name: "probe-" + string(rune('0'+i)), Node: "node-1"})
		}
	}
	top.Tenants = append(top.Tenants, checks.Tenant{Name: "control", Namespaces: []string{fixtures.NamespaceFor(run, "control")}, Reference: true})
	s := Scope{RunID: run, Top: top, Node: "node-1", Admin: "kubernetes-admin",
		Resources: []Resource{Secrets, Pods, ConfigMaps, {Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment", Namespaced: true}},
		Canaries:  map[string]fixtures.Canary{}, CanaryPods: map[string]string{}, TokenPods: map[string]string{}}
	s.ClusterResources, _ = ServedClusterScoped([]*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "nodes"}, {Name: "namespaces"}}}})
	for _, name := range []string{"a", "b"} {
		ns := fixtures.NamespaceFor(run, name)
		s.Canaries[name] = fixtures.Canary{Tenant: name, Namespace: ns, Name: "bulkhead-canary-x", Key: "value", Fingerprint: "fp-" + name}
		s.CanaryPods[name] = "bulkhead-api-x"
		s.TokenPods[ns+"/"+fixtures.ProbeServiceAccount] = "bulkhead-api-x"
	}
	// bulkhead's own pods in the control namespace (fixtureSet.ownPods).
	ctl := fixtures.NamespaceFor(run, "control")
	s.AnonymousPod, s.AnonymousTenant = ctl+"/bulkhead-anon-x", "control"
	s.TokenPods[ctl+"/"+fixtures.ProbeServiceAccount] = "bulkhead-api-x"
	return s
}

// byoScope is a run against tenants bulkhead did not create: blue (two
// namespaces) and green, each with a user only, bulkhead's probe pods in
// their namespaces, no canaries and no API probe pods there; bulkhead's own
// control namespace holds its anonymous and token pods.
func byoScope(t *testing.T) Scope {
	t.Helper()
	top := checks.Topology{}
	for _, tn := range []struct {
		name string
		nss  []string
	}{{"blue", []string{"byo-blue-web", "byo-blue-api"}}, {"green", []string{"byo-green"}}} {
		top.Tenants = append(top.Tenants, checks.Tenant{Name: tn.name, Namespaces: tn.nss, Isolated: true,
			Identities: []checks.Identity{{User: "byo-" + tn.name + "-dev", Groups: []string{"byo-" + tn.name + "-devs", "system:authenticated"}}}})
		for _, ns := range tn.nss {
			for i := range 2 {
				top.Probes = append(top.Probes, checks.ProbePod{Tenant: tn.name, Namespace: ns, Name: "bulkhead-probe-" + run + "-" + string(rune('0'+i))})
			}
		}
	}
	ctl := fixtures.NamespaceFor(run, "control")
	top.Tenants = append(top.Tenants,
		checks.Tenant{Name: "control", Namespaces: []string{ctl}, Reference: true},
		checks.Tenant{Name: "sentinel", Namespaces: []string{fixtures.NamespaceFor(run, "sentinel")}, Isolated: true, Reference: true, Sentinel: true})
	s := Scope{RunID: run, Top: top, Node: "node-1", Admin: "system:serviceaccount:runner:runner",
		Resources: []Resource{Secrets, Pods, ConfigMaps},
		Canaries:  map[string]fixtures.Canary{}, CanaryPods: map[string]string{},
		TokenPods: map[string]string{ctl + "/" + fixtures.ProbeServiceAccount: "bulkhead-api-x"}}
	s.ClusterResources, _ = ServedClusterScoped([]*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "nodes"}, {Name: "namespaces"}}}})
	s.AnonymousPod, s.AnonymousTenant = ctl+"/bulkhead-anon-x", "control"
	return s
}

func TestCrossNamespacePlanCoversEveryResourceVerbAndNamespace(t *testing.T) {
	s := scope(t)
	plan := CrossNamespacePlan(s, IDCrossNamespace)
	type key struct{ tenant, user, ns, res, verb string }
	tests := map[key]Attempt{}
	controls := 0
	for _, a := range plan {
		own := s.Top.Tenants[0].Namespaces[0]
		if a.Tenant == "b" {
			own = s.Top.Tenants[1].Namespaces[0]
		}
		switch a.Role {
		case reports.RoleTest:
			assert.NotEqual(t, own, a.Req.Namespace, "a test never targets the tenant's own namespace")
			assert.Equal(t, ExpectDenied, a.Expect)
			assert.True(t, a.Review, "every test asks the access review too")
			tests[key{a.Tenant, a.Identity.User, a.Req.Namespace, a.Req.Res.GroupResource(), a.Req.Verb}] = a
		case reports.RoleControl:
			controls++
			assert.Equal(t, own, a.Req.Namespace, "controls are in the tenant's own namespace")
			assert.True(t, a.IfReviewAllows, "only what the grant allows proves the path")
			assert.Equal(t, ExpectAuthorized, a.Expect)
		}
		if a.Identity.ServiceAccount != "" {
			assert.Equal(t, ViaPod, a.Via, "a ServiceAccount uses its own token from inside a pod")
		} else {
			assert.Equal(t, ViaImpersonation, a.Via)
		}
		assert.NotEmpty(t, a.Req.Method, "every attempt makes a real request")
	}
	// 2 tenants x 2 identities x 2 namespaces not theirs x 4 resources x 7 verbs.
	assert.Len(t, tests, 2*2*2*4*7)
	assert.Equal(t, 2*2*4*7, controls)
	ab := tests[key{"a", fixtures.TenantUser(run, "a"), fixtures.NamespaceFor(run, "b"), "secrets", "list"}]
	assert.Equal(t, "b", ab.Target.Tenant)
	assert.Equal(t, "GET /api/v1/namespaces/bh-k3x9q-b/secrets?limit=1", ab.Target.Address)
	_, ok := tests[key{"a", fixtures.TenantUser(run, "a"), fixtures.NamespaceFor(run, "control"), "deployments.apps", "patch"}]
	assert.True(t, ok, "the unprotected control namespace is another tenant's namespace too")

	// Without a pod for its token, a ServiceAccount's requests are impersonated, and the evidence says so.
	s.TokenPods = map[string]string{}
	for _, a := range CrossNamespacePlan(s, IDCrossNamespace) {
		assert.Equal(t, ViaImpersonation, a.Via)
		if a.Identity.ServiceAccount != "" {
			assert.Contains(t, a.Note, "impersonate")
		}
	}
}

func TestClusterScopePlan(t *testing.T) {
	s := scope(t)
	plan := ClusterScopePlan(s, IDClusterScope)
	var reads, writes, admin, self int
	for _, a := range plan {
		switch {
		case a.Via == ViaAdmin:
			admin++
			assert.Equal(t, reports.RoleControl, a.Role)
		case a.Role == reports.RoleControl:
			self++
			assert.Equal(t, "create selfsubjectaccessreviews.authorization.k8s.io", a.Req.Describe())
		case a.Req.Verb == "get" || a.Req.Verb == "list" || a.Req.Verb == "watch":
			reads++
		default:
			writes++
		}
		if a.Role == reports.RoleTest {
			assert.Equal(t, ExpectDenied, a.Expect)
			assert.Empty(t, a.Req.Namespace)
			if a.Req.Res == Namespaces && a.Req.Verb == "get" {
				assert.Equal(t, fixtures.NamespaceFor(run, map[string]string{"a": "b", "b": "a"}[a.Tenant]), a.Req.Name, "a tenant tries to read another tenant's namespace")
			}
			if a.Req.Verb == "delete" {
				assert.Equal(t, "bulkhead-absent-"+run, a.Req.Name, "deletes only address objects that do not exist")
			}
		}
	}
	// 2 tenants x 2 identities x 2 resources.
	assert.Equal(t, 2*2*2*3, reads)
	assert.Equal(t, 2*2*2*4, writes)
	assert.Equal(t, 2*7, admin)
	assert.Equal(t, 4, self)

	s.Top.Tenants[0].Reference = false
	for _, a := range ClusterScopePlan(s, IDClusterScope) {
		if a.Tenant == "a" && a.Role == reports.RoleTest {
			assert.Contains(t, clusterWrites, a.Req.Verb, "reads are judged only against the reference policy")
		}
	}
}

func TestEscalationPlan(t *testing.T) {
	s := scope(t)
	plan := EscalationPlan(s, IDEscalation)
	userA, saA := fixtures.TenantUser(run, "a"), "system:serviceaccount:bh-k3x9q-a:bulkhead-probe"
	find := func(user, describe string) []Attempt {
		var out []Attempt
		for _, a := range plan {
			if a.Identity.User == user && a.Req.Describe() == describe {
				out = append(out, a)
			}
		}
		return out
	}
	for _, user := range []string{userA, saA} {
		rb := find(user, "create rolebindings.rbac.authorization.k8s.io (roleRef ClusterRole cluster-admin)")
		require.Len(t, rb, 1, user)
		assert.False(t, rb[0].Review, "create rolebindings is allowed; the escalation check refuses the request itself")
		assert.True(t, rb[0].Req.DryRun)
		assert.Equal(t, "bh-k3x9q-a", rb[0].Req.Namespace)
		require.Len(t, find(user, "create rolebindings.rbac.authorization.k8s.io (roleRef ClusterRole admin)"), 1)
		require.Len(t, find(user, "bind clusterroles.rbac.authorization.k8s.io"), 3, "cluster-admin and admin in its namespace, cluster-admin at cluster scope")
		require.Len(t, find(user, "escalate roles.rbac.authorization.k8s.io"), 1)
		require.Len(t, find(user, "impersonate groups"), 1)
		require.Len(t, find(user, "approve signers.certificates.k8s.io"), 1)
		require.Len(t, find(user, "get nodes/proxy"), 1)
		tokens := find(user, "create serviceaccounts/token")
		require.Len(t, tokens, 2)
		for _, a := range tokens {
			if a.Req.Namespace == "bh-k3x9q-b" {
				assert.Equal(t, reports.RoleTest, a.Role)
			} else {
				assert.Equal(t, reports.RoleControl, a.Role, "its own ServiceAccount's token is the control")
			}
		}
	}
	masters := find(userA, "impersonate groups")[0]
	assert.Equal(t, ViaNone, masters.Via, "impersonation cannot be nested: the user's evidence is the access review")
	assert.Contains(t, masters.Note, "cannot be nested")
	saMasters := find(saA, "impersonate groups")[0]
	assert.Equal(t, ViaPod, saMasters.Via)
	assert.Equal(t, []string{"system:masters"}, saMasters.Req.Headers["Impersonate-Group"])
	assert.Len(t, find(saA, "impersonate serviceaccounts"), 1)
	assert.Len(t, find(saA, "impersonate users"), 1)

	var admin int
	for _, a := range plan {
		if a.Via == ViaAdmin {
			admin++
		}
	}
	assert.Equal(t, 2, admin, "CSR approval and nodes/proxy as bulkhead")
	assert.NotEmpty(t, find(userA, "create rolebindings.rbac.authorization.k8s.io (roleRef Role tenant-admin)"))
}

func TestAnonymousPlan(t *testing.T) {
	s := scope(t)
	plan := AnonymousPlan(s, IDAnonymous)
	var none, invalid, public, withToken int
	for _, a := range plan {
		switch {
		case a.Role == reports.RoleTest && a.Auth == wire.AuthNone:
			none++
			assert.Equal(t, ExpectRejected, a.Expect)
			assert.True(t, a.Review, "system:anonymous is reviewed too")
			assert.Equal(t, AnonymousIdentity.User, a.Identity.User)
		case a.Role == reports.RoleTest && a.Auth == wire.AuthInvalid:
			invalid++
			assert.Equal(t, ExpectUnauthenticated, a.Expect)
			assert.False(t, a.Review)
		case a.Role == reports.RoleControl && a.Via == ViaAnonymous:
			public++
			assert.Equal(t, ExpectAnswered, a.Expect)
		case a.Role == reports.RoleControl:
			withToken++
			assert.Equal(t, ViaPod, a.Via)
		}
		if a.Role == reports.RoleTest {
			assert.NotContains(t, publicPaths, a.Req.Path, "public endpoints are never tests")
		}
	}
	assert.Equal(t, none, invalid)
	assert.Greater(t, none, 10)
	assert.Equal(t, len(publicPaths), public)
	assert.Equal(t, 1, withToken)
	s.AnonymousPod = ""
	assert.Empty(t, AnonymousPlan(s, IDAnonymous))
}

func TestAnonymousPlanRunsInBulkheadsOwnNamespace(t *testing.T) {
	for name, s := range map[string]Scope{"reference": scope(t), "bring-your-own": byoScope(t)} {
		ctl := fixtures.NamespaceFor(run, "control")
		tenantNS := s.actors()[0].Namespaces[0]
		var namespaced, withToken int
		for _, a := range AnonymousPlan(s, IDAnonymous) {
			assert.Equal(t, "control", a.Tenant, "%s: the pods are bulkhead's own", name)
			if a.Role == reports.RoleTest && a.Req.Namespace != "" {
				namespaced++
				assert.Equal(t, tenantNS, a.Req.Namespace, "%s: namespaced requests aim at a tenant under test", name)
				assert.Equal(t, s.actors()[0].Name, a.Target.Tenant)
			}
			if a.Role == reports.RoleControl && a.Via == ViaPod {
				withToken++
				assert.Equal(t, "system:serviceaccount:"+ctl+":"+fixtures.ProbeServiceAccount, a.Identity.User, name)
				assert.Equal(t, ctl+"/"+fixtures.ProbeServiceAccount, a.Identity.ServiceAccount)
				assert.True(t, a.Review)
			}
		}
		assert.Positive(t, namespaced, name)
		assert.Equal(t, 1, withToken, "%s: a pod with a token in the same namespace gets /api", name)
	}
}

func TestPositiveControlsImpersonateASyntheticIdentityAndAreHarmless(t *testing.T) {
	for name, s := range map[string]Scope{"reference": scope(t), "bring-your-own": byoScope(t)} {
		var admin int
		for _, a := range Plan(s) {
			if a.Via != ViaAdmin {
				assert.NotEqual(t, PositiveControl.User, a.Identity.User)
				continue
			}
			admin++
			assert.Equal(t, reports.RoleControl, a.Role, "%s: only positive controls act as %s", name, PositiveControl.User)
			assert.Equal(t, PositiveControl, a.Identity)
			assert.Contains(t, a.Note, "impersonated by "+s.Admin, "the evidence names who impersonated it")
			assert.NoError(t, harmless(a), "%s: %s", name, a.Req.Address())
			if a.Req.Method != http.MethodGet {
				assert.True(t, a.Req.DryRun, "%s: %s is a dry-run", name, a.Req.Address())
			}
			if a.Req.Subresource == "proxy" {
				assert.Equal(t, "GET /api/v1/nodes/node-1/proxy/healthz", a.Req.Address())
			}
		}
		assert.Equal(t, 2*7+2, admin, "%s: cluster-scoped requests, CSR approval and nodes/proxy", name)
	}
	assert.Equal(t, []string{"system:masters", "system:authenticated"}, PositiveControl.Groups)

	control := func(r Request) Attempt { return Attempt{Via: ViaAdmin, Identity: PositiveControl, Req: r} }
	assert.Error(t, harmless(control(Request{Verb: "delete", Res: Nodes, Name: "n", Method: http.MethodDelete, Path: "/api/v1/nodes/n"})), "a real delete")
	assert.Error(t, harmless(control(Request{Verb: "create", Res: Nodes, Subresource: "proxy", Name: "n", Method: http.MethodPost, Path: "/api/v1/nodes/n/proxy/run"})))
	assert.Error(t, harmless(control(Request{Verb: "get", Res: Nodes, Subresource: "proxy", Name: "n", Method: http.MethodGet, Path: "/api/v1/nodes/n/proxy/pods"})))
	assert.Error(t, harmless(control(Request{Verb: "create", Res: Pods, Subresource: "exec", Exec: &ExecSpec{Namespace: "a", Pod: "p"}})))
	assert.NoError(t, harmless(control(ResourceRequest(Namespaces, "create", "", "x", nil))))
	assert.NoError(t, harmless(Attempt{Via: ViaImpersonation, Req: Request{Method: http.MethodDelete}}), "only the positive-control identity is held to this")
}

func TestSecretPodsPlanWithoutCanaries(t *testing.T) {
	s := byoScope(t)
	var streamTests, streamControls, podControls, podTests int
	for _, a := range SecretPodsPlan(s, IDSecretPods) {
		own := a.Tenant == a.Target.Tenant
		switch {
		case a.Req.Exec != nil && own:
			streamControls++
			assert.Equal(t, reports.RoleControl, a.Role)
			assert.Equal(t, ExpectAuthorized, a.Expect, "no canary to read: the stream getting in is the control")
			assert.True(t, a.IfReviewAllows, "only where the tenant's grant allows exec")
			assert.Empty(t, a.Canary)
		case a.Req.Exec != nil:
			streamTests++
			assert.Equal(t, ExpectDenied, a.Expect)
		case own:
			podControls++
			assert.Equal(t, reports.RoleControl, a.Role)
			assert.True(t, a.IfReviewAllows)
		default:
			podTests++
			assert.Equal(t, reports.RoleTest, a.Role)
		}
		if own {
			first := s.Top.ProbesOf(a.Tenant)[0]
			assert.Equal(t, first.Namespace, a.Target.Namespace, "controls use the tenant's first probe pod")
			assert.Equal(t, first.Name, a.Target.Name)
		}
	}
	assert.Equal(t, 2, streamControls, "each user into its own probe pod")
	assert.Equal(t, 2, streamTests, "each user into the other tenant's first probe pod")
	assert.Equal(t, 2*6, podControls)
	// blue -> green's 2 pods, green -> blue's 4 pods, 6 requests each.
	assert.Equal(t, (2+4)*6, podTests)

	var readControls int
	for _, a := range SecretReadPlan(s, IDSecretRead) {
		if a.Req.Name != "" {
			assert.Equal(t, s.absent(), a.Req.Name, "no canary: reads by name address a Secret that does not exist")
		}
		assert.Empty(t, a.Canary)
		if a.Role == reports.RoleControl {
			readControls++
			assert.True(t, a.IfReviewAllows)
			assert.Equal(t, "list secrets", a.Req.Describe())
		}
	}
	assert.Equal(t, 3, readControls, "each tenant lists its own Secrets in each of its namespaces")
}

func TestSecretPlans(t *testing.T) {
	s := scope(t)
	reads := SecretReadPlan(s, IDSecretRead)
	var tests, controls int
	labels := map[string]bool{}
	for _, a := range reads {
		if a.Role == reports.RoleTest {
			tests++
			assert.NotEqual(t, a.Tenant, a.Target.Tenant)
			assert.Equal(t, "fp-"+a.Target.Tenant, a.Canary, "a returned canary is recognised")
			labels[a.Req.Describe()] = true
		} else {
			controls++
			assert.Equal(t, a.Tenant, a.Target.Tenant)
			assert.Equal(t, ExpectCanary, a.Expect)
		}
	}
	assert.Equal(t, 2*2*8, tests)
	assert.Equal(t, 2*2*3, controls)
	for _, want := range []string{"get secrets", "list secrets", "list secrets (fieldSelector metadata.name)", "list secrets (labelSelector)",
		"watch secrets (fieldSelector metadata.name)", "list secrets (all namespaces, fieldSelector metadata.namespace)",
		"list secrets (all namespaces, labelSelector)", "watch secrets (all namespaces, fieldSelector metadata.namespace)"} {
		assert.True(t, labels[want], want)
	}

	pods := SecretPodsPlan(s, IDSecretPods)
	var streams, podTests, tokenTests, podControls int
	for _, a := range pods {
		switch {
		case a.Req.Exec != nil:
			streams++
			assert.Equal(t, ViaImpersonation, a.Via, "only bulkhead's process opens exec streams")
			assert.Equal(t, "bulkhead-api-x", a.Req.Exec.Pod)
		case a.Role == reports.RoleTest && a.Req.Res == Pods:
			podTests++
			assert.Contains(t, []string{"exec", "attach", "portforward"}, a.Req.Subresource)
		case a.Role == reports.RoleTest:
			tokenTests++
		default:
			podControls++
		}
		if a.Via == ViaPod && a.Req.Subresource == "exec" {
			assert.Nil(t, a.Req.Exec, "a pod sends exec without the stream")
		}
	}
	assert.Equal(t, 4, streams, "each user: into the other's canary pod (test) and its own (control)")
	// 2 tenants x 2 identities x 3 pods of the other x 6 requests.
	assert.Equal(t, 2*2*3*6, podTests)
	assert.Equal(t, 2*2, tokenTests)
	assert.Positive(t, podControls)
}

func TestPlanIsCompleteAndControlled(t *testing.T) {
	s := scope(t)
	byCheck := map[string][2]int{}
	for _, a := range Plan(s) {
		c := byCheck[a.Check]
		if a.Role == reports.RoleTest {
			c[0]++
		} else {
			c[1]++
		}
		byCheck[a.Check] = c
		assert.NotEmpty(t, a.Target.Address, "%s %s has an address", a.Check, a.Req.Describe())
		if a.Via == ViaNone {
			assert.True(t, a.Review, "an attempt without a request is an access review")
		}
	}
	for _, id := range []string{IDCrossNamespace, IDClusterScope, IDEscalation, IDAnonymous, IDSecretRead, IDSecretPods} {
		assert.Positive(t, byCheck[id][0], "%s has tests", id)
		assert.Positive(t, byCheck[id][1], "%s has positive controls", id)
	}
	assert.Len(t, byCheck, 6)
}

func TestExecErrorAndObservation(t *testing.T) {
	r := execError(wire.APIResult{}, errors.New(`exec /probe in b/p: unable to upgrade connection: pods "p" is forbidden: User "u" cannot create resource "pods/exec" in API group "" in the namespace "b"`))
	assert.Equal(t, ClassAuthzDenied, Classify(r))
	r = execError(wire.APIResult{}, errors.New("dial tcp: connection refused"))
	assert.Equal(t, ClassNoAnswer, Classify(r))

	a := scope(t)
	plan := SecretPodsPlan(a, IDSecretPods)
	var res Result
	for _, at := range plan {
		if at.Via == ViaPod {
			res = Result{Attempt: at, Pod: "bh-k3x9q-a/bulkhead-api-x", Answer: &wire.APIResult{Code: 403, LatencyMS: 3}}
			break
		}
	}
	res.Verdict = Judge(res.Attempt, &Review{}, res.Answer)
	o := res.Observation()
	assert.Equal(t, "bulkhead-api-x", o.Actor.Pod)
	assert.Equal(t, "bh-k3x9q-a", o.Actor.Namespace)
	assert.Equal(t, "system:serviceaccount:bh-k3x9q-a:bulkhead-probe", o.Actor.Identity)
	assert.True(t, strings.HasPrefix(o.Method, "create pods/") || strings.HasPrefix(o.Method, "get pods/"), o.Method)
	assert.Equal(t, 3.0, o.LatencyMS)
	assert.Equal(t, http.MethodPost, PodStreamRequests("b", "p")[0].Method)
}
