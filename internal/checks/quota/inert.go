package quota

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Every pod the quota checks create for real (bare pods, and the template of
// their Deployments) exists only to be counted against a quota. If an
// admission wrongly lets one in, it still must not run: it selects a node
// label no node has AND carries a scheduling gate (the scheduler never looks
// at a gated pod; a mutating webhook that rewrites node selectors does not
// remove gates), and its command exits at once should it ever start.
//
// This is the same idea as the shared inert pod template the pod-security
// area is writing; when that lands on main, inertPodSpec and whyRunnable
// give way to it.
const (
	// NeverScheduleKey is the node label the checks' pods select; no node
	// has it.
	NeverScheduleKey   = "bulkhead.dev/quota-check"
	neverScheduleValue = "never-scheduled"
	// SchedulingGate keeps the checks' pods out of the scheduler.
	SchedulingGate = "bulkhead.dev/never-schedule"
)

// exitAtOnce is the probe program's "version": it prints and exits 0.
var exitAtOnce = []string{"/probe", "version"}

// inertPodSpec is a Pod Security "restricted" spec that can never run, with
// one container per element of res (a nil element: no resources, so
// LimitRange defaults apply). Deployment templates need restart Always.
func inertPodSpec(image string, restart corev1.RestartPolicy, res []*corev1.ResourceRequirements) corev1.PodSpec {
	spec := corev1.PodSpec{
		RestartPolicy:                 restart,
		AutomountServiceAccountToken:  ptrTo(false),
		EnableServiceLinks:            ptrTo(false),
		TerminationGracePeriodSeconds: ptrTo[int64](1),
		NodeSelector:                  map[string]string{NeverScheduleKey: neverScheduleValue},
		SchedulingGates:               []corev1.PodSchedulingGate{{Name: SchedulingGate}},
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptrTo(true),
			RunAsUser:      ptrTo[int64](65532),
			RunAsGroup:     ptrTo[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	for i, r := range res {
		c := corev1.Container{
			Name:            fmt.Sprintf("c%d", i),
			Image:           image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         exitAtOnce,
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptrTo(false),
				ReadOnlyRootFilesystem:   ptrTo(true),
				RunAsNonRoot:             ptrTo(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}
		if r != nil {
			c.Resources = *r
		}
		spec.Containers = append(spec.Containers, c)
	}
	return spec
}

// whyRunnable says what would let spec run, or "" when it cannot.
func whyRunnable(spec corev1.PodSpec) string {
	var why []string
	if spec.NodeSelector[NeverScheduleKey] != neverScheduleValue {
		why = append(why, "no node selector matching no node")
	}
	gated := false
	for _, g := range spec.SchedulingGates {
		gated = gated || g.Name == SchedulingGate
	}
	if !gated {
		why = append(why, "no scheduling gate")
	}
	if spec.NodeName != "" {
		why = append(why, "bound to node "+spec.NodeName)
	}
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		if strings.Join(c.Command, " ") != strings.Join(exitAtOnce, " ") || len(c.Args) > 0 {
			why = append(why, fmt.Sprintf("container %s does not exit at once (command %q, args %q)", c.Name, c.Command, c.Args))
		}
	}
	return strings.Join(why, "; ")
}

// podSpecOf returns the pod spec an object of a kind bulkhead creates would
// run: a Pod's own, a Deployment's template; ok is false for kinds without
// pods.
func podSpecOf(obj *unstructured.Unstructured) (corev1.PodSpec, bool, error) {
	var path []string
	switch obj.GetKind() {
	case "Pod":
		path = []string{"spec"}
	case "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job":
		path = []string{"spec", "template", "spec"}
	default:
		return corev1.PodSpec{}, false, nil
	}
	m, found, err := unstructured.NestedMap(obj.Object, path...)
	if err != nil || !found {
		return corev1.PodSpec{}, true, fmt.Errorf("%s %s has no pod spec at %s", obj.GetKind(), obj.GetName(), strings.Join(path, "."))
	}
	var spec corev1.PodSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &spec); err != nil {
		return spec, true, fmt.Errorf("decode the pod spec of %s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	return spec, true, nil
}

// mustBeInert refuses an object whose pods could run: what bulkhead creates
// for real to be counted or refused must never run, whoever wrongly admits it.
func mustBeInert(obj *unstructured.Unstructured) error {
	spec, hasPods, err := podSpecOf(obj)
	if err != nil || !hasPods {
		return err
	}
	if why := whyRunnable(spec); why != "" {
		return fmt.Errorf("refusing to create %s %s/%s: its pods could run (%s)", obj.GetKind(), obj.GetNamespace(), obj.GetName(), why)
	}
	return nil
}
