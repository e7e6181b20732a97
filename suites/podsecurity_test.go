package suites

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/podsecurity"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func TestPodSecurity(t *testing.T) {
	feats := checkFeatures(podsecurity.Checks())
	feats = append(feats, negativePSAPrivileged(), negativeExternalIPsUnbound(), negativeExternalNameUnbound(), negativeNodesOpen())
	testenv.Test(t, feats...)
}

// negativePSAPrivileged relabels tenant b's namespace to Pod Security
// "privileged" (as the administrator): PSA-001 must fail, naming tenant b's
// variants as admitted, while tenant a's stay rejected.
func negativePSAPrivileged() types.Feature {
	return negativeControl(checks.PodSecurity, "tenant b's namespace enforces Pod Security privileged").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			relabelEnforce(ctx, t, namespaceOf(t, fixtures.TenantB), "privileged")
			return ctx
		}).
		Assess("PSA-001 fails naming tenant b's admitted variants", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			nsA, nsB := namespaceOf(t, fixtures.TenantA), namespaceOf(t, fixtures.TenantB)
			res := failsUnderFault(ctx, t, podsecurity.Checks(), podsecurity.IDPodAdmission, negativeEnv())
			assert.Contains(t, res.Reason, nsB+"/"+podsecurity.PodName(podsecurity.Variants[0].Name)+" dry-run create pod")
			assert.Contains(t, res.Reason, "admitted (want rejected by PodSecurity")
			assert.NotContains(t, res.Reason, nsA+"/", "tenant a still enforces restricted")
			admitted := map[string]int{}
			for _, o := range res.Observations {
				if o.Role != reports.RoleTest {
					continue
				}
				if o.Target.Namespace == nsA {
					assert.True(t, o.OK, "tenant a: %s", checks.DescribeOne(o))
					continue
				}
				assert.False(t, o.OK, "tenant b: %s", checks.DescribeOne(o))
				assert.Equal(t, "admitted", o.Observed, checks.DescribeOne(o))
				admitted[o.Target.Name]++
			}
			for _, v := range podsecurity.Variants {
				assert.Equal(t, len(identitiesOf(t, fixtures.TenantB)), admitted[podsecurity.PodName(v.Name)],
					"variant %s admitted for every identity of tenant b", v.Name)
			}
			return ctx
		}).Feature()
}

// negativeExternalIPsUnbound removes the binding of the reference tenants'
// externalIPs policy: EXP-002 must fail with every externalIPs attempt
// admitted.
func negativeExternalIPsUnbound() types.Feature {
	return negativeControl(checks.PodSecurity, "the externalIPs policy binding is removed").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bulkhead-nc-external-ips"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, ExternalIPs: []string{podsecurity.ExternalIP}}}
			unbind(ctx, t, fixtures.PolicyDenyExternalIPs, svc)
			return ctx
		}).
		Assess("EXP-002 fails naming the admitted externalIPs Services", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			res := failsUnderFault(ctx, t, podsecurity.Checks(), podsecurity.IDExternalIPs, negativeEnv())
			assert.Contains(t, res.Reason, "externalIPs "+podsecurity.ExternalIP+"): admitted")
			requireAllTestsAdmitted(t, res)
			return ctx
		}).Feature()
}

// negativeExternalNameUnbound removes the binding of the reference
// tenants' ExternalName policy: EXP-003 must fail.
func negativeExternalNameUnbound() types.Feature {
	return negativeControl(checks.PodSecurity, "the cross-tenant ExternalName policy binding is removed").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			alias := "probe-0." + namespaceOf(t, fixtures.TenantB) + ".svc." + podsecurity.ClusterDomain
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bulkhead-nc-alias"},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: alias}}
			unbind(ctx, t, fixtures.PolicyDenyForeignExternalName, svc)
			return ctx
		}).
		Assess("EXP-003 fails naming the admitted aliases", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			res := failsUnderFault(ctx, t, podsecurity.Checks(), podsecurity.IDExternalName, negativeEnv())
			assert.Contains(t, res.Reason, "svc."+podsecurity.ClusterDomain+", tenant b): admitted")
			requireAllTestsAdmitted(t, res)
			return ctx
		}).Feature()
}

// negativeNodesOpen opens tenant b completely (an allow-all policy next to
// its default deny): EXP-004 must fail naming tenant b's pods reaching the
// nodes, while tenant a's stay blocked.
func negativeNodesOpen() types.Feature {
	return negativeControl(checks.PodSecurity, "tenant b allows all egress, nodes included").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			openTenants(ctx, t, fixtures.TenantB)
			return ctx
		}).
		Assess("EXP-004 fails naming tenant b's pods", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			nsA, nsB := namespaceOf(t, fixtures.TenantA), namespaceOf(t, fixtures.TenantB)
			res := failsUnderFault(ctx, t, podsecurity.Checks(), podsecurity.IDNodeAccess, negativeEnv())
			assert.Contains(t, res.Reason, nsB+"/probe-")
			assert.Contains(t, res.Reason, "tcp/kubelet (node ")
			assert.Contains(t, res.Reason, "reachable (want blocked)")
			for _, o := range res.Observations {
				if o.Role == reports.RoleTest && o.Actor.Namespace == nsA {
					assert.True(t, o.OK, "tenant a still blocks: %s", checks.DescribeOne(o))
				}
				if o.Role == reports.RoleTest && o.Actor.Namespace == nsB && strings.HasPrefix(o.Method, "tcp/kubelet (") {
					assert.Equal(t, "reachable", o.Observed, "tenant b reaches every kubelet: %s", checks.DescribeOne(o))
				}
			}
			return ctx
		}).Feature()
}

func requireAllTestsAdmitted(t *testing.T, res reports.CheckResult) {
	t.Helper()
	n := 0
	for _, o := range res.Observations {
		if o.Role == reports.RoleTest {
			n++
			assert.Equal(t, "admitted", o.Observed, checks.DescribeOne(o))
		}
	}
	assert.Positive(t, n)
}

func identitiesOf(t *testing.T, tenant string) []checks.Identity {
	t.Helper()
	tn, ok := h.session.Env().Topology.Tenant(tenant)
	require.True(t, ok)
	return tn.Identities
}

// relabelEnforce sets the namespace's Pod Security enforce level as the
// administrator and waits until a privileged pod is admitted there;
// t.Cleanup restores the level it found and waits until one is rejected.
func relabelEnforce(ctx context.Context, t *testing.T, ns, level string) {
	t.Helper()
	core := h.session.Env().Kube.Core.CoreV1()
	cur, err := core.Namespaces().Get(ctx, ns, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, fixtures.ManagedBy, cur.Labels[fixtures.LabelManagedBy], "only bulkhead's namespaces are relabelled")
	was, had := cur.Labels[podsecurity.LabelEnforce]
	patch := func(ctx context.Context, v any) {
		_, err := core.Namespaces().Patch(ctx, ns, ktypes.MergePatchType,
			podsecurity.LabelPatch(map[string]any{podsecurity.LabelEnforce: v}), metav1.PatchOptions{FieldManager: fixtures.ManagedBy})
		require.NoError(t, err, "relabel namespace %s", ns)
	}
	patch(ctx, level)
	t.Cleanup(func() {
		ctx := context.Background()
		var restore any // nil removes the label
		if had {
			restore = was
		}
		patch(ctx, restore)
		waitPrivilegedPod(ctx, t, ns, false)
	})
	waitPrivilegedPod(ctx, t, ns, true)
}

// waitPrivilegedPod polls an administrator's dry-run privileged pod in ns
// until it is admitted (or rejected), or a minute passes.
func waitPrivilegedPod(ctx context.Context, t *testing.T, ns string, admitted bool) {
	t.Helper()
	v, ok := podsecurity.VariantNamed("privileged")
	require.True(t, ok)
	env := h.session.Env()
	pod := podsecurity.Forbidden(v, ns, "bulkhead-nc-privileged", env.ProbeImage, fixtures.CommonLabels(env.RunID))
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := env.Kube.Core.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		last = "admitted"
		if err != nil {
			last = err.Error()
		}
		return (err == nil) == admitted, nil
	})
	require.NoError(t, err, "waiting for a privileged pod in %s to be admitted=%v (last: %s)", ns, admitted, last)
}

// unbind deletes the run's binding of policy (suffix) and waits until
// probe, a Service tenant a creates by dry-run, is admitted; t.Cleanup
// restores the binding and waits until probe is rejected again.
func unbind(ctx context.Context, t *testing.T, suffix string, probe *corev1.Service) {
	t.Helper()
	binding, err := fixtures.RunPolicy(h.session.RunID(), fixtures.KindValidatingAdmissionBinding, suffix)
	require.NoError(t, err)
	require.NoError(t, h.session.Applier().Delete(ctx, binding))
	t.Cleanup(func() {
		ctx := context.Background()
		restored := binding.DeepCopy()
		require.NoError(t, h.session.CreateObjects(ctx, restored), "restore %s", fixtures.Describe(binding))
		waitTenantService(ctx, t, probe, false)
	})
	waitTenantService(ctx, t, probe, true)
}

// waitTenantService polls tenant a's user creating svc by dry-run until it
// is admitted (or rejected), or a minute passes.
func waitTenantService(ctx context.Context, t *testing.T, svc *corev1.Service, admitted bool) {
	t.Helper()
	ids := identitiesOf(t, fixtures.TenantA)
	require.NotEmpty(t, ids)
	as, err := h.session.Env().Kube.Impersonate(ids[0].User, ids[0].Groups...)
	require.NoError(t, err)
	ns := namespaceOf(t, fixtures.TenantA)
	s := svc.DeepCopy()
	s.Namespace = ns
	var last string
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := as.Core.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		last = "admitted"
		if err != nil {
			last = err.Error()
		}
		return (err == nil) == admitted, nil
	})
	require.NoError(t, err, "waiting for %s (as tenant a) to be admitted=%v (last: %s)", describeService(s), admitted, last)
}

func describeService(s *corev1.Service) string {
	b, _ := json.Marshal(s.Spec)
	return "Service " + s.Namespace + "/" + s.Name + " " + strings.TrimSpace(string(b))
}
