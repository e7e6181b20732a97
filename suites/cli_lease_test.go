package suites

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vladimirvivien/gexe"
	"github.com/vladimirvivien/gexe/exec"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/runs"
	"github.com/bulkhead-k8s/bulkhead/internal/syncbuf"
)

// TestCLIConcurrentRunsAndCleanup: two `bulkhead run`s share a cluster and
// a user's tenants. `bulkhead cleanup` while they run removes neither (each
// renews its Lease). One is then killed with SIGKILL, so nothing of it is
// cleaned up by itself: cleanup still leaves it alone while its Lease holds,
// and once the Lease expired removes exactly that run's objects, of every
// kind (namespaces, the pods in the tenants' namespaces, the cluster-scoped
// policies, ...), and nothing of the other run, which goes on to pass.
func TestCLIConcurrentRunsAndCleanup(t *testing.T) {
	f := features.New("concurrent runs, cleanup and a killed run's Lease").
		WithLabel(labelArea, "cli").
		Setup(setupBYO).
		Assess("cleanup removes only the killed run, once its Lease expired", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			killed, survivor := fixtures.NewRunID(), fixtures.NewRunID()
			// The survivor runs long enough to outlive the killed run's
			// Lease (the API sweep is slow); the other is killed anyway.
			a := byo.start(t, killed, "--areas", "network,podsecurity")
			b := byo.start(t, survivor, "--areas", "network,podsecurity,rbac,secrets")
			t.Cleanup(func() { // whatever happens, no run outlives the test
				_ = a.proc.Command().Process.Kill()
				_ = b.proc.Command().Process.Kill()
			})
			a.waitFor(ctx, t, "[1/")
			b.waitFor(ctx, t, "[1/")

			out := byo.cleanup(t, 0)
			assert.Contains(t, out, "run "+killed+": live")
			assert.Contains(t, out, "run "+survivor+": live")
			assertLive(ctx, t, killed, survivor)

			before, err := runs.Find(ctx, h.clients, fixtures.RunSelector(killed))
			require.NoError(t, err)
			require.NoError(t, a.proc.Command().Process.Signal(syscall.SIGKILL))
			a.proc.Wait()
			kinds := kindsOf(before.Objects)
			t.Logf("run %s, killed, holds: %s", killed, runs.KindCounts(before.Objects))
			for _, k := range []string{"Namespace", "Pod", "Lease", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "NetworkPolicy", "ServiceAccount"} {
				assert.Contains(t, kinds, k, "the killed run held a %s", k)
			}
			out = byo.cleanup(t, 0)
			assert.Contains(t, out, "run "+killed+": live", "killed, but its Lease still holds")
			assertLive(ctx, t, killed, survivor)

			waitLeaseExpired(ctx, t, killed)
			// What cleanup must delete one by one in the tenants' namespaces,
			// listed now that the run is dead and nothing else touches its
			// objects: listed before the kill, the live run could still
			// delete some of them itself (a check tearing down), as in CI.
			// What those objects own (Cilium's endpoints of the probe pods)
			// goes with them.
			left, err := runs.Find(ctx, h.clients, fixtures.RunSelector(killed))
			require.NoError(t, err)
			var inTenants []string
			_, _, _, rest := runs.Parts(left.Objects)
			for _, o := range rest {
				// One being deleted, or owned by another object (the pods
				// of a Deployment a check was tearing down when the run was
				// killed: its lanes run side by side), goes by the garbage
				// collector, not by cleanup.
				if o.Terminated || len(o.Owners) > 0 {
					continue
				}
				if strings.HasPrefix(o.Namespace, "byo-"+byo.id+"-") {
					inTenants = append(inTenants, o.String())
				}
			}
			require.NotEmpty(t, inTenants, "the killed run left objects in the tenants' namespaces")
			out = byo.cleanup(t, 0)
			assert.Contains(t, out, "run "+killed+": left behind")
			assert.NotContains(t, out, "run "+survivor+": left behind")
			for _, o := range inTenants {
				assert.Contains(t, out, "deleted "+o, "cleanup deleted %s", o)
			}
			assertRunGone(ctx, t, killed, nil)

			code := b.wait(t)
			assert.Equal(t, 0, code, "the other run was not touched and passes:\n%s", withNotPassed(b.out.String()))
			byo.assertNothingLeft(ctx, t, survivor)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// runningCLI is a `bulkhead run` in the background.
type runningCLI struct {
	run  string
	proc *exec.Proc
	out  *syncbuf.Buffer
}

// start starts `bulkhead run` on the tenants.
func (b *byoTenants) start(t *testing.T, run string, extra ...string) *runningCLI {
	t.Helper()
	config := filepath.Join(b.dir, "config-"+run+".yaml")
	require.NoError(t, os.WriteFile(config, b.render(t, "config.yaml", map[string]any{"Unschedulable": false}), 0o644))
	args := append([]string{"run", "--kubeconfig", b.kubeconfig, "--config", config, "--yes", "--run-id", run,
		"--probe-image", h.probe, "--report-dir", filepath.Join(b.dir, "reports")}, extra...)
	if c := h.target.Context; c != "" {
		args = append(args, "--context", c)
	}
	r := &runningCLI{run: run, out: &syncbuf.Buffer{}}
	r.proc = gexe.New().NewProc(bulkheadBinary(t) + " " + strings.Join(args, " "))
	r.proc.SetStdout(r.out)
	r.proc.SetStderr(r.out)
	require.NoError(t, r.proc.Start().Err(), "start bulkhead")
	return r
}

func (r *runningCLI) waitFor(ctx context.Context, t *testing.T, s string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		return strings.Contains(r.out.String(), s), nil
	})
	require.NoError(t, err, "run %s never printed %q:\n%s", r.run, s, r.out.String())
}

func (r *runningCLI) wait(t *testing.T) int {
	t.Helper()
	r.proc.Wait()
	t.Logf("bulkhead run %s\n%s", r.run, r.out.String())
	return r.proc.ExitCode()
}

// cleanup runs `bulkhead cleanup --yes` on the suite's cluster and wants
// exit code want.
func (b *byoTenants) cleanup(t *testing.T, want int, extra ...string) string {
	t.Helper()
	args := append([]string{"cleanup", "--kubeconfig", b.kubeconfig, "--yes"}, extra...)
	if c := h.target.Context; c != "" {
		args = append(args, "--context", c)
	}
	code, out := cliRun(t, args...)
	require.Equal(t, want, code, out)
	return out
}

// assertLive checks that the runs' namespaces exist and are not being deleted.
func assertLive(ctx context.Context, t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		nss, err := h.clients.Core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: fixtures.RunSelector(id)})
		require.NoError(t, err)
		assert.NotEmpty(t, nss.Items, "run %s has its namespaces", id)
		for _, ns := range nss.Items {
			assert.Nil(t, ns.DeletionTimestamp, "namespace %s of live run %s is being deleted", ns.Name, id)
		}
	}
}

// waitLeaseExpired waits until run's Lease is older than its duration plus
// the allowance for clock skew.
func waitLeaseExpired(ctx context.Context, t *testing.T, run string) {
	t.Helper()
	l, err := h.clients.Core.CoordinationV1().Leases(runs.ControlNamespace(run)).Get(ctx, runs.LeaseName, metav1.GetOptions{})
	require.NoError(t, err)
	expires := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second + runs.ClockSkew + time.Second)
	t.Logf("waiting %s for the Lease of run %s to expire", time.Until(expires).Round(time.Second), run)
	select {
	case <-time.After(time.Until(expires)):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

func kindsOf(objs []runs.Object) []string {
	var out []string
	for _, o := range objs {
		if !slices.Contains(out, o.Kind) {
			out = append(out, o.Kind)
		}
	}
	return out
}

// assertRunGone waits up to a minute (the garbage collector removes what
// controllers made from a deleted owner) until no object of any kind
// carries run's labels, in the namespaces in (all, when nil).
func assertRunGone(ctx context.Context, t *testing.T, run string, in []string) {
	t.Helper()
	var left []runs.Object
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		inv, err := runs.Find(ctx, h.clients, fixtures.RunSelector(run))
		if err != nil {
			return false, nil
		}
		left = left[:0]
		for _, o := range inv.Objects {
			if in == nil || slices.Contains(in, o.Namespace) {
				left = append(left, o)
			}
		}
		return len(left) == 0, nil
	})
	var names []string
	for _, o := range left {
		names = append(names, o.String())
	}
	assert.NoError(t, err, "objects of run %s are left: %v", run, names)
}
