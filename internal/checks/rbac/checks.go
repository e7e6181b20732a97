package rbac

import (
	"context"
	"fmt"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Checks returns the rbac checks.
func Checks() []checks.Check {
	return []checks.Check{
		{
			ID: IDCrossNamespace, Area: checks.RBAC,
			Slow: true,
			Run:  SliceRun(IDCrossNamespace, "no isolated tenant with identities in this run"),
		},
		{
			ID: IDClusterScope, Area: checks.RBAC,
			Run: SliceRun(IDClusterScope, "no isolated tenant with identities in this run"),
		},
		{
			ID: IDEscalation, Area: checks.RBAC,
			Run: SliceRun(IDEscalation, "no isolated tenant with identities in this run"),
		},
		{
			ID: IDAnonymous, Area: checks.RBAC,
			Run: SliceRun(IDAnonymous, "no control namespace in this run to run a pod without a token in"),
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
