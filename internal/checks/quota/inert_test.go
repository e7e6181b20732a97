package quota

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

// realObjects are the objects with pods the quota checks create for real
// (to fill a pod quota, or as a Deployment whose ReplicaSet fills it).
func realObjects(b builder) map[string]*unstructured.Unstructured {
	return map[string]*unstructured.Unstructured{
		"filler pod":       b.smallPod("p"),
		"recount pod":      b.smallPod("recount"),
		"pod for defaults": b.pod("d", nil),
		"compute pod":      b.pod("c", computeContainers(corev1.ResourceCPU, false, 991, 500)...),
		"deployment":       b.deployment("d", 3),
	}
}

func TestEveryPodBulkheadCreatesForRealCanNeverRun(t *testing.T) {
	b := builder{runID: "k3x9q", tenant: "a", ns: "bh-k3x9q-a", image: "img"}
	for what, obj := range realObjects(b) {
		spec, hasPods, err := podSpecOf(obj)
		require.NoError(t, err, what)
		require.True(t, hasPods, what)
		assert.Empty(t, whyRunnable(spec), what)
		assert.Equal(t, neverScheduleValue, spec.NodeSelector[NeverScheduleKey], "%s selects a label no node has", what)
		assert.Contains(t, spec.SchedulingGates, corev1.PodSchedulingGate{Name: SchedulingGate}, "%s is gated", what)
		for _, c := range spec.Containers {
			assert.Equal(t, exitAtOnce, c.Command, "%s: %s exits at once", what, c.Name)
			assert.Empty(t, c.Args, what)
		}
		assert.NoError(t, mustBeInert(obj), what)
	}
	var d struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(b.deployment("d", 3).Object, &d))
	assert.Equal(t, corev1.RestartPolicyAlways, d.Spec.Template.Spec.RestartPolicy, "Deployments require Always")
	var p corev1.Pod
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(b.smallPod("p").Object, &p))
	assert.Equal(t, corev1.RestartPolicyNever, p.Spec.RestartPolicy)
}

func TestARunnablePodIsNeverCreatedForReal(t *testing.T) {
	b := builder{runID: "k3x9q", tenant: "a", ns: "bh-k3x9q-a", image: "img"}
	breakers := map[string]func(spec map[string]any){
		"no scheduling gate": func(spec map[string]any) { delete(spec, "schedulingGates") },
		"a node selector a node may have": func(spec map[string]any) {
			spec["nodeSelector"] = map[string]any{"kubernetes.io/os": "linux"}
		},
		"a long-running command": func(spec map[string]any) {
			c := spec["containers"].([]any)[0].(map[string]any)
			c["args"] = []any{"serve"}
		},
		"bound to a node": func(spec map[string]any) { spec["nodeName"] = "worker" },
	}
	scheme := runtime.NewScheme()
	for what, breakIt := range breakers {
		for kind, obj := range map[string]*unstructured.Unstructured{"pod": b.smallPod("p"), "deployment": b.deployment("d", 2)} {
			path := []string{"spec"}
			if kind == "deployment" {
				path = []string{"spec", "template", "spec"}
			}
			spec, _, err := unstructured.NestedMap(obj.Object, path...)
			require.NoError(t, err)
			breakIt(spec)
			require.NoError(t, unstructured.SetNestedMap(obj.Object, spec, path...))
			assert.Error(t, mustBeInert(obj), "%s with %s", kind, what)

			dyn := dynamicfake.NewSimpleDynamicClient(scheme)
			r := &nsRun{env: &checks.Env{}, ns: b.ns, tenantNS: b.ns}
			a := actor{id: checks.Identity{User: "alice"}, how: "impersonated", clients: &kube.Clients{Dynamic: dyn}}
			gvr := gvrPods
			if kind == "deployment" {
				gvr = gvrDeployments
			}
			_, err = r.create(context.Background(), a, gvr, obj, false)
			assert.ErrorContains(t, err, "its pods could run", "%s with %s", kind, what)
			assert.Empty(t, dyn.Actions(), "%s with %s: nothing was sent to the API server", kind, what)
			assert.Empty(t, r.created)
		}
	}
}
