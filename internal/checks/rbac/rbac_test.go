package rbac

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep/sweeptest"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCrossNamespacePlanCoversEveryResourceVerbAndNamespace(t *testing.T) {
	s := sweeptest.Reference()
	plan := CrossNamespacePlan(s)
	type key struct{ tenant, user, ns, res, verb string }
	tests := map[key]apisweep.Attempt{}
	controls := 0
	for _, a := range plan {
		own := s.Top.Tenants[0].Namespaces[0]
		if a.Tenant == "b" {
			own = s.Top.Tenants[1].Namespaces[0]
		}
		switch a.Role {
		case reports.RoleTest:
			assert.NotEqual(t, own, a.Req.Namespace, "a test never targets the tenant's own namespace")
			assert.Equal(t, apisweep.ExpectDenied, a.Expect)
			assert.True(t, a.Review, "every test asks the access review too")
			tests[key{a.Tenant, a.Identity.User, a.Req.Namespace, a.Req.Res.GroupResource(), a.Req.Verb}] = a
			assert.Equal(t, []string{apisweep.MayKey(a.Identity, own, apisweep.RightOf(a.Req))}, a.Needs,
				"the denial rests on the same request in its own namespace")
		case reports.RoleControl:
			controls++
			assert.Equal(t, own, a.Req.Namespace, "controls are in the tenant's own namespace")
			assert.Equal(t, apisweep.ExpectAuthorized, a.Expect)
			assert.Equal(t, []string{apisweep.MayKey(a.Identity, own, apisweep.RightOf(a.Req)), apisweep.ActsKey(a.Identity)}, a.Proves)
		}
		if a.Identity.ServiceAccount != "" {
			assert.Equal(t, apisweep.ViaPod, a.Via, "a ServiceAccount uses its own token from inside a pod")
		} else {
			assert.Equal(t, apisweep.ViaImpersonation, a.Via)
		}
		assert.NotEmpty(t, a.Req.Method, "every attempt makes a real request")
	}
	// 2 tenants x 2 identities x 2 namespaces not theirs x 4 resources x 7 verbs.
	assert.Len(t, tests, 2*2*2*4*7)
	assert.Equal(t, 2*2*4*7, controls)
	ab := tests[key{"a", fixtures.TenantUser(sweeptest.Run, "a"), fixtures.NamespaceFor(sweeptest.Run, "b"), "secrets", "list"}]
	assert.Equal(t, "b", ab.Target.Tenant)
	assert.Equal(t, "GET /api/v1/namespaces/bh-k3x9q-b/secrets?limit=1", ab.Target.Address)
	_, ok := tests[key{"a", fixtures.TenantUser(sweeptest.Run, "a"), fixtures.NamespaceFor(sweeptest.Run, "control"), "deployments.apps", "patch"}]
	assert.True(t, ok, "the unprotected control namespace is another tenant's namespace too")

	// A read-only ServiceAccount is controlled only where its grant holds
	// the right; its other denials rest on a request it may make.
	s.Grants = sweeptest.ReadOnlyServiceAccounts(s)
	controls = 0
	for _, a := range CrossNamespacePlan(s) {
		if a.Identity.ServiceAccount == "" {
			continue
		}
		switch {
		case a.Role == reports.RoleControl:
			controls++
			assert.Contains(t, []string{"get", "list", "watch"}, a.Req.Verb)
		case a.Req.Verb == "create":
			assert.Equal(t, []string{apisweep.ActsKey(a.Identity)}, a.Needs)
		case a.Req.Verb == "get":
			ns, _, _ := strings.Cut(a.Identity.ServiceAccount, "/")
			assert.Equal(t, []string{apisweep.MayKey(a.Identity, ns, apisweep.RightOf(a.Req))}, a.Needs)
		}
	}
	assert.Equal(t, 2*4*3, controls, "2 ServiceAccounts x 4 resources x get, list, watch")
	s.Grants = nil

	// Without a pod for its token, a ServiceAccount's requests are impersonated, and the evidence says so.
	s.TokenPods = map[string]string{}
	for _, a := range CrossNamespacePlan(s) {
		assert.Equal(t, apisweep.ViaImpersonation, a.Via)
		if a.Identity.ServiceAccount != "" {
			assert.Contains(t, a.Note, "impersonate")
		}
	}
}

func TestClusterScopePlan(t *testing.T) {
	s := sweeptest.Reference()
	plan := ClusterScopePlan(s)
	var reads, writes, admin, self int
	for _, a := range plan {
		switch {
		case a.Via == apisweep.ViaAdmin:
			admin++
			assert.Equal(t, reports.RoleControl, a.Role)
		case a.Role == reports.RoleControl:
			self++
			assert.Equal(t, "list pods", a.Req.Describe(), "a request its grant allows, in its own namespace")
			assert.Equal(t, a.Tenant, a.Target.Tenant)
		case a.Req.Verb == "get" || a.Req.Verb == "list" || a.Req.Verb == "watch":
			reads++
		default:
			writes++
		}
		if a.Role == reports.RoleTest {
			assert.Equal(t, apisweep.ExpectDenied, a.Expect)
			assert.Empty(t, a.Req.Namespace)
			assert.Equal(t, []string{apisweep.ActsKey(a.Identity), apisweep.AdminKey(apisweep.RightOf(a.Req))}, a.Needs)
			if a.Req.Res == apisweep.Namespaces && a.Req.Verb == "get" {
				assert.Equal(t, fixtures.NamespaceFor(sweeptest.Run, map[string]string{"a": "b", "b": "a"}[a.Tenant]), a.Req.Name, "a tenant tries to read another tenant's namespace")
			}
			if a.Req.Verb == "delete" {
				assert.Equal(t, "bulkhead-absent-"+sweeptest.Run, a.Req.Name, "deletes only address objects that do not exist")
			}
		}
	}
	// 2 tenants x 2 identities x 2 resources.
	assert.Equal(t, 2*2*2*3, reads)
	assert.Equal(t, 2*2*2*4, writes)
	assert.Equal(t, 2*7, admin)
	assert.Equal(t, 4, self)

	s.Top.Tenants[0].Reference = false
	for _, a := range ClusterScopePlan(s) {
		if a.Tenant == "a" && a.Role == reports.RoleTest {
			assert.Contains(t, clusterWrites, a.Req.Verb, "reads are judged only against the reference policy")
		}
	}
}

func TestEscalationPlan(t *testing.T) {
	s := sweeptest.Reference()
	plan := EscalationPlan(s)
	userA, saA := fixtures.TenantUser(sweeptest.Run, "a"), "system:serviceaccount:bh-k3x9q-a:bulkhead-probe"
	find := func(plan []apisweep.Attempt, user, describe string) []apisweep.Attempt {
		var out []apisweep.Attempt
		for _, a := range plan {
			if a.Identity.User == user && a.Req.Describe() == describe {
				out = append(out, a)
			}
		}
		return out
	}
	bindCR := "bind clusterroles.rbac.authorization.k8s.io (by creating a RoleBinding to ClusterRole %s in its namespace)"
	for _, user := range []string{userA, saA} {
		for _, cr := range []string{"cluster-admin", "admin"} {
			rb := find(plan, user, fmt.Sprintf(bindCR, cr))
			require.Len(t, rb, 1, user)
			a := rb[0]
			assert.Equal(t, apisweep.ExpectNoEscalation, a.Expect, "binding a role it holds entirely is no escalation")
			assert.True(t, a.Review, "the review asks the bind verb")
			assert.Equal(t, "bind", a.Req.Verb)
			assert.Equal(t, cr, a.Req.Name)
			assert.Equal(t, http.MethodPost, a.Req.Method, "the real request creates the RoleBinding")
			assert.True(t, a.Req.DryRun)
			assert.Equal(t, "bh-k3x9q-a", a.Req.Namespace)
			var body struct{ Subjects []map[string]string }
			require.NoError(t, json.Unmarshal(a.Req.Body, &body))
			require.Len(t, body.Subjects, 1)
			if ns, name, ok := strings.Cut(a.Identity.ServiceAccount, "/"); ok {
				assert.Equal(t, map[string]string{"kind": "ServiceAccount", "name": name, "namespace": ns}, body.Subjects[0])
			} else {
				assert.Equal(t, a.Identity.User, body.Subjects[0]["name"], "bound to the identity itself, a subject of its own tenant")
			}
			assert.Equal(t, []string{apisweep.MayKey(a.Identity, "bh-k3x9q-a", actors.Create("rbac.authorization.k8s.io/rolebindings"))}, a.Needs)
		}
		require.Len(t, find(plan, user, "bind clusterroles.rbac.authorization.k8s.io"), 1, "cluster-admin at cluster scope")
		for _, label := range []string{"every right", "networkpolicy writer"} {
			r := find(plan, user, "escalate roles.rbac.authorization.k8s.io (by creating a Role holding "+label+")")
			require.Len(t, r, 1, label)
			assert.Equal(t, apisweep.ExpectNoEscalation, r[0].Expect)
			assert.Equal(t, http.MethodPost, r[0].Req.Method)
		}
		require.Len(t, find(plan, user, "escalate clusterroles.rbac.authorization.k8s.io"), 1)
		require.Len(t, find(plan, user, "impersonate groups"), 1)
		require.Len(t, find(plan, user, "approve signers.certificates.k8s.io"), 1)
		require.Len(t, find(plan, user, "get nodes/proxy"), 1)
		tokens := find(plan, user, "create serviceaccounts/token")
		require.Len(t, tokens, 2)
		for _, a := range tokens {
			if a.Req.Namespace == "bh-k3x9q-b" {
				assert.Equal(t, reports.RoleTest, a.Role)
			} else {
				assert.Equal(t, reports.RoleControl, a.Role, "its own ServiceAccount's token is the control")
			}
		}
		assert.Len(t, find(plan, user, "create rolebindings.rbac.authorization.k8s.io (roleRef Role tenant-admin (its own grant))"), 1)
		assert.Len(t, find(plan, user, "create roles.rbac.authorization.k8s.io (rules: within its grant)"), 1)
	}
	masters := find(plan, userA, "impersonate groups")[0]
	assert.Equal(t, apisweep.ViaNone, masters.Via, "impersonation cannot be nested: the user's evidence is the access review")
	assert.Contains(t, masters.Note, "cannot be nested")
	saMasters := find(plan, saA, "impersonate groups")[0]
	assert.Equal(t, apisweep.ViaPod, saMasters.Via)
	assert.Equal(t, []string{"system:masters"}, saMasters.Req.Headers["Impersonate-Group"])
	assert.Len(t, find(plan, saA, "impersonate serviceaccounts"), 1)
	assert.Len(t, find(plan, saA, "impersonate users"), 1)

	var admin int
	for _, a := range plan {
		if a.Via == apisweep.ViaAdmin {
			admin++
		}
	}
	assert.Equal(t, 2, admin, "CSR approval and nodes/proxy as bulkhead")

	// A read-only ServiceAccount may not create RoleBindings: no control
	// of that, and its refusals rest on a request it may make.
	s.Grants = sweeptest.ReadOnlyServiceAccounts(s)
	plan = EscalationPlan(s)
	assert.Empty(t, find(plan, saA, "create rolebindings.rbac.authorization.k8s.io (roleRef Role tenant-admin (its own grant))"))
	sa := find(plan, saA, fmt.Sprintf(bindCR, "admin"))[0]
	assert.Equal(t, []string{apisweep.ActsKey(sa.Identity)}, sa.Needs)
	assert.Len(t, find(plan, saA, "list pods"), 1, "the request its grant allows")

	// Bring-your-own tenants have no tenant-admin Role: the binding control
	// binds what every user holds.
	byo := EscalationPlan(sweeptest.BYO())
	assert.Len(t, find(byo, "byo-blue-dev", "create rolebindings.rbac.authorization.k8s.io (roleRef ClusterRole system:basic-user (rights every authenticated user holds))"), 1)
}

func TestAnonymousPlan(t *testing.T) {
	s := sweeptest.Reference()
	plan := AnonymousPlan(s)
	var none, invalid, public, withToken int
	for _, a := range plan {
		switch {
		case a.Role == reports.RoleTest && a.Auth == wire.AuthNone:
			none++
			assert.Equal(t, apisweep.ExpectRejected, a.Expect)
			assert.True(t, a.Review, "system:anonymous is reviewed too")
			assert.Equal(t, AnonymousIdentity.User, a.Identity.User)
		case a.Role == reports.RoleTest && a.Auth == wire.AuthInvalid:
			invalid++
			assert.Equal(t, apisweep.ExpectUnauthenticated, a.Expect)
			assert.False(t, a.Review)
		case a.Role == reports.RoleControl && a.Via == apisweep.ViaAnonymous:
			public++
			assert.Equal(t, apisweep.ExpectAnswered, a.Expect)
		case a.Role == reports.RoleControl:
			withToken++
			assert.Equal(t, apisweep.ViaPod, a.Via)
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
	assert.Empty(t, AnonymousPlan(s))
}

func TestAnonymousPlanRunsInBulkheadsOwnNamespace(t *testing.T) {
	for name, s := range map[string]apisweep.Scope{"reference": sweeptest.Reference(), "bring-your-own": sweeptest.BYO()} {
		ctl := fixtures.NamespaceFor(sweeptest.Run, "control")
		tenantNS := s.Actors()[0].Namespaces[0]
		var namespaced, withToken int
		for _, a := range AnonymousPlan(s) {
			assert.Equal(t, "control", a.Tenant, "%s: the pods are bulkhead's own", name)
			if a.Role == reports.RoleTest && a.Req.Namespace != "" {
				namespaced++
				assert.Equal(t, tenantNS, a.Req.Namespace, "%s: namespaced requests aim at a tenant under test", name)
				assert.Equal(t, s.Actors()[0].Name, a.Target.Tenant)
			}
			if a.Role == reports.RoleControl && a.Via == apisweep.ViaPod {
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

func TestServedClusterScoped(t *testing.T) {
	discovered := []apisweep.Resource{
		{Version: "v1", Resource: "nodes"}, {Version: "v1", Resource: "namespaces"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
		{Group: "storage.k8s.io", Version: "v1beta1", Resource: "storageclasses"},
		{Group: "example.com", Version: "v1", Resource: "widgets"},
	}
	served, missing := ServedClusterScoped(discovered)
	var s []string
	for _, r := range served {
		s = append(s, r.GroupResource()+"@"+r.Version)
	}
	assert.Equal(t, []string{"nodes@v1", "namespaces@v1", "clusterroles.rbac.authorization.k8s.io@v1", "storageclasses.storage.k8s.io@v1beta1"}, s,
		"in the order RBAC-002 lists them, at the version served")
	assert.Contains(t, missing, "customresourcedefinitions.apiextensions.k8s.io")
	assert.NotContains(t, s, "widgets.example.com@v1", "only the listed cluster-scoped resources are tried")
}

func TestCrossTenantGrantPlan(t *testing.T) {
	s := sweeptest.Reference()
	plan := CrossTenantGrantPlan(s)
	userA := fixtures.TenantUser(sweeptest.Run, "a")
	var subjects []string
	var controls int
	for _, a := range plan {
		if a.Identity.User != userA {
			continue
		}
		switch a.Role {
		case reports.RoleTest:
			subjects = append(subjects, a.Target.Name)
			assert.Equal(t, apisweep.ExpectRefused, a.Expect)
			assert.False(t, a.Review, "the real request carries the test: a tenant admin may create RoleBindings")
			assert.True(t, a.Req.DryRun)
			assert.Equal(t, "bh-k3x9q-a", a.Req.Namespace, "in its own namespace")
			assert.Contains(t, string(a.Req.Body), `"name":"system:basic-user"`, "a role every user holds: escalation prevention cannot refuse it")
			assert.Equal(t, []string{apisweep.MayKey(a.Identity, "bh-k3x9q-a", actors.Create("rbac.authorization.k8s.io/rolebindings"))}, a.Needs)
		case reports.RoleControl:
			controls++
			if a.Req.Res == apisweep.RoleBindings {
				assert.Equal(t, apisweep.ExpectAdmitted, a.Expect, "the same binding to itself is admitted")
				assert.Contains(t, string(a.Req.Body), userA)
			}
		}
	}
	assert.Equal(t, []string{"Group system:authenticated", "User system:anonymous", "Group system:unauthenticated", "Group system:serviceaccounts",
		"Group " + fixtures.TenantGroup(sweeptest.Run, "b") + " (tenant b)", "ServiceAccount bh-k3x9q-b/bulkhead-probe (tenant b)"}, subjects)
	assert.Equal(t, 2, controls, "the binding to itself, and a request its grant allows")

	// A tenant whose identities may not create RoleBindings is refused by
	// authorization; that rests on a request it may make.
	s.Grants = sweeptest.Only(s, actors.List("pods"))
	for _, a := range CrossTenantGrantPlan(s) {
		if a.Role == reports.RoleTest {
			assert.Equal(t, []string{apisweep.ActsKey(a.Identity)}, a.Needs)
		} else {
			assert.Equal(t, "list pods", a.Req.Describe())
		}
	}
	// Bring-your-own: the other tenant's group, and its default
	// ServiceAccount where none is listed.
	var byo []string
	for _, a := range CrossTenantGrantPlan(sweeptest.BYO()) {
		if a.Identity.User == "byo-blue-dev" && a.Role == reports.RoleTest {
			byo = append(byo, a.Target.Name)
		}
	}
	assert.Contains(t, byo, "Group byo-green-devs (tenant green)")
	assert.Contains(t, byo, "ServiceAccount byo-green/default (tenant green)")
}
