package exposure

import (
	"context"
	"fmt"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// attempt is one API request a check makes as a tenant identity, every
// round.
type attempt struct {
	Tenant   checks.Tenant
	Actor    actors.Actor
	Role     reports.Role
	Target   reports.Target
	Method   string
	Expected string
	// Do sends the request.
	Do func(ctx context.Context) tenantapi.Answer
	// Judge turns the answer into what was observed.
	Judge func(tenantapi.Answer) tenantapi.Judged
	// Needs (tests) and Proves (controls) are proof keys, matched per round.
	Needs, Proves []string
}

// result is one attempt's answer in one round.
type result struct {
	Answer tenantapi.Answer
	At     time.Time
}

// settleOf says when an attempt's rounds count. Against a tenant bulkhead
// created (its RBAC, quota and admission policies made moments ago), rounds
// count once every such attempt matched: a policy takes a moment to be in
// effect. A user's tenant had its policies before bulkhead came: every
// round counts from the first, so an answer that flaps is seen.
func settleOf(t checks.Tenant) probing.Settle {
	if t.Reference {
		return probing.SettleFirst
	}
	return probing.CountAlways
}

// runAttempts makes every attempt in rounds on the probing engine (settle
// once, then env.Timing.Rounds counted rounds, all kept), the attempts of
// one identity in one namespace standing for one source. Every counted
// round is evidence: an admission in any of them is a leak.
func runAttempts(ctx context.Context, env *checks.Env, as []attempt) ([]reports.Observation, []string, error) {
	items := make([]probing.Item, len(as))
	for i, a := range as {
		// The engine groups items by source; for API requests the source is
		// the identity acting in a namespace.
		items[i] = probing.Item{Src: probing.Pod{Namespace: a.Actor.Namespace, Name: a.Actor.Identity.User}, Settle: settleOf(a.Tenant)}
	}
	probe := func(ctx context.Context, _ probing.Pod, idx []int) ([]result, error) {
		out := make([]result, len(idx))
		tenantapi.Parallel(len(idx), 8, func(j int) {
			rctx, cancel := tenantapi.WithTimeout(ctx)
			defer cancel()
			out[j].At = time.Now().UTC()
			out[j].Answer = as[idx[j]].Do(rctx)
		})
		return out, nil
	}
	match := func(i int, r result) bool { return as[i].Judge(r.Answer).OK }
	run, err := probing.Rounds(ctx, items, probe, match, env.Timing.RoundsOptions())
	if err != nil {
		return nil, nil, err
	}
	var obs []reports.Observation
	for k, round := range run.Rounds {
		for i, a := range as {
			if !run.Counts(items, i, k) {
				continue
			}
			r := round.Results[i]
			o := reports.Observation{Role: a.Role, Actor: a.Actor.ReportActor(), Target: a.Target, Method: a.Method,
				Expected: a.Expected, Detail: r.Answer.Detail(), Round: round.N, At: r.At,
				Needs: a.Needs, Proves: a.Proves}
			a.Judge(r.Answer).Apply(&o)
			obs = append(obs, o)
		}
	}
	notes := []string{fmt.Sprintf("%d requests in %d round(s), %s", len(as), len(run.Rounds), run.Elapsed.Round(10*time.Millisecond))}
	switch {
	case !run.Settled:
		notes = append(notes, fmt.Sprintf("bulkhead's own tenants' policies had not all taken effect by the enforcement deadline (round %d): counting started anyway", run.SettledAt+1))
	case run.SettledAt > 0:
		notes = append(notes, fmt.Sprintf("bulkhead's own tenants' policies took effect after %s (round %d); from there every round counts", run.SettledAfter.Round(100*time.Millisecond), run.SettledAt+1))
	}
	return obs, notes, nil
}
