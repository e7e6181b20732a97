package suites

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/fixtures/decoy"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata/endpoints"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// metaLive is the positive control of this run's metadata tests: the decoy
// TestMetadata installed (kind clusters bulkhead created), or why there is none.
var metaLive metadata.Live

func TestMetadata(t *testing.T) {
	installMetadataDecoy(t)
	feats := checkFeatures(metadata.Checks())
	feats = append(feats, negativeMetadataExceptRemoved())
	testenv.Test(t, feats...)
}

// installMetadataDecoy installs the run's decoy once for every metadata
// feature (the checks and the negative control reuse it), and removes it
// at the end, also when a feature fails or the run is interrupted (the
// test's context is cancelled, its clean-ups still run). It then asserts
// nothing is left: no container of the run, no route via the decoy.
func installMetadataDecoy(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	env := h.session.Env()
	live, d, err := metadata.PrepareLive(ctx, env)
	require.NoError(t, err, "install the metadata decoy")
	metaLive = live
	if d == nil {
		t.Logf("no metadata decoy: %s", live.NoDecoy)
		return
	}
	t.Logf("metadata decoy %s at %s serves %v; owned by this test: %v", d.Container, d.IP, d.Addresses, d.Owned())
	t.Cleanup(func() {
		ctx := context.Background()
		assert.NoError(t, d.Cleanup(ctx), "remove the metadata decoy")
		// Belt and braces: whatever of this run's decoy a crash left.
		if removed, err := decoy.CleanupLeftovers(ctx, decoy.LeftoverOptions{RunID: env.RunID, KindCluster: d.Cluster.Name}); assert.NoError(t, err) && len(removed) > 0 {
			t.Errorf("the decoy's own clean-up left %v behind", removed)
		}
		left, err := d.Remaining(ctx)
		if assert.NoError(t, err) {
			assert.Empty(t, left, "nothing of the decoy may remain on the nodes or in Docker")
			t.Logf("metadata decoy removed: no container of run %s, no route via %s on %d nodes", env.RunID, d.IP, len(d.Cluster.Nodes))
		}
	})
}

// negativeMetadataExceptRemoved takes the metadata addresses out of the
// except list of tenant b's internet-egress policy: b's general egress then
// covers the metadata addresses, and both metadata checks must fail naming
// tenant b's pods and the endpoints they reached, while tenant a (default
// deny, no internet egress) stays blocked and the control still reaches the
// decoy.
func negativeMetadataExceptRemoved() types.Feature {
	return negativeControl(checks.Metadata, "tenant b's internet egress loses its metadata except").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			if metaLive.Decoy == nil {
				// Only on clusters bulkhead did not create: there is nothing
				// to leak to that bulkhead may put there.
				t.Skipf("no live metadata endpoint to leak to: %s", metaLive.NoDecoy)
			}
			removeMetadataExcept(ctx, t, fixtures.TenantB)
			return ctx
		}).
		Assess("META-001 and META-002 fail naming tenant b's pods and the endpoints reached", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			nsA, nsB := namespaceOf(t, fixtures.TenantA), namespaceOf(t, fixtures.TenantB)
			env := negativeEnv()
			all := metadata.Checks()

			reach := failsUnderFault(ctx, t, all, metadata.IDEndpoints, env)
			assert.Contains(t, reach.Reason, nsB+"/probe-0 -> 169.254.169.254:80 tcp-connect: reachable (want blocked)")
			assert.Contains(t, reach.Reason, " -> http://169.254.169.254/latest/meta-data/ http GET: answered HTTP 200 (want blocked)")
			assert.NotContains(t, reach.Reason, "positive control failed", "the control still reaches the decoy")
			assert.NotContains(t, reach.Reason, nsA+"/", "tenant a has no internet egress: default deny still blocks it")

			leaked := map[string]bool{}
			for _, o := range reach.Observations {
				if o.Role != reports.RoleTest || o.OK {
					continue
				}
				assert.Equal(t, nsB, o.Actor.Namespace, checks.DescribeOne(o))
				leaked[o.Target.Address] = true
			}
			for _, e := range endpoints.All() {
				if slices.Contains(metaLive.Decoy.Addresses, e.Wire.Host) {
					assert.True(t, leaked[metadata.RequestURL(e.Wire)], "tenant b reached %s (%s) through the decoy", e.ID, metadata.RequestURL(e.Wire))
				}
			}

			creds := failsUnderFault(ctx, t, all, metadata.IDCredentials, env)
			assert.Contains(t, creds.Reason, nsB+"/probe-0 -> http://169.254.169.254/latest/meta-data/iam/security-credentials/ http GET: credentials sha256:")
			assert.NotContains(t, creds.Reason, nsA+"/")
			for _, o := range creds.Observations {
				assert.NotContains(t, o.Detail, "BULKHEAD-DECOY-SECRET", "evidence never carries a credential value")
			}
			return ctx
		}).Feature()
}

const internetEgressPolicy = "allow-internet-egress"

// removeMetadataExcept drops the metadata addresses from the except lists
// of a tenant's internet-egress policy and waits until a tenant pod reaches
// the decoy; t.Cleanup restores the policy and waits until it is blocked
// again, so later features see the reference tenant.
func removeMetadataExcept(ctx context.Context, t *testing.T, tenant string) {
	t.Helper()
	ns := namespaceOf(t, tenant)
	nps := h.session.Env().Kube.Core.NetworkingV1().NetworkPolicies(ns)
	orig, err := nps.Get(ctx, internetEgressPolicy, metav1.GetOptions{})
	require.NoError(t, err, "tenant %s must run the internet-egress profile", tenant)
	require.Equal(t, h.session.RunID(), orig.Labels[fixtures.LabelRun], "only this run's policy is changed")

	leaky := orig.DeepCopy()
	metadataCIDRs := endpoints.CIDRs()
	removed := 0
	for i := range leaky.Spec.Egress {
		for j, peer := range leaky.Spec.Egress[i].To {
			if peer.IPBlock == nil {
				continue
			}
			kept := slices.DeleteFunc(slices.Clone(peer.IPBlock.Except), func(c string) bool { return slices.Contains(metadataCIDRs, c) })
			removed += len(peer.IPBlock.Except) - len(kept)
			leaky.Spec.Egress[i].To[j].IPBlock.Except = kept
		}
	}
	require.Equal(t, len(metadataCIDRs), removed, "every metadata address was excepted before")
	_, err = nps.Update(ctx, leaky, metav1.UpdateOptions{})
	require.NoError(t, err)
	t.Logf("removed %v from the except lists of %s/%s", metadataCIDRs, ns, internetEgressPolicy)

	// Policy is programmed per pod (per Cilium endpoint, node by node): wait
	// for every pod of the tenant.
	probes := h.session.Env().Topology.ProbesOf(tenant)
	t.Cleanup(func() {
		ctx := context.Background()
		err := wait.PollUntilContextTimeout(ctx, time.Second, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			cur, err := nps.Get(ctx, internetEgressPolicy, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			restored := cur.DeepCopy()
			restored.Spec = *orig.Spec.DeepCopy()
			_, err = nps.Update(ctx, restored, metav1.UpdateOptions{})
			return err == nil, nil
		})
		require.NoError(t, err, "restore %s/%s", ns, internetEgressPolicy)
		waitDecoy(ctx, t, probes, false)
	})
	// The fault must be in effect before the check runs.
	waitDecoy(ctx, t, probes, true)
}

// waitDecoy polls until every pod gets (or no pod gets any longer) the
// decoy's answer at 169.254.169.254, or a minute passes.
func waitDecoy(ctx context.Context, t *testing.T, pods []checks.ProbePod, reached bool) {
	t.Helper()
	require.NotEmpty(t, pods)
	env := h.session.Env()
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		ss, err := metadata.ProbeOnce(ctx, env, metaLive, pods)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for i, s := range ss {
			r := s.Results["aws-imdsv1"]
			got := r.Connect == wire.Reachable
			var steps []string
			for _, ex := range r.Exchanges {
				steps = append(steps, ex.URL+" "+string(ex.Outcome))
				got = got || (ex.Outcome == wire.Reachable && ex.Decoy == metaLive.Decoy.Marker)
			}
			if got != reached {
				last = pods[i].Namespace + "/" + pods[i].Name + ": connect " + string(r.Connect) + "; " + strings.Join(steps, "; ")
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "waiting for %d pods to reach the decoy=%v (last: %s)", len(pods), reached, last)
}
