package actors

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// rbac says who may do what: "user verb resource ns".
type rbac map[string]bool

func fakeEnv(t *testing.T, allowed rbac, top checks.Topology) *checks.Env {
	t.Helper()
	cs := fake.NewClientset()
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		ra := sar.Spec.ResourceAttributes
		sar.Status.Allowed = allowed[strings.Join([]string{sar.Spec.User, ra.Verb, ra.Resource, ra.Namespace}, " ")]
		return true, sar, nil
	})
	return &checks.Env{Kube: &kube.Clients{Config: &rest.Config{Host: "https://fake"}, Core: cs}, Topology: top}
}

var (
	alice = checks.Identity{User: "alice", Groups: []string{"team-a"}}
	ci    = checks.ServiceAccountIdentity("a-web", "ci")
)

func topology() checks.Topology {
	return checks.Topology{Tenants: []checks.Tenant{
		{Name: "a", Namespaces: []string{"a-web"}, Isolated: true, Identities: []checks.Identity{alice, ci}},
		{Name: "b", Namespaces: []string{"b-web"}, Isolated: true},
		{Name: "control"},
	}}
}

func TestEachNamespaceSplitsWhoMayTry(t *testing.T) {
	env := fakeEnv(t, rbac{"alice create services a-web": true}, topology())
	cov, err := Of(env).EachNamespace(context.Background(), Create("services"))
	require.NoError(t, err)
	require.Len(t, cov.Scopes, 1)
	assert.Equal(t, "a-web", cov.Scopes[0].Namespace)
	require.Len(t, cov.Scopes[0].Actors, 1)
	assert.Equal(t, "alice", cov.Scopes[0].Actors[0].Name())

	require.Len(t, cov.NotApplicable, 1, "the read-only ServiceAccount may not try")
	na := cov.NotApplicable[0]
	assert.Equal(t, reports.StatusNotApplicable, na.Status)
	assert.Equal(t, "serviceaccount a-web/ci may not create services in a-web (RBAC)", na.Why)

	assert.Equal(t, []string{"tenant b: no identities in the config"}, cov.NotEvaluated)
}

func TestNobodyMayTryIsNotEvaluated(t *testing.T) {
	env := fakeEnv(t, rbac{}, topology())
	cov, err := Of(env).EachNamespace(context.Background(), Create("pods"))
	require.NoError(t, err)
	assert.Empty(t, cov.Scopes)
	assert.Contains(t, cov.NotEvaluated, "tenant a in a-web: no identity may create pods")
	var out checks.Outcome
	cov.Apply(&out)
	j := checks.Judge(checks.Check{ID: "X"}, out)
	assert.Equal(t, reports.Unproven, j.Verdict, "not evaluated is never a pass, and never a failure: %s", j.Reason)
}

func TestAccessReviewsAreCached(t *testing.T) {
	env := fakeEnv(t, rbac{"alice create pods a-web": true}, topology())
	cs := env.Kube.Core.(*fake.Clientset)
	m := Of(env)
	for range 3 {
		assert.True(t, m.May(context.Background(), alice, "a-web", Create("pods")).Allowed)
	}
	reviews := 0
	for _, a := range cs.Actions() {
		if a.GetResource().Resource == "subjectaccessreviews" {
			reviews++
		}
	}
	assert.Equal(t, 1, reviews)
	assert.Same(t, m, Of(env), "one model per run")
}

func TestDeniesIdentity(t *testing.T) {
	own := `pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the namespace "a-web"`
	runner := `users "alice" is forbidden: User "system:serviceaccount:ops:bulkhead" cannot impersonate resource "users" in API group "" at the cluster scope`
	assert.True(t, DeniesIdentity(own, alice))
	assert.False(t, DeniesIdentity(runner, alice), "the runner's own refusal says nothing about alice")
	assert.Equal(t, "system:serviceaccount:ops:bulkhead", DeniedSubject(runner))
	assert.False(t, DeniesIdentity("exceeded quota: pods", alice))
}

func TestHoldsRight(t *testing.T) {
	basic := []authorizationv1.ResourceRule{{Verbs: []string{"create"}, APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"selfsubjectaccessreviews", "selfsubjectrulesreviews"}}}
	assert.False(t, holdsRight(basic), "what every authenticated user holds is no right")
	assert.True(t, holdsRight(append(basic, authorizationv1.ResourceRule{Verbs: []string{"get"}, Resources: []string{"pods"}})))
}
