package suites

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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
			assert.Contains(t, string(md), "tenant isolation: FAIL")
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
