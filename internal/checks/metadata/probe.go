package metadata

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata/endpoints"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/internal/target/decoy"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Key is the memo key of the shared probing; negative-control tests forget
// it (or use a derived env) to probe again.
const Key = "metadata/probe"

// Result is the run's metadata probing, in rounds, judged for both checks.
type Result struct {
	Evaluation
	Live Live
	// Rounds probed in all, settle rounds included; SettledRound is the
	// first that counts for what bulkhead set up (Settled is false when the
	// settle phase ran out of time).
	Rounds, SettledRound int
	Settled              bool
	SettledAfter         time.Duration
	Execs                int
	Elapsed              time.Duration
}

// Shared returns the run's metadata probing, doing it on first use.
func Shared(ctx context.Context, env *checks.Env) (*Result, error) {
	return checks.Memo(env, Key, func() (*Result, error) { return probeAll(ctx, env) })
}

// probeAll installs the decoy where allowed (and removes it again before
// returning, unless an outer caller installed it for this run), then
// probes in rounds.
func probeAll(ctx context.Context, env *checks.Env) (_ *Result, err error) {
	live, d, err := PrepareLive(ctx, env)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := d.Cleanup(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the metadata decoy: %w", cerr))
		}
	}()
	return probeRounds(ctx, env, live)
}

// PrepareLive decides the positive control: on a kind cluster bulkhead
// created, it installs (or reuses) the run's decoy; elsewhere it says why
// there is none. The caller must call Cleanup on the returned decoy (a nil
// decoy, or one the run installed earlier, cleans up nothing).
func PrepareLive(ctx context.Context, env *checks.Env) (Live, *decoy.Decoy, error) {
	if !env.Disposable {
		return Live{NoDecoy: "no decoy on clusters bulkhead did not create"}, nil, nil
	}
	cl, notKind, err := decoy.Detect(ctx, env.Kube)
	if err != nil {
		return Live{}, nil, fmt.Errorf("find the kind cluster for the metadata decoy: %w", err)
	}
	if notKind != "" {
		return Live{NoDecoy: "the cluster was created by bulkhead but the decoy needs kind on the local Docker engine: " + notKind}, nil, nil
	}
	d, err := decoy.Install(ctx, cl, decoy.Options{RunID: env.RunID, Image: env.ProbeImage, Addresses: endpoints.Addresses(), Log: env.Logger()})
	if err != nil {
		return Live{}, nil, err
	}
	return LiveFor(d), d, nil
}

// LiveFor describes an installed decoy for evaluation.
func LiveFor(d *decoy.Decoy) Live {
	info := &DecoyInfo{Marker: d.RunID, Container: d.Container, IP: d.IP.String(), Skipped: d.Skipped}
	for _, a := range d.Addresses {
		info.Addresses = append(info.Addresses, a.String())
	}
	live := Live{Decoy: info}
	for _, n := range d.Cluster.Nodes {
		if s, ok := d.NodeCheck[n.Name]; ok {
			live.NodeVantage = append(live.NodeVantage, n.Name+": "+s)
		}
	}
	return live
}

// Request is the catalogue a pod of the given kind is sent. Control pods
// try the credential endpoints only against the decoy: on a real cluster
// they would fetch the node's real credentials, which bulkhead never does
// on purpose.
func Request(live Live, control bool, timeout time.Duration) wire.MetadataRequest {
	req := wire.MetadataRequest{TimeoutMS: int(timeout / time.Millisecond)}
	for _, e := range endpoints.All() {
		if control && e.Credentials && live.Decoy == nil {
			continue
		}
		req.Endpoints = append(req.Endpoints, e.Wire)
	}
	if live.Decoy != nil {
		direct := endpoints.All()[0].Wire
		direct.ID, direct.Host = DirectID, live.Decoy.IP
		req.Endpoints = append(req.Endpoints, direct)
	}
	return req
}

// PeerPrefix starts the ID of a peer endpoint: a tenant pod asking a probe
// pod of its own tenant over HTTP, which must work. It shows, in each
// round, that the tenant pod's own networking works, so its blocked
// metadata attempts mean something.
const PeerPrefix = "peer:"

func peerEndpoint(p checks.ProbePod) wire.MetadataEndpoint {
	return wire.MetadataEndpoint{ID: PeerPrefix + p.Namespace + "/" + p.Name, Host: p.IP, Port: wire.PortTCP,
		Request: wire.HTTPStep{Method: "GET", Path: "/"}}
}

func peerOf(id string) (checks.ProbePod, bool) {
	rest, ok := strings.CutPrefix(id, PeerPrefix)
	if !ok {
		return checks.ProbePod{}, false
	}
	ns, name, _ := strings.Cut(rest, "/")
	return checks.ProbePod{Namespace: ns, Name: name}, true
}

// maxPeers bounds the peers each tenant pod asks: one that answers is
// enough, two survive one peer being down.
const maxPeers = 2

// peers are up to maxPeers probe pods p's tenant expects it to reach: of
// its namespace first, then of the tenant's other namespaces.
func peers(top checks.Topology, p checks.ProbePod) []checks.ProbePod {
	var same, other []checks.ProbePod
	for _, q := range top.ProbesOf(p.Tenant) {
		switch {
		case q.Name == p.Name && q.Namespace == p.Namespace, q.IP == "":
		case q.Namespace == p.Namespace:
			same = append(same, q)
		default:
			other = append(other, q)
		}
	}
	all := append(same, other...)
	return all[:min(len(all), maxPeers)]
}

// Planned is one endpoint one probe pod tries every round.
type Planned struct {
	Pod      checks.ProbePod
	Endpoint wire.MetadataEndpoint
	// Settle: attempts whose expectation rests only on what bulkhead set
	// up (its decoy, its reference tenants' policies, its probe pods
	// answering) settle first; a user's tenant's attempts count from
	// round 1.
	Settle probing.Settle
	// settled says whether a result is what the settle phase waits for.
	settled func(r wire.MetadataResult) bool
	// mustWork: a positive control (the decoy answering the control
	// namespace, a tenant pod reaching its peer), asked again in its round
	// when it misses (see probing.Item.Retry); never an attempt that must
	// be blocked.
	mustWork bool
}

// Plan is what every probe pod tries each round: the catalogue (control
// pods without the credential endpoints unless the decoy answers them),
// the decoy's own address, and, from tenant pods, their peers. The
// sentinel is not a tenant under test and is left out.
func Plan(top checks.Topology, live Live) []Planned {
	var out []Planned
	always := func(wire.MetadataResult) bool { return true }
	blocked := func(r wire.MetadataResult) bool { return blockedOutcome(r.Connect) && httpBlocked(r) }
	for _, p := range top.Probes {
		tn, ok := top.Tenant(p.Tenant)
		if !ok || tn.Sentinel {
			continue
		}
		for _, e := range Request(live, !tn.Isolated, 0).Endpoints {
			pl := Planned{Pod: p, Endpoint: e, Settle: probing.CountAlways, settled: always}
			switch {
			case e.ID == DirectID:
			case !tn.Isolated && live.serves(e.Host):
				marker := live.Decoy.Marker
				pl.Settle, pl.settled, pl.mustWork = probing.SettleFirst, func(r wire.MetadataResult) bool { return decoyAnswered(r, marker) }, true
			case tn.Isolated && tn.Reference:
				pl.Settle, pl.settled = probing.SettleFirst, blocked
			}
			out = append(out, pl)
		}
		if !tn.Isolated {
			continue
		}
		for _, q := range peers(top, p) {
			out = append(out, Planned{Pod: p, Endpoint: peerEndpoint(q), Settle: probing.SettleFirst, settled: liveAnswer, mustWork: true})
		}
	}
	return out
}

func probeRounds(ctx context.Context, env *checks.Env, live Live) (*Result, error) {
	plan := Plan(env.Topology, live)
	if len(plan) == 0 {
		return nil, errors.New("no probe pods in this run")
	}
	eps := make([]probing.Endpoint, len(plan))
	items := make([]probing.Item, len(plan))
	for i, p := range plan {
		items[i] = probing.Item{Src: p.Pod.Pod(), Settle: p.Settle, Retry: p.mustWork}
		eps[i] = probing.Endpoint{Item: items[i], Endpoint: p.Endpoint}
	}
	match := func(i int, r wire.MetadataResult) bool { return plan[i].settled(r) }
	run, err := probing.MetadataRounds(ctx, env.Prober(), eps, env.Timing.ConnectTimeout, match, env.Timing.RoundsOptions())
	if err != nil {
		return nil, err
	}
	cat := endpoints.All()
	rounds := RoundsOf(plan, items, run)
	res := &Result{Evaluation: Evaluate(env.Topology, cat, rounds, live), Live: live, Rounds: len(run.Rounds),
		SettledRound: run.SettledAt + 1, Settled: run.Settled, SettledAfter: run.SettledAfter, Execs: run.Execs, Elapsed: run.Elapsed}
	pods := map[probing.Pod]bool{}
	for _, it := range items {
		pods[it.Src] = true
	}
	notes := []string{fmt.Sprintf("%d endpoints from %d probe pods in %d round(s), %d exec round trips, %s",
		len(cat), len(pods), res.Rounds, res.Execs, res.Elapsed.Round(10*time.Millisecond))}
	if res.Settled {
		notes = append(notes, fmt.Sprintf("bulkhead's own setup (its decoy, its tenants' policies, its probe pods) took effect after %s (round %d); from there every round counts, and the attempts of tenants bulkhead did not create counted from round 1",
			res.SettledAfter.Round(100*time.Millisecond), res.SettledRound))
	} else {
		notes = append(notes, fmt.Sprintf("bulkhead's own setup had not fully taken effect by the enforcement deadline (round %d): counting started anyway", res.SettledRound))
	}
	res.Endpoints.Notes = append(notes, res.Endpoints.Notes...)
	res.Credentials.Notes = append(notes, res.Credentials.Notes...)
	return res, nil
}

// RoundsOf turns a run's rounds into the pods' samples: every round from
// the settled one on, and before it the attempts that count from round 1
// (marked Settling: only their leaks count).
func RoundsOf(plan []Planned, items []probing.Item, run *probing.Run[wire.MetadataResult]) []Round {
	var out []Round
	for k, round := range run.Rounds {
		r := Round{N: round.N, Settling: k < run.SettledAt}
		at := map[probing.Pod]int{}
		failed := map[probing.Pod]bool{}
		for i, p := range plan {
			if r.Settling && items[i].Settle != probing.CountAlways {
				continue
			}
			src := items[i].Src
			if err, ok := round.Failed[src]; ok {
				if !failed[src] {
					failed[src] = true
					r.Failed = append(r.Failed, Failure{Pod: p.Pod, Err: err.Error()})
				}
				continue
			}
			j, ok := at[src]
			if !ok {
				j = len(r.Samples)
				at[src] = j
				r.Samples = append(r.Samples, Sample{Pod: p.Pod, Results: map[string]wire.MetadataResult{}})
			}
			res := round.Results[i]
			res.ID = p.Endpoint.ID
			r.Samples[j].Results[p.Endpoint.ID] = res
		}
		out = append(out, r)
	}
	return out
}

// ProbeOnce tries the plan's endpoints from pods once (one exec each, in
// parallel, no settling). Negative-control tests use it to wait for a
// fault to take effect.
func ProbeOnce(ctx context.Context, env *checks.Env, live Live, pods []checks.ProbePod) ([]Sample, error) {
	var plan []Planned
	want := map[probing.Pod]bool{}
	for _, p := range pods {
		want[p.Pod()] = true
	}
	for _, p := range Plan(env.Topology, live) {
		if want[p.Pod.Pod()] {
			plan = append(plan, p)
		}
	}
	items := make([]probing.Item, len(plan))
	eps := make([]probing.Endpoint, len(plan))
	for i, p := range plan {
		items[i] = probing.Item{Src: p.Pod.Pod(), Settle: probing.CountAlways}
		eps[i] = probing.Endpoint{Item: items[i], Endpoint: p.Endpoint}
	}
	run, err := probing.MetadataRounds(ctx, env.Prober(), eps, env.Timing.ConnectTimeout, func(int, wire.MetadataResult) bool { return true }, probing.RoundsOptions{Count: 1})
	if err != nil {
		return nil, err
	}
	r := RoundsOf(plan, items, run)[0]
	if len(r.Failed) > 0 {
		return nil, fmt.Errorf("probe metadata in %s/%s: %s", r.Failed[0].Pod.Namespace, r.Failed[0].Pod.Name, r.Failed[0].Err)
	}
	return r.Samples, nil
}
