package checks

import (
	"context"
	"time"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

// A NegativeControl is a fault that must make checks fail: what is broken,
// how to break it, and what must then fail and be named. Every check has
// one (or says in NoNegativeControl why it cannot): a check that passes
// whatever the cluster does proves nothing. The e2e suites inject each
// fault into the run's own reference tenants and assert the expectations;
// areas declare them next to their checks (NegativeControls in each area
// package), so a reader sees a check and its fault together.
type NegativeControl struct {
	// Fault says what is broken, in words: "tenant b allows all traffic".
	Fault string
	// Inject breaks the run's reference tenants and returns once the fault
	// is in effect; the Restore it returns undoes it and returns once the
	// isolation is back, so later checks see the tenants as they were.
	Inject func(ctx context.Context, env *Env) (Restore, error)
	// Expect are the checks the fault must make fail (or, with a Verdict,
	// the verdict they must reach), and what each must name.
	Expect []Expectation
	// Slow marks a fault that takes long to inject or to take effect.
	Slow bool
}

// Restore undoes a fault.
type Restore func(ctx context.Context) error

// Expectation is what one check must show under a fault.
type Expectation struct {
	Check string
	// Verdict the check must reach; Fail when empty. Pass says the check
	// must stay unaffected (defence in depth: the other end still holds).
	Verdict reports.Verdict
	// Names returns what the check's reason must contain: the leaking pods,
	// the identity, the quota key.
	Names func(env *Env) []string
	// Assert looks at more of the result and returns what is wrong.
	Assert func(env *Env, res reports.CheckResult) []string
}

// Want is the verdict e must see.
func (e Expectation) Want() reports.Verdict {
	if e.Verdict == "" {
		return reports.Fail
	}
	return e.Verdict
}

// NegativeEnv is env for running a check under an injected fault: its own
// memo (the fault must be probed afresh) and a short settle phase (the
// fault is already in effect when the check runs).
func NegativeEnv(env *Env) *Env {
	d := env.Derive()
	d.Timing.Enforcement = min(d.Timing.Enforcement, 5*time.Second)
	return d
}

// TenantNamespace is the first namespace of the run's tenant name, as
// negative controls name what they break and what must fail. A tenant the
// run does not have reads "(no tenant NAME)", which no reason contains.
func (env *Env) TenantNamespace(name string) string {
	t, ok := env.Topology.Tenant(name)
	if !ok || len(t.Namespaces) == 0 {
		return "(no tenant " + name + ")"
	}
	return t.Namespaces[0]
}
