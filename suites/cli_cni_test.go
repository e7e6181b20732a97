package suites

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vladimirvivien/gexe"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/syncbuf"
)

// TestCLICNIIgnoresPolicy turns Cilium's policy enforcement off
// (enable-policy: never) and runs bulkhead: with a CNI that ignores
// NetworkPolicy it must say so and exit 2, not report a list of leaks.
//
// It changes the cluster's CNI for a minute, so it runs only on the cluster
// this test process created (as `make test` and CI do); against a cluster
// given with --kubeconfig it is skipped, saying why.
func TestCLICNIIgnoresPolicy(t *testing.T) {
	f := features.New("bulkhead run on a CNI that ignores NetworkPolicy").
		WithLabel(labelArea, "cli").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			if !h.tgt.Created() {
				t.Skip("changes the cluster's CNI configuration: runs only on the kind cluster this test run created (make test)")
			}
			setCiliumPolicy(ctx, t, "never")
			t.Cleanup(func() {
				setCiliumPolicy(context.Background(), t, "default")
				waitPaths(context.Background(), t, tenantPaths(t, fixtures.TenantA, fixtures.TenantB), false)
			})
			waitPaths(ctx, t, tenantPaths(t, fixtures.TenantA, fixtures.TenantB), true)
			return ctx
		}).
		Assess("exit 2 naming the CNI, nothing left", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			run := fixtures.NewRunID()
			args := []string{"run", "--kubeconfig", cfg.KubeconfigFile(), "--yes", "--run-id", run, "--probe-image", h.probe,
				"--report-dir", t.TempDir(), "--areas", "network", "--enforcement-timeout", "10s"}
			var out syncbuf.Buffer
			proc := gexe.New().NewProc(bulkheadBinary(t) + " " + strings.Join(args, " "))
			proc.SetStdout(&out)
			proc.SetStderr(&out)
			proc.Run()
			t.Logf("bulkhead %s\n%s", strings.Join(args, " "), out.String())
			assert.Equal(t, 2, proc.ExitCode(), "a CNI that ignores NetworkPolicy means the run could not evaluate isolation")
			assert.Contains(t, out.String(), "the CNI does not enforce NetworkPolicy")
			assert.NotContains(t, out.String(), "FAIL    NET-", "no check reports leaks: the tenants are not at fault")
			nss, err := h.clients.Core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: fixtures.RunSelector(run)})
			require.NoError(t, err)
			assert.Empty(t, nss.Items, "namespaces of run %s are left", run)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// setCiliumPolicy sets Cilium's enable-policy option and restarts its
// agents, waiting until every agent runs with it.
func setCiliumPolicy(ctx context.Context, t *testing.T, mode string) {
	t.Helper()
	core := h.clients.Core
	patch := fmt.Sprintf(`{"data":{"enable-policy":%q}}`, mode)
	_, err := core.CoreV1().ConfigMaps("kube-system").Patch(ctx, "cilium-config", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err, "set cilium-config enable-policy=%s", mode)
	restart := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"bulkhead.dev/restarted-at":%q}}}}}`, time.Now().UTC().Format(time.RFC3339Nano))
	_, err = core.AppsV1().DaemonSets("kube-system").Patch(ctx, "cilium", types.StrategicMergePatchType, []byte(restart), metav1.PatchOptions{})
	require.NoError(t, err, "restart the cilium agents")
	var state string
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, 5*time.Minute, false, func(ctx context.Context) (bool, error) {
		ds, err := core.AppsV1().DaemonSets("kube-system").Get(ctx, "cilium", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		s := ds.Status
		state = fmt.Sprintf("generation %d observed %d, desired %d, updated %d, available %d", ds.Generation, s.ObservedGeneration, s.DesiredNumberScheduled, s.UpdatedNumberScheduled, s.NumberAvailable)
		return s.ObservedGeneration >= ds.Generation && s.UpdatedNumberScheduled == s.DesiredNumberScheduled &&
			s.NumberAvailable == s.DesiredNumberScheduled && s.NumberUnavailable == 0, nil
	})
	require.NoError(t, err, "cilium agents with enable-policy=%s not all available after 5m (%s)", mode, state)
}
