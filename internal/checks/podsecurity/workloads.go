package podsecurity

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/inert"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Workload variants: what the forbidden Deployment and Job carry. One is
// enough per kind; PSA-001 covers the whole table.
const (
	deploymentVariant = "privileged"
	jobVariant        = "host-path"
)

// WorkloadTimeout bounds the wait for a controller's event about a workload.
var WorkloadTimeout = 90 * time.Second

// labelWorkload names the workload a PSA-002 pod belongs to.
const labelWorkload = "bulkhead.dev/workload"

// Workload kinds PSA-002 creates, and the right to create each.
var workloadKinds = []struct {
	Kind    string
	Right   actors.Right
	Variant string
}{
	{"Deployment", actors.Create("apps/deployments"), deploymentVariant},
	{"Job", actors.Create("batch/jobs"), jobVariant},
}

// workload is one Deployment or Job a tenant creates for real.
type workload struct {
	Kind    string // "Deployment" or "Job"
	Name    string
	Variant *Variant // nil: compliant (positive control)
	Actor   actors.Actor
}

// createsPodsKey: the same identity's compliant workload of the same kind
// got its pod created in the namespace, so the controller acts there and a
// rejection of the forbidden pod is about what it asks for.
func (w workload) createsPodsKey() string {
	return fmt.Sprintf("%s's compliant %s gets its pod created in %s", w.Actor.Identity, w.Kind, w.Actor.Namespace)
}

// planWorkloads returns, per isolated tenant, in its first namespace, a
// forbidden and a compliant Deployment, made by the first identity that
// may create Deployments, and a forbidden and a compliant Job, made by the
// last that may create Jobs (so that both a user and a ServiceAccount act
// where they can). An identity that may not is not applicable; a kind
// nobody may create there is not evaluated.
func planWorkloads(ctx context.Context, env *checks.Env) ([]workload, checks.Outcome, error) {
	var ws []workload
	var out checks.Outcome
	model := actors.Of(env)
	suffix := tenantapi.Suffix()
	for _, t := range env.Topology.Isolated() {
		if len(t.Identities) == 0 || len(t.Namespaces) == 0 {
			out.NotEvaluated = append(out.NotEvaluated, fmt.Sprintf("tenant %s: no identities in the config", t.Name))
			continue
		}
		ns := t.Namespaces[0]
		for i, k := range workloadKinds {
			able, na, err := model.Able(ctx, t, ns, k.Right)
			if err != nil {
				return nil, out, err
			}
			out.Observations = append(out.Observations, na...)
			if len(able) == 0 {
				out.NotEvaluated = append(out.NotEvaluated, fmt.Sprintf("tenant %s in %s: no identity may %s", t.Name, ns, k.Right))
				continue
			}
			a := able[0]
			if i%2 == 1 {
				a = able[len(able)-1]
			}
			v, _ := VariantNamed(k.Variant)
			short := strings.ToLower(k.Kind[:3])
			ws = append(ws,
				workload{Kind: k.Kind, Variant: &v, Actor: a, Name: fmt.Sprintf("bulkhead-psa-%s-%s-%s", short, v.Name, suffix)},
				workload{Kind: k.Kind, Actor: a, Name: fmt.Sprintf("bulkhead-psa-%s-compliant-%s", short, suffix)})
		}
	}
	return ws, out, nil
}

// runWorkloads is PSA-002: a tenant creates a Deployment and a Job whose
// pod template violates "restricted". The API call succeeds (Pod Security
// only warns on templates); the controller's pod creation is rejected, which
// shows up as a FailedCreate event quoting the violation. The same
// workloads with a compliant template get SuccessfulCreate (positive
// control). Every pod template is inert (inert.Make): a pod that is
// created, rightly or wrongly, is never scheduled and would exit at once.
func runWorkloads(ctx context.Context, env *checks.Env) checks.Outcome {
	ws, out, err := planWorkloads(ctx, env)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	if len(ws) == 0 {
		out.Skip = nothingToTry(out.NotEvaluated)
		return out
	}
	obs := make([]reports.Observation, len(ws))
	tenantapi.Parallel(len(ws), len(ws), func(i int) {
		obs[i] = tryWorkload(ctx, env, ws[i])
	})
	out.Observations = append(obs, out.Observations...)
	out.Notes = append(out.Notes, fmt.Sprintf("workloads created for real, their pods never scheduled (a scheduling gate and a node selector no node has) and exiting at once if they ever ran; deleted afterwards; controller events awaited up to %s", WorkloadTimeout))
	return out
}

// nothingToTry is the skip reason of a check with nothing to try.
func nothingToTry(notEvaluated []string) string {
	if len(notEvaluated) == 0 {
		return "no isolated tenant in this run"
	}
	return "not evaluated: " + strings.Join(notEvaluated, "; ")
}

func tryWorkload(ctx context.Context, env *checks.Env, w workload) reports.Observation {
	a := w.Actor
	kind := strings.ToLower(w.Kind)
	o := reports.Observation{
		Role:   reports.RoleControl,
		Actor:  a.ReportActor(),
		Target: reports.Target{Tenant: a.Tenant, Namespace: a.Namespace, Name: w.Name, Kind: kind},
		Method: "create " + kind + " (compliant pod template)", Expected: "SuccessfulCreate (pod created, never scheduled)",
		Proves: []string{w.createsPodsKey()},
		At:     time.Now().UTC(),
	}
	keyword := ""
	if w.Variant != nil {
		keyword = w.Variant.Keyword
		o.Role, o.Proves, o.Needs = reports.RoleTest, nil, []string{w.createsPodsKey()}
		o.Method = "create " + kind + " (" + w.Variant.Name + " pod template)"
		o.Expected = "FailedCreate: pod rejected by PodSecurity: " + keyword
	}
	obj, err := w.object(env)
	if err != nil {
		o.Observed, o.Detail = "not created", err.Error()
		return o
	}
	ans := createWorkload(ctx, w, obj)
	if ans.Admitted() {
		defer deleteWorkload(context.WithoutCancel(ctx), env, w)
	}
	detail := []string{"API: " + ans.Detail()}
	if ws := a.Warnings.Matching("PodSecurity"); len(ws) > 0 {
		detail = append(detail, "warning: "+strings.Join(ws, "; "))
	}
	if !ans.Admitted() {
		j := tenantapi.Judged{Observed: "not created: " + ans.Word()}
		if w.Variant != nil {
			j = judgeRejection(ans, keyword)
			j.Observed = "not created: " + j.Observed
		}
		o.Detail = strings.Join(detail, "; ")
		j.Apply(&o)
		return o
	}
	ev, err := awaitCreateEvent(ctx, env, w)
	detail = append(detail, podsSeen(ctx, env, w))
	if err != nil {
		o.Detail = strings.Join(append(detail, err.Error()), "; ")
		tenantapi.Judged{Observed: "no controller event", Inconclusive: "the controller said nothing about the pod"}.Apply(&o)
		return o
	}
	detail = append(detail, fmt.Sprintf("event %s %s/%s %s: %s", ev.InvolvedObject.Kind, ev.Namespace, ev.InvolvedObject.Name, ev.Reason, ev.Message))
	o.Detail = strings.Join(detail, "; ")
	o.At = eventTime(ev)
	switch {
	case w.Variant == nil:
		o.Observed, o.OK = ev.Reason, ev.Reason == "SuccessfulCreate"
	case ev.Reason == "SuccessfulCreate":
		o.Observed = "SuccessfulCreate: the forbidden pod was created"
	default:
		j := judgeRejection(tenantapi.Answer{Status: 403, Message: ev.Message}, keyword)
		j.Observed = "FailedCreate: pod " + j.Observed
		j.Apply(&o)
	}
	return o
}

func workloadLabels(env *checks.Env, w workload) map[string]string {
	return fixtures.With(fixtures.CommonLabels(env.RunID), fixtures.LabelTenant, w.Actor.Tenant,
		fixtures.LabelRole, "psa-workload", labelWorkload, w.Name)
}

// workloadPod is the workload's pod template: the compliant pod, with the
// variant's breakout if it has one, made inert.
func workloadPod(env *checks.Env, w workload, restart corev1.RestartPolicy) corev1.PodTemplateSpec {
	p := &corev1.Pod{Spec: CompliantSpec(env.ProbeImage, nil)}
	if w.Variant != nil {
		w.Variant.Mutate(p)
	}
	p.Spec.RestartPolicy = restart
	inert.Make(&p.Spec)
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: workloadLabels(env, w)}, Spec: p.Spec}
}

// object is the Deployment or Job PSA-002 creates for w.
func (w workload) object(env *checks.Env) (runtime.Object, error) {
	meta := metav1.ObjectMeta{Name: w.Name, Namespace: w.Actor.Namespace, Labels: workloadLabels(env, w)}
	switch w.Kind {
	case "Deployment":
		return &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{labelWorkload: w.Name}},
			Template: workloadPod(env, w, corev1.RestartPolicyAlways),
		}}, nil
	case "Job":
		return &batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template:     workloadPod(env, w, corev1.RestartPolicyNever),
		}}, nil
	}
	return nil, fmt.Errorf("unknown workload kind %q", w.Kind)
}

// PodTemplate is the pod template of an object PSA-002 creates.
func PodTemplate(obj runtime.Object) (corev1.PodTemplateSpec, bool) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Spec.Template, true
	case *batchv1.Job:
		return o.Spec.Template, true
	}
	return corev1.PodTemplateSpec{}, false
}

// createWorkload creates obj as the workload's identity. Whatever it is,
// its pods cannot run: it refuses an object whose template is not inert.
func createWorkload(ctx context.Context, w workload, obj runtime.Object) tenantapi.Answer {
	tpl, ok := PodTemplate(obj)
	if !ok {
		return tenantapi.Answer{Err: fmt.Errorf("%s %s has no pod template", w.Kind, w.Name)}
	}
	if err := inert.Check(tpl.Spec); err != nil {
		return tenantapi.Answer{Err: fmt.Errorf("refusing to create %s %s/%s, its pods could run: %w", w.Kind, w.Actor.Namespace, w.Name, err)}
	}
	ctx, cancel := tenantapi.WithTimeout(ctx)
	defer cancel()
	create := metav1.CreateOptions{FieldManager: fixtures.ManagedBy}
	var err error
	switch o := obj.(type) {
	case *appsv1.Deployment:
		_, err = w.Actor.Clients.Core.AppsV1().Deployments(o.Namespace).Create(ctx, o, create)
	case *batchv1.Job:
		_, err = w.Actor.Clients.Core.BatchV1().Jobs(o.Namespace).Create(ctx, o, create)
	}
	return tenantapi.Of(err, 201)
}

// podsSeen says which pods the workload has and where they are, as
// evidence that none runs.
func podsSeen(ctx context.Context, env *checks.Env, w workload) string {
	ctx, cancel := tenantapi.WithTimeout(ctx)
	defer cancel()
	pods, err := env.Kube.Core.CoreV1().Pods(w.Actor.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelWorkload + "=" + w.Name})
	if err != nil {
		return "pods: listing them failed: " + err.Error()
	}
	if len(pods.Items) == 0 {
		return "pods: none"
	}
	var seen []string
	for _, p := range pods.Items {
		s := p.Name + " " + string(p.Status.Phase)
		if len(p.Spec.SchedulingGates) > 0 {
			s += " (scheduling gated)"
		}
		if p.Spec.NodeName != "" {
			s += " on node " + p.Spec.NodeName
		}
		seen = append(seen, s)
	}
	return "pods: " + strings.Join(seen, ", ")
}

// podsGoneWait bounds the wait for a deleted workload's pods to be gone.
const podsGoneWait = time.Minute

// deleteWorkload removes the workload and, through garbage collection, its
// ReplicaSet and pods, and waits until its pods are gone: until then they
// count against the tenant's quota (and the next check's room). It runs as
// the test process: clean-up must not depend on the tenant's rights.
func deleteWorkload(ctx context.Context, env *checks.Env, w workload) {
	dctx, cancel := tenantapi.WithTimeout(ctx)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	var err error
	switch w.Kind {
	case "Deployment":
		err = env.Kube.Core.AppsV1().Deployments(w.Actor.Namespace).Delete(dctx, w.Name, opts)
	case "Job":
		err = env.Kube.Core.BatchV1().Jobs(w.Actor.Namespace).Delete(dctx, w.Name, opts)
	}
	if err != nil {
		env.Logger().Warn("delete workload of a Pod Security check", "kind", w.Kind, "namespace", w.Actor.Namespace, "name", w.Name, "error", err)
		return
	}
	sel := metav1.ListOptions{LabelSelector: labelWorkload + "=" + w.Name}
	var left int
	werr := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, podsGoneWait, true, func(ctx context.Context) (bool, error) {
		pods, err := env.Kube.Core.CoreV1().Pods(w.Actor.Namespace).List(ctx, sel)
		if err != nil {
			return false, nil
		}
		left = len(pods.Items)
		return left == 0, nil
	})
	if werr != nil {
		env.Logger().Warn("pods of a Pod Security check's workload still there (the run's clean-up removes them)", "kind", w.Kind, "namespace", w.Actor.Namespace, "name", w.Name, "pods", left, "waited", podsGoneWait)
	}
}

// awaitCreateEvent waits for the controller's first SuccessfulCreate or
// FailedCreate event about the workload's pods (on the ReplicaSet of a
// Deployment, on the Job itself). Events are read by bulkhead, not as the
// tenant: reading them is observing, and an identity that may create
// workloads need not be allowed to list events.
func awaitCreateEvent(ctx context.Context, env *checks.Env, w workload) (corev1.Event, error) {
	kind := "Job"
	if w.Kind == "Deployment" {
		kind = "ReplicaSet"
	}
	ns := w.Actor.Namespace
	sel := fields.SelectorFromSet(fields.Set{"involvedObject.kind": kind}).String()
	deadline := time.Now().Add(WorkloadTimeout)
	var lastErr error
	for {
		lctx, cancel := tenantapi.WithTimeout(ctx)
		list, err := env.Kube.Core.CoreV1().Events(ns).List(lctx, metav1.ListOptions{FieldSelector: sel})
		cancel()
		if err == nil {
			if ev, ok := createEvent(list.Items, kind, w.Name); ok {
				return ev, nil
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return corev1.Event{}, fmt.Errorf("no SuccessfulCreate/FailedCreate event for %s %s/%s within %s (last list error: %v)", kind, ns, w.Name, WorkloadTimeout, lastErr)
			}
			return corev1.Event{}, fmt.Errorf("no SuccessfulCreate/FailedCreate event for %s %s/%s within %s", kind, ns, w.Name, WorkloadTimeout)
		}
		select {
		case <-ctx.Done():
			return corev1.Event{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// createEvent picks the event about the workload's pod creation: for a
// Job the Job's own; for a Deployment its ReplicaSet's ("<name>-<hash>").
// A FailedCreate wins over a SuccessfulCreate: one rejected pod is the
// finding.
func createEvent(evs []corev1.Event, kind, name string) (corev1.Event, bool) {
	var found *corev1.Event
	for i := range evs {
		e := &evs[i]
		if e.InvolvedObject.Kind != kind || (e.Reason != "FailedCreate" && e.Reason != "SuccessfulCreate") {
			continue
		}
		n := e.InvolvedObject.Name
		if kind == "Job" && n != name || kind == "ReplicaSet" && !isReplicaSetOf(n, name) {
			continue
		}
		if found == nil || e.Reason == "FailedCreate" && found.Reason != "FailedCreate" {
			found = e
		}
	}
	if found == nil {
		return corev1.Event{}, false
	}
	return *found, true
}

// isReplicaSetOf reports whether rs is named like a ReplicaSet of
// Deployment d: d, a dash, and a pod-template hash without dashes.
func isReplicaSetOf(rs, d string) bool {
	hash, ok := strings.CutPrefix(rs, d+"-")
	return ok && hash != "" && !strings.Contains(hash, "-")
}

func eventTime(e corev1.Event) time.Time {
	for _, t := range []time.Time{e.LastTimestamp.Time, e.EventTime.Time, e.FirstTimestamp.Time, e.CreationTimestamp.Time} {
		if !t.IsZero() {
			return t.UTC()
		}
	}
	return time.Now().UTC()
}
