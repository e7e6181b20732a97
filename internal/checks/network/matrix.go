package network

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Match is how one probe result compares with its path's expectation.
type Match int

const (
	// Matched: as expected (reachable where allowed, blocked where not).
	Matched Match = iota
	// Mismatched: the opposite (a leak, or an allowed path that failed).
	Mismatched
	// Inconclusive: the probe proves nothing either way (the exec failed, a
	// name did not resolve, an error inside the pod).
	Inconclusive
)

// Result is one path and what every round that counts for it saw.
type Result struct {
	Path
	Rounds []PathRound
}

// PathRound is one path in one round.
type PathRound struct {
	// N is the round's number (from 1, settle rounds included).
	N int
	// Start is when the round began: the time of a result the pod could
	// not report (its exec failed).
	Start time.Time
	Last  wire.ConnectResult
	Match Match
	// Observed is the outcome in the words reports use.
	Observed string
	Detail   string
	// Attempts is 2 where a path that must work missed and was probed
	// again in its round (Last is the second answer), else 1.
	Attempts int
}

// Last is the path's last counted round.
func (r Result) Last() PathRound {
	if len(r.Rounds) == 0 {
		return PathRound{Match: Inconclusive, Observed: "not probed"}
	}
	return r.Rounds[len(r.Rounds)-1]
}

// Matrix is the outcome of probing a set of paths in rounds (see
// probing.Rounds): settle until bulkhead's own setup is in effect, then
// count Timing.Rounds rounds, keeping every round's evidence.
type Matrix struct {
	Results []Result
	// Rounds probed in all, settle rounds included.
	Rounds int
	// Execs is the number of exec round trips used (the cost that matters:
	// one per source pod per round, plus one capability query per pod).
	Execs int
	// Elapsed is the wall time of all rounds.
	Elapsed time.Duration
	// Settled is true when bulkhead's own setup took effect within the
	// enforcement deadline; SettledAfter is how long that took, and
	// SettledRound the first round that counts for bulkhead-owned paths.
	Settled      bool
	SettledAfter time.Duration
	SettledRound int
	// SettleBlocks counts the settle-round results of paths that count from
	// round 1 which were not leaks: left out, as nothing proved them yet.
	SettleBlocks int
	// Retried counts the counted path rounds that missed once and were
	// probed again (see probing.Item.Retry); Recovered those of them that
	// matched the second time.
	Retried, Recovered int
	Protocols    []wire.Protocol
	Notes        []string
	// NotEnforced, when set, says the CNI does not enforce NetworkPolicy
	// (see EnforcementDiagnosis).
	NotEnforced string
}

// settleOf says when a path's rounds count. Paths that must work settle
// first (new probe pods take a moment to be reachable), and so do blocked
// paths whose expectation rests only on what bulkhead created (its
// reference tenants' policies, its control and sentinel namespaces). A
// blocked path into or out of a user's tenant counts from the first round:
// that tenant's policies were in place before bulkhead came.
func settleOf(top checks.Topology, p Path) probing.Settle {
	if p.Allowed || p.Via == ViaDNS {
		return probing.SettleFirst
	}
	s, d, ok := tenants(top, p)
	if ok && owned(s) && owned(d) {
		return probing.SettleFirst
	}
	return probing.CountAlways
}

// owned: bulkhead created the tenant and all of its policies.
func owned(t checks.Tenant) bool { return t.Reference || t.Sentinel || !t.Isolated }

// mustWorkTimeout is the deadline of a path that must work: longer than
// that of a path that must be blocked. A blocked path costs its whole
// timeout every round; a working one answers in milliseconds, so the
// longer deadline costs nothing unless it fails, and a lookup through a
// DNS search path, or an answer slowed by a busy node, is not a failure.
func mustWorkTimeout(connect time.Duration) time.Duration { return 3 * connect }

// Probe runs rounds over paths: every round probes every path with a fresh
// connection, one exec per source pod. Once settled, every round counts: a
// path that must be blocked and connects in any counted round is a leak,
// however the other rounds went. A source pod whose exec fails (after
// retries) makes its paths inconclusive in that round, nothing else.
func Probe(ctx context.Context, env *checks.Env, paths []Path) (*Matrix, error) {
	targets := make([]probing.Target, len(paths))
	items := make([]probing.Item, len(paths))
	for i, p := range paths {
		// What must work (an allowed path; every lookup is one) is asked
		// again when it misses.
		items[i] = probing.Item{Src: p.Src.Pod(), Settle: settleOf(env.Topology, p), Retry: p.Allowed}
		tg := p.Target("")
		if p.Allowed {
			tg.TimeoutMS = int(mustWorkTimeout(env.Timing.ConnectTimeout) / time.Millisecond)
		}
		targets[i] = probing.Target{Item: items[i], Target: tg}
	}
	match := func(i int, r wire.ConnectResult) bool {
		m, _, _ := Judge(paths[i], r)
		return m == Matched
	}
	run, err := probing.ConnectRounds(ctx, env.Prober(), targets, env.Timing.ConnectTimeout, match, env.Timing.RoundsOptions())
	if err != nil {
		return nil, err
	}
	m := &Matrix{Results: make([]Result, len(paths)), Rounds: len(run.Rounds), Execs: run.Execs, Elapsed: run.Elapsed,
		Settled: run.Settled, SettledAfter: run.SettledAfter, SettledRound: run.SettledAt + 1}
	failedExecs := map[string]int{}
	for k, round := range run.Rounds {
		for src, err := range round.Failed {
			failedExecs[fmt.Sprintf("%s (round %d): %v", src, round.N, err)]++
		}
		for i, p := range paths {
			if !run.Counts(items, i, k) {
				continue
			}
			pr := PathRound{N: round.N, Start: round.Start, Last: round.Results[i], Attempts: round.Attempts[i]}
			if err, failed := round.Failed[p.Src.Pod()]; failed {
				pr.Match, pr.Observed, pr.Detail = Inconclusive, "not probed", "the probe pod could not be asked this round: "+err.Error()
			} else {
				pr.Match, pr.Observed, pr.Detail = Judge(p, pr.Last)
			}
			if k < run.SettledAt && pr.Match != Mismatched {
				// A settle round of a path into or out of a user's tenant:
				// its leak counts (no grace), but a block proves nothing
				// while bulkhead's own pods, which prove it, may not answer
				// yet. The rounds from the settled one on prove it.
				m.SettleBlocks++
				continue
			}
			if pr.Attempts > 1 {
				m.Retried++
				if pr.Match == Matched {
					m.Recovered++
				}
			}
			m.Results[i].Rounds = append(m.Results[i].Rounds, pr)
		}
	}
	for i, p := range paths {
		m.Results[i].Path = p
	}
	for what := range failedExecs {
		m.Notes = append(m.Notes, "exec failed after retries, that pod's paths are inconclusive in that round: "+what)
	}
	return m, nil
}

// Observed words for a blocked path.
const (
	ObservedReachable = "reachable"
	ExpectReachable   = "reachable"
	ExpectBlocked     = "blocked"
	ExpectResolves    = "resolves"
)

// slowLookup (ms): a lookup this slow is said in the evidence; it is
// resolved under its own deadline, so it does not make the path look
// blocked or unproven, but a reader should see the time went there.
const slowLookup = 1000

// Judge decides whether a probe result matches the path's expectation, and
// describes what was observed.
//   - allowed paths must be reachable, and answered by the intended pod when
//     the server said who it is; a DNS failure, an error inside the pod or
//     a timeout noticed long past its deadline is inconclusive, not a
//     broken path;
//   - blocked paths must time out (a drop), or be refused or unreachable (a
//     policy that rejects; the positive controls show the same pods do
//     answer), in time; a DNS failure, an error or a starved timeout
//     proves nothing either way;
//   - name resolutions must resolve.
func Judge(p Path, r wire.ConnectResult) (m Match, observed, detail string) {
	observed = string(r.Outcome)
	detail = r.Detail
	if r.ResolveMS >= slowLookup {
		detail = strings.TrimPrefix(detail+fmt.Sprintf("; the name took %.1fs to resolve", r.ResolveMS/1000), "; ")
	}
	if r.Peer != nil {
		answered := "answered by " + r.Peer.Namespace + "/" + r.Peer.Pod
		detail = strings.TrimPrefix(detail+"; "+answered, "; ")
	}
	inconclusive := r.Outcome == wire.Failed || r.Outcome == wire.Unsupported || r.Outcome == ""
	if r.Starved() && p.Via != ViaDNS {
		// The pod noticed its deadline late: an answer that came in time
		// may have lost to the timer.
		detail = strings.TrimPrefix(detail+"; inconclusive: "+r.StarvedWhy(), "; ")
		return Inconclusive, observed, detail
	}
	switch {
	case p.Via == ViaDNS:
		if r.Outcome == wire.Reachable {
			return Matched, resolvedWord(r), detail
		}
		if inconclusive {
			return Inconclusive, observed, detail
		}
		return Mismatched, resolvedWord(r), detail
	case p.Allowed:
		switch {
		case r.Outcome == wire.Reachable && r.Peer != nil && p.Dst.Name != "" && (r.Peer.Pod != p.Dst.Name || r.Peer.Namespace != p.Dst.Namespace):
			return Mismatched, "reachable (wrong pod)", detail
		case r.Outcome == wire.Reachable:
			return Matched, observed, detail
		case inconclusive:
			return Inconclusive, observed, detail
		}
		return Mismatched, observed, detail
	default:
		switch r.Outcome {
		case wire.Timeout, wire.Refused, wire.Unreachable:
			return Matched, observed, detail
		case wire.Reachable:
			return Mismatched, observed, detail
		}
		return Inconclusive, observed, strings.TrimPrefix(detail+"; inconclusive: the path was not tested", "; ")
	}
}

func resolvedWord(r wire.ConnectResult) string {
	if r.Outcome == wire.Reachable {
		return "resolves"
	}
	return string(r.Outcome)
}

// ProbeOnce probes paths once (one exec per source pod, no settling) and
// judges each. Negative-control tests use it to wait until an injected
// fault is in effect.
func ProbeOnce(ctx context.Context, env *checks.Env, paths []Path) ([]Result, error) {
	once := env.Derive()
	once.Probes = env.Prober()
	once.Timing.Rounds, once.Timing.Enforcement = 1, 0
	m, err := Probe(ctx, once, paths)
	if err != nil {
		return nil, err
	}
	for _, r := range m.Results {
		if l := r.Last(); l.Observed == "not probed" {
			return nil, fmt.Errorf("%s: %s", r.Path, l.Detail)
		}
	}
	return m.Results, nil
}
