package reports_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/network"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/rbac"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// The rounds fixture (testdata/results-rounds.json) is what bulkhead's own
// engine makes of a realistic run: the topology of the real run xd1m0
// (tenants a and b, the unprotected control namespace, two probe pods
// each, same pod IPs, Services and nodes), probed in 3 counted rounds
// through the simulated probe runner, sliced by the network checks and
// judged by checks.Judge, exactly as `bulkhead run` does. Only the cluster
// is simulated, with three faults a real cluster shows:
//   - round 2: the exec into bh-rnd3x-control/probe-1 fails, so its paths
//     are inconclusive and the controls that prove the paths from it (and
//     the only one that shows control/probe-0 answers) fail;
//   - round 2: bh-rnd3x-control/probe-0 reaches bh-rnd3x-b/probe-0 by pod IP
//     over TCP (a flapping ingress policy): a leak in 1 of 3 rounds;
//   - round 3: bh-rnd3x-a/probe-0 reaches bh-rnd3x-b/probe-1 by ClusterIP
//     over TCP: a cross-tenant leak in 1 of 3 rounds.
//
// RBAC-001 adds API observations shaped like internal/checks/rbac's sweep
// (one verb, to keep the file small) with the tenants' ServiceAccounts not
// applicable (actors.NotApplicable: their grant holds no "list secrets"),
// run through checks.Execute as RBAC-001 (its definition, this Run).
// RBAC-002 adds the same for one cluster-scoped resource (nodes), with a
// fourth fault: every positive control as bulkhead:positive-control failed
// (the runner may not impersonate it), so no denial is proven and RBAC-002
// is the run's one unproven check, the reports tests' example of one. The
// network checks hold none: round 2's gaps are covered by rounds 1 and 3,
// and NET-005's resolved names need no proof. A network path unproven in
// every round would need a must-work path failing in every round, which
// keeps the engine's settle phase repeating round 1 for as long as
// Timing.Enforcement allows: the call numbers the leaks key on would no
// longer be the same from one run to the next.
//
// Timings in the notes are the simulation's (milliseconds, not seconds).
//
// TestRoundsFixtureIsWhatTheEngineMakes checks that the committed file is
// still what the engine makes of that run (verdicts, reasons, every
// observation's status and why); -update rewrites it.
const roundsFixture = "testdata/results-rounds.json"

const roundsRun = "rnd3x"

var roundsT0 = time.Date(2026, 11, 24, 9, 12, 4, 0, time.UTC)

func roundsTopology() checks.Topology {
	ns := func(t string) string { return "bh-" + roundsRun + "-" + t }
	pod := func(tenant, name, node, ip, clusterIP string) checks.ProbePod {
		return checks.ProbePod{Tenant: tenant, Namespace: ns(tenant), Name: name, Node: node, IP: ip,
			Service: name, ClusterIP: clusterIP, DNSName: name + "." + ns(tenant) + ".svc"}
	}
	id := func(t string) []checks.Identity {
		return []checks.Identity{
			{User: "bulkhead:" + roundsRun + ":" + t + ":admin", Groups: []string{"bulkhead:" + roundsRun + ":" + t, "system:authenticated"}},
			checks.ServiceAccountIdentity(ns(t), "bulkhead-probe"),
		}
	}
	return checks.Topology{
		Tenants: []checks.Tenant{
			{Name: "a", Namespaces: []string{ns("a")}, Isolated: true, Reference: true, Identities: id("a")},
			{Name: "b", Namespaces: []string{ns("b")}, Isolated: true, Reference: true, Identities: id("b")},
			{Name: "control", Namespaces: []string{ns("control")}, Reference: true},
		},
		Probes: []checks.ProbePod{
			pod("a", "probe-0", "bh-dev-control-plane", "10.244.0.90", "10.96.140.102"),
			pod("a", "probe-1", "bh-dev-worker", "10.244.1.101", "10.96.229.83"),
			pod("b", "probe-0", "bh-dev-worker", "10.244.1.217", "10.96.165.83"),
			pod("b", "probe-1", "bh-dev-control-plane", "10.244.0.68", "10.96.162.54"),
			pod("control", "probe-0", "bh-dev-control-plane", "10.244.0.49", "10.96.229.168"),
			pod("control", "probe-1", "bh-dev-worker", "10.244.1.68", "10.96.27.48"),
		},
	}
}

// jitter is a stable pseudo-random number in [0, n) for s.
func jitter(s string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int(h.Sum32() % uint32(n))
}

// roundsProber answers as the faulty cluster described above.
func roundsProber(top checks.Topology) *probing.Simulated {
	type key struct{ src, host string }
	paths := map[key]network.Path{}
	for _, p := range append(network.MatrixPaths(top, network.DefaultProtocols), network.DNSPaths(top, "")...) {
		tg := p.Target("")
		paths[key{p.Src.Namespace + "/" + p.Src.Name, string(tg.Protocol) + " " + tg.Host + ":" + strconv.Itoa(tg.Port)}] = p
	}
	nodes := map[string]string{}
	for _, p := range top.Probes {
		nodes[p.Namespace+"/"+p.Name] = p.Node
	}
	leak := func(p network.Path, round int) bool {
		switch {
		case round == 2 && p.Src.Namespace == "bh-rnd3x-control" && p.Src.Name == "probe-0" && p.Dst.Namespace == "bh-rnd3x-b" && p.Dst.Name == "probe-0" && p.Method() == "tcp/pod-ip":
			return true
		case round == 3 && p.Src.Namespace == "bh-rnd3x-a" && p.Src.Name == "probe-0" && p.Dst.Namespace == "bh-rnd3x-b" && p.Dst.Name == "probe-1" && p.Method() == "tcp/cluster-ip":
			return true
		}
		return false
	}
	return &probing.Simulated{
		ConnectFunc: func(src probing.Pod, tg wire.ConnectTarget, call int) wire.ConnectResult {
			p, ok := paths[key{src.String(), string(tg.Protocol) + " " + tg.Host + ":" + strconv.Itoa(tg.Port)}]
			if !ok {
				return wire.ConnectResult{Outcome: wire.Failed, Detail: "a target the matrix did not plan"}
			}
			at := roundsT0.Add(time.Duration(call)*4*time.Second + time.Duration(jitter(p.String(), 900))*time.Millisecond)
			if !p.Allowed && !leak(p, call) {
				return wire.ConnectResult{Outcome: wire.Timeout, LatencyMS: 2000, Started: at, Detail: "no answer within 2s"}
			}
			r := wire.ConnectResult{Outcome: wire.Reachable, Address: p.Dst.IP, LatencyMS: float64(jitter(p.String()+strconv.Itoa(call), 4000)) / 100, Started: at}
			if p.Via != network.ViaDNS {
				r.Peer = &wire.Identity{Pod: p.Dst.Name, Namespace: p.Dst.Namespace}
			} else {
				r.Address = ""
			}
			return r
		},
		CapsFunc: func(src probing.Pod) wire.Capabilities {
			return wire.Capabilities{Source: wire.Identity{Pod: src.Name, Namespace: src.Namespace, Node: nodes[src.String()]},
				SCTPDetail: "socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP): protocol not supported"}
		},
		ExecErr: func(src probing.Pod, mode string, call int) error {
			if mode == "connect" && call == 2 && src.Namespace == "bh-rnd3x-control" && src.Name == "probe-1" {
				return fmt.Errorf("unable to upgrade connection: container not found (\"probe\")")
			}
			return nil
		},
	}
}

// rbacRound is RBAC-001's evidence for the rounds run: each tenant's user
// may not list the other tenant's Secrets and may list its own; its
// ServiceAccount holds no right to list Secrets at all.
func rbacRound(top checks.Topology) checks.Outcome {
	var out checks.Outcome
	at := roundsT0.Add(20 * time.Second)
	for i, t := range top.Isolated() {
		other := top.Isolated()[1-i]
		user, sa := t.Identities[0], t.Identities[1]
		own, theirs := t.Namespaces[0], other.Namespaces[0]
		out.Observations = append(out.Observations,
			reports.Observation{Role: reports.RoleTest, Actor: reports.Actor{Tenant: t.Name, Identity: user.User},
				Target: reports.Target{Tenant: other.Name, Namespace: theirs, Kind: "secrets", Address: "/api/v1/namespaces/" + theirs + "/secrets"},
				Method: "list secrets", Expected: "denied", Observed: "denied", OK: true, Attempts: 1, LatencyMS: 4.1, At: at,
				Detail: "access review: denied; request as " + user.User + ": denied by authorization (HTTP 403)"},
			reports.Observation{Role: reports.RoleControl, Actor: reports.Actor{Tenant: t.Name, Identity: user.User},
				Target: reports.Target{Tenant: t.Name, Namespace: own, Kind: "secrets", Address: "/api/v1/namespaces/" + own + "/secrets"},
				Method: "list secrets", Expected: "authorized", Observed: "authorized", OK: true, Attempts: 1, LatencyMS: 3.7, At: at,
				Detail: "access review: allowed; request as " + user.User + ": allowed (HTTP 200)"},
		)
		na := actors.NotApplicable(t.Name, own, sa, actors.Right{Verb: "list", Resource: "secrets"}, "no RoleBinding grants it")
		na.At = at
		out.Observations = append(out.Observations, na)
		at = at.Add(150 * time.Millisecond)
	}
	return out
}

// rbacClusterRound is RBAC-002's evidence for the rounds run, shaped like
// internal/checks/rbac's ClusterScopePlan for one resource (nodes, every
// verb a reference tenant may not use) and the tenants' users: each denial
// rests on two facts, apisweep.ActsKey (the user is authorized for
// something in its own namespace, shown by its own-namespace control) and
// apisweep.AdminKey (the request gets past authorization at all, shown by
// the positive control as apisweep.PositiveControl). The fault: the runner
// may not impersonate that identity, so every such positive control failed,
// and no denial is shown to rest on policy rather than on a path that does
// not exist: nothing leaked, and nothing was proven.
func rbacClusterRound(top checks.Topology) checks.Outcome {
	var out checks.Outcome
	at := roundsT0.Add(21 * time.Second)
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	req := func(verb string) apisweep.Request {
		name := "bulkhead-absent-" + roundsRun
		if verb == "get" {
			name = top.Probes[0].Node
		}
		return apisweep.ResourceRequest(apisweep.Nodes, verb, "", name, nil)
	}
	for _, t := range top.Isolated() {
		user := t.Identities[0]
		own := t.Namespaces[0]
		for _, verb := range verbs {
			r := req(verb)
			out.Observations = append(out.Observations, reports.Observation{Role: reports.RoleTest,
				Actor:  reports.Actor{Tenant: t.Name, Identity: user.User},
				Target: reports.Target{Kind: "nodes", Address: r.Address()},
				Method: verb + " nodes", Expected: "denied", Observed: "denied", OK: true, Attempts: 1, LatencyMS: 3.9, At: at,
				Needs:  []string{apisweep.ActsKey(user), apisweep.AdminKey(apisweep.RightOf(r))},
				Detail: "access review: denied; request as " + user.User + ": denied by authorization (HTTP 403)"})
			at = at.Add(10 * time.Millisecond)
		}
		pods := apisweep.ResourceRequest(apisweep.Resource{Version: "v1", Resource: "pods", Kind: "Pod"}, "list", own, "", nil)
		out.Observations = append(out.Observations, reports.Observation{Role: reports.RoleControl,
			Actor:  reports.Actor{Tenant: t.Name, Identity: user.User},
			Target: reports.Target{Tenant: t.Name, Namespace: own, Kind: "pods", Address: pods.Address()},
			Method: "list pods", Expected: "authorized", Observed: "authorized", OK: true, Attempts: 1, LatencyMS: 3.2, At: at,
			Proves: []string{apisweep.MayKey(user, own, apisweep.RightOf(pods)), apisweep.ActsKey(user)},
			Detail: "access review: allowed; request as " + user.User + ": allowed (HTTP 200)"})
		at = at.Add(10 * time.Millisecond)
	}
	pc := apisweep.PositiveControl.User
	for _, verb := range verbs {
		r := req(verb)
		out.Observations = append(out.Observations, reports.Observation{Role: reports.RoleControl,
			Actor:  reports.Actor{Identity: pc},
			Target: reports.Target{Kind: "nodes", Address: r.Address()},
			Method: verb + " nodes", Expected: "authorized", Observed: "denied", OK: false, Attempts: 1, LatencyMS: 2.8, At: at,
			Proves: []string{apisweep.AdminKey(apisweep.RightOf(r))},
			Detail: "request as " + pc + ": users \"" + pc + "\" is forbidden: User \"kind-bh-dev\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope (HTTP 403)"})
		at = at.Add(10 * time.Millisecond)
	}
	return out
}

// makeRoundsRun runs the network checks, RBAC-001 and RBAC-002 through
// the engine against the simulated cluster.
func makeRoundsRun(t *testing.T) *reports.Results {
	t.Helper()
	top := roundsTopology()
	env := &checks.Env{RunID: roundsRun, Topology: top, Probes: roundsProber(top),
		Timing: checks.Timing{ConnectTimeout: 2 * time.Second, Enforcement: time.Second, Rounds: checks.DefaultRounds, Pause: time.Millisecond}}
	r := &reports.Results{Schema: reports.Schema, Run: reports.RunInfo{
		ID: roundsRun, Bulkhead: reports.Build{Version: "dev"}, Frontend: "go test",
		Started: roundsT0, Finished: roundsT0.Add(31 * time.Second),
		Cluster:    reports.Cluster{Context: "kind-bh-dev", Server: "https://127.0.0.1:39977", KubernetesVersion: "v1.36.3", CNI: "cilium", CNIVersion: "v1.20.2", Nodes: 2, Disposable: true},
		ProbeImage: "bulkhead.local/probe:239b441c320e",
	}}
	for _, tn := range top.Tenants {
		rt := reports.Tenant{Name: tn.Name, Namespaces: tn.Namespaces, Isolated: tn.Isolated, Reference: tn.Reference}
		for _, id := range tn.Identities {
			rt.Identities = append(rt.Identities, id.String())
		}
		r.Run.Tenants = append(r.Run.Tenants, rt)
	}
	start := roundsT0.Add(4 * time.Second)
	for _, c := range network.Checks() {
		res := checks.Execute(context.Background(), c, env)
		res.Started, res.Finished = start, start.Add(12*time.Second+time.Duration(jitter(c.ID, 900))*time.Millisecond)
		r.Checks = append(r.Checks, res)
	}
	for _, c := range rbac.Checks() {
		switch c.ID {
		case "RBAC-001":
			c.Run = func(context.Context, *checks.Env) checks.Outcome { return rbacRound(top) }
		case "RBAC-002":
			c.Run = func(context.Context, *checks.Env) checks.Outcome { return rbacClusterRound(top) }
		default:
			continue
		}
		res := checks.Execute(context.Background(), c, env)
		res.Started = roundsT0.Add(20*time.Second + time.Duration(len(r.Checks)-5)*time.Second)
		res.Finished = res.Started.Add(time.Second)
		r.Checks = append(r.Checks, res)
	}
	return r
}

// judged is what the fixture must agree with the engine on.
type judged struct {
	ID, Verdict, Reason string
	Observations        []string
}

func judgedOf(r *reports.Results) []judged {
	var out []judged
	for _, c := range r.Checks {
		j := judged{ID: c.ID, Verdict: string(c.Verdict), Reason: c.Reason}
		for _, o := range c.Observations {
			j.Observations = append(j.Observations, fmt.Sprintf("%s %s/%s %s -> %s/%s %s round %d: %s %s [%s] %s",
				o.Role, o.Actor.Namespace, o.Actor.Pod, o.Actor.Identity, o.Target.Namespace, o.Target.Name, o.Method, o.Round, o.Expected, o.Observed, o.Status, o.Why))
		}
		out = append(out, j)
	}
	return out
}

func TestRoundsFixtureIsWhatTheEngineMakes(t *testing.T) {
	made := makeRoundsRun(t)
	if *reports.UpdateGolden {
		data, err := json.MarshalIndent(made, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(roundsFixture, append(data, '\n'), 0o644))
	}
	committed, err := reports.ReadJSON(roundsFixture)
	require.NoError(t, err)
	assert.Equal(t, judgedOf(made), judgedOf(committed),
		"%s is no longer what the engine makes of its run: rerun with -update and review the diff", roundsFixture)

	// The faults show as designed.
	verdicts := map[string]reports.Verdict{}
	for _, c := range committed.Checks {
		verdicts[c.ID] = c.Verdict
	}
	assert.Equal(t, map[string]reports.Verdict{
		"NET-001":  reports.Fail,     // the ClusterIP leak in round 3
		"NET-002":  reports.Fail,     // the pod-IP leak in round 2 (control/probe-1's paths, unproven in round 2, proven in rounds 1 and 3)
		"NET-003":  reports.Pass,     // control/probe-0 answers only control/probe-1, whose exec failed in round 2: rounds 1 and 3 prove those paths
		"NET-004":  reports.Pass,     // within tenants (control's own paths are controls)
		"NET-005":  reports.Pass,     // every name resolved: a resolved name needs no proof (control/probe-1's round-2 lookups fail only its controls)
		"RBAC-001": reports.Pass,     // the ServiceAccounts are not applicable, the users were proven
		"RBAC-002": reports.Unproven, // the positive control as bulkhead:positive-control failed: no denial of listing nodes is shown to rest on policy
	}, verdicts)
}
