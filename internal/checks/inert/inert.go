// Package inert makes the pods bulkhead creates only to test admission
// unable to run, whatever admission does with them. Checks that create
// workloads for real (Pod Security through controllers, quota fill) judge
// whether the API server and the controllers admit a pod, never what the
// pod does: if the cluster wrongly admits a privileged pod, that pod must
// still never start on a tenant's node.
//
// Three locks, each enough on its own, none of which Pod Security admission
// (or a quota, or a LimitRange) removes:
//   - a scheduling gate nothing lifts: the scheduler ignores the pod;
//   - a node selector no node carries: if the gate were lifted, no node fits;
//   - a command that exits at once: if it ran, it would do nothing.
package inert

import (
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

const (
	// Gate is the scheduling gate inert pods carry. Nothing of bulkhead's
	// lifts it, and a gate can only be removed, never added back, so an
	// inert pod is never looked at by the scheduler.
	Gate = "bulkhead.dev/inert"
	// NodeSelectorKey is a node label no node carries (bulkhead never sets
	// it); NodeSelectorValue is what inert pods select.
	NodeSelectorKey   = "bulkhead.dev/inert"
	NodeSelectorValue = "never-scheduled"
)

// Command exits at once in the probe image (it prints the probe's version),
// the image every pod bulkhead creates runs.
var Command = []string{"/probe", "version"}

// Make makes spec inert in place: the gate, the node selector, and every
// container's (and init container's) command replaced by Command.
func Make(spec *corev1.PodSpec) {
	if !slices.ContainsFunc(spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == Gate }) {
		spec.SchedulingGates = append(spec.SchedulingGates, corev1.PodSchedulingGate{Name: Gate})
	}
	if spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	spec.NodeSelector[NodeSelectorKey] = NodeSelectorValue
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			cs[i].Command, cs[i].Args = slices.Clone(Command), nil
		}
	}
}

// Check says what keeps spec from being inert; nil when it is.
func Check(spec corev1.PodSpec) error {
	var errs []error
	if !slices.ContainsFunc(spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == Gate }) {
		errs = append(errs, fmt.Errorf("no scheduling gate %s", Gate))
	}
	if spec.NodeSelector[NodeSelectorKey] != NodeSelectorValue {
		errs = append(errs, fmt.Errorf("no node selector %s=%s", NodeSelectorKey, NodeSelectorValue))
	}
	if len(spec.Containers) == 0 {
		errs = append(errs, errors.New("no containers"))
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			if !slices.Equal(c.Command, Command) || len(c.Args) > 0 {
				errs = append(errs, fmt.Errorf("container %s runs %q %q, not %q", c.Name, c.Command, c.Args, Command))
			}
		}
	}
	return errors.Join(errs...)
}
