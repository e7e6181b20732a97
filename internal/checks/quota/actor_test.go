package quota

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

var (
	alice = checks.Identity{User: "alice", Groups: []string{"team-a", "system:authenticated"}}
	// ci is a read-only identity: bound to ClusterRole view.
	ci = checks.ServiceAccountIdentity("a-web", "ci")
)

// fakeEnv answers access reviews from allowed ("user verb resource ns")
// and mints a token for every ServiceAccount.
func fakeEnv(allowed map[string]bool) *checks.Env {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		ra := sar.Spec.ResourceAttributes
		sar.Status.Allowed = allowed[strings.Join([]string{sar.Spec.User, ra.Verb, ra.Resource, ra.Namespace}, " ")]
		return true, sar, nil
	})
	cs.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{Token: "t"}}, nil
	})
	top := checks.Topology{Tenants: []checks.Tenant{{Name: "a", Namespaces: []string{"a-web"}, Isolated: true, Identities: []checks.Identity{alice, ci}}}}
	return &checks.Env{Kube: &kube.Clients{Config: &rest.Config{Host: "https://fake"}, Core: cs}, Topology: top, RunID: "k3x9q"}
}

func testRun(env *checks.Env) *nsRun {
	t := env.Topology.Tenants[0]
	return &nsRun{env: env, tenant: t, ns: "a-web", tenantNS: "a-web", mode: modeFor(env, t)}
}

func TestAnIdentityWithoutTheRightIsNotApplicable(t *testing.T) {
	env := fakeEnv(map[string]bool{"alice create pods a-web": true})
	r := testRun(env)
	acts, err := r.able(context.Background(), actors.Create("pods"))
	require.NoError(t, err)
	require.Len(t, acts, 1)
	assert.Equal(t, "alice (impersonated)", acts[0].name())
	require.Len(t, r.obs, 1, "the read-only ServiceAccount gets a not-applicable observation")
	assert.Equal(t, reports.StatusNotApplicable, r.obs[0].Status)
	assert.Equal(t, "serviceaccount a-web/ci may not create pods in a-web (RBAC)", r.obs[0].Why)
	assert.Empty(t, r.notEvaluated)

	acts, err = r.able(context.Background(), actors.Create("services"))
	require.NoError(t, err)
	assert.Empty(t, acts)
	assert.Equal(t, []string{"tenant a in a-web: no identity may create services"}, r.notEvaluated, "nobody may try: not evaluated, not failed")
}

func TestAServiceAccountActsWithItsOwnToken(t *testing.T) {
	env := fakeEnv(map[string]bool{ci.User + " create configmaps a-web": true})
	r := testRun(env)
	acts, err := r.able(context.Background(), actors.Create("configmaps"))
	require.NoError(t, err)
	require.Len(t, acts, 1)
	assert.Equal(t, ci.User+" (own token)", acts[0].name())
	assert.Empty(t, acts[0].clients.Config.Impersonate.UserName, "no impersonation")
	assert.Equal(t, "t", acts[0].clients.Config.BearerToken)
}

func TestQuotaProtectionChoosesWhatEachIdentityMayDoAsItsControl(t *testing.T) {
	env := fakeEnv(map[string]bool{
		"alice create configmaps a-web":        true,
		"alice get resourcequotas a-web":       true,
		ci.User + " get resourcequotas a-web":  true,
		ci.User + " list resourcequotas a-web": true,
		"mallory get resourcequotas elsewhere": true,
	})
	r := testRun(env)
	vias, _, err := r.actsVias(context.Background(), alice)
	require.NoError(t, err)
	require.NotEmpty(t, vias)
	assert.Equal(t, "dry-run create configmap", vias[0].what, "a write, when the identity may make one")

	vias, _, err = r.actsVias(context.Background(), ci)
	require.NoError(t, err)
	require.NotEmpty(t, vias)
	assert.Equal(t, "get resourcequota", vias[0].what, "a read-only identity shows it acts by reading its quota")

	vias, asked, err := r.actsVias(context.Background(), checks.Identity{User: "mallory"})
	require.NoError(t, err)
	assert.Empty(t, vias, "an identity with no right in the namespace has nothing to show")
	assert.Len(t, asked, len(actsVia))
}

func TestAnOverQuotaRefusalCountsOnlyNextToTheSameActorsAdmission(t *testing.T) {
	r := &nsRun{tenant: checks.Tenant{Name: "a"}, ns: "a-web", tenantNS: "a-web"}
	a := actor{id: alice, how: "impersonated"}
	b := actor{id: ci, how: "own token"}
	within := attempt{role: reports.RoleControl, method: "dry-run create pod [pods within quota]", gvr: gvrPods, expected: wantAccepted}
	over := attempt{role: reports.RoleTest, method: overMethod("pod", corev1.ResourcePods), gvr: gvrPods, expected: wantExceeded}
	refused := answer{Observed: wantExceeded, OK: true}

	w := within
	w.proves = []string{withinKey(a, corev1.ResourcePods, r.ns)}
	r.record(a, w, answer{Observed: wantAccepted, OK: true})
	for _, x := range []actor{a, b} {
		o := over
		o.needs = []string{withinKey(x, corev1.ResourcePods, r.ns)}
		r.record(x, o, refused)
	}
	j := checks.Judge(checks.Check{ID: "QUOTA-001"}, checks.Outcome{Observations: r.obs})
	assert.Equal(t, reports.Unproven, j.Verdict, j.Reason)
	require.Len(t, j.Observations, 3)
	assert.Equal(t, reports.StatusPass, j.Observations[1].Status, "alice's refusal rests on alice's admission")
	assert.Equal(t, reports.StatusUnproven, j.Observations[2].Status, "the ServiceAccount's refusal has no admission of its own")
	assert.Contains(t, j.Observations[2].Why, ci.User+" (own token) had a request within the pods quota admitted in a-web")
}

func TestModeFor(t *testing.T) {
	env := &checks.Env{}
	assert.Equal(t, fillReference, modeFor(env, checks.Tenant{Reference: true}), "bulkhead's own tenants are filled")
	assert.Equal(t, fillCopy, modeFor(env, checks.Tenant{}), "a user's tenant: a copy of its quota, by default")
	env.Allow.QuotaFill = true
	assert.Equal(t, fillBounded, modeFor(env, checks.Tenant{}), "--allow-quota-fill: the real quota, for seconds")
	assert.Equal(t, fillReference, modeFor(env, checks.Tenant{Reference: true}))
}
