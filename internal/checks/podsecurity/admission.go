package podsecurity

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

var dryRunCreate = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: fixtures.ManagedBy}

// runPodAdmission is PSA-001: every forbidden variant, as every identity of
// every isolated tenant, by server-side dry-run; the compliant pod as the
// same identities is the positive control.
func runPodAdmission(ctx context.Context, env *checks.Env) checks.Outcome {
	actors, err := tenantActors(env)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	if len(actors) == 0 {
		return checks.Outcome{Skip: "no isolated tenant with an identity in this run"}
	}
	type job struct {
		a       actor
		variant *Variant // nil: the compliant pod
	}
	var jobs []job
	for _, a := range actors {
		jobs = append(jobs, job{a: a})
		for i := range Variants {
			jobs = append(jobs, job{a: a, variant: &Variants[i]})
		}
	}
	obs := make([]reports.Observation, len(jobs))
	labels := fixtures.With(fixtures.CommonLabels(env.RunID), fixtures.LabelRole, "psa-dry-run")
	parallel(len(jobs), 16, func(i int) {
		j := jobs[i]
		name, pod := PodName("compliant"), (*corev1.Pod)(nil)
		if j.variant != nil {
			name = PodName(j.variant.Name)
			pod = Forbidden(*j.variant, j.a.Namespace, name, env.ProbeImage, labels)
		} else {
			pod = Compliant(j.a.Namespace, name, env.ProbeImage, labels)
		}
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		at := time.Now().UTC()
		_, err := j.a.Client.CoreV1().Pods(j.a.Namespace).Create(ctx, pod, dryRunCreate)
		ans := statusOf(err, 201)
		o := reports.Observation{
			Actor:  j.a.reportActor(),
			Target: reports.Target{Tenant: j.a.Tenant, Namespace: j.a.Namespace, Name: name, Kind: "pod"},
			Detail: ans.Detail(),
			At:     at,
		}
		if j.variant == nil {
			o.Role, o.Method, o.Expected = reports.RoleControl, "dry-run create pod (compliant with restricted)", "admitted"
			o.OK = ans.Admitted()
			o.Observed = admittedWord(ans)
		} else {
			o.Role, o.Method = reports.RoleTest, "dry-run create pod ("+j.variant.Name+")"
			o.Expected = "rejected by PodSecurity: " + j.variant.Keyword
			if ans.Err != nil {
				o.Observed = "error"
			} else {
				o.Observed, o.OK = JudgeRejection(ans.Status, ans.Message, j.variant.Keyword)
			}
		}
		obs[i] = o
	})
	out := checks.Outcome{Observations: obs}
	out.Notes = append(out.Notes, namespacePolicyNotes(ctx, env, actors)...)
	return out
}

func admittedWord(a answer) string {
	switch {
	case a.Err != nil:
		return "error"
	case a.Admitted():
		return "admitted"
	}
	return fmt.Sprintf("rejected (%d)", a.Status)
}

// namespacePolicyNotes records the Pod Security labels of the tenant
// namespaces as the run found them.
func namespacePolicyNotes(ctx context.Context, env *checks.Env, actors []actor) []string {
	seen := map[string]bool{}
	var notes []string
	for _, a := range actors {
		if seen[a.Namespace] {
			continue
		}
		seen[a.Namespace] = true
		ns, err := env.Kube.Core.CoreV1().Namespaces().Get(ctx, a.Namespace, metav1.GetOptions{})
		if err != nil {
			notes = append(notes, fmt.Sprintf("namespace %s: reading its Pod Security labels failed: %v", a.Namespace, err))
			continue
		}
		notes = append(notes, fmt.Sprintf("namespace %s: %s", a.Namespace, psaLabels(ns.Labels)))
	}
	return notes
}

// PSA label keys.
const (
	LabelEnforce        = "pod-security.kubernetes.io/enforce"
	LabelEnforceVersion = "pod-security.kubernetes.io/enforce-version"
)

func psaLabels(l map[string]string) string {
	var parts []string
	for k, v := range l {
		if strings.HasPrefix(k, "pod-security.kubernetes.io/") {
			parts = append(parts, strings.TrimPrefix(k, "pod-security.kubernetes.io/")+"="+v)
		}
	}
	if len(parts) == 0 {
		return "no Pod Security labels (the cluster default applies)"
	}
	sort.Strings(parts)
	return "Pod Security " + strings.Join(parts, ", ")
}
