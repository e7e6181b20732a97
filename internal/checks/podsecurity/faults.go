package podsecurity

import (
	"context"
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/rbac"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// NegativeControls are the faults that must make the Pod Security checks
// fail, injected into the run's reference tenant b.
func NegativeControls() []checks.NegativeControl {
	return []checks.NegativeControl{{
		Fault:  "tenant b's namespace enforces Pod Security privileged",
		Inject: EnforceLevel(fixtures.TenantB, "privileged"),
		Expect: []checks.Expectation{
			{Check: IDPodAdmission, Names: func(env *checks.Env) []string {
				return []string{env.TenantNamespace(fixtures.TenantB) + "/" + PodName(Variants[0].Name) + " dry-run create pod", "admitted (want rejected by PodSecurity"}
			}, Assert: everyVariantAdmittedIn(fixtures.TenantB)},
			{Check: IDWorkloads, Names: func(env *checks.Env) []string {
				ns := env.TenantNamespace(fixtures.TenantB)
				return []string{ns + "/bulkhead-psa-dep-" + deploymentVariant + "-", ns + "/bulkhead-psa-job-" + jobVariant + "-", "SuccessfulCreate: the forbidden pod was created"}
			}, Assert: forbiddenPodsNeverScheduled(fixtures.TenantB)},
		},
	}, {
		// A Role in a namespace grants rights on the namespace object itself.
		Fault: "a Role lets tenant b's identities patch their namespace",
		Inject: rbac.Grant(fixtures.TenantB, fixtures.TenantB,
			[]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"patch"}}},
			authorizationv1.ResourceAttributes{Verb: "patch", Resource: "namespaces"}),
		Expect: []checks.Expectation{{Check: IDRelabel, Names: func(env *checks.Env) []string {
			ns := env.TenantNamespace(fixtures.TenantB)
			return []string{"-> " + ns + "/" + ns + " dry-run patch namespace labels (enforce=privileged): admitted (want denied"}
		}, Assert: tenantapi.OnlyTenantLeaks(fixtures.TenantB)}},
	}}
}

// everyVariantAdmittedIn: under the fault every variant was admitted for
// the tenant, and nothing else leaked.
func everyVariantAdmittedIn(tenant string) func(*checks.Env, reports.CheckResult) []string {
	return func(env *checks.Env, res reports.CheckResult) []string {
		problems := tenantapi.OnlyTenantLeaks(tenant)(env, res)
		admitted := map[string]bool{}
		for _, o := range res.Observations {
			if o.Role == reports.RoleTest && o.Actor.Tenant == tenant && o.Observed == "admitted" {
				admitted[o.Target.Name] = true
			}
		}
		for _, v := range Variants {
			if !admitted[PodName(v.Name)] {
				problems = append(problems, fmt.Sprintf("variant %s was not admitted in tenant %s", v.Name, tenant))
			}
		}
		return problems
	}
}

// forbiddenPodsNeverScheduled: under the fault the tenant's forbidden
// workloads got their pods, and the evidence shows every one of them gated
// and on no node; nothing else leaked.
func forbiddenPodsNeverScheduled(tenant string) func(*checks.Env, reports.CheckResult) []string {
	return func(env *checks.Env, res reports.CheckResult) []string {
		problems := tenantapi.OnlyTenantLeaks(tenant)(env, res)
		n := 0
		for _, o := range res.Observations {
			if o.Role != reports.RoleTest || o.Actor.Tenant != tenant || o.Status == reports.StatusNotApplicable {
				continue
			}
			n++
			switch {
			case !o.Leak():
				problems = append(problems, "not a leak under the fault: "+checks.DescribeOne(o))
			case !strings.Contains(o.Detail, "(scheduling gated)") || strings.Contains(o.Detail, " on node "):
				problems = append(problems, "a forbidden pod not shown gated and unscheduled: "+o.Detail)
			}
		}
		if n == 0 {
			problems = append(problems, "no workload tried in tenant "+tenant)
		}
		return problems
	}
}

// EnforceLevel sets the Pod Security enforce level of the tenant's first
// namespace (bulkhead's own only) and waits until an administrator's
// dry-run privileged pod is admitted there, or rejected for a level that
// forbids it; Restore puts back the level it found and waits until the
// privileged pod is rejected again.
func EnforceLevel(tenant, level string) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		ns := env.TenantNamespace(tenant)
		core := env.Kube.Core.CoreV1()
		cur, err := core.Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("read namespace %s: %w", ns, err)
		}
		if cur.Labels[fixtures.LabelManagedBy] != fixtures.ManagedBy {
			return nil, fmt.Errorf("namespace %s is not bulkhead's: only bulkhead's namespaces are relabelled", ns)
		}
		was, had := cur.Labels[LabelEnforce]
		var restoreTo any // nil removes the label
		if had {
			restoreTo = was
		}
		set := func(ctx context.Context, v any) error {
			_, err := core.Namespaces().Patch(ctx, ns, types.MergePatchType, LabelPatch(map[string]any{LabelEnforce: v}), metav1.PatchOptions{FieldManager: fixtures.ManagedBy})
			if err != nil {
				return fmt.Errorf("relabel namespace %s: %w", ns, err)
			}
			return nil
		}
		allows := level == "privileged"
		restore := func(ctx context.Context) error {
			if err := set(ctx, restoreTo); err != nil {
				return err
			}
			return waitPrivilegedPod(ctx, env, ns, false)
		}
		if err := set(ctx, level); err != nil {
			return nil, err
		}
		return restore, waitPrivilegedPod(ctx, env, ns, allows)
	}
}

// waitPrivilegedPod polls an administrator's dry-run privileged pod in ns
// until it is admitted (or rejected), or a minute passes.
func waitPrivilegedPod(ctx context.Context, env *checks.Env, ns string, admitted bool) error {
	v, _ := VariantNamed("privileged")
	pod := Forbidden(v, ns, "bulkhead-nc-privileged", env.ProbeImage, fixtures.CommonLabels(env.RunID))
	last := "not tried"
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := env.Kube.Core.CoreV1().Pods(ns).Create(ctx, pod, tenantapi.DryRunCreate)
		last = "admitted"
		if err != nil {
			last = err.Error()
		}
		return (err == nil) == admitted, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for a privileged pod in %s to be admitted=%v (last: %s): %w", ns, admitted, last, err)
	}
	return nil
}
