package podsecurity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
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

// workload is one Deployment or Job a tenant creates for real.
type workload struct {
	Kind    string // "Deployment" or "Job"
	Name    string
	Variant *Variant // nil: compliant (positive control)
	Actor   actor
}

// runWorkloads is PSA-002: a tenant creates a Deployment and a Job whose
// pod template violates "restricted". The API call succeeds (Pod Security
// only warns on templates); the controller's pod creation is rejected, which
// shows up as a FailedCreate event quoting the violation. The same
// workloads with a compliant template get SuccessfulCreate (positive control).
func runWorkloads(ctx context.Context, env *checks.Env) checks.Outcome {
	var ws []workload
	suffix := randomSuffix()
	for _, t := range env.Topology.Isolated() {
		if len(t.Identities) == 0 || len(t.Namespaces) == 0 {
			continue
		}
		ns := t.Namespaces[0]
		dv, _ := VariantNamed(deploymentVariant)
		jv, _ := VariantNamed(jobVariant)
		// The Deployment as the first identity (the tenant's user), the
		// Job as the last (its ServiceAccount), so both kinds of identity
		// create workloads.
		for _, w := range []struct {
			kind string
			v    *Variant
			id   checks.Identity
		}{
			{"Deployment", &dv, t.Identities[0]}, {"Deployment", nil, t.Identities[0]},
			{"Job", &jv, t.Identities[len(t.Identities)-1]}, {"Job", nil, t.Identities[len(t.Identities)-1]},
		} {
			a, err := newActor(env, t.Name, ns, w.id)
			if err != nil {
				return checks.Outcome{Err: err}
			}
			what := "compliant"
			if w.v != nil {
				what = w.v.Name
			}
			ws = append(ws, workload{Kind: w.kind, Variant: w.v, Actor: a,
				Name: fmt.Sprintf("bulkhead-psa-%s-%s-%s", strings.ToLower(w.kind[:3]), what, suffix)})
		}
	}
	if len(ws) == 0 {
		return checks.Outcome{Skip: "no isolated tenant with an identity in this run"}
	}
	obs := make([]reports.Observation, len(ws))
	parallel(len(ws), len(ws), func(i int) {
		obs[i] = tryWorkload(ctx, env, ws[i])
	})
	return checks.Outcome{Observations: obs,
		Notes: []string{fmt.Sprintf("workloads created for real (deleted afterwards); controller events awaited up to %s", WorkloadTimeout)}}
}

func randomSuffix() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tryWorkload(ctx context.Context, env *checks.Env, w workload) reports.Observation {
	a := w.Actor
	o := reports.Observation{
		Role:   reports.RoleTest,
		Actor:  a.reportActor(),
		Target: reports.Target{Tenant: a.Tenant, Namespace: a.Namespace, Name: w.Name, Kind: strings.ToLower(w.Kind)},
		Method: "create " + strings.ToLower(w.Kind) + " (compliant pod template)",
		At:     time.Now().UTC(),
	}
	keyword := ""
	if w.Variant == nil {
		o.Role, o.Expected = reports.RoleControl, "SuccessfulCreate (pod created)"
	} else {
		keyword = w.Variant.Keyword
		o.Method = "create " + strings.ToLower(w.Kind) + " (" + w.Variant.Name + " pod template)"
		o.Expected = "FailedCreate: pod rejected by PodSecurity: " + keyword
	}
	created, ans := createWorkload(ctx, env, w)
	if created {
		defer deleteWorkload(context.WithoutCancel(ctx), env, w)
	}
	detail := []string{"API: " + ans.Detail()}
	if ws := a.Warnings.matching("PodSecurity"); len(ws) > 0 {
		detail = append(detail, "warning: "+strings.Join(ws, "; "))
	}
	if !created {
		o.Observed, o.Detail = "not created: "+admittedWord(ans), strings.Join(detail, "; ")
		return o
	}
	ev, err := awaitCreateEvent(ctx, a, w)
	if err != nil {
		o.Observed, o.Detail = "no controller event", strings.Join(append(detail, err.Error()), "; ")
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
		word, ok := JudgeRejection(403, ev.Message, keyword)
		o.Observed, o.OK = "FailedCreate: pod "+word, ok
	}
	return o
}

func workloadLabels(env *checks.Env, w workload) map[string]string {
	return fixtures.With(fixtures.CommonLabels(env.RunID), fixtures.LabelTenant, w.Actor.Tenant,
		fixtures.LabelRole, "psa-workload", "bulkhead.dev/workload", w.Name)
}

func workloadPod(env *checks.Env, w workload, args []string, restart corev1.RestartPolicy) corev1.PodTemplateSpec {
	p := &corev1.Pod{Spec: CompliantSpec(env.ProbeImage, args)}
	if w.Variant != nil {
		w.Variant.Mutate(p)
	}
	p.Spec.RestartPolicy = restart
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: workloadLabels(env, w)}, Spec: p.Spec}
}

func createWorkload(ctx context.Context, env *checks.Env, w workload) (bool, answer) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	a := w.Actor
	meta := metav1.ObjectMeta{Name: w.Name, Namespace: a.Namespace, Labels: workloadLabels(env, w)}
	create := metav1.CreateOptions{FieldManager: fixtures.ManagedBy}
	var err error
	switch w.Kind {
	case "Deployment":
		d := &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"bulkhead.dev/workload": w.Name}},
			Template: workloadPod(env, w, []string{"serve"}, corev1.RestartPolicyAlways),
		}}
		_, err = a.Client.AppsV1().Deployments(a.Namespace).Create(ctx, d, create)
	case "Job":
		j := &batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template:     workloadPod(env, w, []string{"version"}, corev1.RestartPolicyNever),
		}}
		_, err = a.Client.BatchV1().Jobs(a.Namespace).Create(ctx, j, create)
	default:
		return false, answer{Err: fmt.Errorf("unknown workload kind %q", w.Kind)}
	}
	ans := statusOf(err, 201)
	return ans.Admitted(), ans
}

// podsGoneWait bounds the wait for a deleted workload's pods to be gone.
const podsGoneWait = time.Minute

// deleteWorkload removes the workload and, through garbage collection, its
// ReplicaSet and pods, and waits until its pods are gone: until then they
// count against the tenant's quota (and the next check's room). It runs as
// the test process: clean-up must not depend on the tenant's rights.
func deleteWorkload(ctx context.Context, env *checks.Env, w workload) {
	dctx, cancel := withTimeout(ctx)
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
	sel := metav1.ListOptions{LabelSelector: "bulkhead.dev/workload=" + w.Name}
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
// Deployment, on the Job itself), read as the tenant.
func awaitCreateEvent(ctx context.Context, a actor, w workload) (corev1.Event, error) {
	kind := "Job"
	if w.Kind == "Deployment" {
		kind = "ReplicaSet"
	}
	sel := fields.SelectorFromSet(fields.Set{"involvedObject.kind": kind}).String()
	deadline := time.Now().Add(WorkloadTimeout)
	var lastErr error
	for {
		lctx, cancel := withTimeout(ctx)
		list, err := a.Client.CoreV1().Events(a.Namespace).List(lctx, metav1.ListOptions{FieldSelector: sel})
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
				return corev1.Event{}, fmt.Errorf("no SuccessfulCreate/FailedCreate event for %s %s/%s within %s (last list error: %v)", kind, a.Namespace, w.Name, WorkloadTimeout, lastErr)
			}
			return corev1.Event{}, fmt.Errorf("no SuccessfulCreate/FailedCreate event for %s %s/%s within %s", kind, a.Namespace, w.Name, WorkloadTimeout)
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
