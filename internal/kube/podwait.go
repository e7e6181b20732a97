package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// PodRef names a pod.
type PodRef struct{ Namespace, Name string }

func (r PodRef) String() string { return r.Namespace + "/" + r.Name }

// Waiting reasons that never heal by waiting: the pod's spec or image name
// is wrong, or its image is not on the node and may not be pulled.
var neverHeals = []string{"ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"}

// Waiting reasons that may heal (a registry hiccup) but rarely do: given
// up after StuckGrace.
var rarelyHeals = []string{"ImagePullBackOff", "ErrImagePull"}

// StuckGrace is how long a pod may stay unschedulable or unable to pull
// its image before a wait gives up on it.
const StuckGrace = 30 * time.Second

// Stuck kinds.
const (
	Unschedulable = "cannot be scheduled"
	CannotStart   = "cannot start"
)

// StuckError is a pod that will not become Ready by waiting.
type StuckError struct {
	Pod    PodRef
	Kind   string // Unschedulable or CannotStart
	Reason string
}

func (e *StuckError) Error() string { return fmt.Sprintf("pod %s %s: %s", e.Pod, e.Kind, e.Reason) }

// IsStuck returns the StuckError in err's chain.
func IsStuck(err error) (*StuckError, bool) {
	var s *StuckError
	ok := errors.As(err, &s)
	return s, ok
}

// PodReady reports whether p runs, has an IP and is Ready.
func PodReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// NotReadyReason says why a pod is not ready, in the words kubectl would use.
func NotReadyReason(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			return fmt.Sprintf("not scheduled: %s %s", c.Reason, c.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return fmt.Sprintf("container %s waiting: %s %s", cs.Name, w.Reason, w.Message)
		}
		if t := cs.State.Terminated; t != nil {
			return fmt.Sprintf("container %s terminated: %s (exit %d) %s", cs.Name, t.Reason, t.ExitCode, t.Message)
		}
	}
	return "phase " + string(p.Status.Phase) + ", not ready yet"
}

// Stuck says whether p will not become Ready by waiting (as of now), and
// how: unschedulable or unable to pull its image for longer than
// StuckGrace, or in a waiting state that never heals.
func Stuck(p *corev1.Pod, now time.Time) (kind, reason string) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
			now.Sub(c.LastTransitionTime.Time) > StuckGrace {
			return Unschedulable, NotReadyReason(p)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		w := cs.State.Waiting
		if w == nil {
			continue
		}
		if slices.Contains(neverHeals, w.Reason) {
			return CannotStart, NotReadyReason(p)
		}
		if slices.Contains(rarelyHeals, w.Reason) && now.Sub(p.CreationTimestamp.Time) > StuckGrace {
			return CannotStart, NotReadyReason(p)
		}
	}
	return "", ""
}

// WaitPodsReady waits until every pod is Ready and returns them. It gives
// up early, with a *StuckError, on a pod that will not become Ready by
// waiting (see Stuck); after timeout it names every pod still pending and
// why.
func (c *Clients) WaitPodsReady(ctx context.Context, pods []PodRef, timeout time.Duration) (map[PodRef]*corev1.Pod, error) {
	out := map[PodRef]*corev1.Pod{}
	var pending []string
	var stuck error
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		for _, ref := range pods {
			p, err := c.Core.CoreV1().Pods(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					pending = append(pending, ref.String()+": not found")
				} else {
					pending = append(pending, ref.String()+": "+err.Error()) // transient: poll again
				}
				continue
			}
			out[ref] = p
			if PodReady(p) {
				continue
			}
			pending = append(pending, ref.String()+": "+NotReadyReason(p))
			if kind, why := Stuck(p, time.Now()); kind != "" {
				stuck = &StuckError{Pod: ref, Kind: kind, Reason: why}
				return false, stuck
			}
		}
		return len(pending) == 0, nil
	})
	if stuck != nil {
		return nil, stuck
	}
	if err != nil {
		return nil, fmt.Errorf("pods not Ready after %s: %s", timeout, strings.Join(pending, "; "))
	}
	return out, nil
}
