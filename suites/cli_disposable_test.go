package suites

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/syncbuf"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// The marker ConfigMap of target/marker.go.
const (
	markerNamespace = "kube-system"
	markerName      = "bulkhead-cluster"
)

// TestCLIForgedMarker: a bulkhead marker ConfigMap is a claim anyone who
// may create ConfigMaps in kube-system can make. It must not make a
// cluster "disposable" (no prompt, probes on control-plane nodes): the
// prompt is shown without --yes, and a run with --yes records
// disposable: false.
//
// The first assessment rewrites the cluster's marker to name a kind
// cluster the local Docker engine does not have, and puts it back when it
// ends (pass or fail). The second keeps the marker, which names this very
// kind cluster, but reaches the API server through another address (a
// TCP relay, as a tunnel to another cluster would look): the kubeconfig's
// server is not that kind cluster's endpoint.
func TestCLIForgedMarker(t *testing.T) {
	f := features.New("a forged bulkhead marker does not make a cluster disposable").
		WithLabel(labelArea, "cli").
		Assess("marker naming a kind cluster that is not in the local Docker engine: prompt, then disposable: false", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			forgeMarker(ctx, t, "forged-"+fixtures.NewRunID())
			kubeconfig := cfg.KubeconfigFile()

			run := fixtures.NewRunID()
			out, code := promptedRun(ctx, t, runArgs(kubeconfig, run, t.TempDir()), "n\n")
			assert.Equal(t, 2, code, out)
			assert.Contains(t, out, "does not have", "the prompt says why the cluster is not disposable")
			assert.Contains(t, out, "not confirmed")
			assertNoRun(ctx, t, run)

			run, dir := fixtures.NewRunID(), t.TempDir()
			code, out = cliRun(t, append(runArgs(kubeconfig, run, dir), "--yes")...)
			require.Equal(t, 0, code, withNotPassed(out))
			res, err := reports.ReadJSON(filepath.Join(dir, run, reports.ResultsFile))
			require.NoError(t, err)
			assert.False(t, res.Run.Cluster.Disposable, "results.json: disposable: false")
			assertNoRun(ctx, t, run)
			return ctx
		}).
		Assess("marker naming this kind cluster, kubeconfig pointing elsewhere: prompt", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			if !h.tgt.Disposable() {
				t.Skipf("needs the suite's cluster to be a kind cluster bulkhead created in the local Docker engine (it is not: %s)", h.tgt.Proof.Reason)
			}
			relayed := relayKubeconfig(t, cfg.KubeconfigFile())
			run := fixtures.NewRunID()
			out, code := promptedRun(ctx, t, runArgs(relayed, run, t.TempDir()), "n\n")
			assert.Equal(t, 2, code, out)
			assert.Contains(t, out, "is not its endpoint")
			assert.Contains(t, out, "not confirmed")
			assertNoRun(ctx, t, run)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func runArgs(kubeconfig, run, dir string) []string {
	args := []string{"run", "--kubeconfig", kubeconfig, "--run-id", run, "--probe-image", h.probe, "--report-dir", dir, "--areas", "network"}
	if c := h.target.Context; c != "" {
		args = append(args, "--context", c)
	}
	return args
}

// forgeMarker makes the cluster's marker name kind cluster kind until the
// test ends, then restores it exactly (or removes it, if there was none).
func forgeMarker(ctx context.Context, t *testing.T, kind string) {
	t.Helper()
	cms := h.clients.Core.CoreV1().ConfigMaps(markerNamespace)
	orig, err := cms.Get(ctx, markerName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		orig = nil
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: markerName, Namespace: markerNamespace,
			Labels: map[string]string{"bulkhead.dev/cluster": "true"}}, Data: map[string]string{"kindCluster": kind}}, metav1.CreateOptions{})
		require.NoError(t, err)
	case err != nil:
		require.NoError(t, err)
	default:
		forged := orig.DeepCopy()
		forged.Data["kindCluster"] = kind
		_, err = cms.Update(ctx, forged, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if orig == nil {
			assert.NoError(t, cms.Delete(ctx, markerName, metav1.DeleteOptions{}), "remove the forged marker")
			return
		}
		cur, err := cms.Get(ctx, markerName, metav1.GetOptions{})
		if !assert.NoError(t, err, "read the marker to restore it") {
			return
		}
		cur.Data = orig.Data
		_, err = cms.Update(ctx, cur, metav1.UpdateOptions{})
		assert.NoError(t, err, "restore the marker")
	})
}

// promptedRun runs bulkhead on a terminal (a pty), as a person would, and
// answers its confirmation prompt with answer.
func promptedRun(ctx context.Context, t *testing.T, args []string, answer string) (string, int) {
	t.Helper()
	cmd := exec.Command(bulkheadBinary(t), args...)
	cmd.Env = append(os.Environ(), "TERM=dumb", "BULKHEAD_YES=")
	tty, err := pty.Start(cmd)
	require.NoError(t, err)
	defer tty.Close()
	var out syncbuf.Buffer
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		_, _ = io.Copy(&out, tty) // ends with an error when the process exits
	}()
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return strings.Contains(out.String(), "[y/N]"), nil
	})
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		require.NoError(t, err, "no confirmation prompt:\n%s", out.String())
	}
	_, err = tty.WriteString(answer)
	require.NoError(t, err)
	_ = cmd.Wait()
	_ = tty.Close()
	copied.Wait()
	t.Logf("bulkhead %s (on a terminal, answered %q)\n%s", strings.Join(args, " "), answer, out.String())
	return out.String(), cmd.ProcessState.ExitCode()
}

// cliRun runs bulkhead and returns its exit code and output.
func cliRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bulkheadBinary(t), args...)
	out, err := cmd.CombinedOutput()
	t.Logf("bulkhead %s\n%s", strings.Join(args, " "), out)
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		require.NoError(t, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// assertNoRun checks that run left no namespace behind.
func assertNoRun(ctx context.Context, t *testing.T, run string) {
	t.Helper()
	nss, err := h.clients.Core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: fixtures.RunSelector(run)})
	require.NoError(t, err)
	for _, ns := range nss.Items {
		assert.NotNil(t, ns.DeletionTimestamp, "namespace %s of run %s is left", ns.Name, run)
	}
}

// relayKubeconfig writes a copy of kubeconfig whose server is a local TCP
// relay to the real one: the same API server, reached at an address that
// is not the kind cluster's endpoint. The relay stops when the test ends.
func relayKubeconfig(t *testing.T, kubeconfig string) string {
	t.Helper()
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}, &clientcmd.ConfigOverrides{CurrentContext: h.target.Context}).RawConfig()
	require.NoError(t, err)
	ctxName := raw.CurrentContext
	if h.target.Context != "" {
		ctxName = h.target.Context
	}
	cluster := raw.Clusters[raw.Contexts[ctxName].Cluster]
	u := strings.TrimPrefix(cluster.Server, "https://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", u)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	cluster.Server = "https://" + ln.Addr().String()
	// The API server's certificate names 127.0.0.1 and localhost, not the
	// relay's port: TLS still verifies it against the kind cluster's CA.
	raw.CurrentContext = ctxName
	path := filepath.Join(t.TempDir(), "relayed.kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(raw, path))
	return path
}
