package network

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Result is one path and what the last round saw on it.
type Result struct {
	Path
	Last wire.ConnectResult
	// OK is true when Last matches the expectation.
	OK bool
	// Observed is Last's outcome in the words reports use.
	Observed string
	Detail   string
	// Attempts is how many rounds probed this path.
	Attempts int
}

// Matrix is the outcome of probing a set of paths until they all matched
// their expectation in the same round, or the enforcement deadline passed.
type Matrix struct {
	Results []Result
	// Rounds probed; each round probes every path once.
	Rounds int
	// Execs is the number of exec round trips used (the cost that matters:
	// one per source pod per round, plus one capability query per pod).
	Execs int
	// Elapsed is the wall time of all rounds.
	Elapsed time.Duration
	// Converged is true when a round matched every expectation; SettledAfter
	// is then the time from the first round to the start of that round
	// (how long policy took to be enforced, as seen by bulkhead).
	Converged    bool
	SettledAfter time.Duration
	Protocols    []wire.Protocol
	Notes        []string
	// NotEnforced, when set, says the CNI does not enforce NetworkPolicy
	// (see EnforcementDiagnosis).
	NotEnforced string
}

// Probe runs rounds over paths. Every round probes every path with a fresh
// connection, so the verdict rests on one complete round in which every path
// matched (or on the last round when the deadline passed): a path that is
// blocked only now and then cannot pass by luck.
func Probe(ctx context.Context, env *checks.Env, paths []Path) (*Matrix, error) {
	m := &Matrix{Results: make([]Result, len(paths))}
	for i, p := range paths {
		m.Results[i].Path = p
	}
	start := time.Now()
	deadline := start.Add(env.Timing.Enforcement)
	for {
		roundStart := time.Now()
		out, execs, err := probeRound(ctx, env, paths)
		m.Execs += execs
		if err != nil {
			return nil, err
		}
		m.Rounds++
		all := true
		for i := range paths {
			r := &m.Results[i]
			r.Last = out[i]
			r.Attempts++
			r.OK, r.Observed, r.Detail = Judge(r.Path, r.Last)
			all = all && r.OK
		}
		m.Elapsed = time.Since(start)
		if all {
			m.Converged, m.SettledAfter = true, roundStart.Sub(start)
			return m, nil
		}
		if time.Now().After(deadline) {
			return m, nil
		}
		env.Logger().Info("network matrix: paths not yet as expected, probing again",
			"round", m.Rounds, "mismatched", countMismatched(m.Results), "deadline", time.Until(deadline).Round(time.Second))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func countMismatched(rs []Result) int {
	n := 0
	for _, r := range rs {
		if !r.OK {
			n++
		}
	}
	return n
}

// probeRound probes every path once: one exec per source pod, all in
// parallel, each exec probing all of that pod's targets in parallel.
func probeRound(ctx context.Context, env *checks.Env, paths []Path) ([]wire.ConnectResult, int, error) {
	type batch struct {
		src     checks.ProbePod
		indices []int
	}
	var order []string
	batches := map[string]*batch{}
	for i, p := range paths {
		k := p.Src.Namespace + "/" + p.Src.Name
		b, ok := batches[k]
		if !ok {
			b = &batch{src: p.Src}
			batches[k] = b
			order = append(order, k)
		}
		b.indices = append(b.indices, i)
	}
	out := make([]wire.ConnectResult, len(paths))
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for bi, k := range order {
		b := batches[k]
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := wire.ConnectRequest{TimeoutMS: int(env.Timing.ConnectTimeout / time.Millisecond)}
			for _, i := range b.indices {
				req.Targets = append(req.Targets, paths[i].Target(strconv.Itoa(i)))
			}
			resp, err := connect(ctx, env, b.src, req)
			if err != nil {
				errs[bi] = err
				return
			}
			for _, r := range resp.Results {
				i, err := strconv.Atoi(r.ID)
				if err != nil || i < 0 || i >= len(out) {
					errs[bi] = fmt.Errorf("probe in %s answered for unknown target %q", k, r.ID)
					return
				}
				out[i] = r
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, len(order), err
		}
	}
	return out, len(order), nil
}

func connect(ctx context.Context, env *checks.Env, src checks.ProbePod, req wire.ConnectRequest) (*wire.ConnectResponse, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode probe request: %w", err)
	}
	// The probe answers within about one timeout; allow for exec overhead.
	ctx, cancel := context.WithTimeout(ctx, 2*env.Timing.ConnectTimeout+30*time.Second)
	defer cancel()
	raw, err := env.ExecProbe(ctx, src, in, "connect")
	if err != nil {
		return nil, err
	}
	var resp wire.ConnectResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("probe in %s/%s printed something that is not a connect response: %w: %.200q", src.Namespace, src.Name, err, raw)
	}
	if resp.Version != wire.Version {
		return nil, fmt.Errorf("probe in %s/%s speaks contract version %d, this bulkhead %d: use the matching probe image", src.Namespace, src.Name, resp.Version, wire.Version)
	}
	if resp.Source.Pod != "" && resp.Source.Pod != src.Name {
		return nil, fmt.Errorf("exec into %s/%s reached a probe that says it is %s", src.Namespace, src.Name, resp.Source.Pod)
	}
	return &resp, nil
}

// Observed words for a blocked path.
const (
	ObservedReachable = "reachable"
	ExpectReachable   = "reachable"
	ExpectBlocked     = "blocked"
	ExpectResolves    = "resolves"
)

// Judge decides whether a probe result matches the path's expectation, and
// describes what was observed.
//   - allowed paths must be reachable, and answered by the intended pod when
//     the server said who it is;
//   - blocked paths must time out (a drop), or be refused or unreachable (a
//     policy that rejects; the positive controls show the same pods do
//     answer); a DNS failure or an error proves nothing either way;
//   - name resolutions must resolve.
func Judge(p Path, r wire.ConnectResult) (ok bool, observed, detail string) {
	observed = string(r.Outcome)
	detail = r.Detail
	if r.Peer != nil {
		answered := "answered by " + r.Peer.Namespace + "/" + r.Peer.Pod
		detail = strings.TrimPrefix(detail+"; "+answered, "; ")
	}
	switch {
	case p.Via == ViaDNS:
		return r.Outcome == wire.Reachable, resolvedWord(r), detail
	case p.Allowed:
		if r.Outcome != wire.Reachable {
			return false, observed, detail
		}
		if r.Peer != nil && p.Dst.Name != "" && (r.Peer.Pod != p.Dst.Name || r.Peer.Namespace != p.Dst.Namespace) {
			return false, "reachable (wrong pod)", detail
		}
		return true, observed, detail
	default:
		switch r.Outcome {
		case wire.Timeout, wire.Refused, wire.Unreachable:
			return true, observed, detail
		case wire.Reachable:
			return false, observed, detail
		default:
			return false, observed, strings.TrimPrefix(detail+"; inconclusive: the path was not tested", "; ")
		}
	}
}

func resolvedWord(r wire.ConnectResult) string {
	if r.Outcome == wire.Reachable {
		return "resolves"
	}
	return string(r.Outcome)
}

// ProbeOnce probes paths once (one exec per source pod) and judges each.
// Negative-control tests use it to wait until an injected fault is in effect.
func ProbeOnce(ctx context.Context, env *checks.Env, paths []Path) ([]Result, error) {
	out, _, err := probeRound(ctx, env, paths)
	if err != nil {
		return nil, err
	}
	rs := make([]Result, len(paths))
	for i, p := range paths {
		rs[i] = Result{Path: p, Last: out[i], Attempts: 1}
		rs[i].OK, rs[i].Observed, rs[i].Detail = Judge(p, out[i])
	}
	return rs, nil
}
