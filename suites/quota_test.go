package suites

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/quota"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func TestQuota(t *testing.T) {
	feats := checkFeatures(quota.Checks())
	feats = append(feats, negativeRaisedPodQuota(), negativeRemovedQuota(), negativeRaisedContainerMax(), negativeTenantEditsQuota())
	testenv.Test(t, feats...)
}

// Names of the reference tenant's quota objects
// (fixtures/manifests/isolated-30-quota.yaml).
const (
	referenceQuota      = "tenant-quota"
	referenceLimitRange = "tenant-limits"
)

// negativeRaisedPodQuota doubles tenant b's pod quota: the tenant can now
// create more pods than its allotment, so the pod check must fail on
// tenant b (the pod past the expected bound is admitted) and still pass on
// tenant a.
func negativeRaisedPodQuota() types.Feature {
	return negativeControl(checks.Quota, "tenant b's pod quota is raised").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			setQuotaHard(ctx, t, fixtures.TenantB, corev1.ResourcePods, "12")
			return ctx
		}).
		Assess("the pod quota check fails naming tenant b's over-quota pod", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			nsA, nsB := namespaceOf(t, fixtures.TenantA), namespaceOf(t, fixtures.TenantB)
			res := failsUnderFault(ctx, t, quota.Checks(), quota.IDPods, negativeEnv())
			assert.Contains(t, res.Reason, "-> "+nsB+"/")
			assert.Contains(t, res.Reason, "[pods over quota]: accepted (want rejected: exceeded quota)")
			assert.NotContains(t, res.Reason, "positive control failed")
			assertOnlyLeaks(t, res, nsB, nsA)
			for _, o := range res.Observations {
				if o.Actor.Namespace == nsB && !o.OK {
					assert.Contains(t, o.Detail, "hard 12; expected at most 6", "evidence shows the raised quota")
				}
			}
			return ctx
		}).Feature()
}

// negativeRemovedQuota deletes tenant b's ResourceQuota: nothing bounds its
// compute or stops NodePort Services, so those checks must fail on b.
func negativeRemovedQuota() types.Feature {
	return negativeControl(checks.Quota, "tenant b's ResourceQuota is removed").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			removeTenantObject(ctx, t, fixtures.TenantB, "ResourceQuota", referenceQuota)
			return ctx
		}).
		Assess("the compute and exposure checks fail naming tenant b", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			nsA, nsB := namespaceOf(t, fixtures.TenantA), namespaceOf(t, fixtures.TenantB)
			env := negativeEnv()
			compute := failsUnderFault(ctx, t, quota.Checks(), quota.IDCompute, env)
			assertOnlyLeaks(t, compute, nsB, nsA)
			for _, dim := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
				assert.True(t, leaked(compute, nsB, "["+dim+"="), "compute check names %s on tenant b: %s", dim, compute.Reason)
			}

			exposure := failsUnderFault(ctx, t, quota.Checks(), quota.IDExposure, env)
			assertOnlyLeaks(t, exposure, nsB, nsA)
			assert.True(t, leaked(exposure, nsB, "[services.nodeports over quota]"), exposure.Reason)
			assert.True(t, leaked(exposure, nsB, "[services.loadbalancers over quota]"), exposure.Reason)
			return ctx
		}).Feature()
}

// negativeRaisedContainerMax lets tenant b's containers ask for a whole
// CPU: the LimitRange check must fail on b's over-max cpu container.
func negativeRaisedContainerMax() types.Feature {
	return negativeControl(checks.Quota, "tenant b's per-container cpu maximum is raised").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			raiseContainerMax(ctx, t, fixtures.TenantB, "1")
			return ctx
		}).
		Assess("the LimitRange check fails naming tenant b's cpu over max", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			nsA, nsB := namespaceOf(t, fixtures.TenantA), namespaceOf(t, fixtures.TenantB)
			res := failsUnderFault(ctx, t, quota.Checks(), quota.IDLimitRange, negativeEnv())
			assertOnlyLeaks(t, res, nsB, nsA)
			assert.True(t, leaked(res, nsB, "[container cpu limit over max]"), res.Reason)
			assert.False(t, leaked(res, nsB, "[container memory limit over max]"), "memory max still holds: %s", res.Reason)
			return ctx
		}).Feature()
}

// negativeTenantEditsQuota grants tenant b's group and ServiceAccount write
// access to resourcequotas: the protection check must fail on b's quota
// writes while its LimitRange stays protected.
func negativeTenantEditsQuota() types.Feature {
	return negativeControl(checks.Quota, "tenant b may edit its ResourceQuota").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			grantQuotaWrites(ctx, t, fixtures.TenantB)
			return ctx
		}).
		Assess("the protection check fails naming tenant b's quota writes", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			nsA, nsB := namespaceOf(t, fixtures.TenantA), namespaceOf(t, fixtures.TenantB)
			res := failsUnderFault(ctx, t, quota.Checks(), quota.IDProtected, negativeEnv())
			assertOnlyLeaks(t, res, nsB, nsA)
			for _, verb := range []string{"dry-run update resourcequota", "dry-run delete resourcequota", "dry-run create resourcequota"} {
				assert.True(t, leaked(res, nsB, verb), "%s leaks on tenant b: %s", verb, res.Reason)
			}
			assert.False(t, leaked(res, nsB, "limitrange"), "the LimitRange stays protected: %s", res.Reason)
			return ctx
		}).Feature()
}

// leaked reports whether a failing test observation in ns has method
// containing what.
func leaked(res reports.CheckResult, ns, what string) bool {
	for _, o := range res.Observations {
		if o.Role == reports.RoleTest && !o.OK && o.Actor.Namespace == ns && strings.Contains(o.Method, what) {
			return true
		}
	}
	return false
}

// assertOnlyLeaks checks every failing observation is a test observation in
// ns (the tenant with the fault), and that the other tenant's are all fine:
// the fault is what the check caught, nothing else.
func assertOnlyLeaks(t *testing.T, res reports.CheckResult, ns, otherNS string) {
	t.Helper()
	other := 0
	for _, o := range res.Observations {
		if o.Actor.Namespace == otherNS {
			other++
		}
		if o.OK {
			continue
		}
		assert.Equal(t, reports.RoleTest, o.Role, "only test observations fail: %s", checks.DescribeOne(o))
		assert.Equal(t, ns, o.Actor.Namespace, "only the faulty tenant fails: %s", checks.DescribeOne(o))
	}
	assert.NotZero(t, other, "the other tenant was checked too")
}

// tenantObject returns the reference fixture object of kind/name for tenant.
func tenantObject(t *testing.T, tenant, kind, name string) *unstructured.Unstructured {
	t.Helper()
	objs, err := fixtures.RenderTenant(h.session.RunID(), fixtures.TenantSpec{Name: tenant, Namespace: namespaceOf(t, tenant), Isolated: true})
	require.NoError(t, err)
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in tenant %s's fixtures", kind, name, tenant)
	return nil
}

// setQuotaHard sets one hard value of the tenant's quota, waits until the
// quota controller has put it in the status (admission enforces
// status.hard, and used must be current), and restores it in t.Cleanup.
func setQuotaHard(ctx context.Context, t *testing.T, tenant string, r corev1.ResourceName, value string) {
	t.Helper()
	ns := namespaceOf(t, tenant)
	quotas := h.session.Env().Kube.Core.CoreV1().ResourceQuotas(ns)
	cur, err := quotas.Get(ctx, referenceQuota, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, fixtures.ManagedBy, cur.Labels[fixtures.LabelManagedBy], "only bulkhead's quota is changed")
	old := cur.Spec.Hard[r]
	patch := func(ctx context.Context, v string) error {
		body := fmt.Sprintf(`{"spec":{"hard":{%q:%q}}}`, r, v)
		_, err := quotas.Patch(ctx, referenceQuota, ktypes.MergePatchType, []byte(body), metav1.PatchOptions{FieldManager: fixtures.ManagedBy})
		return err
	}
	t.Cleanup(func() {
		ctx := context.Background()
		assert.NoError(t, patch(ctx, old.String()))
		waitQuotaStatus(ctx, t, ns, r, old.String())
	})
	require.NoError(t, patch(ctx, value))
	waitQuotaStatus(ctx, t, ns, r, value)
}

// waitQuotaStatus waits until the tenant quota's status.hard[r] is value
// and its usage is computed.
func waitQuotaStatus(ctx context.Context, t *testing.T, ns string, r corev1.ResourceName, value string) {
	t.Helper()
	want := resource.MustParse(value)
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		q, err := h.session.Env().Kube.Core.CoreV1().ResourceQuotas(ns).Get(ctx, referenceQuota, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		h, ok := q.Status.Hard[r]
		_, used := q.Status.Used[r]
		last = fmt.Sprintf("status.hard %s=%s, used computed: %v", r, h.String(), used)
		return ok && used && h.Cmp(want) == 0, nil
	})
	require.NoError(t, err, "waiting for quota %s/%s status.hard %s=%s (last: %s)", ns, referenceQuota, r, value, last)
}

// removeTenantObject deletes one of the tenant's fixture objects, waits
// until it is gone, and recreates it in t.Cleanup (waiting for a quota's
// status to be computed again, since admission refuses objects until then).
func removeTenantObject(ctx context.Context, t *testing.T, tenant, kind, name string) {
	t.Helper()
	obj := tenantObject(t, tenant, kind, name)
	ns := obj.GetNamespace()
	ri, err := h.session.Applier().Resource(obj)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		require.NoError(t, h.session.CreateObjects(ctx, obj.DeepCopy()))
		if kind == "ResourceQuota" {
			waitQuotaStatus(ctx, t, ns, corev1.ResourcePods, obj.Object["spec"].(map[string]any)["hard"].(map[string]any)["pods"].(string))
		}
	})
	require.NoError(t, h.session.Applier().Delete(ctx, obj))
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := ri.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	require.NoError(t, err, "waiting for %s %s/%s to be gone", kind, ns, name)
}

// raiseContainerMax sets the tenant LimitRange's per-container cpu max,
// waits until admission applies it (a container at the new max is admitted
// in a server-side dry-run), and restores it in t.Cleanup.
func raiseContainerMax(ctx context.Context, t *testing.T, tenant, cpu string) {
	t.Helper()
	ns := namespaceOf(t, tenant)
	lrs := h.session.Env().Kube.Core.CoreV1().LimitRanges(ns)
	cur, err := lrs.Get(ctx, referenceLimitRange, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, fixtures.ManagedBy, cur.Labels[fixtures.LabelManagedBy], "only bulkhead's LimitRange is changed")
	original := cur.DeepCopy()
	for i := range cur.Spec.Limits {
		if cur.Spec.Limits[i].Type == corev1.LimitTypeContainer {
			cur.Spec.Limits[i].Max[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		lr, err := lrs.Get(ctx, referenceLimitRange, metav1.GetOptions{})
		if !assert.NoError(t, err) {
			return
		}
		lr.Spec = original.Spec
		_, err = lrs.Update(ctx, lr, metav1.UpdateOptions{FieldManager: fixtures.ManagedBy})
		assert.NoError(t, err)
		waitContainerCPUAdmitted(ctx, t, ns, "501m", false)
	})
	_, err = lrs.Update(ctx, cur, metav1.UpdateOptions{FieldManager: fixtures.ManagedBy})
	require.NoError(t, err)
	waitContainerCPUAdmitted(ctx, t, ns, "501m", true)
}

// waitContainerCPUAdmitted polls a dry-run pod whose container has a cpu
// limit of cpu until the LimitRange admits it (or refuses it).
func waitContainerCPUAdmitted(ctx context.Context, t *testing.T, ns, cpu string, admitted bool) {
	t.Helper()
	run := h.session.RunID()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bhq-negative-wait", Namespace: ns, Labels: fixtures.CommonLabels(run)},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{quota.NeverScheduleKey: "never-scheduled"},
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptrTo(true), RunAsUser: ptrTo[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: "c", Image: h.session.Env().ProbeImage,
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("1Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("1Mi")},
				},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptrTo(false), RunAsNonRoot: ptrTo(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := h.session.Env().Kube.Core.CoreV1().Pods(ns).Create(ctx, pod.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		last = fmt.Sprint(err)
		return (err == nil) == admitted, nil
	})
	require.NoError(t, err, "waiting for a container with cpu limit %s in %s to be admitted=%v (last: %s)", cpu, ns, admitted, last)
}

// grantQuotaWrites binds the tenant's group and ServiceAccount to a Role
// that may write resourcequotas in its namespace, waits until the
// authorizer allows it, and removes the grant in t.Cleanup.
func grantQuotaWrites(ctx context.Context, t *testing.T, tenant string) {
	t.Helper()
	run, ns := h.session.RunID(), namespaceOf(t, tenant)
	labels := fixtures.With(fixtures.CommonLabels(run), fixtures.LabelTenant, tenant, fixtures.LabelRole, "negative-control")
	name := "bulkhead-negative-control-quota-writer"
	role := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": toAny(labels)},
		"rules": []any{map[string]any{
			"apiGroups": []any{""}, "resources": []any{"resourcequotas"},
			"verbs": []any{"create", "update", "patch", "delete"},
		}},
	}}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": toAny(labels)},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
		"subjects": []any{
			map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": fixtures.TenantGroup(run, tenant)},
			map[string]any{"kind": "ServiceAccount", "name": fixtures.ProbeServiceAccount, "namespace": ns},
		},
	}}
	t.Cleanup(func() {
		ctx := context.Background()
		assert.NoError(t, h.session.Applier().Delete(ctx, binding))
		assert.NoError(t, h.session.Applier().Delete(ctx, role))
		waitQuotaWritable(ctx, t, tenant, false)
	})
	require.NoError(t, h.session.CreateObjects(ctx, role, binding))
	waitQuotaWritable(ctx, t, tenant, true)
}

// waitQuotaWritable asks the authorizer whether each of the tenant's
// identities may update its quota, until the answer is allowed.
func waitQuotaWritable(ctx context.Context, t *testing.T, tenant string, allowed bool) {
	t.Helper()
	tn, ok := h.session.Env().Topology.Tenant(tenant)
	require.True(t, ok)
	ns := namespaceOf(t, tenant)
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, id := range tn.Identities {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: id.User, Groups: id.Groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "update", Resource: "resourcequotas", Name: referenceQuota},
			}}
			got, err := h.session.Env().Kube.Core.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			if got.Status.Allowed != allowed {
				last = fmt.Sprintf("%s: allowed=%v", id, got.Status.Allowed)
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "waiting for tenant %s's identities to be allowed=%v to update resourcequotas (last: %s)", tenant, allowed, last)
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }
