package secrets

import (
	"context"
	"fmt"
	"slices"
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
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// NegativeControls are the faults that must make the secrets checks fail,
// injected into the run's reference tenants a and b. The grants of
// Secrets break RBAC-001 too, which is expected with them.
func NegativeControls() []checks.NegativeControl {
	readSecrets := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}}}
	listSecrets := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}}
	exec := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}}}
	return []checks.NegativeControl{
		{
			Fault:  "tenant a may read Secrets in tenant b's namespace",
			Inject: rbac.Grant(fixtures.TenantA, fixtures.TenantB, readSecrets, authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}),
			Expect: []checks.Expectation{
				{Check: IDRead, Names: fixed("get secrets", "canary value returned"), Assert: all(
					leaksExactly("get secrets", "list secrets", "watch secrets"), leaksFrom(fixtures.TenantA), leaksInto(fixtures.TenantB),
					func(_ *checks.Env, res reports.CheckResult) []string {
						var problems []string
						for _, o := range leaks(res) {
							if strings.Contains(o.Method, "all namespaces") {
								problems = append(problems, "cluster-wide reads stay denied, the leak is namespaced: "+checks.DescribeOne(o))
							}
						}
						return problems
					})},
				{Check: rbac.IDCrossNamespace, Names: fixed("secrets"), Assert: all(
					leaksExactly("get secrets", "list secrets", "watch secrets"), leaksFrom(fixtures.TenantA), leaksInto(fixtures.TenantB), userAndPod)},
				// Exec, attach, port-forward and tokens are not part of it.
				{Check: IDThroughPods, Verdict: reports.Pass},
			},
		},
		{
			Fault:  "tenant a may list Secrets cluster-wide",
			Inject: rbac.Grant(fixtures.TenantA, "", listSecrets, authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}),
			Expect: []checks.Expectation{
				{Check: IDRead, Names: fixed("list secrets", "canary value returned"), Assert: all(leaksExactly("list secrets"), leaksFrom(fixtures.TenantA),
					func(_ *checks.Env, res reports.CheckResult) []string {
						if !slices.ContainsFunc(leaks(res), func(o reports.Observation) bool { return strings.Contains(o.Method, "all namespaces") }) {
							return []string{"listing across all namespaces must leak"}
						}
						return nil
					})},
				{Check: rbac.IDCrossNamespace, Names: fixed("list secrets"), Assert: all(leaksExactly("list secrets"), leaksFrom(fixtures.TenantA),
					// cluster-wide: every other namespace of the run, bulkhead's sentinel too
					leaksInto(fixtures.TenantB, fixtures.TenantControl, fixtures.TenantSentinel))},
			},
		},
		{
			Fault:  "tenant a may exec into tenant b's pods",
			Inject: rbac.Grant(fixtures.TenantA, fixtures.TenantB, exec, authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "exec"}),
			Expect: []checks.Expectation{{Check: IDThroughPods, Names: fixed("pods/exec", "canary value returned"),
				Assert: all(leaksExactly("create pods/exec", "get pods/exec"), leaksFrom(fixtures.TenantA), leaksInto(fixtures.TenantB))}},
		},
		{
			Fault:  "tenant b's default ServiceAccount hands every pod a token",
			Inject: automountDefault(fixtures.TenantB),
			Expect: []checks.Expectation{{Check: IDTokenHygiene, Names: func(env *checks.Env) []string {
				return []string{"system:serviceaccount:" + namespace(env, fixtures.TenantB) + ":default"}
			}, Assert: all(leaksInto(fixtures.TenantB))}},
		},
	}
}

func fixed(names ...string) func(*checks.Env) []string {
	return func(*checks.Env) []string { return names }
}

func namespace(env *checks.Env, tenant string) string {
	t, ok := env.Topology.Tenant(tenant)
	if !ok || len(t.Namespaces) == 0 {
		return "(no tenant " + tenant + ")"
	}
	return t.Namespaces[0]
}

// all joins assertions.
func all(asserts ...func(*checks.Env, reports.CheckResult) []string) func(*checks.Env, reports.CheckResult) []string {
	return func(env *checks.Env, res reports.CheckResult) []string {
		var problems []string
		for _, a := range asserts {
			problems = append(problems, a(env, res)...)
		}
		return problems
	}
}

func leaks(res reports.CheckResult) []reports.Observation {
	var out []reports.Observation
	for _, o := range res.Observations {
		if o.Leak() {
			out = append(out, o)
		}
	}
	return out
}

// method is an observation's verb and resource, without its label.
func method(o reports.Observation) string {
	m, _, _ := strings.Cut(o.Method, " (")
	return m
}

// leaksExactly: the leaks are of these verbs and resources, each of them.
func leaksExactly(methods ...string) func(*checks.Env, reports.CheckResult) []string {
	return func(_ *checks.Env, res reports.CheckResult) []string {
		seen := map[string]bool{}
		var problems []string
		for _, o := range leaks(res) {
			seen[method(o)] = true
			if !slices.Contains(methods, method(o)) {
				problems = append(problems, "a leak outside the fault: "+checks.DescribeOne(o))
			}
		}
		for _, m := range methods {
			if !seen[m] {
				problems = append(problems, "no leak of "+m)
			}
		}
		return problems
	}
}

// leaksFrom: every leak is by an identity of tenant.
func leaksFrom(tenant string) func(*checks.Env, reports.CheckResult) []string {
	return func(_ *checks.Env, res reports.CheckResult) []string {
		var problems []string
		for _, o := range leaks(res) {
			if o.Actor.Tenant != tenant {
				problems = append(problems, "a leak by another tenant than "+tenant+": "+checks.DescribeOne(o))
			}
		}
		return problems
	}
}

// leaksInto: every leak is into a namespace of these tenants (the first
// one at least once).
func leaksInto(tenants ...string) func(*checks.Env, reports.CheckResult) []string {
	return func(env *checks.Env, res reports.CheckResult) []string {
		var problems []string
		into := map[string]bool{}
		for _, o := range leaks(res) {
			t, _ := env.Topology.TenantOfNamespace(o.Target.Namespace)
			into[t.Name] = true
			if o.Target.Namespace != "" && !slices.Contains(tenants, t.Name) {
				problems = append(problems, fmt.Sprintf("a leak into %s, not %s: %s", o.Target.Namespace, strings.Join(tenants, ", "), checks.DescribeOne(o)))
			}
		}
		for _, t := range tenants {
			if !into[t] {
				problems = append(problems, "no leak into tenant "+t)
			}
		}
		return problems
	}
}

// userAndPod: every leaking request leaks to the user (impersonated) and
// to the ServiceAccount's own token from inside its pod.
func userAndPod(_ *checks.Env, res reports.CheckResult) []string {
	kinds := map[string]map[string]bool{}
	for _, o := range leaks(res) {
		if kinds[method(o)] == nil {
			kinds[method(o)] = map[string]bool{}
		}
		kind := "user"
		if o.Actor.Pod != "" {
			kind = "pod"
		}
		kinds[method(o)][kind] = true
	}
	var problems []string
	for m, k := range kinds {
		if !k["user"] || !k["pod"] {
			problems = append(problems, fmt.Sprintf("%s leaks to the user and to the ServiceAccount's own token in its pod; seen: %v", m, k))
		}
	}
	return problems
}

// automountDefault turns on token automounting for the default
// ServiceAccount of tenant's namespace, and waits until a pod there that
// does not ask is admitted with a token; Restore turns it off and waits
// until such a pod gets none.
func automountDefault(tenant string) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		t, ok := env.Topology.Tenant(tenant)
		if !ok || len(t.Namespaces) == 0 {
			return nil, fmt.Errorf("no tenant %s in this run", tenant)
		}
		ns := t.Namespaces[0]
		set := func(ctx context.Context, on bool) error {
			patch := fmt.Appendf(nil, `{"automountServiceAccountToken":%t}`, on)
			if _, err := env.Kube.Core.CoreV1().ServiceAccounts(ns).Patch(ctx, "default", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "bulkhead"}); err != nil {
				return fmt.Errorf("set automountServiceAccountToken=%t on %s/default: %w", on, ns, err)
			}
			return waitDefaultToken(ctx, env, ns, on)
		}
		restore := func(ctx context.Context) error { return set(ctx, false) }
		return restore, set(ctx, true)
	}
}

// waitDefaultToken polls a dry-run pod of ns's default ServiceAccount that
// does not ask until it is admitted with a token (or without), or a
// minute passes.
func waitDefaultToken(ctx context.Context, env *checks.Env, ns string, token bool) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pod, err := env.Kube.Core.CoreV1().Pods(ns).Create(ctx, dryRunPod(env, ns, "default", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		_, mounted := TokenVolume(pod)
		last = fmt.Sprintf("token mounted: %t", mounted)
		return mounted == token, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for a pod of %s/default to be admitted with token=%t (last: %s): %w", ns, token, last, err)
	}
	return nil
}
