package apisweep

import (
	"context"
	"fmt"
	"time"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// SweepKey is the memo key of the shared sweep. A negative-control test
// runs checks on a derived env (its own memo) to sweep afresh.
const SweepKey = "apisweep/sweep"

// Tuning of the sweep.
const (
	// parallel bounds concurrent access reviews and requests from
	// bulkhead's process, and concurrent calls inside each pod.
	parallel = 32
	// requestTimeout bounds one request (a watch ends after 1s server-side).
	requestTimeout = 15 * time.Second
	// podReadyTimeout bounds the wait for the API probe pods.
	podReadyTimeout = 2 * time.Minute
	// execTimeout bounds one exec that runs a pod's whole batch.
	execTimeout = 5 * time.Minute
)

// Sweep is everything the API checks tried in one go: the rbac and secrets
// checks each read their slice of it.
type Sweep struct {
	Results []Result
	// Notes by check ID ("" for every check).
	Notes map[string][]string
	// Canaries planted for the sweep (removed when it ended).
	Canaries []fixtures.Canary
	// Pods are what each API probe pod ("ns/name") said about itself.
	Pods    map[string]PodFacts
	Elapsed time.Duration

	canaryValues [][]byte
	probeOutputs [][]byte
}

// CanaryValues are the values of the canaries the sweep planted, for tests
// that assert they appear in no result, log or probe output. Never log or
// store them.
func (s *Sweep) CanaryValues() [][]byte { return s.canaryValues }

// ProbeOutputs are the raw standard outputs of every exec the sweep ran
// into a pod, for the same tests.
func (s *Sweep) ProbeOutputs() [][]byte { return s.probeOutputs }

// Outcome is the slice of the sweep that belongs to check id.
func (s *Sweep) Outcome(id string) checks.Outcome {
	var out checks.Outcome
	for _, r := range s.Results {
		if r.Check == id {
			out.Observations = append(out.Observations, r.Observation())
		}
	}
	out.Notes = append(append(out.Notes, s.Notes[id]...), s.Notes[""]...)
	return out
}

// Shared returns the run's sweep, running it on first use.
func Shared(ctx context.Context, env *checks.Env) (*Sweep, error) {
	return checks.Memo(env, SweepKey, func() (*Sweep, error) { return sweep(ctx, env) })
}

// sweep is the sweep: discover, plant the fixtures, plan, review, request,
// judge; the fixtures are removed whatever happens.
func sweep(ctx context.Context, env *checks.Env) (_ *Sweep, err error) {
	start := time.Now()
	log := env.Logger()
	sw := &Sweep{Notes: map[string][]string{}}
	note := func(format string, args ...any) { sw.Notes[""] = append(sw.Notes[""], fmt.Sprintf(format, args...)) }

	disc, err := discover(env)
	if err != nil {
		return nil, err
	}
	if disc.partial != nil {
		note("discovery was partial, these API groups were not tried: %v", disc.partial)
	}
	sc := Scope{RunID: env.RunID, Top: env.Topology, Canaries: map[string]fixtures.Canary{},
		CanaryPods: map[string]string{}, TokenPods: map[string]string{},
		Resources: NamespacedResources(disc.lists), ClusterResources: ClusterScopedResources(disc.lists)}
	sc.Runner = whoAmI(ctx, env)
	if sc.Node, err = someNode(ctx, env); err != nil {
		return nil, err
	}

	fx := newFixtureSet(env)
	defer fx.teardown(ctx)
	if err := fx.setup(ctx, &sc, disc.lists); err != nil {
		return nil, err
	}
	sw.Canaries, sw.canaryValues = fx.canaries, fx.values
	sw.Notes[""] = append(sw.Notes[""], fx.notes...)

	// The access reviews need no pod: they run while the API probe pods
	// start, and alongside the requests.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- fx.waitReady(ctx) }()
	model := actors.Of(env)
	asked, notHeld := prefetch(ctx, model, sc)
	sc.Grants = modelGrants{ctx: ctx, m: model}
	attempts := Plan(sc)
	tPlanned := time.Now()
	reviewed := make(chan []*Review, 1)
	go func() { reviewed <- askReviews(ctx, env, attempts) }()
	if err := <-ready; err != nil {
		cancel()
		<-reviewed
		return nil, err
	}
	log.Info("API sweep: fixtures ready", "canaries", len(sw.Canaries), "tokenPods", len(sc.TokenPods), "anonymousPod", sc.AnonymousPod)
	tReady := time.Now()
	ans, err := makeRequests(ctx, env, sc, attempts)
	tAnswered := time.Now()
	reviews := <-reviewed
	sw.probeOutputs = ans.outputs
	if err != nil {
		return nil, err
	}
	log.Debug("API sweep: phases", "planned", tPlanned.Sub(start).Round(time.Millisecond),
		"pods ready", tReady.Sub(start).Round(time.Millisecond), "requests answered", tAnswered.Sub(start).Round(time.Millisecond),
		"reviews answered", time.Since(start).Round(time.Millisecond))
	sw.Pods = ans.facts
	for i, a := range attempts {
		v := Judge(a, reviews[i], ans.answers[i])
		at := start
		if ans.answers[i] != nil && !ans.answers[i].Started.IsZero() {
			at = ans.answers[i].Started
		}
		sw.Results = append(sw.Results, Result{Attempt: a, Review: reviews[i], Answer: ans.answers[i], Pod: ans.pods[i], Verdict: v, At: at})
	}
	for _, p := range Planners() {
		if p.Notes != nil {
			sw.Notes[p.Check] = append(sw.Notes[p.Check], p.Notes(sc, sw)...)
		}
	}
	sw.Elapsed = time.Since(start)
	st := ans.stats
	note("API sweep: %d attempts (%d access reviews, %d requests from bulkhead's process, %d from inside %d pod(s)) in %s",
		len(attempts), countReviews(attempts), st.process, st.inPod, st.pods, sw.Elapsed.Round(10*time.Millisecond))
	note("identities' own grants: %d of %d rights asked in their own namespaces are not held; those are not tried there as controls, and a denial of one elsewhere rests on another request the identity may make",
		notHeld, asked)
	log.Info("API sweep: done", "attempts", len(attempts), "elapsed", sw.Elapsed.Round(time.Millisecond))
	return sw, nil
}

func countReviews(attempts []Attempt) int {
	n := 0
	for _, a := range attempts {
		if a.Review {
			n++
		}
	}
	return n
}
