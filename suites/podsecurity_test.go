package suites

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	feats = append(feats, negativePSAPrivileged())
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
