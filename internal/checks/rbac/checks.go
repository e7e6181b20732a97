package rbac

import (
	"context"
	"fmt"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// SweepFootprint is what the API sweep (shared by the rbac checks and
// SEC-001..003) puts into the cluster, only into namespaces bulkhead created.
var SweepFootprint = []checks.Footprint{{Where: checks.OwnNamespaces, Kinds: []string{"Secret", "Pod", "NetworkPolicy", "CiliumNetworkPolicy"},
	What:     "per reference tenant a canary Secret, an API probe pod with its ServiceAccount's token and an egress policy to the API server; two API probe pods in the control namespace",
	Lifetime: "while the API sweep runs; deleted when it ends"}}

// Checks returns the rbac checks.
func Checks() []checks.Check {
	return []checks.Check{
		{
			ID: IDCrossNamespace, Area: checks.RBAC,
			Slow: true,
			Run:  SliceRun(IDCrossNamespace, "no isolated tenant with identities in this run"),

			Creates: SweepFootprint,
		},
		{
			ID: IDClusterScope, Area: checks.RBAC,
			Run: SliceRun(IDClusterScope, "no isolated tenant with identities in this run"),

			Creates: SweepFootprint,
		},
		{
			ID: IDEscalation, Area: checks.RBAC,
			Run: SliceRun(IDEscalation, "no isolated tenant with identities in this run"),

			Creates: SweepFootprint,
		},
		{
			ID: IDAnonymous, Area: checks.RBAC,
			Run: SliceRun(IDAnonymous, "no control namespace in this run to run a pod without a token in"),

			Creates: SweepFootprint,
		},
	}
}

// SliceRun builds a check's Run from the shared sweep: the check's slice of
// its results, skipped when the run has nothing to test.
func SliceRun(id, skipWhy string) func(context.Context, *checks.Env) checks.Outcome {
	return func(ctx context.Context, env *checks.Env) checks.Outcome {
		sw, err := Shared(ctx, env)
		if err != nil {
			return checks.Outcome{Err: fmt.Errorf("run the API sweep: %w", err)}
		}
		out := sw.Outcome(id)
		if !hasTest(out.Observations) {
			return checks.Outcome{Skip: skipWhy, Notes: out.Notes}
		}
		return out
	}
}

func hasTest(obs []reports.Observation) bool {
	for _, o := range obs {
		if o.Role == reports.RoleTest {
			return true
		}
	}
	return false
}
