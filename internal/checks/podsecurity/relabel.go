package podsecurity

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// relabel is one way a tenant might weaken Pod Security on its namespace.
type relabel struct {
	Name   string
	Labels map[string]any // nil value: remove the label
}

// Relabels are the label changes PSA-003 tries.
var Relabels = []relabel{
	{Name: "enforce=privileged", Labels: map[string]any{LabelEnforce: "privileged"}},
	{Name: "remove enforce", Labels: map[string]any{LabelEnforce: nil}},
	{Name: "enforce-version=v1.0", Labels: map[string]any{LabelEnforceVersion: "v1.0"}},
}

// LabelPatch is the JSON merge patch that sets (or, for nil, removes) labels.
func LabelPatch(labels map[string]any) []byte { return tenantapi.LabelPatch(labels) }

// validPatchKey: an administrator's dry-run of the same patch of the same
// namespace was admitted, so the patch is valid and a refusal of the
// tenant's is about who asks.
func validPatchKey(ns string, r relabel) string {
	return fmt.Sprintf("an administrator may patch namespace %s (%s)", ns, r.Name)
}

// runRelabel is PSA-003: tenants cannot change the Pod Security labels of
// their own namespace. Every identity of every isolated tenant tries (being
// refused is the point, so there is no right to hold first); a refusal
// counts only when RBAC names that identity or an admission policy refused
// it, and only for a patch an administrator's dry-run shows valid.
func runRelabel(ctx context.Context, env *checks.Env) checks.Outcome {
	model := actors.Of(env)
	type job struct {
		a  *actors.Actor // nil: the administrator
		ns string
		r  relabel
	}
	var jobs []job
	var notEvaluated []string
	for _, t := range env.Topology.Isolated() {
		if len(t.Identities) == 0 {
			notEvaluated = append(notEvaluated, fmt.Sprintf("tenant %s: no identities in the config", t.Name))
			continue
		}
		for _, ns := range t.Namespaces {
			for _, r := range Relabels {
				jobs = append(jobs, job{ns: ns, r: r})
			}
			for _, id := range t.Identities {
				a, err := model.Actor(t.Name, ns, id)
				if err != nil {
					return checks.Outcome{Err: err}
				}
				for _, r := range Relabels {
					jobs = append(jobs, job{a: &a, ns: ns, r: r})
				}
			}
		}
	}
	if len(jobs) == 0 {
		return checks.Outcome{Skip: nothingToTry(notEvaluated)}
	}
	obs := make([]reports.Observation, len(jobs))
	tenantapi.Parallel(len(jobs), 16, func(i int) {
		j := jobs[i]
		ctx, cancel := tenantapi.WithTimeout(ctx)
		defer cancel()
		o := reports.Observation{At: time.Now().UTC(), Method: "dry-run patch namespace labels (" + j.r.Name + ")",
			Target: reports.Target{Namespace: j.ns, Name: j.ns, Kind: "namespace"}}
		if tn, ok := env.Topology.TenantOfNamespace(j.ns); ok {
			o.Target.Tenant = tn.Name
		}
		patch := LabelPatch(j.r.Labels)
		if j.a == nil {
			o.Role, o.Actor, o.Expected = reports.RoleControl, reports.Actor{Identity: "the test process (administrator)"}, "admitted"
			o.Proves = []string{validPatchKey(j.ns, j.r)}
			_, err := env.Kube.Core.CoreV1().Namespaces().Patch(ctx, j.ns, types.MergePatchType, patch, tenantapi.DryRunPatch)
			ans := tenantapi.Of(err, 200)
			o.Detail = ans.Detail()
			tenantapi.JudgeAdmitted(ans).Apply(&o)
		} else {
			o.Role, o.Actor, o.Expected = reports.RoleTest, j.a.ReportActor(), "denied (RBAC naming the identity, or an admission policy)"
			o.Needs = []string{validPatchKey(j.ns, j.r)}
			_, err := j.a.Clients.Core.CoreV1().Namespaces().Patch(ctx, j.ns, types.MergePatchType, patch, tenantapi.DryRunPatch)
			ans := tenantapi.Of(err, 200)
			o.Detail = ans.Detail()
			tenantapi.JudgeDenied(ans, j.a.Identity).Apply(&o)
		}
		obs[i] = o
	})
	return checks.Outcome{Observations: obs, NotEvaluated: notEvaluated}
}
