package apisweep

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// A Planner is one check's part of the sweep: the attempts it plans from
// the scope, and the facts its evidence notes once the sweep has run.
type Planner struct {
	Check string
	Plan  func(Scope) []Attempt
	// Notes, when set, are the check's notes (coverage, what was planted).
	Notes func(Scope, *Sweep) []string
}

// The planners of every check that reads the sweep. The rbac and secrets
// packages register theirs when they are loaded, so one sweep serves both
// areas without either importing the other.
var registry struct {
	mu       sync.Mutex
	planners []Planner
}

// Register adds check planners; a check registered twice is a programming
// error and panics.
func Register(ps ...Planner) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	for _, p := range ps {
		if p.Check == "" || p.Plan == nil {
			panic("apisweep: incomplete planner " + p.Check)
		}
		if slices.ContainsFunc(registry.planners, func(q Planner) bool { return q.Check == p.Check }) {
			panic("apisweep: planner " + p.Check + " registered twice")
		}
		registry.planners = append(registry.planners, p)
	}
}

// Planners are the registered planners, by check ID.
func Planners() []Planner {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	out := slices.Clone(registry.planners)
	slices.SortFunc(out, func(a, b Planner) int { return strings.Compare(a.Check, b.Check) })
	return out
}

// Plan is every attempt of every registered check.
func Plan(s Scope) []Attempt {
	var out []Attempt
	for _, p := range Planners() {
		out = append(out, p.Plan(s)...)
	}
	return out
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
		if !HasTest(out.Observations) {
			return checks.Outcome{Skip: skipWhy, Notes: out.Notes}
		}
		return out
	}
}

// HasTest reports whether obs hold a test (not only positive controls).
func HasTest(obs []reports.Observation) bool {
	return slices.ContainsFunc(obs, func(o reports.Observation) bool { return o.Role == reports.RoleTest })
}
