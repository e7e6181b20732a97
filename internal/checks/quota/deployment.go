package quota

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// deploymentWait bounds the wait for a Deployment's ReplicaSet to hit the
// quota and say so; deploymentSteady is how long its pod count must hold
// still, once the refusal is reported, for the ReplicaSet to be done.
const (
	deploymentWait   = 90 * time.Second
	deploymentSteady = 5 * time.Second
)

// extraReplicas is how many replicas beyond the pod quota's room a
// Deployment asks for.
const extraReplicas = 2

// runDeployment creates, as each actor in turn, a Deployment with more
// replicas than the pod quota leaves room for (on a user's tenant by
// default, as bulkhead in its copy of the tenant's quota: see fillMode). Its
// ReplicaSet must get pods up to the bound (the positive control) and no
// more, and report the refusal in a FailedCreate event ("exceeded quota").
// The Deployment is deleted, and the namespace's usage back, before the
// next actor's turn.
func runDeployment(ctx context.Context, r *nsRun) error {
	space, acts, ok, err := r.countSpace(ctx, corev1.ResourcePods, actors.Create("apps/deployments"))
	if err != nil || !ok {
		return err
	}
	for i, a := range acts {
		fctx, cancel := space.fillContext(ctx)
		err := deploymentAs(fctx, space, a, i)
		if err != nil && space.outOfBudget(ctx, fctx) {
			space.unproven(attempt{role: reports.RoleTest, method: overDeploymentMethod, gvr: gvrDeployments, name: space.name("deploy", fmt.Sprint(i)), expected: wantFailedCreate},
				"not tried in time", fmt.Sprintf("the Deployment did not reach the pod quota within %s; bulkhead released the tenant's quota: %v", fillBudget, err))
			err = nil
		}
		cancel()
		if err != nil {
			return err
		}
		if err := space.cleanup(ctx); err != nil {
			return err
		}
	}
	return nil
}

const (
	overDeploymentMethod = "replicaset creates pods [pods over quota]"
	wantFailedCreate     = "FailedCreate: exceeded quota"
)

func deploymentAs(ctx context.Context, r *nsRun, a actor, i int) error {
	l, quotas, err := r.limit(ctx, corev1.ResourcePods)
	if err != nil {
		return err
	}
	name := r.name("deploy", fmt.Sprint(i))
	room := l.RemainingCount()
	method := "create deployment [replicas beyond pods quota]"
	most := int64(maxFill)
	if r.ns != r.tenantNS {
		most = maxFillOwn
	}
	switch {
	case !l.Limited:
		room = 0
		if l.Expected != nil {
			room = l.Expected.Value() // unknown usage: ask for more than the whole bound
		}
	case room > most:
		r.unproven(attempt{role: reports.RoleTest, method: method, gvr: gvrDeployments, name: name, expected: wantExceeded}, "bound too high to overrun",
			fmt.Sprintf("%s: %d replicas would be needed; bulkhead asks for at most %d here", l, room, most))
		return nil
	case room < 1:
		r.record(reader, attempt{role: reports.RoleControl, method: method, gvr: gvrDeployments, name: name, expected: "replicas created up to the bound"},
			answer{Observed: "no room under the bound", Detail: l.String() + ": usage is already at or over the bound"})
		room = 0
	}
	replicas := int32(room + extraReplicas)
	if _, err := r.create(ctx, a, gvrDeployments, r.build.deployment(name, replicas), false); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ans := judgeAccepted(err)
		r.record(a, attempt{role: reports.RoleControl, method: method, gvr: gvrDeployments, name: name, expected: wantAccepted}, ans)
		r.unproven(attempt{role: reports.RoleTest, method: overDeploymentMethod, gvr: gvrDeployments, name: name, expected: wantFailedCreate},
			"not tried", "the Deployment was refused: "+ans.Detail)
		return nil
	}

	// Wait for the ReplicaSet to create what fits and to report the rest,
	// or for more pods than the bound allows (a leak, no need to wait on).
	var (
		pods    int
		charged int
		event   *corev1.Event
		// steady is since when the pod count has not changed: once the
		// refusal is reported and nothing moves, the ReplicaSet is done
		// (it may stop short of room when status.used counted pods on
		// their way out).
		steady = time.Now()
	)
	chargedErr := errors.New("not counted yet")
	waitErr := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, deploymentWait, true, func(ctx context.Context) (bool, error) {
		n, err := r.countPods(ctx, name)
		if err != nil {
			return false, nil
		}
		if n != pods {
			pods, steady = n, time.Now()
		}
		// What the namespace holds that the pod quota charges, counted
		// from the pods themselves: status.used may still count pods that
		// were on their way out when the check read it (another check's,
		// or the tenant's own), which makes the room look smaller than it
		// was.
		charged, chargedErr = r.chargedPods(ctx)
		if event == nil {
			event, _ = r.failedCreate(ctx, name)
		}
		over := chargedErr == nil && l.Limited && int64(charged) > l.Bound.Value()
		return over || (event != nil && (int64(pods) >= room || time.Since(steady) >= deploymentSteady)), nil
	})
	if ctx.Err() != nil && waitErr != nil {
		return ctx.Err()
	}
	after, _, _ := r.limit(ctx, corev1.ResourcePods)

	ctlKey := admittedKey(a, "deployment "+name+"'s pods within the pods quota", r.ns)
	ctlDetail := fmt.Sprintf("deployment %s asked for %d replicas with room for %d; the ReplicaSet created %d pods; now %s", name, replicas, room, pods, after)
	r.record(a, attempt{role: reports.RoleControl, method: "create deployment; replicaset creates pods [pods within quota]", gvr: gvrDeployments, name: name,
		expected: "pods created up to the bound", proves: []string{ctlKey}},
		answer{Observed: fmt.Sprintf("%d of %d created", pods, replicas), OK: pods >= 1, Detail: ctlDetail})

	ans := judgeDeployment(event, quotas, l, room, pods, charged, chargedErr, waitErr, ctlDetail)
	ans.Detail = join(ans.Detail, "before: "+l.String())
	r.record(a, attempt{role: reports.RoleTest, method: overDeploymentMethod, gvr: gvrDeployments, name: name, expected: wantFailedCreate,
		needs: []string{ctlKey}}, ans)
	return nil
}

// judgeDeployment decides the over-quota half of the Deployment check: more
// pods charged than the bound is a leak, whatever the events say; else the
// ReplicaSet's FailedCreate event must be the pod quota's refusal.
func judgeDeployment(event *corev1.Event, quotas []string, l limit, room int64, pods, charged int, chargedErr, waitErr error, ctlDetail string) answer {
	const racy = "the quota admitted more pods than it allows (if its status.used undercounted, the quota controller recounted from a stale cache while the ReplicaSet created pods: kubernetes/kubernetes#123434)"
	switch {
	case chargedErr == nil && l.Limited && int64(charged) > l.Bound.Value():
		return answer{Observed: fmt.Sprintf("%d pods charged to the quota, more than its bound %s", charged, l.Bound.String()),
			Detail: fmt.Sprintf("the ReplicaSet created %d pods where %d seemed to fit; %s; %s", pods, room, racy, ctlDetail)}
	case chargedErr != nil && int64(pods) > room:
		return answer{Observed: fmt.Sprintf("%d pods created, more than the %d that fit", pods, room),
			Detail: fmt.Sprintf("%s; counting the namespace's pods failed: %v; %s", racy, chargedErr, ctlDetail)}
	case event == nil:
		return answer{Observed: "no FailedCreate event",
			Detail: fmt.Sprintf("no FailedCreate event with \"exceeded quota\" for the ReplicaSet within %s (wait: %v); %s", deploymentWait, waitErr, ctlDetail)}
	}
	e, parsed := ParseExceeded(event.Message)
	detail := fmt.Sprintf("event %s on ReplicaSet %s (count %d): %s", event.Reason, event.InvolvedObject.Name, event.Count, event.Message)
	switch {
	case !strings.Contains(event.Message, "is forbidden: "+exceededMarker) || !parsed || !e.Names(string(corev1.ResourcePods)):
		return answer{Observed: "FailedCreate: not a pods quota refusal", Detail: detail, Inconclusive: "the ReplicaSet's pods were refused, but not by the pods quota: " + event.Message}
	case !contains(quotas, e.Quota):
		return answer{Observed: "FailedCreate: exceeded unknown quota", Detail: detail, Inconclusive: fmt.Sprintf("refused by quota %q, which bulkhead did not read in the namespace", e.Quota)}
	}
	detail = e.Summary() + "; " + detail
	if chargedErr == nil {
		detail += fmt.Sprintf("; the namespace holds %d pods the quota charges, within its bound %s", charged, l.Bound.String())
		if int64(pods) > room {
			detail += fmt.Sprintf(" (the ReplicaSet created %d where %d seemed to fit: when the check began, status.used still counted pods on their way out)", pods, room)
		}
	}
	return answer{Observed: wantFailedCreate, OK: true, Detail: detail}
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
