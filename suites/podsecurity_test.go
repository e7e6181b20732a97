package suites

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/podsecurity"
)

func TestPodSecurity(t *testing.T) {
	feats := checkFeatures(podsecurity.Checks())
	feats = append(feats, negativeFeatures(checks.PodSecurity, podsecurity.NegativeControls())...)
	feats = append(feats, workloadsNeverRun())
	testenv.Test(t, feats...)
}

// workloadsNeverRun switches Pod Security off on tenant b (enforce
// privileged, the negative control's fault) and runs PSA-002 while
// watching, independently of the check, every pod of its workloads in
// the tenants: PSA-002 must fail because tenant b's forbidden pods were
// created, and no pod of any of its objects may ever be bound to a node
// or reach Running.
func workloadsNeverRun() types.Feature {
	return negativeControl(checks.PodSecurity, "PSA-002 under Pod Security privileged: its pods never run").
		WithLabel(labelCheck, podsecurity.IDWorkloads).
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			restore, err := podsecurity.EnforceLevel(fixtures.TenantB, "privileged")(ctx, h.session.Env())
			if restore != nil {
				t.Cleanup(func() { assert.NoError(t, restore(context.Background())) })
			}
			require.NoError(t, err)
			return ctx
		}).
		Assess("PSA-002 fails, and no pod of its workloads is scheduled or runs", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			nsA, nsB := namespaceOf(t, fixtures.TenantA), namespaceOf(t, fixtures.TenantB)
			w := watchWorkloadPods(ctx, t, nsA, nsB)
			res := failsUnderFault(ctx, t, podsecurity.Checks(), podsecurity.IDWorkloads, negativeEnv())
			w.stop()
			assert.Contains(t, res.Reason, nsB+"/bulkhead-psa-dep-privileged-")
			assert.Contains(t, res.Reason, "SuccessfulCreate: the forbidden pod was created")
			assert.NotContains(t, res.Reason, nsA+"/", "tenant a still enforces restricted")
			seen, phases := w.result()
			t.Logf("pods of PSA-002's workloads seen: %v", phases)
			assert.Positive(t, seen[nsB], "tenant b's forbidden workloads got pods (the fault took effect)")
			for pod, ps := range phases {
				for _, p := range ps {
					assert.NotEqual(t, string(corev1.PodRunning), p, "%s reached Running", pod)
					assert.NotContains(t, p, "node ", "%s was bound to a node", pod)
				}
			}
			return ctx
		}).Feature()
}

// podWatch polls the pods of PSA-002's workloads in namespaces and keeps
// every phase (and node binding) each pod was seen in.
type podWatch struct {
	mu     sync.Mutex
	seen   map[string]int
	phases map[string][]string
	cancel context.CancelFunc
	done   chan struct{}
}

func watchWorkloadPods(ctx context.Context, t *testing.T, namespaces ...string) *podWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &podWatch{seen: map[string]int{}, phases: map[string][]string{}, cancel: cancel, done: make(chan struct{})}
	core := h.session.Env().Kube.Core.CoreV1()
	go func() {
		defer close(w.done)
		names := map[string]bool{}
		for {
			for _, ns := range namespaces {
				pods, err := core.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: fixtures.LabelRole + "=psa-workload"})
				if err != nil {
					continue
				}
				w.mu.Lock()
				for _, p := range pods.Items {
					key := ns + "/" + p.Name
					if !names[key] {
						names[key] = true
						w.seen[ns]++
					}
					state := string(p.Status.Phase)
					if p.Spec.NodeName != "" {
						state += " on node " + p.Spec.NodeName
					}
					if ps := w.phases[key]; len(ps) == 0 || ps[len(ps)-1] != state {
						w.phases[key] = append(ps, state)
					}
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *podWatch) stop() { w.cancel(); <-w.done }

func (w *podWatch) result() (map[string]int, map[string][]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen, w.phases
}
