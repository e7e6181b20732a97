package suites

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/rbac"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/secrets"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func TestRBAC(t *testing.T) {
	feats := checkFeatures(rbac.Checks())
	feats = append(feats, negativeRoleBindingInOtherTenant())
	testenv.Test(t, feats...)
}

// negativeRoleBindingInOtherTenant binds tenant a's group and probe
// ServiceAccount to a Role in tenant b's namespace that reads Secrets. The
// cross-namespace check must fail naming exactly get/list/watch secrets in
// b's namespace, for the user and for the ServiceAccount's own token, and
// the secrets read check must fail with b's canary value returned to a.
func negativeRoleBindingInOtherTenant() types.Feature {
	return negativeControl(checks.RBAC, "tenant a may read Secrets in tenant b's namespace").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			nsA, nsB := namespaceOf(t, fixtures.TenantA), namespaceOf(t, fixtures.TenantB)
			objs, err := fixtures.RenderRBACLeakNamespace(leakSpec(nsA, nsB, "bulkhead-negative-read-secrets"))
			require.NoError(t, err)
			injectRBAC(ctx, t, objs, authorizationv1.ResourceAttributes{Namespace: nsB, Verb: "list", Resource: "secrets"})
			return ctx
		}).
		Assess("the cross-namespace and secrets checks fail naming get/list/watch secrets in b's namespace", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			nsB := namespaceOf(t, fixtures.TenantB)
			env := negativeEnv()

			cross := failsUnderFault(ctx, t, rbac.Checks(), rbac.IDCrossNamespace, env)
			assert.Contains(t, cross.Reason, "secrets", "the reason names the resource")
			leaks := leakedMethods(cross)
			assert.ElementsMatch(t, []string{"get secrets", "list secrets", "watch secrets"}, methodNames(leaks), "exactly the granted verbs on secrets leak")
			for m, obs := range leaks {
				actors := map[string]bool{}
				for _, o := range obs {
					assert.Equal(t, nsB, o.Target.Namespace, m)
					assert.Equal(t, fixtures.TenantA, o.Actor.Tenant, m)
					actors[actorKind(o)] = true
				}
				assert.Equal(t, map[string]bool{"user": true, "pod": true}, actors, "%s leaks to the user and to the ServiceAccount's own token in its pod", m)
			}

			read := failsUnderFault(ctx, t, secrets.Checks(), secrets.IDRead, env)
			assert.Contains(t, read.Reason, "get secrets")
			assert.Contains(t, read.Reason, "canary value returned", "the evidence says the canary itself came back")
			for _, o := range read.Observations {
				if !o.OK {
					assert.Equal(t, nsB, o.Target.Namespace)
					assert.NotContains(t, o.Method, "all namespaces", "cluster-wide reads stay denied: the leak is namespaced")
				}
			}

			pods := checks.Execute(ctx, mustCheck(t, secrets.Checks(), secrets.IDThroughPods), env)
			assert.Equal(t, reports.Pass, pods.Verdict, "exec, attach, port-forward and tokens are not part of the leak: %s", pods.Reason)
			return ctx
		}).Feature()
}

// leakSpec is tenant a's group and probe ServiceAccount gaining a role.
func leakSpec(nsA, nsB, name string) fixtures.RBACLeakSpec {
	run := h.session.RunID()
	return fixtures.RBACLeakSpec{RunID: run, Tenant: fixtures.TenantA, Name: name, Namespace: nsB,
		Group: fixtures.TenantGroup(run, fixtures.TenantA), ServiceAccount: fixtures.ProbeServiceAccount, ServiceAccountNamespace: nsA}
}

// injectRBAC creates a deliberate RBAC leak for tenant a, waits until an
// access review shows it in effect for both of a's identities, and
// registers its removal (waiting until it is gone) with t.Cleanup.
func injectRBAC(ctx context.Context, t *testing.T, objs []*unstructured.Unstructured, probe authorizationv1.ResourceAttributes) {
	t.Helper()
	ids := apiIdentitiesOf(t, fixtures.TenantA)
	t.Cleanup(func() {
		ctx := context.Background()
		for _, o := range objs {
			assert.NoError(t, h.session.Applier().Delete(ctx, o))
		}
		for _, id := range ids {
			waitAccess(ctx, t, id, probe, false)
		}
	})
	require.NoError(t, h.session.CreateObjects(ctx, objs...))
	// The fault must be in effect before the check runs, or its failure
	// (or pass) proves nothing.
	for _, id := range ids {
		waitAccess(ctx, t, id, probe, true)
	}
}

func apiIdentitiesOf(t *testing.T, tenant string) []checks.Identity {
	t.Helper()
	tn, ok := h.session.Env().Topology.Tenant(tenant)
	require.True(t, ok, "tenant %s in this run", tenant)
	require.NotEmpty(t, tn.Identities, "tenant %s has identities", tenant)
	return tn.Identities
}

// waitAccess polls a SubjectAccessReview for id until it answers allowed
// (or not), or a minute passes.
func waitAccess(ctx context.Context, t *testing.T, id checks.Identity, attrs authorizationv1.ResourceAttributes, allowed bool) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: id.User, Groups: id.Groups, ResourceAttributes: &attrs}}
		res, err := h.session.Env().Kube.Core.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = res.Status.Reason
		return res.Status.Allowed == allowed, nil
	})
	require.NoError(t, err, "waiting for %s to be allowed=%v to %s %s in %q (last: %s)", id, allowed, attrs.Verb, attrs.Resource, attrs.Namespace, last)
}

// leakedMethods groups a result's failing tests by verb and resource ("list
// secrets"), without the attempt's label.
func leakedMethods(res reports.CheckResult) map[string][]reports.Observation {
	out := map[string][]reports.Observation{}
	for _, o := range res.Observations {
		if o.Role == reports.RoleTest && !o.OK {
			m, _, _ := strings.Cut(o.Method, " (")
			out[m] = append(out[m], o)
		}
	}
	return out
}

func methodNames(m map[string][]reports.Observation) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// actorKind says whether an observation was made by a user (through
// impersonation) or from inside a pod (a ServiceAccount's own token).
func actorKind(o reports.Observation) string {
	if o.Actor.Pod != "" {
		return "pod"
	}
	return "user"
}
