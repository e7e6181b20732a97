package podsecurity

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// mayCreatePodKey: the identity's compliant pod was admitted in the
// namespace, so a refusal of a forbidden one is about what it asks for.
func mayCreatePodKey(a actors.Actor) string {
	return fmt.Sprintf("%s may create a restricted-compliant pod in %s", a.Identity, a.Namespace)
}

// runPodAdmission is PSA-001: every forbidden variant, by server-side
// dry-run, as every identity of every isolated tenant that may create pods
// (one RBAC forbids is not applicable); the compliant pod as the same
// identity is the positive control each refusal rests on.
func runPodAdmission(ctx context.Context, env *checks.Env) checks.Outcome {
	cov, err := actors.Of(env).EachNamespace(ctx, actors.Create("pods"))
	if err != nil {
		return checks.Outcome{Err: err}
	}
	if out, nobody := tenantapi.NobodyMayTry(cov); nobody {
		return out
	}
	type job struct {
		a       actors.Actor
		variant *Variant // nil: the compliant pod
	}
	var jobs []job
	var namespaces []string
	for _, s := range cov.Scopes {
		namespaces = append(namespaces, s.Namespace)
		for _, a := range s.Actors {
			jobs = append(jobs, job{a: a})
			for i := range Variants {
				jobs = append(jobs, job{a: a, variant: &Variants[i]})
			}
		}
	}
	obs := make([]reports.Observation, len(jobs))
	labels := fixtures.With(fixtures.CommonLabels(env.RunID), fixtures.LabelRole, "psa-dry-run")
	tenantapi.Parallel(len(jobs), 16, func(i int) {
		j := jobs[i]
		name := PodName("compliant")
		pod := Compliant(j.a.Namespace, name, env.ProbeImage, labels)
		if j.variant != nil {
			name = PodName(j.variant.Name)
			pod = Forbidden(*j.variant, j.a.Namespace, name, env.ProbeImage, labels)
		}
		ctx, cancel := tenantapi.WithTimeout(ctx)
		defer cancel()
		at := time.Now().UTC()
		_, err := j.a.Clients.Core.CoreV1().Pods(j.a.Namespace).Create(ctx, pod, tenantapi.DryRunCreate)
		ans := tenantapi.Of(err, 201)
		o := reports.Observation{
			Actor:  j.a.ReportActor(),
			Target: reports.Target{Tenant: j.a.Tenant, Namespace: j.a.Namespace, Name: name, Kind: "pod"},
			Detail: ans.Detail(),
			At:     at,
		}
		if j.variant == nil {
			o.Role, o.Method, o.Expected = reports.RoleControl, "dry-run create pod (compliant with restricted)", "admitted"
			o.Proves = []string{mayCreatePodKey(j.a)}
			tenantapi.JudgeAdmitted(ans).Apply(&o)
		} else {
			o.Role, o.Method = reports.RoleTest, "dry-run create pod ("+j.variant.Name+")"
			o.Expected = "rejected by PodSecurity: " + j.variant.Keyword
			o.Needs = []string{mayCreatePodKey(j.a)}
			judgeRejection(ans, j.variant.Keyword).Apply(&o)
		}
		obs[i] = o
	})
	out := checks.Outcome{Observations: obs}
	out.Notes = append(out.Notes, namespacePolicyNotes(ctx, env, namespaces)...)
	cov.Apply(&out)
	return out
}

// namespacePolicyNotes records the Pod Security labels of the tenant
// namespaces as the run found them.
func namespacePolicyNotes(ctx context.Context, env *checks.Env, namespaces []string) []string {
	seen := map[string]bool{}
	var notes []string
	for _, name := range namespaces {
		if seen[name] {
			continue
		}
		seen[name] = true
		ns, err := env.Kube.Core.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			notes = append(notes, fmt.Sprintf("namespace %s: reading its Pod Security labels failed: %v", name, err))
			continue
		}
		notes = append(notes, fmt.Sprintf("namespace %s: %s", name, psaLabels(ns.Labels)))
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
