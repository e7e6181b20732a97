package exposure

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/network"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// NegativeControls are the faults that must make the exposure checks fail,
// injected into the run's reference tenants a and b and their cluster
// policies.
func NegativeControls() []checks.NegativeControl {
	return []checks.NegativeControl{
		{
			Fault:  "tenant b's quota allows node ports and load balancers",
			Inject: openQuota(fixtures.TenantB),
			Expect: []checks.Expectation{{Check: IDNodePorts, Names: func(env *checks.Env) []string {
				return []string{tenantapi.Namespace(env, fixtures.TenantB) + "/bulkhead-exp-nodeport dry-run create service (NodePort): admitted"}
			}, Assert: tenantapi.OnlyTenantLeaks(fixtures.TenantB)}},
		},
		{
			Fault: "the externalIPs policy binding is removed",
			Inject: unbind(fixtures.PolicyDenyExternalIPs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bulkhead-nc-external-ips"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, ExternalIPs: []string{ExternalIP}}}),
			Expect: []checks.Expectation{{Check: IDExternalIPs, Names: func(*checks.Env) []string {
				return []string{"externalIPs " + ExternalIP + "): admitted"}
			}, Assert: everyTestAdmitted}},
		},
		{
			Fault: "the cross-tenant ExternalName policy binding is removed",
			Inject: unbind(fixtures.PolicyDenyForeignExternalName, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bulkhead-nc-alias"},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "probe-0.kube-system.svc." + ClusterDomain}}),
			Expect: []checks.Expectation{{Check: IDExternalName, Names: func(*checks.Env) []string {
				return []string{"svc." + ClusterDomain + ", tenant b): admitted"}
			}, Assert: everyTestAdmitted}},
		},
		{
			Fault:  "tenant b allows all traffic, nodes included",
			Inject: network.OpenTenants(fixtures.TenantB),
			Expect: []checks.Expectation{{Check: IDNodeAccess, Names: func(env *checks.Env) []string {
				return []string{tenantapi.Namespace(env, fixtures.TenantB) + "/probe-", "tcp/kubelet (node ", "reachable (want blocked"}
			}, Assert: tenantReachesEveryKubelet(fixtures.TenantB)}},
		},
	}
}

// everyTestAdmitted: with the policy gone, every attempt it stopped is
// admitted, in every round.
func everyTestAdmitted(_ *checks.Env, res reports.CheckResult) []string {
	var problems []string
	n := 0
	for _, o := range res.Observations {
		if o.Role == reports.RoleTest && o.Status != reports.StatusNotApplicable {
			n++
			if o.Observed != "admitted" {
				problems = append(problems, "not admitted: "+checks.DescribeOne(o))
			}
		}
	}
	if n == 0 {
		problems = append(problems, "no test observed")
	}
	return problems
}

// tenantReachesEveryKubelet: tenant's pods reached every kubelet in every
// counted round; every other tenant's pods stayed blocked.
func tenantReachesEveryKubelet(tenant string) func(env *checks.Env, res reports.CheckResult) []string {
	return func(env *checks.Env, res reports.CheckResult) []string {
		problems := tenantapi.OnlyTenantLeaks(tenant)(env, res)
		n := 0
		for _, o := range res.Observations {
			if o.Role == reports.RoleTest && o.Actor.Tenant == tenant && strings.HasPrefix(o.Method, "tcp/"+PortKubelet+" (") {
				n++
				if o.Observed != "reachable" {
					problems = append(problems, "tenant "+tenant+" reaches every kubelet, but: "+checks.DescribeOne(o))
				}
			}
		}
		if n == 0 {
			problems = append(problems, "no kubelet probe from tenant "+tenant)
		}
		return problems
	}
}

// quotaName is the reference tenants' ResourceQuota (fixtures/manifests/isolated-30-quota.yaml).
const quotaName = "tenant-quota"

// openQuota removes services.nodeports and services.loadbalancers from the
// tenant's quota and waits until its user may create a NodePort Service (by
// dry-run); Restore puts back the values it found and waits until the
// NodePort is refused again.
func openQuota(tenant string) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		ns := tenantapi.Namespace(env, tenant)
		quotas := env.Kube.Core.CoreV1().ResourceQuotas(ns)
		q, err := quotas.Get(ctx, quotaName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("read ResourceQuota %s/%s: %w", ns, quotaName, err)
		}
		if q.Labels[fixtures.LabelManagedBy] != fixtures.ManagedBy {
			return nil, fmt.Errorf("ResourceQuota %s/%s is not bulkhead's", ns, quotaName)
		}
		keys := []corev1.ResourceName{corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers}
		was, opened := map[corev1.ResourceName]any{}, map[corev1.ResourceName]any{}
		for _, k := range keys {
			if v, ok := q.Spec.Hard[k]; ok {
				was[k] = v.String()
			} else {
				was[k] = nil
			}
			opened[k] = nil
		}
		setHard := func(ctx context.Context, hard map[corev1.ResourceName]any) error {
			patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"hard": hard}}) // strings and nil always encode
			if _, err := quotas.Patch(ctx, quotaName, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fixtures.ManagedBy}); err != nil {
				return fmt.Errorf("patch ResourceQuota %s/%s: %w", ns, quotaName, err)
			}
			return nil
		}
		probe := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bulkhead-nc-nodeport"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}
		restore := func(ctx context.Context) error {
			if err := setHard(ctx, was); err != nil {
				return err
			}
			return waitTenantService(ctx, env, tenant, probe, false)
		}
		if err := setHard(ctx, opened); err != nil {
			return nil, err
		}
		return restore, waitTenantService(ctx, env, tenant, probe, true)
	}
}

// unbind deletes the run's binding of policy (suffix) and waits until
// probe, a Service tenant a creates by dry-run, is admitted; Restore
// creates the binding again and waits until probe is rejected again.
func unbind(suffix string, probe *corev1.Service) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		binding, err := fixtures.RunPolicy(env.RunID, fixtures.KindValidatingAdmissionBinding, suffix)
		if err != nil {
			return nil, err
		}
		applier := kube.NewApplier(env.Kube)
		restore := func(ctx context.Context) error {
			if err := applier.Create(ctx, binding.DeepCopy()); err != nil {
				return fmt.Errorf("restore %s: %w", fixtures.Describe(binding), err)
			}
			return waitTenantService(ctx, env, fixtures.TenantA, probe, false)
		}
		if err := applier.Delete(ctx, binding); err != nil {
			return nil, err
		}
		return restore, waitTenantService(ctx, env, fixtures.TenantA, probe, true)
	}
}

// waitTenantService polls the tenant's first identity creating svc in its
// namespace by dry-run until it is admitted (or rejected), or a minute
// passes.
func waitTenantService(ctx context.Context, env *checks.Env, tenant string, svc *corev1.Service, admitted bool) error {
	t, ok := env.Topology.Tenant(tenant)
	if !ok || len(t.Identities) == 0 || len(t.Namespaces) == 0 {
		return fmt.Errorf("tenant %s: no identity or namespace in this run", tenant)
	}
	as, err := env.Kube.Impersonate(t.Identities[0].User, t.Identities[0].Groups...)
	if err != nil {
		return err
	}
	s := svc.DeepCopy()
	s.Namespace = t.Namespaces[0]
	last := "not tried"
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := as.Core.CoreV1().Services(s.Namespace).Create(ctx, s, tenantapi.DryRunCreate)
		last = "admitted"
		if err != nil {
			last = err.Error()
		}
		return (err == nil) == admitted, nil
	})
	if err != nil {
		b, _ := json.Marshal(s.Spec)
		return fmt.Errorf("waiting for Service %s/%s %s (as %s) to be admitted=%v (last: %s): %w", s.Namespace, s.Name, b, t.Identities[0], admitted, last, err)
	}
	return nil
}
