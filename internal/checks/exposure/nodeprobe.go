package exposure

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// nodeItem is one probe of EXP-004 from one pod, every round.
type nodeItem struct {
	Src checks.ProbePod
	// FromTenant: a tenant pod (a test, unless Reach); else a pod of the
	// unprotected control namespace (a control: the target answers).
	FromTenant bool
	Node       NodeTarget
	// Reach, for a tenant pod, is a path that must work (to a probe of its
	// own namespace, or a name resolution): the pod's networking works in
	// that round, so a blocked node port is its policy, not a dead pod.
	Reach *wire.ConnectTarget
	// Peer is the pod Reach must be answered by ("" for a resolution).
	Peer string
}

// answersKey: in the same round a control pod reached the target.
func answersKey(t NodeTarget) string {
	return fmt.Sprintf("%s (%s, node %s) answers the control namespace", t.HostPort(), t.Kind, t.Node)
}

// reachesKey: in the same round the tenant pod reached something.
func reachesKey(p checks.ProbePod) string {
	return fmt.Sprintf("%s/%s reaches something", p.Namespace, p.Name)
}

// nodePlan lists EXP-004's probes: every target from every control pod,
// every target from every tenant pod, and one path per tenant pod that must
// work. token goes with the NodePort targets (its backend answers nothing
// else).
func nodePlan(top checks.Topology, targets []NodeTarget, token string) ([]nodeItem, []probing.Target) {
	var items []nodeItem
	var pts []probing.Target
	add := func(it nodeItem, settle probing.Settle) {
		ct := wire.ConnectTarget{Protocol: wire.TCP, Host: it.Node.Address, Port: it.Node.Port}
		if it.Reach != nil {
			ct = *it.Reach
		} else if it.Node.Kind == PortNodePort {
			ct.Token = token
		}
		items = append(items, it)
		pts = append(pts, probing.Target{Item: probing.Item{Src: it.Src.Pod(), Settle: settle}, Target: ct})
	}
	for _, p := range top.Probes {
		tn, ok := top.Tenant(p.Tenant)
		if !ok || tn.Sentinel {
			continue
		}
		if !tn.Isolated {
			for _, t := range targets {
				add(nodeItem{Src: p, Node: t}, probing.SettleFirst)
			}
			continue
		}
		for _, t := range targets {
			add(nodeItem{Src: p, FromTenant: true, Node: t}, settleOf(tn))
		}
		add(reachItem(top, p), probing.SettleFirst)
	}
	return items, pts
}

// reachItem is the path that shows tenant pod p's networking works: TCP to
// another probe pod of its namespace (allowed by every tenant's own
// policy), or, with no such pod, resolving the API server's Service name
// (DNS egress, allowed to every tenant).
func reachItem(top checks.Topology, p checks.ProbePod) nodeItem {
	for _, q := range top.Probes {
		if q.Namespace == p.Namespace && q.Name != p.Name && q.IP != "" {
			return nodeItem{Src: p, FromTenant: true, Peer: q.Name,
				Reach: &wire.ConnectTarget{Protocol: wire.TCP, Host: q.IP, Port: wire.PortTCP}}
		}
	}
	return nodeItem{Src: p, FromTenant: true, Reach: &wire.ConnectTarget{Protocol: wire.DNS, Host: "kubernetes.default.svc"}}
}

// judgeItem decides one item's result in one round.
func judgeItem(it nodeItem, r wire.ConnectResult, backend string) (expected string, m Match) {
	if it.Reach == nil {
		return JudgeNode(it.Node, it.FromTenant, r, backend)
	}
	switch {
	case r.Outcome != wire.Reachable:
		return "reachable", Mismatched
	case it.Peer != "" && r.Peer != nil && r.Peer.Pod != it.Peer:
		return "reachable", Mismatched
	}
	return "reachable", Matched
}

// nodeRounds probes the plan in rounds (settle once, then Timing.Rounds
// counted rounds) and returns every counted round's evidence. A tenant
// probe's leak counts in any round, settle rounds included, for a tenant
// bulkhead did not create; a blocked result counts only in a round whose
// proof (the control reached the same address:port, the tenant pod reached
// something) was observed in the same round.
func nodeRounds(ctx context.Context, env *checks.Env, items []nodeItem, pts []probing.Target, backend string) ([]reports.Observation, *probing.Run[wire.ConnectResult], error) {
	match := func(i int, r wire.ConnectResult) bool {
		_, m := judgeItem(items[i], r, backend)
		return m == Matched
	}
	run, err := probing.ConnectRounds(ctx, env.Prober(), pts, env.Timing.ConnectTimeout, match, env.Timing.RoundsOptions())
	if err != nil {
		return nil, nil, err
	}
	var obs []reports.Observation
	for k, round := range run.Rounds {
		settled := k >= run.SettledAt
		for i, it := range items {
			o := nodeObservation(it, round, i, backend)
			switch {
			case settled:
			case pts[i].Settle == probing.CountAlways && o.Role == reports.RoleTest && o.Observed == string(wire.Reachable):
				// A leak needs no proof, settled or not.
			default:
				continue
			}
			obs = append(obs, o)
		}
	}
	return obs, run, nil
}

func nodeObservation(it nodeItem, round probing.Round[wire.ConnectResult], i int, backend string) reports.Observation {
	o := reports.Observation{
		Role:     reports.RoleControl,
		Actor:    reports.Actor{Tenant: it.Src.Tenant, Namespace: it.Src.Namespace, Pod: it.Src.Name, Node: it.Src.Node},
		Target:   reports.Target{Kind: "node", Address: it.Node.HostPort()},
		Method:   it.Node.Method(),
		Attempts: 1,
		Round:    round.N,
		At:       round.Start,
	}
	switch {
	case it.Reach != nil:
		o.Target = reports.Target{Kind: "pod", Address: it.Reach.Host, Name: it.Peer, Namespace: it.Src.Namespace, Tenant: it.Src.Tenant}
		o.Method = "tcp/pod-ip (own namespace)"
		if it.Reach.Protocol == wire.DNS {
			o.Target = reports.Target{Kind: "service", Name: it.Reach.Host}
			o.Method = "dns/resolve"
		}
		o.Proves = []string{reachesKey(it.Src)}
	case it.FromTenant:
		o.Role, o.Needs = reports.RoleTest, []string{answersKey(it.Node), reachesKey(it.Src)}
	default:
		o.Proves = []string{answersKey(it.Node)}
	}
	if err, failed := round.Failed[it.Src.Pod()]; failed {
		o.Observed, o.Detail = "not probed", "the probe pod could not be asked this round: "+err.Error()
		o.Expected, _ = judgeItem(it, wire.ConnectResult{}, backend)
		if o.Role == reports.RoleTest {
			o.Status, o.Why = reports.StatusUnproven, "not probed"
		}
		return o
	}
	r := round.Results[i]
	var m Match
	o.Expected, m = judgeItem(it, r, backend)
	o.Observed, o.OK, o.LatencyMS = string(r.Outcome), m == Matched, r.LatencyMS
	if !r.Started.IsZero() {
		o.At = r.Started
	}
	detail := []string{r.Detail}
	if r.Peer != nil {
		detail = append(detail, "answered by "+r.Peer.Namespace+"/"+r.Peer.Pod)
	}
	if it.Reach == nil {
		detail = append(detail, "node "+it.Node.Node)
	}
	if r.Starved() {
		detail = append(detail, r.StarvedWhy())
	}
	o.Detail = strings.TrimPrefix(strings.Join(slices.DeleteFunc(detail, func(s string) bool { return s == "" }), "; "), "; ")
	if m == Inconclusive && o.Role == reports.RoleTest {
		o.Status, o.Why = reports.StatusUnproven, "inconclusive: "+o.Observed
	}
	return o
}

// runNodes is EXP-004: tenant pods cannot open connections to the nodes'
// kubelet ports, the API server's node port, or a NodePort Service; each
// blocked target counts only where, in the same round, a pod of the
// unprotected control namespace reached that same address:port and the
// tenant pod reached something.
func runNodes(ctx context.Context, env *checks.Env) checks.Outcome {
	top := env.Topology
	var control []checks.ProbePod
	tenantPods := 0
	for _, p := range top.Probes {
		switch tn, ok := top.Tenant(p.Tenant); {
		case !ok || tn.Sentinel:
		case tn.Isolated:
			tenantPods++
		default:
			control = append(control, p)
		}
	}
	switch {
	case tenantPods == 0:
		return checks.Outcome{Skip: "no probe pod in an isolated tenant in this run"}
	case len(control) == 0:
		return checks.Outcome{Skip: "no probe pod in an unprotected control namespace: no node port can be shown to answer"}
	}
	nodes, err := listNodes(ctx, env)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	api, err := apiServerEndpoints(ctx, env)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	var out checks.Outcome
	var np *nodePort
	withdraw, token, backend, port := func() {}, "", "", 0
	if env.Allow.NoNodePorts {
		out.Notes = append(out.Notes, "NodePort: not published (--no-node-ports)")
		out.NotEvaluated = append(out.NotEvaluated, "NodePorts: none published (--no-node-ports), so whether tenant pods reach a node port is not evaluated")
	} else {
		np, withdraw, err = publishNodePort(ctx, env, control[0])
		defer withdraw() // whatever happens below; withdrawing twice is withdrawing once
		if err != nil {
			return checks.Outcome{Err: err}
		}
		token, backend, port = np.Token, np.Backend.Name, np.Port
	}
	targets := NodeTargets(nodes, api, port)
	items, pts := nodePlan(top, targets, token)
	obs, run, err := nodeRounds(ctx, env, items, pts, backend)
	withdraw() // the node port is open only while it is probed
	if err != nil {
		return checks.Outcome{Err: err}
	}
	out.Observations = obs
	if np != nil {
		out.Notes = append(out.Notes, nodePortNote(np))
	}
	out.Notes = append(out.Notes, roundsNote(len(targets), len(items), run))
	out.Notes = append(out.Notes, closedPortNotes(obs)...)
	return out
}

func nodePortNote(np *nodePort) string {
	open := np.Withdrawn.Sub(np.Published).Round(100 * time.Millisecond)
	return fmt.Sprintf("NodePort: port %d published by Service %s/%s for %s, served by %s/%s, which answers only this run's token; deleted afterwards",
		np.Port, np.Service.Namespace, np.Service.Name, open, np.Backend.Namespace, np.Backend.Name)
}

func roundsNote(targets, items int, run *probing.Run[wire.ConnectResult]) string {
	s := fmt.Sprintf("%d node targets, %d probes per round, %d round(s), %d exec round trips, %s", targets, items, len(run.Rounds), run.Execs, run.Elapsed.Round(10*time.Millisecond))
	if !run.Settled {
		s += fmt.Sprintf("; bulkhead's own setup (the NodePort, new probe pods) had not taken effect by the enforcement deadline (round %d): counting started anyway", run.SettledAt+1)
	} else if run.SettledAt > 0 {
		s += fmt.Sprintf("; bulkhead's own setup took effect after %s (round %d), from there every round counts", run.SettledAfter.Round(100*time.Millisecond), run.SettledAt+1)
	}
	return s
}
