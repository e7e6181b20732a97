package quota

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Names of the reference tenant's quota objects
// (fixtures/manifests/isolated-30-quota.yaml).
const (
	referenceQuota      = "tenant-quota"
	referenceLimitRange = "tenant-limits"
)

// faultWait bounds how long a fault (or its restore) may take to be in
// effect.
const faultWait = time.Minute

// NegativeControls are the faults that must make the quota checks fail,
// injected into the run's reference tenant b (tenant a stays as it is and
// must keep passing: the fault is what the check caught, nothing else).
func NegativeControls() []checks.NegativeControl {
	b := fixtures.TenantB
	return []checks.NegativeControl{
		{
			// 12 > the expected 6: the tenant can have more pods than its
			// allotment, directly and through a Deployment.
			Fault:  "tenant b's pod quota is raised",
			Inject: raiseQuota(b, corev1.ResourcePods, "12"),
			Expect: []checks.Expectation{
				{Check: IDPods, Names: names(b, "[pods over quota]: accepted (want rejected: exceeded quota)"),
					Assert: all(onlyLeaksIn(b), leaksCarry(b, "hard 12; expected at most 6"))},
				{Check: IDDeployment, Names: names(b, "pods charged to the quota, more than its bound 6"), Assert: onlyLeaksIn(b)},
			},
		},
		{
			// Nothing bounds the tenant's compute, storage, object counts,
			// node ports or load balancers any more.
			Fault:  "tenant b's ResourceQuota is removed",
			Inject: removeQuota(b),
			Expect: []checks.Expectation{
				{Check: IDCompute, Names: names(b, "[requests.cpu="), Assert: all(onlyLeaksIn(b),
					leaksAt(b, "[requests.cpu=", "[requests.memory=", "[limits.cpu=", "[limits.memory="))},
				{Check: IDStorage, Names: names(b), Assert: all(onlyLeaksIn(b), leaksAt(b, "[requests.storage=", "[persistentvolumeclaims over quota]"))},
				{Check: IDObjects, Names: names(b), Assert: all(onlyLeaksIn(b),
					leaksAt(b, "[services over quota]", "[count/secrets over quota]", "[count/configmaps over quota]"))},
				{Check: IDExposure, Names: names(b), Assert: all(onlyLeaksIn(b),
					leaksAt(b, "[services.nodeports over quota]", "[services.loadbalancers over quota]"))},
			},
		},
		{
			Fault:  "tenant b's per-container cpu maximum is raised",
			Inject: raiseContainerMax(b, "1"),
			Expect: []checks.Expectation{{Check: IDLimitRange, Names: names(b, "[container cpu limit over max]"),
				Assert: all(onlyLeaksIn(b), leaksAt(b, "[container cpu limit over max]"), noLeakAt(b, "[container memory limit over max]"))}},
		},
		{
			Fault:  "tenant b may edit its ResourceQuota",
			Inject: grantQuotaWrites(b),
			Expect: []checks.Expectation{{Check: IDProtected, Names: names(b, "dry-run update resourcequota"),
				Assert: all(onlyLeaksIn(b), leaksAt(b, "dry-run update resourcequota", "dry-run delete resourcequota", "dry-run create resourcequota"),
					noLeakAt(b, "limitrange"))}},
		},
	}
}

func namespace(env *checks.Env, tenant string) string {
	t, ok := env.Topology.Tenant(tenant)
	if !ok || len(t.Namespaces) == 0 {
		return "(no tenant " + tenant + ")"
	}
	return t.Namespaces[0]
}

// names: the failing reason names a target in the tenant's namespace, and
// more.
func names(tenant string, more ...string) func(env *checks.Env) []string {
	return func(env *checks.Env) []string {
		return append([]string{"-> " + namespace(env, tenant) + "/"}, more...)
	}
}

type assertion = func(env *checks.Env, res reports.CheckResult) []string

func all(as ...assertion) assertion {
	return func(env *checks.Env, res reports.CheckResult) []string {
		var out []string
		for _, a := range as {
			out = append(out, a(env, res)...)
		}
		return out
	}
}

// onlyLeaksIn: every failed observation is a test in the tenant's
// namespace (no control broke), and every other tenant was checked and
// holds: nothing else leaked, nothing else became unproven.
func onlyLeaksIn(tenant string) assertion {
	return func(env *checks.Env, res reports.CheckResult) []string {
		ns := namespace(env, tenant)
		var problems []string
		others := 0
		for _, o := range res.Observations {
			if o.Actor.Namespace != ns {
				others++
				if o.Failed() || o.Status == reports.StatusUnproven {
					problems = append(problems, "another tenant is affected: "+checks.DescribeOne(o))
				}
				continue
			}
			if o.Failed() && o.Role != reports.RoleTest {
				problems = append(problems, "a positive control broke: "+checks.DescribeOne(o))
			}
		}
		if others == 0 {
			problems = append(problems, "no other tenant was checked")
		}
		return problems
	}
}

// leaksAt: for each of methods, a test in the tenant's namespace whose
// method contains it leaked.
func leaksAt(tenant string, methods ...string) assertion {
	return func(env *checks.Env, res reports.CheckResult) []string {
		var problems []string
		for _, m := range methods {
			if !leaked(res, namespace(env, tenant), m) {
				problems = append(problems, fmt.Sprintf("no leak at %q in %s: %s", m, namespace(env, tenant), res.Reason))
			}
		}
		return problems
	}
}

// noLeakAt: nothing in the tenant's namespace whose method contains method
// leaked (the fault is that narrow).
func noLeakAt(tenant, method string) assertion {
	return func(env *checks.Env, res reports.CheckResult) []string {
		if leaked(res, namespace(env, tenant), method) {
			return []string{fmt.Sprintf("%q leaked in %s too: %s", method, namespace(env, tenant), res.Reason)}
		}
		return nil
	}
}

// leaksCarry: every leak in the tenant's namespace carries what in its
// evidence.
func leaksCarry(tenant, what string) assertion {
	return func(env *checks.Env, res reports.CheckResult) []string {
		var problems []string
		for _, o := range res.Observations {
			if o.Leak() && o.Actor.Namespace == namespace(env, tenant) && !strings.Contains(o.Detail, what) {
				problems = append(problems, fmt.Sprintf("the evidence of %s lacks %q: %s", checks.DescribeOne(o), what, o.Detail))
			}
		}
		return problems
	}
}

func leaked(res reports.CheckResult, ns, method string) bool {
	for _, o := range res.Observations {
		if o.Leak() && o.Actor.Namespace == ns && strings.Contains(o.Method, method) {
			return true
		}
	}
	return false
}

// referenceObject returns the fixture object of kind/name of a reference
// tenant, as it was provisioned.
func referenceObject(env *checks.Env, tenant, kind, name string) (*unstructured.Unstructured, error) {
	objs, err := fixtures.RenderTenant(env.RunID, fixtures.TenantSpec{Name: tenant, Namespace: namespace(env, tenant), Isolated: true})
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o, nil
		}
	}
	return nil, fmt.Errorf("no %s %s in tenant %s's fixtures", kind, name, tenant)
}

// raiseQuota sets one hard value of the tenant's quota and waits until the
// quota controller has put it in the status (admission enforces
// status.hard); Restore sets it back.
func raiseQuota(tenant string, r corev1.ResourceName, value string) func(context.Context, *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		ns := namespace(env, tenant)
		quotas := env.Kube.Core.CoreV1().ResourceQuotas(ns)
		cur, err := quotas.Get(ctx, referenceQuota, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if cur.Labels[fixtures.LabelManagedBy] != fixtures.ManagedBy {
			return nil, fmt.Errorf("quota %s/%s is not bulkhead's: not changing it", ns, referenceQuota)
		}
		old := cur.Spec.Hard[r]
		set := func(ctx context.Context, v string) error {
			body := fmt.Sprintf(`{"spec":{"hard":{%q:%q}}}`, r, v)
			if _, err := quotas.Patch(ctx, referenceQuota, ktypes.MergePatchType, []byte(body), metav1.PatchOptions{FieldManager: fixtures.ManagedBy}); err != nil {
				return fmt.Errorf("set %s/%s hard %s=%s: %w", ns, referenceQuota, r, v, err)
			}
			return waitQuotaStatus(ctx, env, ns, r, v)
		}
		restore := func(ctx context.Context) error { return set(ctx, old.String()) }
		return restore, set(ctx, value)
	}
}

// removeQuota deletes the tenant's ResourceQuota and waits until it is
// gone; Restore creates it again and waits for its status.
func removeQuota(tenant string) func(context.Context, *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		obj, err := referenceObject(env, tenant, "ResourceQuota", referenceQuota)
		if err != nil {
			return nil, err
		}
		ns := obj.GetNamespace()
		applier := kube.NewApplier(env.Kube)
		pods, _, _ := unstructured.NestedString(obj.Object, "spec", "hard", "pods")
		restore := func(ctx context.Context) error {
			if err := applier.Create(ctx, obj.DeepCopy()); err != nil {
				return err
			}
			return waitQuotaStatus(ctx, env, ns, corev1.ResourcePods, pods)
		}
		if err := applier.Delete(ctx, obj); err != nil {
			return restore, err
		}
		err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, faultWait, true, func(ctx context.Context) (bool, error) {
			_, err := env.Kube.Core.CoreV1().ResourceQuotas(ns).Get(ctx, referenceQuota, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			return restore, fmt.Errorf("waiting for ResourceQuota %s/%s to be gone: %w", ns, referenceQuota, err)
		}
		return restore, nil
	}
}

// waitQuotaStatus waits until the tenant quota's status.hard[r] is value
// and its usage is computed.
func waitQuotaStatus(ctx context.Context, env *checks.Env, ns string, r corev1.ResourceName, value string) error {
	want := resource.MustParse(value)
	last := "not read yet"
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, faultWait, true, func(ctx context.Context) (bool, error) {
		q, err := env.Kube.Core.CoreV1().ResourceQuotas(ns).Get(ctx, referenceQuota, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		h, ok := q.Status.Hard[r]
		last = fmt.Sprintf("status.hard %s=%s, current: %v", r, h.String(), statusCurrent(*q))
		return ok && h.Cmp(want) == 0 && statusCurrent(*q), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for quota %s/%s status.hard %s=%s (last: %s): %w", ns, referenceQuota, r, value, last, err)
	}
	return nil
}

// raiseContainerMax sets the tenant LimitRange's per-container cpu max and
// waits until admission applies it (a container over the old max is
// admitted in a server-side dry-run); Restore puts the old spec back and
// waits until that container is refused again.
func raiseContainerMax(tenant, cpu string) func(context.Context, *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		ns := namespace(env, tenant)
		lrs := env.Kube.Core.CoreV1().LimitRanges(ns)
		cur, err := lrs.Get(ctx, referenceLimitRange, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if cur.Labels[fixtures.LabelManagedBy] != fixtures.ManagedBy {
			return nil, fmt.Errorf("LimitRange %s/%s is not bulkhead's: not changing it", ns, referenceLimitRange)
		}
		original := cur.Spec.DeepCopy()
		for i := range cur.Spec.Limits {
			if cur.Spec.Limits[i].Type == corev1.LimitTypeContainer {
				cur.Spec.Limits[i].Max[corev1.ResourceCPU] = resource.MustParse(cpu)
			}
		}
		restore := func(ctx context.Context) error {
			lr, err := lrs.Get(ctx, referenceLimitRange, metav1.GetOptions{})
			if err != nil {
				return err
			}
			lr.Spec = *original
			if _, err := lrs.Update(ctx, lr, metav1.UpdateOptions{FieldManager: fixtures.ManagedBy}); err != nil {
				return fmt.Errorf("restore LimitRange %s/%s: %w", ns, referenceLimitRange, err)
			}
			return waitContainerCPUAdmitted(ctx, env, tenant, "501m", false)
		}
		if _, err := lrs.Update(ctx, cur, metav1.UpdateOptions{FieldManager: fixtures.ManagedBy}); err != nil {
			return nil, fmt.Errorf("raise LimitRange %s/%s: %w", ns, referenceLimitRange, err)
		}
		return restore, waitContainerCPUAdmitted(ctx, env, tenant, "501m", true)
	}
}

// waitContainerCPUAdmitted polls a dry-run pod whose container has a cpu
// limit of cpu until the LimitRange admits it (or refuses it).
func waitContainerCPUAdmitted(ctx context.Context, env *checks.Env, tenant, cpu string, admitted bool) error {
	b := builder{runID: env.RunID, tenant: tenant, ns: namespace(env, tenant), image: env.ProbeImage}
	res := smallResources()
	res.Limits[corev1.ResourceCPU] = resource.MustParse(cpu)
	pod := b.pod("bhq-negative-wait", res)
	last := "not tried yet"
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, faultWait, true, func(ctx context.Context) (bool, error) {
		_, err := env.Kube.Dynamic.Resource(gvrPods).Namespace(b.ns).Create(ctx, pod.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		last = fmt.Sprint(err)
		return (err == nil) == admitted, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for a container with cpu limit %s in %s to be admitted=%v (last: %s): %w", cpu, b.ns, admitted, last, err)
	}
	return nil
}

// grantQuotaWrites binds the tenant's identities to a Role that may write
// resourcequotas in its namespace and waits until the authorizer allows
// them; Restore removes the grant and waits until it no longer does.
func grantQuotaWrites(tenant string) func(context.Context, *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		tn, ok := env.Topology.Tenant(tenant)
		if !ok {
			return nil, fmt.Errorf("no tenant %s in this run", tenant)
		}
		ns := namespace(env, tenant)
		labels := fixtures.With(fixtures.CommonLabels(env.RunID), fixtures.LabelTenant, tenant, fixtures.LabelRole, "negative-control")
		name := "bulkhead-negative-control-quota-writer"
		var subjects []any
		for _, id := range tn.Identities {
			if id.ServiceAccount != "" {
				saNS, saName, _ := strings.Cut(id.ServiceAccount, "/")
				subjects = append(subjects, map[string]any{"kind": "ServiceAccount", "name": saName, "namespace": saNS})
				continue
			}
			subjects = append(subjects, map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": id.User})
		}
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
			"subjects": subjects,
		}}
		applier := kube.NewApplier(env.Kube)
		restore := func(ctx context.Context) error {
			err := errors.Join(applier.Delete(ctx, binding), applier.Delete(ctx, role))
			return errors.Join(err, waitQuotaWritable(ctx, env, tn, ns, false))
		}
		if err := applier.Create(ctx, role, binding); err != nil {
			return restore, err
		}
		return restore, waitQuotaWritable(ctx, env, tn, ns, true)
	}
}

// waitQuotaWritable asks the authorizer whether each of the tenant's
// identities may update its quota, until the answer is allowed.
func waitQuotaWritable(ctx context.Context, env *checks.Env, tn checks.Tenant, ns string, allowed bool) error {
	last := "not asked yet"
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, faultWait, true, func(ctx context.Context) (bool, error) {
		for _, id := range tn.Identities {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: id.User, Groups: id.Groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "update", Resource: "resourcequotas", Name: referenceQuota},
			}}
			got, err := env.Kube.Core.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
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
	if err != nil {
		return fmt.Errorf("waiting for tenant %s's identities to be allowed=%v to update resourcequotas (last: %s): %w", tn.Name, allowed, last, err)
	}
	return nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
