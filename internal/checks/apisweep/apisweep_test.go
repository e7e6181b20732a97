package apisweep

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	u := checks.Identity{User: "u"}
	for _, c := range cases {
		id := u
		if strings.Contains(c.r.Message, "system:anonymous") {
			id = checks.Identity{User: "system:anonymous"}
		}
		assert.Equal(t, c.want, Classify(c.r, id), "%d %s", c.r.Code, c.r.Message)
	}
	// A 403 is a deny of the identity tried only when it names it.
	runner := wire.APIResult{Code: 403, Message: `users "u" is forbidden: User "system:serviceaccount:ops:bulkhead" cannot impersonate resource "users" in API group "" at the cluster scope`}
	assert.Equal(t, ClassOtherSubject, Classify(runner, u))
	assert.Equal(t, ClassOtherSubject, Classify(forbidden("alcie", "list", "secrets"), u))
	esc := wire.APIResult{Code: 403, Message: `rolebindings.rbac.authorization.k8s.io "x" is forbidden: user "v" (groups=["g"]) is attempting to grant RBAC permissions not currently held:`}
	assert.Equal(t, ClassOtherSubject, Classify(esc, u))
}

func TestJudge(t *testing.T) {
	denied := &Review{Denied: false, Allowed: false}
	allowed := &Review{Allowed: true, Reason: `RBAC: allowed by RoleBinding "tenant-admin/ns"`}
	deny := Attempt{Review: true, Via: ViaImpersonation, Expect: ExpectDenied, Identity: checks.Identity{User: "u"}}
	res := func(r wire.APIResult) *wire.APIResult { return &r }

	v := Judge(deny, denied, res(forbidden("u", "list", "secrets")))
	assert.True(t, v.OK, v.Observed)
	assert.Equal(t, "denied", v.Observed)
	assert.Contains(t, v.Detail, "access review: denied")
	assert.Contains(t, v.Detail, "HTTP 403 Forbidden")

	// What contradicts a deny is a leak: the test fails.
	for name, c := range map[string]struct {
		rev      *Review
		ans      wire.APIResult
		observed string
	}{
		"review allows":                 {allowed, forbidden("u", "list", "secrets"), "allowed by access review"},
		"404 is not a pass":             {denied, wire.APIResult{Code: 404}, "authorized, not found (HTTP 404)"},
		"admission 403":                 {denied, wire.APIResult{Code: 403, Message: "exceeded quota"}, "forbidden by admission, after authorization (HTTP 403)"},
		"422 got through":               {denied, wire.APIResult{Code: 422}, "authorized, then rejected (HTTP 422)"},
		"created":                       {denied, wire.APIResult{Code: 201}, "allowed (HTTP 201)"},
		"leak outranks a failed review": {&Review{Err: "boom"}, wire.APIResult{Code: 200}, "allowed (HTTP 200)"},
	} {
		v := Judge(deny, c.rev, &c.ans)
		assert.False(t, v.OK, name)
		assert.Empty(t, v.Unproven, "%s is a leak, not unproven", name)
		assert.Equal(t, c.observed, v.Observed, name)
	}
	// What proves nothing either way leaves the test unproven.
	for name, c := range map[string]struct {
		rev      *Review
		ans      *wire.APIResult
		observed string
	}{
		"500":                       {denied, res(wire.APIResult{Code: 500}), "server error (HTTP 500)"},
		"401":                       {denied, res(wire.APIResult{Code: 401}), "unauthenticated (HTTP 401)"},
		"no answer":                 {denied, res(wire.APIResult{Error: "EOF"}), "no answer"},
		"review failed":             {&Review{Err: "boom"}, res(forbidden("u", "list", "secrets")), "access review failed"},
		"not tried":                 {denied, nil, "not tried"},
		"not reviewed":              {nil, res(forbidden("u", "get", "x")), "not reviewed"},
		"a 403 naming someone else": {denied, res(forbidden("system:serviceaccount:ops:bulkhead", "impersonate", "users")), `refused as another user (HTTP 403 names "system:serviceaccount:ops:bulkhead", not "u")`},
	} {
		v := Judge(deny, c.rev, c.ans)
		assert.False(t, v.OK, name)
		assert.NotEmpty(t, v.Unproven, name)
		assert.Equal(t, c.observed, v.Observed, name)
	}
	o := Result{Attempt: Attempt{Role: reports.RoleTest}, Verdict: Judge(deny, denied, res(wire.APIResult{Code: 503}))}.Observation()
	assert.Equal(t, reports.StatusUnproven, o.Status, "an inconclusive test is unproven in the evidence")
	assert.Contains(t, o.Why, "server error")

	// A write that must be admitted (a positive control) is what the
	// review allows and the server admits; one admission must refuse may
	// be allowed by authorization.
	admit := Attempt{Review: true, Via: ViaImpersonation, Expect: ExpectAdmitted, Identity: checks.Identity{User: "u"}}
	v = Judge(admit, allowed, res(wire.APIResult{Code: 201}))
	assert.True(t, v.OK, v.Observed)
	assert.False(t, Judge(admit, denied, res(wire.APIResult{Code: 201})).OK, "a review that denies contradicts an admitted control")
	refuse := Attempt{Review: true, Via: ViaImpersonation, Expect: ExpectRefused, Identity: checks.Identity{User: "u"}}
	v = Judge(refuse, allowed, res(wire.APIResult{Code: 403, Message: "admission webhook denied the request"}))
	assert.True(t, v.OK, v.Observed)

	// A review-only attempt needs no answer; a request-only one no review.
	v = Judge(Attempt{Review: true, Via: ViaNone, Expect: ExpectDenied}, denied, nil)
	assert.True(t, v.OK)
	esc := Judge(Attempt{Via: ViaPod, Expect: ExpectDenied, Identity: checks.Identity{User: "u"}}, nil,
		res(wire.APIResult{Code: 403, Message: `user "u" (groups=["g"]) is attempting to grant RBAC permissions not currently held`}))
	assert.True(t, esc.OK)
	assert.Equal(t, "denied (escalation prevention)", esc.Observed)

	ctl := Attempt{Review: true, Via: ViaPod, Expect: ExpectAuthorized, Identity: checks.Identity{User: "u"}}
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

	anon := Attempt{Via: ViaAnonymous, Expect: ExpectRejected, Identity: checks.Identity{User: "system:anonymous"}}
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

	var cluster []string
	for _, r := range ClusterScopedResources(lists) {
		cluster = append(cluster, r.GroupResource()+"@"+r.Version)
		assert.False(t, r.Namespaced)
	}
	assert.Equal(t, []string{"namespaces@v1", "nodes@v1", "clusterroles.rbac.authorization.k8s.io@v1", "storageclasses.storage.k8s.io@v1beta1"}, cluster)
	assert.True(t, serves(lists, "apps/v1", "deployments"))
	assert.False(t, serves(lists, "cilium.io/v2", "ciliumnetworkpolicies"))
}

func TestExecErrorAndObservation(t *testing.T) {
	r := execError(wire.APIResult{}, errors.New(`exec /probe in b/p: unable to upgrade connection: pods "p" is forbidden: User "u" cannot create resource "pods/exec" in API group "" in the namespace "b"`))
	assert.Equal(t, ClassAuthzDenied, Classify(r, checks.Identity{User: "u"}))
	r = execError(wire.APIResult{}, errors.New("dial tcp: connection refused"))
	assert.Equal(t, ClassNoAnswer, Classify(r, checks.Identity{User: "u"}))

	sa := checks.ServiceAccountIdentity("bh-k3x9q-a", "bulkhead-probe")
	s := Scope{RunID: run, TokenPods: map[string]string{sa.ServiceAccount: "bulkhead-api-x"}}
	exec := Request{Verb: "create", Res: Pods, Subresource: "exec", Namespace: "bh-k3x9q-b", Name: "p",
		Exec: &ExecSpec{Namespace: "bh-k3x9q-b", Pod: "p", File: "/f"}}
	at := s.Try("X", reports.RoleTest, checks.Tenant{Name: "a"}, sa, exec, ExpectDenied, reports.Target{})
	assert.Equal(t, ViaPod, at.Via)
	assert.Nil(t, at.Req.Exec, "a pod sends exec without the stream")
	assert.Equal(t, http.MethodPost, at.Req.Method)
	res := Result{Attempt: at, Pod: "bh-k3x9q-a/bulkhead-api-x", Answer: &wire.APIResult{Code: 403, LatencyMS: 3}}
	res.Verdict = Judge(res.Attempt, &Review{}, res.Answer)
	o := res.Observation()
	assert.Equal(t, "bulkhead-api-x", o.Actor.Pod)
	assert.Equal(t, "bh-k3x9q-a", o.Actor.Namespace)
	assert.Equal(t, "system:serviceaccount:bh-k3x9q-a:bulkhead-probe", o.Actor.Identity)
	assert.Equal(t, "create pods/exec", o.Method)
	assert.Equal(t, 3.0, o.LatencyMS)
}

func TestHarmless(t *testing.T) {
	control := func(r Request) Attempt { return Attempt{Via: ViaAdmin, Identity: PositiveControl, Req: r} }
	assert.Error(t, harmless(control(Request{Verb: "delete", Res: Nodes, Name: "n", Method: http.MethodDelete, Path: "/api/v1/nodes/n"})), "a real delete")
	assert.Error(t, harmless(control(Request{Verb: "create", Res: Nodes, Subresource: "proxy", Name: "n", Method: http.MethodPost, Path: "/api/v1/nodes/n/proxy/run"})))
	assert.Error(t, harmless(control(Request{Verb: "get", Res: Nodes, Subresource: "proxy", Name: "n", Method: http.MethodGet, Path: "/api/v1/nodes/n/proxy/pods"})))
	assert.Error(t, harmless(control(Request{Verb: "create", Res: Pods, Subresource: "exec", Exec: &ExecSpec{Namespace: "a", Pod: "p"}})))
	assert.NoError(t, harmless(control(ResourceRequest(Namespaces, "create", "", "x", nil))))
	assert.NoError(t, harmless(Attempt{Via: ViaImpersonation, Req: Request{Method: http.MethodDelete}}), "only the positive-control identity is held to this")
}

func TestJudgeNoEscalation(t *testing.T) {
	u := checks.Identity{User: "u"}
	bind := Attempt{Review: true, Via: ViaImpersonation, Expect: ExpectNoEscalation, Identity: u}
	denied, allowed := &Review{}, &Review{Allowed: true}
	res := func(r wire.APIResult) *wire.APIResult { return &r }
	prevented := res(wire.APIResult{Code: 403, Message: `rolebindings.rbac.authorization.k8s.io "x" is forbidden: user "u" (groups=["g"]) is attempting to grant RBAC permissions not currently held:`})

	v := Judge(bind, denied, prevented)
	assert.True(t, v.OK)
	assert.Equal(t, "denied (escalation prevention)", v.Observed)
	assert.True(t, Judge(bind, denied, res(forbidden("u", "create", "rolebindings"))).OK, "may not create RoleBindings at all")

	v = Judge(bind, denied, res(wire.APIResult{Code: 201}))
	assert.True(t, v.OK, "a tenant admin binding admin in its own namespace gains nothing")
	assert.Contains(t, v.Observed, "within its grant")

	v = Judge(bind, allowed, res(wire.APIResult{Code: 201}))
	assert.False(t, v.OK, "holding the bind verb is the escalation")
	assert.Empty(t, v.Unproven)
	assert.Equal(t, "allowed by access review", v.Observed)

	v = Judge(bind, denied, res(wire.APIResult{Code: 500}))
	assert.False(t, v.OK)
	assert.NotEmpty(t, v.Unproven, "a server error proves nothing")
	assert.False(t, Judge(bind, denied, res(forbidden("system:serviceaccount:ops:bulkhead", "impersonate", "users"))).OK)
}

func TestJudgeAdmittedAndRefused(t *testing.T) {
	u := checks.Identity{User: "u"}
	res := func(r wire.APIResult) *wire.APIResult { return &r }
	admitted := Attempt{Via: ViaImpersonation, Expect: ExpectAdmitted, Identity: u}
	assert.True(t, Judge(admitted, nil, res(wire.APIResult{Code: 201})).OK)
	for _, code := range []int{403, 404, 422} {
		assert.False(t, Judge(admitted, nil, res(wire.APIResult{Code: code, Message: "policy says no"})).OK, "%d is not admitted", code)
	}

	refused := Attempt{Via: ViaImpersonation, Expect: ExpectRefused, Identity: u}
	for name, ans := range map[string]wire.APIResult{
		"may not create":   forbidden("u", "create", "rolebindings"),
		"admission policy": {Code: 403, Message: `rolebindings.rbac.authorization.k8s.io "x" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'p' denied request: no`},
		"invalid":          {Code: 422, Reason: "Invalid"},
		"webhook 400":      {Code: 400, Message: `admission webhook "kyverno" denied the request`},
	} {
		v := Judge(refused, nil, &ans)
		assert.True(t, v.OK, name)
	}
	v := Judge(refused, nil, res(wire.APIResult{Code: 201}))
	assert.False(t, v.OK)
	assert.Empty(t, v.Unproven, "admitted is the leak")
	assert.Equal(t, "admitted (HTTP 201)", v.Observed)
	for name, ans := range map[string]wire.APIResult{
		"escalation prevention":  {Code: 403, Message: `user "u" (groups=["g"]) is attempting to grant RBAC permissions not currently held`},
		"no answer":              {Error: "EOF"},
		"namespace not found":    {Code: 404},
		"the runner was refused": forbidden("system:serviceaccount:ops:bulkhead", "impersonate", "users"),
	} {
		v := Judge(refused, nil, &ans)
		assert.False(t, v.OK, name)
		assert.NotEmpty(t, v.Unproven, "%s proves nothing about the subject", name)
	}
}
