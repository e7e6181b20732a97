package secrets

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep/sweeptest"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func TestTokenVolume(t *testing.T) {
	projected := corev1.Volume{Name: "kube-api-access-x1", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}, {ConfigMap: &corev1.ConfigMapProjection{}}}}}}
	caOnly := corev1.Volume{Name: "ca", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{}}}}}}
	legacy := corev1.Volume{Name: "default-token-abcde", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "default-token-abcde"}}}
	mount := func(name string) corev1.Container {
		return corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: name, MountPath: wire.ServiceAccountDir}}}
	}
	cases := map[string]struct {
		pod  corev1.Pod
		want string
	}{
		"admission added a token": {corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{projected}, Containers: []corev1.Container{mount(projected.Name)}}}, projected.Name},
		"legacy token secret":     {corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{legacy}, InitContainers: []corev1.Container{mount(legacy.Name)}}}, legacy.Name},
		"CA only":                 {corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{caOnly}, Containers: []corev1.Container{mount(caOnly.Name)}}}, ""},
		"volume not mounted":      {corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{projected}, Containers: []corev1.Container{{Name: "c"}}}}, ""},
		"no volumes":              {corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}, ""},
	}
	for name, c := range cases {
		got, ok := TokenVolume(&c.pod)
		assert.Equal(t, c.want, got, name)
		assert.Equal(t, c.want != "", ok, name)
	}
}

func TestDryRunPodAndObservations(t *testing.T) {
	env := &checks.Env{RunID: "k3x9q", ProbeImage: "bulkhead.local/probe:x"}
	p := dryRunPod(env, "ns", "bulkhead-probe", nil)
	assert.Nil(t, p.Spec.AutomountServiceAccountToken, "a pod that does not ask says nothing")
	assert.Equal(t, "bulkhead-probe", p.Spec.ServiceAccountName)
	assert.Equal(t, "k3x9q", p.Labels["bulkhead.dev/run"])
	assert.Equal(t, ptr.To(true), dryRunPod(env, "ns", "sa", ptr.To(true)).Spec.AutomountServiceAccountToken)

	o := tokenObservation(reports.RoleTest, NoToken, true)
	assert.False(t, o.OK)
	assert.Equal(t, Token, o.Observed)
	assert.True(t, tokenObservation(reports.RoleControl, Token, true).OK)
	assert.True(t, tokenObservation(reports.RoleTest, NoToken, false).OK)
}

func TestDryRunPodIsRestricted(t *testing.T) {
	env := &checks.Env{RunID: "k3x9q", ProbeImage: "bulkhead.local/probe:x"}
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	assert.NoError(t, err)
	for _, automount := range []*bool{nil, ptr.To(true)} {
		p := dryRunPod(env, "ns", "bulkhead-probe", automount)
		res := policy.AggregateCheckResults(eval.EvaluatePod(
			psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, &p.ObjectMeta, &p.Spec))
		assert.True(t, res.Allowed, "restricted: %s: %s", res.ForbiddenReason(), res.ForbiddenDetail())
	}
}

func TestSecretPodsPlanWithoutCanaries(t *testing.T) {
	s := sweeptest.BYO()
	var streamTests, streamControls, podControls, podTests, ownControls int
	for _, a := range PodsPlan(s) {
		own := a.Tenant == a.Target.Tenant
		switch {
		case a.Req.Exec != nil && own:
			streamControls++
			assert.Equal(t, reports.RoleControl, a.Role)
			assert.Equal(t, apisweep.ExpectAuthorized, a.Expect, "no canary to read: the stream getting in is the control")
			assert.Empty(t, a.Canary)
		case a.Req.Exec != nil:
			streamTests++
			assert.Equal(t, apisweep.ExpectDenied, a.Expect)
			assert.Equal(t, []string{apisweep.MayKey(a.Identity, s.Top.ProbesOf(a.Tenant)[0].Namespace, apisweep.RightOf(a.Req))}, a.Needs,
				"the denial rests on the same way into its own entry pod")
		case own && a.Req.Subresource != "":
			podControls++
			assert.Equal(t, reports.RoleControl, a.Role)
		case own:
			ownControls++
			assert.Equal(t, "list pods", a.Req.Describe())
			continue
		default:
			podTests++
			assert.Equal(t, reports.RoleTest, a.Role)
		}
		if own {
			first := s.Top.ProbesOf(a.Tenant)[0]
			assert.Equal(t, first.Namespace, a.Target.Namespace, "controls use the tenant's first probe pod")
			assert.Equal(t, first.Name, a.Target.Name)
		}
	}
	assert.Equal(t, 2, streamControls, "each user into its own probe pod")
	assert.Equal(t, 2, streamTests, "each user into the other tenant's first probe pod")
	assert.Equal(t, 2*6, podControls)
	assert.Equal(t, 2, ownControls, "each user: a request its grant allows")
	// blue -> green's 2 pods, green -> blue's 4 pods, 6 requests each.
	assert.Equal(t, (2+4)*6, podTests)

	var readControls int
	for _, a := range ReadPlan(s) {
		if a.Req.Name != "" {
			assert.Equal(t, s.Absent(), a.Req.Name, "no canary: reads by name address a Secret that does not exist")
		}
		assert.Empty(t, a.Canary)
		if a.Role == reports.RoleControl && a.Req.Res == apisweep.Secrets {
			readControls++
			assert.Contains(t, []string{"get secrets", "list secrets", "watch secrets (fieldSelector metadata.name)"}, a.Req.Describe())
			assert.Equal(t, s.Top.ProbesOf(a.Tenant)[0].Namespace, a.Req.Namespace, "in the identity's own namespace")
		}
	}
	assert.Equal(t, 2*3, readControls, "each user reads its own Secrets: get, list, watch")

	// Without any right to read Secrets, a user's denials rest on a
	// request its grant allows.
	s.Grants = sweeptest.Only(s, actors.List("pods"))
	for _, a := range ReadPlan(s) {
		if a.Role == reports.RoleTest {
			assert.Equal(t, []string{apisweep.ActsKey(a.Identity)}, a.Needs)
		} else {
			assert.Equal(t, "list pods", a.Req.Describe())
		}
	}
}

func TestSecretPlans(t *testing.T) {
	s := sweeptest.Reference()
	reads := ReadPlan(s)
	var tests, controls int
	labels := map[string]bool{}
	for _, a := range reads {
		switch {
		case a.Role == reports.RoleTest:
			tests++
			assert.NotEqual(t, a.Tenant, a.Target.Tenant)
			assert.Equal(t, "fp-"+a.Target.Tenant, a.Canary, "a returned canary is recognised")
			labels[a.Req.Describe()] = true
		case a.Req.Res == apisweep.Secrets:
			controls++
			assert.Equal(t, a.Tenant, a.Target.Tenant)
			assert.Equal(t, apisweep.ExpectCanary, a.Expect)
			assert.Equal(t, "fp-"+a.Tenant, a.Canary)
		}
	}
	assert.Equal(t, 2*2*8, tests)
	assert.Equal(t, 2*2*3, controls)
	for _, want := range []string{"get secrets", "list secrets", "list secrets (fieldSelector metadata.name)", "list secrets (labelSelector)",
		"watch secrets (fieldSelector metadata.name)", "list secrets (all namespaces, fieldSelector metadata.namespace)",
		"list secrets (all namespaces, labelSelector)", "watch secrets (all namespaces, fieldSelector metadata.namespace)"} {
		assert.True(t, labels[want], want)
	}

	pods := PodsPlan(s)
	var streams, podTests, tokenTests, podControls int
	for _, a := range pods {
		switch {
		case a.Req.Exec != nil:
			streams++
			assert.Equal(t, apisweep.ViaImpersonation, a.Via, "only bulkhead's process opens exec streams")
			assert.Equal(t, "bulkhead-api-x", a.Req.Exec.Pod)
		case a.Role == reports.RoleTest && a.Req.Res == apisweep.Pods:
			podTests++
			assert.Contains(t, []string{"exec", "attach", "portforward"}, a.Req.Subresource)
		case a.Role == reports.RoleTest:
			tokenTests++
		default:
			podControls++
		}
		if a.Via == apisweep.ViaPod && a.Req.Subresource == "exec" {
			assert.Nil(t, a.Req.Exec, "a pod sends exec without the stream")
		}
	}
	assert.Equal(t, 4, streams, "each user: into the other's canary pod (test) and its own (control)")
	// 2 tenants x 2 identities x 3 pods of the other x 6 requests.
	assert.Equal(t, 2*2*3*6, podTests)
	assert.Equal(t, 2*2, tokenTests)
	assert.Positive(t, podControls)
}
