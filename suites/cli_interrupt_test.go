package suites

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vladimirvivien/gexe"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/interrupt"
	"github.com/bulkhead-k8s/bulkhead/internal/syncbuf"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// TestCLIInterrupt presses Ctrl-C on `bulkhead run` at two moments: once its
// namespaces and probe pods exist (setup), and once the first check has
// started. Either way it must exit 2 and leave no namespace or object behind;
// interrupted during the checks, it keeps the evidence of what ran in reports
// that say the run was interrupted.
func TestCLIInterrupt(t *testing.T) {
	f := features.New("Ctrl-C during bulkhead run").
		WithLabel(labelArea, "cli").
		Assess("during setup: exit 2, everything the run created is gone", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			run, dir := fixtures.NewRunID(), t.TempDir()
			out := interruptRun(ctx, t, cfg, run, dir, func(string) bool {
				sel := metav1.ListOptions{LabelSelector: fixtures.RunSelector(run) + "," + fixtures.LabelRole + "=probe"}
				pods, err := h.clients.Core.CoreV1().Pods(metav1.NamespaceAll).List(ctx, sel)
				return err == nil && len(pods.Items) > 0
			})
			assert.Contains(t, out, "interrupted")
			return ctx
		}).
		Assess("during a check: exit 2, nothing left, reports of what ran say interrupted", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			run, dir := fixtures.NewRunID(), t.TempDir()
			out := interruptRun(ctx, t, cfg, run, dir, func(out string) bool { return strings.Contains(out, "[1/") })
			assert.Contains(t, out, "interrupted: writing reports for the checks that ran")

			require.NoError(t, verifyReportDir(ctx, filepath.Join(dir, run)), "the interrupted run's reports")
			res, err := reports.ReadJSON(filepath.Join(dir, run, reports.ResultsFile))
			require.NoError(t, err)
			assert.True(t, res.Run.Interrupted, "results.json says the run was interrupted")
			cut := 0
			for _, c := range res.Checks {
				if strings.Contains(c.Reason, "interrupted") {
					cut++
					assert.Contains(t, []reports.Verdict{reports.Error, reports.Skipped}, c.Verdict, "%s was cut short or never ran", c.ID)
				}
			}
			assert.Positive(t, cut, "the check in flight (and any after it) is not judged")
			md, err := os.ReadFile(filepath.Join(dir, run, reports.MarkdownFile))
			require.NoError(t, err)
			assert.Contains(t, string(md), "tenant isolation: ERROR", "an interrupted run is ERROR (exit 2), never PASS or FAIL")
			assert.Contains(t, string(md), "the run was interrupted")
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// interruptRun starts `bulkhead run --areas network`, sends SIGINT once
// ready(output so far) is true, and asserts the exit code and that nothing
// of the run is left. It returns the run's output.
func interruptRun(ctx context.Context, t *testing.T, cfg *envconf.Config, run, dir string, ready func(out string) bool) string {
	t.Helper()
	args := []string{"run", "--kubeconfig", cfg.KubeconfigFile(), "--yes", "--run-id", run, "--probe-image", h.probe,
		"--report-dir", dir, "--areas", "network"}
	if c := h.target.Context; c != "" {
		args = append(args, "--context", c)
	}
	var out syncbuf.Buffer
	proc := gexe.New().NewProc(bulkheadBinary(t) + " " + strings.Join(args, " "))
	proc.SetStdout(&out)
	proc.SetStderr(&out)
	require.NoError(t, proc.Start().Err(), "start bulkhead")

	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 4*time.Minute, true, func(context.Context) (bool, error) {
		return ready(out.String()), nil
	})
	if err != nil {
		_ = proc.Command().Process.Signal(os.Interrupt)
		proc.Wait()
		require.NoError(t, err, "run %s never reached the moment to interrupt:\n%s", run, out.String())
	}
	require.NoError(t, proc.Command().Process.Signal(os.Interrupt))
	proc.Wait()
	t.Logf("bulkhead %s (interrupted)\n%s", strings.Join(args, " "), out.String())

	assert.Equal(t, 2, proc.ExitCode(), "an interrupted run could not finish: exit 2")
	nss, err := h.clients.Core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: fixtures.RunSelector(run)})
	require.NoError(t, err)
	assert.Empty(t, nss.Items, "namespaces of the interrupted run %s are left", run)
	pods, err := h.clients.Core.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: fixtures.RunSelector(run)})
	require.NoError(t, err)
	assert.Empty(t, pods.Items, "pods of the interrupted run %s are left", run)
	return out.String()
}

// TestCLIInterruptTwice presses the signal twice while a check has created
// objects in the user's tenant namespaces (Pod Security's workloads, which
// carry the run's labels): SIGHUP first, SIGTERM second, because every
// signal behaves alike. The second one must undo fast and exit 2 without
// waiting; nothing labelled with the run may stay in the tenants'
// namespaces, and the deletion of bulkhead's own namespaces has started.
func TestCLIInterruptTwice(t *testing.T) {
	f := features.New("a second signal undoes fast").
		WithLabel(labelArea, "cli").
		Setup(setupBYO).
		Assess("second signal mid-check: exit 2 at once, nothing of the run in the tenants' namespaces", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			run := fixtures.NewRunID()
			tenantNSs := []string{byo.ns("blue-web"), byo.ns("blue-api"), byo.ns("green")}
			r := byo.start(t, run, "--areas", "podsecurity", "--labels", "check=PSA-002")
			t.Cleanup(func() { _ = r.proc.Command().Process.Kill() })

			// Wait for the check's own objects in a tenant namespace, not
			// only the run's probe pods.
			sel := metav1.ListOptions{LabelSelector: fixtures.RunSelector(run)}
			err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
				for _, ns := range tenantNSs {
					ds, err := h.clients.Core.AppsV1().Deployments(ns).List(ctx, sel)
					if err == nil && len(ds.Items) > 0 {
						return true, nil
					}
				}
				return false, nil
			})
			require.NoError(t, err, "the check never created its workloads:\n%s", r.out.String())

			require.NoError(t, r.proc.Command().Process.Signal(syscall.SIGHUP))
			time.Sleep(500 * time.Millisecond)
			require.NoError(t, r.proc.Command().Process.Signal(syscall.SIGTERM))
			exited := make(chan int, 1)
			go func() { exited <- r.wait(t) }()
			select {
			case code := <-exited:
				assert.Equal(t, 2, code)
			case <-time.After(interrupt.ForceTimeout + 15*time.Second):
				t.Fatalf("bulkhead did not exit within %s of the second signal:\n%s", interrupt.ForceTimeout+15*time.Second, r.out.String())
			}
			out := r.out.String()
			assert.Contains(t, out, "SIGHUP: stopping the run")
			assert.Contains(t, out, "SIGTERM again: fast undo")
			assert.Contains(t, out, "fast undo of run "+run+" done")

			nss, err := h.clients.Core.CoreV1().Namespaces().List(ctx, sel)
			require.NoError(t, err)
			for _, ns := range nss.Items {
				assert.NotNil(t, ns.DeletionTimestamp, "the deletion of bulkhead's namespace %s has started", ns.Name)
			}
			assertRunGone(ctx, t, run, tenantNSs)
			// What the fast undo did not wait for goes by itself: the
			// namespaces finish terminating, the policies are deleted.
			assertRunGone(ctx, t, run, nil)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
