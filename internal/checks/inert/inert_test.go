package inert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestMakeLocksEveryWayToRun(t *testing.T) {
	spec := corev1.PodSpec{
		NodeSelector:   map[string]string{"kubernetes.io/os": "linux"},
		InitContainers: []corev1.Container{{Name: "init", Args: []string{"serve"}}},
		Containers:     []corev1.Container{{Name: "a", Args: []string{"serve"}}, {Name: "b", Command: []string{"/bin/sh"}}},
	}
	require.Error(t, Check(spec))
	Make(&spec)
	require.NoError(t, Check(spec))
	Make(&spec)
	assert.Len(t, spec.SchedulingGates, 1, "making it inert twice adds no second gate")
	assert.Equal(t, "linux", spec.NodeSelector["kubernetes.io/os"], "the spec's own selector stays")
	spec.Containers[1].Command[0] = "changed"
	assert.Equal(t, "/probe", Command[0], "containers hold copies of Command")
}

func TestCheckNamesWhatIsMissing(t *testing.T) {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}
	Make(&spec)
	spec.SchedulingGates = nil
	assert.ErrorContains(t, Check(spec), "scheduling gate")
	Make(&spec)
	delete(spec.NodeSelector, NodeSelectorKey)
	assert.ErrorContains(t, Check(spec), "node selector")
	Make(&spec)
	spec.Containers[0].Args = []string{"serve"}
	assert.ErrorContains(t, Check(spec), "container c runs")
	assert.ErrorContains(t, Check(corev1.PodSpec{}), "no containers")
}
