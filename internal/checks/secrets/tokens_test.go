package secrets

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// admission is a fake API server whose ServiceAccount admission mounts a
// token into a pod that does not refuse one, when its ServiceAccount
// automounts (automount["ns/sa"], true when unset).
func admission(automount map[string]bool) *fake.Clientset {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		sa, ok := automount[pod.Namespace+"/"+pod.Spec.ServiceAccountName]
		if !ok {
			sa = true
		}
		if mount := pod.Spec.AutomountServiceAccountToken; mount == nil && sa || mount != nil && *mount {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{
				Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}})
			for i := range pod.Spec.Containers {
				pod.Spec.Containers[i].VolumeMounts = append(pod.Spec.Containers[i].VolumeMounts, corev1.VolumeMount{Name: "kube-api-access-x", MountPath: wire.ServiceAccountDir})
			}
		}
		return true, pod, nil
	})
	return cs
}

// tokenVerdict is SEC-003's verdict on a cluster (its admission, its
// probe pods, its API probe pods) for the tenants of top.
func tokenVerdict(t *testing.T, top checks.Topology, automount map[string]bool) checks.Judgement {
	t.Helper()
	env := &checks.Env{RunID: "k3x9q", ProbeImage: "probe:x", Topology: top,
		Kube:   &kube.Clients{Config: &rest.Config{Host: "https://fake"}, Core: admission(automount)},
		Probes: &probing.Simulated{APIFunc: func(probing.Pod, wire.APICall, int) wire.APIResult { return wire.APIResult{} }}}
	ctx := context.Background()
	out := checks.Outcome{Observations: append(defaultTokens(ctx, env), probePodTokens(ctx, env)...)}
	out.Observations = append(out.Observations, apiPodTokens(top, map[string]apisweep.PodFacts{
		"bh-k3x9q-control/bulkhead-api-x": {TokenMounted: true}, "bh-k3x9q-control/bulkhead-anon-x": {}})...)
	return checks.Judge(checks.Check{ID: IDTokenHygiene}, out)
}

func TestTokenVerdictDoesNotDependOnWhoIsListed(t *testing.T) {
	top := func(ids ...checks.Identity) checks.Topology {
		return checks.Topology{
			Tenants: []checks.Tenant{
				{Name: "blue", Namespaces: []string{"blue-web", "blue-api"}, Isolated: true, Identities: ids},
				{Name: "control", Namespaces: []string{"bh-k3x9q-control"}, Reference: true},
			},
			Probes: []checks.ProbePod{{Tenant: "blue", Namespace: "blue-web", Name: "bulkhead-probe-0"}},
		}
	}
	alice := checks.Identity{User: "alice", Groups: []string{"blue-devs"}}
	listed := top(alice, checks.ServiceAccountIdentity("blue-web", "default"))
	unlisted := top(alice)

	// The default ServiceAccount of blue-api hands every pod a token.
	leaky := map[string]bool{"blue-web/default": false}
	a, b := tokenVerdict(t, listed, leaky), tokenVerdict(t, unlisted, leaky)
	assert.Equal(t, reports.Fail, a.Verdict, a.Reason)
	assert.Equal(t, a.Verdict, b.Verdict, "the same cluster gets the same verdict, whoever is listed")
	assert.Contains(t, b.Reason, "blue-api", "names the namespace whose default ServiceAccount automounts")
	assert.NotContains(t, b.Reason, "blue-web")

	tight := map[string]bool{"blue-web/default": false, "blue-api/default": false}
	a, b = tokenVerdict(t, listed, tight), tokenVerdict(t, unlisted, tight)
	assert.Equal(t, reports.Pass, a.Verdict, a.Reason)
	assert.Equal(t, a.Verdict, b.Verdict)
	require.Equal(t, len(a.Observations), len(b.Observations), "the identities listed add nothing to judge")
}

func TestTokenVerdictRestsOnControls(t *testing.T) {
	top := checks.Topology{Tenants: []checks.Tenant{{Name: "blue", Namespaces: []string{"blue-web"}, Isolated: true}}}
	env := &checks.Env{RunID: "k3x9q", ProbeImage: "probe:x", Topology: top,
		Kube: &kube.Clients{Config: &rest.Config{Host: "https://fake"}, Core: admission(map[string]bool{"blue-web/default": false})}}
	obs := defaultTokens(context.Background(), env)
	require.Len(t, obs, 2)
	assert.Equal(t, []string{askedKey("blue-web")}, obs[0].Needs, "the test: a pod that does not ask")
	assert.Equal(t, []string{askedKey("blue-web")}, obs[1].Proves, "the control: a pod that asks")

	// An API server that mounts no token even when asked proves nothing.
	none := fake.NewClientset()
	env.Kube.Core = none
	j := checks.Judge(checks.Check{ID: IDTokenHygiene}, checks.Outcome{Observations: defaultTokens(context.Background(), env)})
	assert.Equal(t, reports.Unproven, j.Verdict, j.Reason)
}
