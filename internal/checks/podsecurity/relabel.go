package podsecurity

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

var dryRunPatch = metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: fixtures.ManagedBy}

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
func LabelPatch(labels map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}}) // maps of strings and nil always encode
	return b
}

// runRelabel is PSA-003: tenants cannot change the Pod Security labels of
// their own namespace. Positive controls: the same identity can patch
// labels of an object in that namespace, and the test process (an
// administrator) can apply the same namespace patch, so the patch is valid
// and the refusal is about who asks.
func runRelabel(ctx context.Context, env *checks.Env) checks.Outcome {
	actors, err := tenantActors(env)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	if len(actors) == 0 {
		return checks.Outcome{Skip: "no isolated tenant with an identity in this run"}
	}
	type job struct {
		a     *actor // nil: the administrator
		ns    string
		r     relabel
		ownSA bool // the control on the tenant's own object
	}
	var jobs []job
	namespaces := map[string]bool{}
	for i := range actors {
		a := &actors[i]
		for _, r := range Relabels {
			jobs = append(jobs, job{a: a, ns: a.Namespace, r: r})
		}
		jobs = append(jobs, job{a: a, ns: a.Namespace, r: Relabels[0], ownSA: true})
		if !namespaces[a.Namespace] {
			namespaces[a.Namespace] = true
			jobs = append(jobs, job{ns: a.Namespace, r: Relabels[0]})
		}
	}
	obs := make([]reports.Observation, len(jobs))
	parallel(len(jobs), 16, func(i int) {
		j := jobs[i]
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		o := reports.Observation{At: time.Now().UTC()}
		var err error
		switch {
		case j.a == nil:
			o.Role, o.Actor = reports.RoleControl, reports.Actor{Identity: "the test process (administrator)"}
			o.Target = reports.Target{Namespace: j.ns, Name: j.ns, Kind: "namespace"}
			if tn, ok := env.Topology.TenantOfNamespace(j.ns); ok {
				o.Target.Tenant = tn.Name
			}
			o.Method = "dry-run patch namespace labels (" + j.r.Name + ")"
			_, err = env.Kube.Core.CoreV1().Namespaces().Patch(ctx, j.ns, types.MergePatchType, LabelPatch(j.r.Labels), dryRunPatch)
		case j.ownSA:
			o.Role, o.Actor = reports.RoleControl, j.a.reportActor()
			o.Target = reports.Target{Tenant: j.a.Tenant, Namespace: j.ns, Name: "default", Kind: "serviceaccount"}
			o.Method = "dry-run patch serviceaccount labels"
			control := map[string]any{"bulkhead.dev/relabel-control": env.RunID}
			_, err = j.a.Client.CoreV1().ServiceAccounts(j.ns).Patch(ctx, "default", types.MergePatchType, LabelPatch(control), dryRunPatch)
		default:
			o.Role, o.Actor = reports.RoleTest, j.a.reportActor()
			o.Target = reports.Target{Tenant: j.a.Tenant, Namespace: j.ns, Name: j.ns, Kind: "namespace"}
			o.Method = "dry-run patch namespace labels (" + j.r.Name + ")"
			_, err = j.a.Client.CoreV1().Namespaces().Patch(ctx, j.ns, types.MergePatchType, LabelPatch(j.r.Labels), dryRunPatch)
		}
		ans := statusOf(err, 200)
		o.Detail = ans.Detail()
		if o.Role == reports.RoleControl {
			o.Expected, o.Observed, o.OK = "admitted", admittedWord(ans), ans.Admitted()
		} else {
			o.Expected = "denied (403 Forbidden)"
			o.Observed, o.OK = deniedWord(ans)
		}
		obs[i] = o
	})
	return checks.Outcome{Observations: obs}
}

// deniedWord judges an answer that should be a denial: forbidden by
// authorization (403) or by an admission policy (403/422 with a message).
// Not found, conflicts and transport errors prove nothing.
func deniedWord(a answer) (string, bool) {
	switch {
	case a.Err != nil:
		return "error", false
	case a.Admitted():
		return "admitted", false
	case a.Status == 403:
		return "denied (403)", true
	case a.Status == 422:
		return "denied by admission (422)", true
	}
	return fmt.Sprintf("rejected (%d), not a denial", a.Status), false
}
