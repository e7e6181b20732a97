package quota

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

// deploymentWait bounds the wait for a Deployment's ReplicaSet to hit the
// quota and say so.
const deploymentWait = 90 * time.Second

// extraReplicas is how many replicas beyond the pod quota's room a
// Deployment asks for.
const extraReplicas = 2

// runDeployment creates, as each actor in turn, a Deployment with more
// replicas than the pod quota leaves room for. Its ReplicaSet must get pods
// up to the bound (the positive control) and no more, and report the
// refusal in a FailedCreate event ("exceeded quota"). The Deployment is
// deleted, and the namespace's usage back, before the next actor's turn.
func runDeployment(ctx context.Context, r *nsRun) error {
	for i, a := range r.actors {
		if err := deploymentAs(ctx, r, a, i); err != nil {
			return err
		}
		if err := r.cleanup(ctx); err != nil {
			return err
		}
	}
	return nil
}

func deploymentAs(ctx context.Context, r *nsRun, a actor, i int) error {
	l, quotas, err := r.limit(ctx, corev1.ResourcePods)
	if err != nil {
		return err
	}
	name := r.name("deploy", fmt.Sprint(i))
	room := l.RemainingCount()
	method := "create deployment [replicas beyond pods quota]"
	switch {
	case !l.Limited:
		room = 0
		if l.Expected != nil {
			room = l.Expected.Value() // unknown usage: ask for more than the whole bound
		}
	case room > maxFill:
		r.fail(reports.RoleTest, method, gvrDeployments, name, wantExceeded, "bound too high to overrun",
			fmt.Sprintf("%s: %d replicas would be needed; bulkhead asks for at most %d", l, room, maxFill))
		return nil
	case room < 1:
		r.fail(reports.RoleControl, method, gvrDeployments, name, "replicas created up to the bound", "no room under the bound",
			l.String()+": usage is already at or over the bound")
		room = 0
	}
	replicas := int32(room + extraReplicas)
	if _, err := r.create(ctx, a, gvrDeployments, r.build.deployment(name, replicas), false); err != nil {
		obs, ok, detail := judgeAccepted(err)
		r.observe(a, reports.RoleControl, method, gvrDeployments, name, wantAccepted, obs, ok, detail)
		return nil
	}

	// Wait for the ReplicaSet to create what fits and to report the rest.
	var (
		pods  int
		event *corev1.Event
	)
	waitErr := wait.PollUntilContextTimeout(ctx, time.Second, deploymentWait, true, func(ctx context.Context) (bool, error) {
		n, err := r.countPods(ctx, name)
		if err != nil {
			return false, nil
		}
		pods = n
		if event == nil {
			event, _ = r.failedCreate(ctx, name)
		}
		// Done when the refusal is reported and the ReplicaSet has made what
		// fits (or more: then the bound did not hold).
		return event != nil && int64(pods) >= room, nil
	})
	after, _, _ := r.limit(ctx, corev1.ResourcePods)
	// What the namespace holds that the pod quota charges, counted from
	// the pods themselves: status.used may still count pods that were on
	// their way out when the check read it (another check's, or the
	// tenant's own in a namespace bulkhead did not create), which makes the
	// room look smaller than it was.
	charged, chargedErr := r.chargedPods(ctx)

	ctlDetail := fmt.Sprintf("deployment %s asked for %d replicas with room for %d; the ReplicaSet created %d pods; now %s", name, replicas, room, pods, after)
	r.observe(a, reports.RoleControl, "create deployment; replicaset creates pods [pods within quota]", gvrDeployments, name,
		"pods created up to the bound", fmt.Sprintf("%d of %d created", pods, replicas), pods >= 1, ctlDetail)

	var observed, detail string
	ok := false
	switch {
	case event == nil:
		observed = "no FailedCreate event"
		detail = fmt.Sprintf("no FailedCreate event with \"exceeded quota\" for the ReplicaSet of %s within %s (wait: %v); %s", name, deploymentWait, waitErr, ctlDetail)
	default:
		e, parsed := ParseExceeded(event.Message)
		observed = "FailedCreate: exceeded quota"
		detail = fmt.Sprintf("event %s on ReplicaSet %s (count %d): %s", event.Reason, event.InvolvedObject.Name, event.Count, event.Message)
		switch {
		case !strings.Contains(event.Message, "is forbidden: "+exceededMarker) || !parsed || !e.Names(string(corev1.ResourcePods)):
			observed = "FailedCreate: not a pods quota refusal"
		case !contains(quotas, e.Quota):
			observed = "FailedCreate: exceeded unknown quota"
		case chargedErr == nil && l.Limited && int64(charged) > l.Bound.Value():
			observed = fmt.Sprintf("%d pods charged to the quota, more than its bound %s", charged, l.Bound.String())
			detail += fmt.Sprintf("; the ReplicaSet created %d pods where %d seemed to fit; the quota admitted more pods than it allows (if its status.used undercounted, the quota controller recounted from a stale cache while the ReplicaSet created pods: kubernetes/kubernetes#123434)", pods, room)
		case chargedErr != nil && int64(pods) > room:
			observed = fmt.Sprintf("%d pods created, more than the %d that fit", pods, room)
			detail += "; the quota admitted more pods than it allows (if its status.used undercounted, the quota controller recounted from a stale cache while the ReplicaSet created pods: kubernetes/kubernetes#123434); counting the namespace's pods failed: " + chargedErr.Error()
		default:
			ok = true
			detail = e.Summary() + "; " + detail
			if chargedErr == nil {
				detail += fmt.Sprintf("; the namespace holds %d pods the quota charges, within its bound %s", charged, l.Bound.String())
				if int64(pods) > room {
					detail += fmt.Sprintf(" (the ReplicaSet created %d where %d seemed to fit: when the check began, status.used still counted pods on their way out)", pods, room)
				}
			}
		}
	}
	r.observe(a, reports.RoleTest, "replicaset creates pods [pods over quota]", gvrDeployments, name, "FailedCreate: exceeded quota", observed, ok, join(detail, "before: "+l.String()))
	return nil
}

// countPods counts the live pods of a check's Deployment.
func (r *nsRun) countPods(ctx context.Context, deployment string) (int, error) {
	list, err := r.env.Kube.Core.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: labelDeployment + "=" + deployment})
	if err != nil {
		return 0, fmt.Errorf("list pods of deployment %s/%s: %w", r.ns, deployment, err)
	}
	n := 0
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			n++
		}
	}
	return n, nil
}

// chargedPods counts the namespace's pods an unscoped pods quota charges.
func (r *nsRun) chargedPods(ctx context.Context) (int, error) {
	list, err := r.env.Kube.Core.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("list pods in %s: %w", r.ns, err)
	}
	now := time.Now()
	n := 0
	for _, p := range list.Items {
		if chargedPod(p, now) {
			n++
		}
	}
	return n, nil
}

// chargedPod reports whether the pods quota charges p, by the rule the
// quota evaluator applies: not finished, and not terminating past its
// grace period.
func chargedPod(p corev1.Pod, now time.Time) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	if p.DeletionTimestamp != nil && p.DeletionGracePeriodSeconds != nil {
		grace := time.Duration(*p.DeletionGracePeriodSeconds) * time.Second
		if now.After(p.DeletionTimestamp.Add(grace)) {
			return false
		}
	}
	return true
}

// failedCreate returns the newest FailedCreate event of the Deployment's
// ReplicaSets that reports an exceeded quota.
func (r *nsRun) failedCreate(ctx context.Context, deployment string) (*corev1.Event, error) {
	list, err := r.env.Kube.Core.CoreV1().Events(r.ns).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=ReplicaSet,reason=FailedCreate",
	})
	if err != nil {
		return nil, fmt.Errorf("list FailedCreate events in %s: %w", r.ns, err)
	}
	var best *corev1.Event
	for i, e := range list.Items {
		if !strings.HasPrefix(e.InvolvedObject.Name, deployment+"-") || !strings.Contains(e.Message, exceededMarker) {
			continue
		}
		if best == nil || eventTime(e).After(eventTime(*best)) {
			best = &list.Items[i]
		}
	}
	return best, nil
}

func eventTime(e corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
