package secrets

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
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
