package suites

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vladimirvivien/gexe"
	gexec "github.com/vladimirvivien/gexe/exec"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/e2e-framework/klient/decoder"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/quota"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/syncbuf"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// The tenants of quota-tenants.yaml: their web Deployment runs webReplicas
// pods under a pod quota of 8 (bulkhead adds 2 probe pods per namespace).
var quotaTenants = []string{"teal", "plum"}

const webReplicas = 2

// TestQuotaBYO drives `bulkhead run --config ... --areas quota` against
// tenants set up the ordinary way, while each tenant keeps working: a
// watcher asserts that no quota usage of a tenant namespace ever reaches
// its hard value, that nothing of the run's quota checks is created in a
// tenant namespace, that a tenant Deployment can scale up by one replica
// at every moment (its pods are admitted by the quota) and that a pod
// dry-run as the tenant is always admitted; every quota check must still pass with its positive controls
// and its tests. With --allow-quota-fill the real quota is filled (the
// watcher sees it at its bound, for seconds only), and interrupting such a
// run leaves nothing of it in the tenant namespaces.
func TestQuotaBYO(t *testing.T) {
	f := features.New("quota checks on bring-your-own tenants").
		WithLabel(labelArea, "quota").
		Setup(func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			byo := newBYO(t, cfg)
			byo.applyWith(ctx, t, "quota-tenants.yaml", map[string]any{"Image": h.probe})
			for _, tn := range quotaTenants {
				waitAvailable(ctx, t, byo.ns(tn), "web", webReplicas)
			}
			return context.WithValue(ctx, byoKey{}, byo)
		}).
		Assess("by default the tenants' headroom is never consumed and every bound is proven", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			run := fixtures.NewRunID()
			watchers := byo.startWatchers(ctx, t, run, true)
			start := time.Now()
			code, out := byo.runQuota(t, run)
			took := time.Since(start)
			for _, w := range watchers {
				w.stop()
			}
			byo.logEvidence(t, run)
			require.Equal(t, 0, code, withNotPassed(out))
			t.Logf("bulkhead run --areas quota on bring-your-own tenants (copy mode) took %s", took.Round(time.Second))
			for _, w := range watchers {
				w.assertUntouched(t)
			}
			res := byo.results(t, run)
			assertEveryQuotaCheckProven(t, res)
			assertCopies(t, res, byo)
			assertNotApplicableReadOnly(t, res, byo)
			byo.assertNoRunObjects(ctx, t, run, 30*time.Second)
			return ctx
		}).
		Assess("--allow-quota-fill fills the real quota for seconds and gives it back", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			run := fixtures.NewRunID()
			watchers := byo.startWatchers(ctx, t, run, false)
			code, out := byo.runQuota(t, run, "--allow-quota-fill")
			for _, w := range watchers {
				w.stop()
			}
			byo.logEvidence(t, run)
			require.Equal(t, 0, code, withNotPassed(out))
			for _, w := range watchers {
				w.assertFilledBriefly(t)
			}
			res := byo.results(t, run)
			assertEveryQuotaCheckProven(t, res)
			held := 0
			for _, c := range res.Checks {
				for _, n := range c.Notes {
					if strings.Contains(n, "--allow-quota-fill: the check's objects held tenant") {
						held++
					}
				}
			}
			assert.Positive(t, held, "the reports say the real quota was filled, and for how long")
			byo.assertNoRunObjects(ctx, t, run, 30*time.Second)
			return ctx
		}).
		Assess("--allow-quota-fill interrupted during the fill: nothing of the run is left in the tenant namespaces", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			for _, stop := range []string{"SIGINT", "SIGINT SIGINT", "SIGKILL"} {
				byo.interruptDuringFill(ctx, t, fixtures.NewRunID(), strings.Fields(stop))
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// applyWith creates a manifest's objects, rendered with data, and removes
// them when the test ends.
func (b *byoTenants) applyWith(ctx context.Context, t *testing.T, name string, data map[string]any) {
	t.Helper()
	manifest := b.render(t, name, data)
	require.NoError(t, decoder.DecodeEach(ctx, bytes.NewReader(manifest), decoder.CreateHandler(b.res)), "create %s", name)
	t.Cleanup(func() {
		err := decoder.DecodeEach(context.Background(), bytes.NewReader(b.render(t, name, data)), decoder.DeleteIgnoreNotFound(b.res))
		assert.NoError(t, err, "delete %s", name)
	})
}

// startQuota starts `bulkhead run --areas quota` on the tenants of
// quota-config.yaml with run ID run.
func (b *byoTenants) startQuota(t *testing.T, run string, extra ...string) (*gexec.Proc, *syncbuf.Buffer, []string) {
	t.Helper()
	config := filepath.Join(b.dir, "quota-config-"+run+".yaml")
	require.NoError(t, os.WriteFile(config, b.render(t, "quota-config.yaml", nil), 0o644))
	args := []string{"run", "--kubeconfig", b.kubeconfig, "--config", config, "--yes", "--run-id", run,
		"--probe-image", h.probe, "--report-dir", filepath.Join(b.dir, "reports"), "--areas", "quota"}
	if c := h.target.Context; c != "" {
		args = append(args, "--context", c)
	}
	args = append(args, extra...)
	var out syncbuf.Buffer
	proc := gexe.New().NewProc(bulkheadBinary(t) + " " + strings.Join(args, " "))
	proc.SetStdout(&out)
	proc.SetStderr(&out)
	require.NoError(t, proc.Start().Err(), "start bulkhead")
	return proc, &out, args
}

// runQuota runs it to the end and returns its exit code and output.
func (b *byoTenants) runQuota(t *testing.T, run string, extra ...string) (int, string) {
	t.Helper()
	proc, out, args := b.startQuota(t, run, extra...)
	proc.Wait()
	t.Logf("bulkhead %s\n%s", strings.Join(args, " "), out.String())
	return proc.ExitCode(), out.String()
}

func (b *byoTenants) results(t *testing.T, run string) *reports.Results {
	t.Helper()
	res, err := reports.ReadJSON(filepath.Join(b.dir, "reports", run, reports.ResultsFile))
	require.NoError(t, err)
	return res
}

// logEvidence logs, for each check of the run, its verdict and what did
// not pass, so a failing run can be read from the test output (the report
// directory goes with the test).
func (b *byoTenants) logEvidence(t *testing.T, run string) {
	t.Helper()
	res, err := reports.ReadJSON(filepath.Join(b.dir, "reports", run, reports.ResultsFile))
	if err != nil {
		t.Logf("no results of run %s: %v", run, err)
		return
	}
	for _, c := range res.Checks {
		t.Logf("%s %s: %s", c.ID, c.Verdict, c.Reason)
		for _, n := range c.Notes {
			t.Logf("%s note: %s", c.ID, n)
		}
		for _, o := range c.Observations {
			if !o.Passed() && o.Status != reports.StatusNotApplicable {
				t.Logf("%s %s %s as %s in %s: %s (want %s) [%s] %s", c.ID, o.Role, o.Method, o.Actor.Identity, o.Actor.Namespace, o.Observed, o.Expected, o.Why, o.Detail)
			}
		}
	}
}

// interruptDuringFill starts a run with --allow-quota-fill, sends stop (a
// SIGINT, two SIGINTs 50 ms apart, or a SIGKILL) once the quota checks'
// objects are in a tenant namespace, and asserts what is left there: after
// one SIGINT nothing of the run; after a second signal or a SIGKILL (the
// process ends without its clean-up) only objects that carry the run's
// labels, so that the CLI's undo and `bulkhead cleanup` select them, and
// whose pods cannot run. Then bulkhead cleanup must leave nothing, and the
// quota usage must be back under its bound.
func (b *byoTenants) interruptDuringFill(ctx context.Context, t *testing.T, run string, stop []string) {
	t.Helper()
	proc, out, args := b.startQuota(t, run, "--allow-quota-fill")
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		return len(b.runObjects(ctx, t, run, false)) > 0, nil
	})
	if err != nil {
		_ = proc.Command().Process.Signal(os.Interrupt)
		proc.Wait()
		require.NoError(t, err, "run %s never filled a tenant quota:\n%s", run, out.String())
	}
	for i, sig := range stop {
		if i > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		s := os.Interrupt
		if sig == "SIGKILL" {
			s = os.Kill
		}
		require.NoError(t, proc.Command().Process.Signal(s), "send %s", sig)
	}
	proc.Wait()
	t.Logf("bulkhead %s (%s during the fill)\n%s", strings.Join(args, " "), strings.Join(stop, ", "), out.String())

	left := b.runObjects(ctx, t, run, true)
	for _, o := range left {
		assert.Equal(t, run, o.labels[fixtures.LabelRun], "%s carries the run label", o)
		assert.Equal(t, fixtures.ManagedBy, o.labels[fixtures.LabelManagedBy], "%s carries bulkhead's label", o)
		if o.kind == "pods" && o.labels[fixtures.LabelRole] != "probe" {
			assert.True(t, o.gated, "%s can never run", o)
		}
	}
	if len(stop) == 1 && stop[0] == "SIGINT" {
		// One SIGINT: the run undoes everything in the tenant namespaces
		// before it exits (probe pods may still be terminating).
		b.assertNoRunObjects(ctx, t, run, 30*time.Second)
	} else {
		// This CLI ends at a second signal without undoing (the
		// second-signal undo is the CLI's signal handling): what it left
		// is the run's own, and bulkhead cleanup removes it.
		t.Logf("%s left %d objects of run %s in the tenant namespaces: %v", strings.Join(stop, ", "), len(left), run, left)
	}
	// The process is gone (the test ended it), so --force: a run killed
	// with SIGKILL still holds its Lease for up to a minute, and cleanup
	// leaves a live run alone without it.
	cleanup := gexe.New().NewProc(bulkheadBinary(t) + " cleanup --kubeconfig " + b.kubeconfig + contextArg() + " --run " + run + " --force --yes").Run()
	t.Logf("bulkhead cleanup --run %s: %s", run, cleanup.Result())
	require.True(t, cleanup.IsSuccess(), cleanup.Result())
	b.assertNoRunObjects(ctx, t, run, time.Minute)
	for _, tn := range quotaTenants {
		waitUsageUnderHard(ctx, t, b.ns(tn))
	}
}

func contextArg() string {
	if c := h.target.Context; c != "" {
		return " --context " + c
	}
	return ""
}

// runObject is an object of a run in a tenant namespace.
type runObject struct {
	kind, ns, name string
	labels         map[string]string
	// gated: a pod held by bulkhead's scheduling gate.
	gated bool
}

func (o runObject) String() string { return o.kind + " " + o.ns + "/" + o.name }

// quotaKinds are what the quota checks may create in a tenant namespace.
var quotaKinds = []schema.GroupVersionResource{
	{Version: "v1", Resource: "pods"},
	{Version: "v1", Resource: "services"},
	{Version: "v1", Resource: "secrets"},
	{Version: "v1", Resource: "configmaps"},
	{Version: "v1", Resource: "persistentvolumeclaims"},
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Version: "v1", Resource: "replicasets"},
}

// runObjects lists the run's objects in the tenant namespaces: what the
// quota checks created there, and with probes its probe pods too.
func (b *byoTenants) runObjects(ctx context.Context, t *testing.T, run string, probes bool) []runObject {
	t.Helper()
	var out []runObject
	for _, tn := range quotaTenants {
		for _, gvr := range quotaKinds {
			list, err := h.clients.Dynamic.Resource(gvr).Namespace(b.ns(tn)).List(ctx, metav1.ListOptions{LabelSelector: fixtures.RunSelector(run)})
			require.NoError(t, err)
			for _, it := range list.Items {
				if !probes && it.GetLabels()[fixtures.LabelRole] == "probe" {
					continue
				}
				o := runObject{kind: gvr.Resource, ns: it.GetNamespace(), name: it.GetName(), labels: it.GetLabels()}
				gates, _, _ := unstructured.NestedSlice(it.Object, "spec", "schedulingGates")
				for _, g := range gates {
					if m, ok := g.(map[string]any); ok && m["name"] == quota.SchedulingGate {
						o.gated = true
					}
				}
				out = append(out, o)
			}
		}
	}
	return out
}

// assertNoRunObjects waits up to within for the run's objects in the
// tenant namespaces (probe pods included) to be gone.
func (b *byoTenants) assertNoRunObjects(ctx context.Context, t *testing.T, run string, within time.Duration) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, within, true, func(context.Context) (bool, error) {
		return len(b.runObjects(ctx, t, run, true)) == 0, nil
	})
	assert.NoError(t, err, "run %s left objects in the tenant namespaces: %v", run, b.runObjects(ctx, t, run, true))
}

// watcher watches one tenant namespace while a run goes on.
type watcher struct {
	ns, run string
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu sync.Mutex
	// atHard are the episodes in which a used value was at its hard value.
	atHard []episode
	// open are the resources at hard now, since when.
	open map[string]time.Time
	// created are quota-check objects seen in the tenant namespace.
	created []string
	// refused are the tenant's own requests that were refused.
	refused               []string
	polls, scales, probes int
}

type episode struct {
	resource string
	from     time.Time
	lasted   time.Duration
}

// startWatchers watches every tenant namespace; with tenantWorks, each
// tenant also scales its Deployment up by one and back, and dry-runs a
// pod, all the time.
func (b *byoTenants) startWatchers(ctx context.Context, t *testing.T, run string, tenantWorks bool) []*watcher {
	t.Helper()
	var out []*watcher
	for _, tn := range quotaTenants {
		ctx, cancel := context.WithCancel(ctx)
		w := &watcher{ns: b.ns(tn), run: run, cancel: cancel, open: map[string]time.Time{}}
		as, err := h.clients.Impersonate("byo-"+b.id+"-"+tn+"-dev", "byo-"+b.id+"-"+tn+"-devs", "system:authenticated")
		require.NoError(t, err)
		w.loop(ctx, 100*time.Millisecond, w.watchQuota)
		if tenantWorks {
			w.loop(ctx, 500*time.Millisecond, w.watchObjects)
			w.loop(ctx, time.Second, func(ctx context.Context) { w.scaleUpAndBack(ctx, as) })
			w.loop(ctx, 250*time.Millisecond, func(ctx context.Context) { w.dryRunPod(ctx, as) })
		}
		out = append(out, w)
	}
	return out
}

func (w *watcher) loop(ctx context.Context, every time.Duration, f func(context.Context)) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for ctx.Err() == nil {
			f(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	}()
}

func (w *watcher) stop() {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for r, since := range w.open {
		w.atHard = append(w.atHard, episode{resource: r, from: since, lasted: time.Since(since)})
	}
	w.open = map[string]time.Time{}
}

// watchQuota records when a used value of the namespace's quotas reaches
// its hard value (dimensions whose hard value is 0 are never used).
func (w *watcher) watchQuota(ctx context.Context) {
	list, err := h.clients.Core.CoreV1().ResourceQuotas(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls++
	at := map[string]bool{}
	for _, q := range list.Items {
		for r, hard := range q.Status.Hard {
			used, ok := q.Status.Used[r]
			key := q.Name + " " + string(r)
			if ok && !hard.IsZero() && used.Cmp(hard) >= 0 {
				at[key] = true
				if _, open := w.open[key]; !open {
					w.open[key] = now
				}
			}
		}
	}
	for key, since := range w.open {
		if !at[key] {
			w.atHard = append(w.atHard, episode{resource: key, from: since, lasted: now.Sub(since)})
			delete(w.open, key)
		}
	}
}

// watchObjects records any quota-check object of the run in the namespace.
func (w *watcher) watchObjects(ctx context.Context) {
	for _, gvr := range quotaKinds {
		list, err := h.clients.Dynamic.Resource(gvr).Namespace(w.ns).List(ctx, metav1.ListOptions{LabelSelector: fixtures.RunSelector(w.run)})
		if err != nil {
			continue
		}
		for _, it := range list.Items {
			if it.GetLabels()[fixtures.LabelRole] != "probe" {
				w.mu.Lock()
				w.created = append(w.created, gvr.Resource+"/"+it.GetName())
				w.mu.Unlock()
			}
		}
	}
}

// scaleUpAndBack scales the tenant's burst Deployment up by one replica,
// as the tenant, waits until its pod exists (admitted by the quota), and
// scales it back, waiting until the pod is gone.
func (w *watcher) scaleUpAndBack(ctx context.Context, as *kube.Clients) {
	scale := func(n int) error {
		body := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
		_, err := as.Core.AppsV1().Deployments(w.ns).Patch(ctx, "burst", ktypes.MergePatchType, []byte(body), metav1.PatchOptions{})
		return err
	}
	if err := scale(1); err != nil {
		w.refuse(ctx, "scale burst up to 1: %v", err)
		return
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		return livePods(ctx, w.ns, "app=burst") == 1, nil
	})
	switch {
	case err == nil:
		w.mu.Lock()
		w.scales++
		w.mu.Unlock()
	case ctx.Err() == nil:
		w.refuse(ctx, "the extra replica was not created within 20s (%s)", lastFailedCreate(ctx, w.ns))
	}
	bg := context.WithoutCancel(ctx)
	body := `{"spec":{"replicas":0}}`
	if _, err := as.Core.AppsV1().Deployments(w.ns).Patch(bg, "burst", ktypes.MergePatchType, []byte(body), metav1.PatchOptions{}); err != nil {
		w.refuse(ctx, "scale burst back to 0: %v", err)
	}
	_ = wait.PollUntilContextTimeout(bg, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := h.clients.Core.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=burst"})
		return err == nil && len(list.Items) == 0, nil
	})
}

// dryRunPod asks, as the tenant, for one more pod (server-side dry-run).
func (w *watcher) dryRunPod(ctx context.Context, as *kube.Clients) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-dry-run", Namespace: w.ns},
		Spec: corev1.PodSpec{
			NodeSelector:    map[string]string{quota.NeverScheduleKey: "never-scheduled"},
			SchedulingGates: []corev1.PodSchedulingGate{{Name: quota.SchedulingGate}},
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "c", Image: h.probe, Command: []string{"/probe", "version"},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), RunAsNonRoot: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
		},
	}
	_, err := as.Core.CoreV1().Pods(w.ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		w.refuse(ctx, "dry-run pod as the tenant: %v", err)
		return
	}
	w.mu.Lock()
	w.probes++
	w.mu.Unlock()
}

func (w *watcher) refuse(ctx context.Context, format string, args ...any) {
	if ctx.Err() != nil {
		return // the watch ended mid-request
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refused = append(w.refused, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

// assertUntouched: usage never reached hard, nothing of the quota checks
// was created in the namespace, and the tenant could always scale up and
// create a pod.
func (w *watcher) assertUntouched(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%s: %d quota polls, %d scale-ups by one, %d dry-run pods as the tenant", w.ns, w.polls, w.scales, w.probes)
	assert.Empty(t, w.atHard, "%s: quota usage reached hard", w.ns)
	assert.Empty(t, w.created, "%s: the quota checks created objects in the tenant namespace", w.ns)
	assert.Empty(t, w.refused, "%s: the tenant's own requests were refused", w.ns)
	assert.Greater(t, w.polls, 50, "%s: the quota was watched throughout", w.ns)
	assert.GreaterOrEqual(t, w.scales, 3, "%s: the tenant scaled up throughout", w.ns)
	assert.Greater(t, w.probes, 20, "%s: the tenant created pods throughout", w.ns)
}

// assertFilledBriefly: the pod quota was seen at its bound (the fill
// happened), and no dimension stayed at its bound for more than seconds.
func (w *watcher) assertFilledBriefly(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	pods := 0
	for _, e := range w.atHard {
		t.Logf("%s: %s at hard from %s for %s", w.ns, e.resource, e.from.Format("15:04:05.000"), e.lasted.Round(10*time.Millisecond))
		if strings.HasSuffix(e.resource, " pods") {
			pods++
		}
		assert.Less(t, e.lasted, 30*time.Second, "%s: %s held at its bound for seconds, not minutes", w.ns, e.resource)
	}
	assert.Positive(t, pods, "%s: the pod quota was filled (seen at hard)", w.ns)
}

// assertEveryQuotaCheckProven: every quota check passed, each with passing
// positive controls and passing tests.
func assertEveryQuotaCheckProven(t *testing.T, res *reports.Results) {
	t.Helper()
	require.Len(t, res.Checks, 8)
	for _, c := range res.Checks {
		controls, tests := 0, 0
		for _, o := range c.Observations {
			if !o.Passed() {
				continue
			}
			if o.Role == reports.RoleControl {
				controls++
			} else {
				tests++
			}
		}
		assert.Equal(t, reports.Pass, c.Verdict, "%s: %s", c.ID, c.Reason)
		assert.Positive(t, controls, "%s has passing positive controls", c.ID)
		assert.Positive(t, tests, "%s has passing tests", c.ID)
	}
}

// assertCopies: the count checks proved their bounds in bulkhead's own
// namespaces carrying copies of each tenant's quota, and say the tenant's
// headroom was not consumed.
func assertCopies(t *testing.T, res *reports.Results, b *byoTenants) {
	t.Helper()
	for _, id := range []string{quota.IDPods, quota.IDDeployment, quota.IDStorage, quota.IDObjects} {
		c := checkOf(t, res, id)
		for _, tn := range quotaTenants {
			copies := 0
			for _, o := range c.Observations {
				if o.Role == reports.RoleTest && o.Passed() && o.Actor.Tenant == tn && strings.HasPrefix(o.Actor.Namespace, "bh-"+res.Run.ID+"-quota-") {
					copies++
					assert.Contains(t, o.Detail, "live headroom, which was not consumed", "%s: %s", id, checksDescribe(o))
					assert.Contains(t, o.Detail, b.ns(tn), id)
				}
			}
			assert.Positive(t, copies, "%s proved tenant %s's count bounds in a copy", id, tn)
		}
	}
}

// assertNotApplicableReadOnly: the read-only ServiceAccount may not create
// what the count checks create: not applicable there, never a failure.
func assertNotApplicableReadOnly(t *testing.T, res *reports.Results, b *byoTenants) {
	t.Helper()
	c := checkOf(t, res, quota.IDPods)
	for _, tn := range quotaTenants {
		sa := "system:serviceaccount:" + b.ns(tn) + ":ci"
		found := false
		for _, o := range c.Observations {
			if o.Actor.Identity == sa && o.Status == reports.StatusNotApplicable {
				found = true
				assert.Contains(t, o.Why, "may not create pods")
			}
		}
		assert.True(t, found, "%s is not applicable to %s", sa, quota.IDPods)
	}
	// QUOTA-008: the read-only identity shows it acts by reading its quota,
	// and its refused writes count.
	c = checkOf(t, res, quota.IDProtected)
	for _, tn := range quotaTenants {
		sa := "system:serviceaccount:" + b.ns(tn) + ":ci (own token)"
		denied := 0
		for _, o := range c.Observations {
			if o.Actor.Identity == sa && o.Role == reports.RoleTest && o.Passed() {
				denied++
			}
		}
		assert.Positive(t, denied, "%s's refused quota writes are proven", sa)
	}
}

func checkOf(t *testing.T, res *reports.Results, id string) reports.CheckResult {
	t.Helper()
	for _, c := range res.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no %s in the results", id)
	return reports.CheckResult{}
}

func checksDescribe(o reports.Observation) string {
	return o.Actor.Namespace + " " + o.Method + ": " + o.Observed
}

// waitAvailable waits until a Deployment has n available replicas.
func waitAvailable(ctx context.Context, t *testing.T, ns, name string, n int32) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := h.clients.Core.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == n, nil
	})
	require.NoError(t, err, "deployment %s/%s never had %d available replicas", ns, name, n)
}

// livePods counts the pods matching selector that are not on their way out.
func livePods(ctx context.Context, ns, selector string) int {
	list, err := h.clients.Core.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return -1
	}
	n := 0
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			n++
		}
	}
	return n
}

// lastFailedCreate is the newest FailedCreate event of a ReplicaSet in ns.
func lastFailedCreate(ctx context.Context, ns string) string {
	list, err := h.clients.Core.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=ReplicaSet,reason=FailedCreate"})
	if err != nil || len(list.Items) == 0 {
		return "no FailedCreate event"
	}
	last := list.Items[len(list.Items)-1]
	return "last FailedCreate: " + last.Message
}

// waitUsageUnderHard waits until every used value of ns's quotas is under
// its hard value again.
func waitUsageUnderHard(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := h.clients.Core.CoreV1().ResourceQuotas(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, q := range list.Items {
			for r, hard := range q.Status.Hard {
				if used := q.Status.Used[r]; !hard.IsZero() && used.Cmp(hard) >= 0 {
					last = fmt.Sprintf("%s %s used %s of %s", q.Name, r, used.String(), hard.String())
					return false, nil
				}
			}
		}
		return true, nil
	})
	assert.NoError(t, err, "%s: quota usage still at its bound: %s", ns, last)
}
