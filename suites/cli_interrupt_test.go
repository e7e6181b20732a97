package suites

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
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
)

// TestCLIInterrupt presses Ctrl-C on `bulkhead run` once its namespaces and
// probe pods exist: it must exit 2 and leave no namespace or object behind.
func TestCLIInterrupt(t *testing.T) {
	f := features.New("Ctrl-C during bulkhead run").
		WithLabel(labelArea, "cli").
		Assess("exit 2, everything the run created is gone", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			run := fixtures.NewRunID()
			kubeconfig := cfg.KubeconfigFile()
			args := []string{"run", "--kubeconfig", kubeconfig, "--yes", "--run-id", run, "--probe-image", h.probe,
				"--report-dir", t.TempDir(), "--areas", "network"}
			if c := h.target.Context; c != "" {
				args = append(args, "--context", c)
			}
			var out syncBuffer
			proc := gexe.New().NewProc(bulkheadBinary(t) + " " + strings.Join(args, " "))
			proc.SetStdout(&out)
			proc.SetStderr(&out)
			require.NoError(t, proc.Start().Err(), "start bulkhead")

			// Interrupt once the run has namespaces and probe pods.
			sel := metav1.ListOptions{LabelSelector: fixtures.RunSelector(run) + "," + fixtures.LabelRole + "=probe"}
			err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
				pods, err := h.clients.Core.CoreV1().Pods(metav1.NamespaceAll).List(ctx, sel)
				return err == nil && len(pods.Items) > 0, nil
			})
			require.NoError(t, err, "run %s created no probe pods:\n%s", run, out.String())
			require.NoError(t, proc.Command().Process.Signal(os.Interrupt))
			proc.Wait()
			t.Logf("bulkhead %s (interrupted)\n%s", strings.Join(args, " "), out.String())

			assert.Equal(t, 2, proc.ExitCode(), "an interrupted run could not finish: exit 2")
			assert.Contains(t, out.String(), "interrupted")
			nss, err := h.clients.Core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: fixtures.RunSelector(run)})
			require.NoError(t, err)
			assert.Empty(t, nss.Items, "namespaces of the interrupted run %s are left", run)
			pods, err := h.clients.Core.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: fixtures.RunSelector(run)})
			require.NoError(t, err)
			assert.Empty(t, pods.Items, "pods of the interrupted run %s are left", run)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
