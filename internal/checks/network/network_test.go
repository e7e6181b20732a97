package network

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func pod(tenant, name string) checks.ProbePod {
	ns := "bh-x-" + tenant
	return checks.ProbePod{Tenant: tenant, Namespace: ns, Name: name, IP: "10.0.0." + name[len(name)-1:],
		Service: name, ClusterIP: "10.96.0." + name[len(name)-1:], DNSName: name + "." + ns + ".svc"}
}

func reference() checks.Topology {
	return checks.Topology{
		Tenants: []checks.Tenant{{Name: "a", Isolated: true, Reference: true}, {Name: "b", Isolated: true, Reference: true}, {Name: "control", Reference: true}},
		Probes:  []checks.ProbePod{pod("a", "p1"), pod("a", "p2"), pod("b", "p3"), pod("b", "p4"), pod("control", "p5"), pod("control", "p6")},
	}
}

func TestMatrixPathsCoverEveryPairViaEveryAddressAndProtocol(t *testing.T) {
	top := reference()
	paths := MatrixPaths(top, []wire.Protocol{wire.TCP, wire.UDP})
	// 6 pods, each to the 5 others, 3 address kinds, 2 protocols.
	require.Len(t, paths, 6*5*3*2)
	seen := map[string]bool{}
	for _, p := range paths {
		assert.NotEqual(t, p.Src.Name, p.Dst.Name, "no self paths")
		seen[p.String()] = true
		want := p.Src.Tenant == p.Dst.Tenant || (p.Src.Tenant == "control" && p.Dst.Tenant == "control")
		assert.Equal(t, want, p.Allowed, p.String())
	}
	assert.Len(t, seen, len(paths), "paths are unique")
}

func TestTargetsAddressPodsAndServicesOnTheirPorts(t *testing.T) {
	src, dst := pod("a", "p1"), pod("b", "p3")
	cases := []struct {
		via   Via
		proto wire.Protocol
		host  string
		port  int
	}{
		{ViaPodIP, wire.TCP, dst.IP, wire.PortTCP},
		{ViaPodIP, wire.UDP, dst.IP, wire.PortUDP},
		{ViaClusterIP, wire.TCP, dst.ClusterIP, ServicePortTCP},
		{ViaServiceDNS, wire.UDP, dst.DNSName, ServicePortUDP},
		{ViaServiceDNS, wire.SCTP, dst.DNSName, ServicePortSCTP},
	}
	for _, c := range cases {
		tg := Path{Src: src, Dst: dst, Protocol: c.proto, Via: c.via}.Target("7")
		assert.Equal(t, wire.ConnectTarget{ID: "7", Protocol: c.proto, Host: c.host, Port: c.port}, tg)
	}
	dns := Path{Src: src, Protocol: wire.DNS, Via: ViaDNS, Name: "kubernetes.default.svc"}
	assert.Equal(t, "kubernetes.default.svc", dns.Target("1").Host)
	assert.Equal(t, "dns/resolve", dns.Method())
}

func TestJudge(t *testing.T) {
	dst := pod("b", "p3")
	allowed := Path{Dst: dst, Protocol: wire.TCP, Via: ViaPodIP, Allowed: true}
	blocked := Path{Dst: dst, Protocol: wire.TCP, Via: ViaPodIP}
	right := &wire.Identity{Pod: "p3", Namespace: dst.Namespace}
	wrong := &wire.Identity{Pod: "other", Namespace: dst.Namespace}
	resolve := Path{Via: ViaDNS, Protocol: wire.DNS, Allowed: true}
	cases := []struct {
		name string
		path Path
		res  wire.ConnectResult
		m    Match
	}{
		{"allowed and reachable", allowed, wire.ConnectResult{Outcome: wire.Reachable, Peer: right}, Matched},
		{"allowed, reachable, no identity", allowed, wire.ConnectResult{Outcome: wire.Reachable}, Matched},
		{"allowed but the wrong pod answered", allowed, wire.ConnectResult{Outcome: wire.Reachable, Peer: wrong}, Mismatched},
		{"allowed but timed out", allowed, wire.ConnectResult{Outcome: wire.Timeout}, Mismatched},
		{"allowed but the probe erred", allowed, wire.ConnectResult{Outcome: wire.Failed}, Inconclusive},
		{"blocked by a drop", blocked, wire.ConnectResult{Outcome: wire.Timeout}, Matched},
		{"blocked by a reject", blocked, wire.ConnectResult{Outcome: wire.Refused}, Matched},
		{"blocked by an ICMP prohibited", blocked, wire.ConnectResult{Outcome: wire.Unreachable}, Matched},
		{"a leak", blocked, wire.ConnectResult{Outcome: wire.Reachable, Peer: right}, Mismatched},
		{"DNS failure proves nothing", blocked, wire.ConnectResult{Outcome: wire.DNSFailure}, Inconclusive},
		{"an error proves nothing", blocked, wire.ConnectResult{Outcome: wire.Failed}, Inconclusive},
		{"a timeout a little late is a block", blocked, wire.ConnectResult{Outcome: wire.Timeout, OverrunMS: 700}, Matched},
		{"a starved timeout proves no block", blocked, wire.ConnectResult{Outcome: wire.Timeout, OverrunMS: 2800}, Inconclusive},
		{"a starved timeout is no broken path", allowed, wire.ConnectResult{Outcome: wire.Timeout, OverrunMS: 2800}, Inconclusive},
		{"resolution works", resolve, wire.ConnectResult{Outcome: wire.Reachable}, Matched},
		{"resolution fails", resolve, wire.ConnectResult{Outcome: wire.DNSFailure}, Mismatched},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _, _ := Judge(c.path, c.res)
			assert.Equal(t, c.m, m)
		})
	}
}

// A slow lookup is evidence: the detail says where the time went, and the
// verdict is the connection's.
func TestJudgeSaysASlowLookup(t *testing.T) {
	blocked := Path{Dst: pod("b", "p3"), Protocol: wire.TCP, Via: ViaServiceDNS}
	m, _, detail := Judge(blocked, wire.ConnectResult{Outcome: wire.Timeout, ResolveMS: 2400, LatencyMS: 4400})
	assert.Equal(t, Matched, m)
	assert.Equal(t, "the name took 2.4s to resolve", detail)
	_, _, detail = Judge(blocked, wire.ConnectResult{Outcome: wire.Timeout, ResolveMS: 3, LatencyMS: 2003})
	assert.Empty(t, detail, "a quick lookup is not worth a word")
}

func TestJudgeSaysAStarvedTimeout(t *testing.T) {
	blocked := Path{Dst: pod("b", "p3"), Protocol: wire.UDP, Via: ViaPodIP}
	_, observed, detail := Judge(blocked, wire.ConnectResult{Outcome: wire.Timeout, OverrunMS: 2816, LatencyMS: 4816, Detail: "read udp: i/o timeout"})
	assert.Equal(t, "timeout", observed)
	assert.Equal(t, "read udp: i/o timeout; inconclusive: the probe ended 2.8s past its deadline (its pod was starved of CPU), so a timeout proves nothing", detail)
}

// simulate probes the topology's matrix through the simulated runner:
// reach says whether a path connects in a round. Two rounds count; tenants
// that are not Reference count from round 1.
func simulate(t *testing.T, top checks.Topology, reach func(p Path, round int) bool, execErr func(src probing.Pod, round int) error) *Matrix {
	t.Helper()
	return simulateSettling(t, top, reach, execErr, 50*time.Millisecond)
}

// simulateSettling is simulate with a settle timeout: tests that need the
// settle phase to end by itself (not by running out of time on a busy
// machine) give it seconds.
func simulateSettling(t *testing.T, top checks.Topology, reach func(p Path, round int) bool, execErr func(src probing.Pod, round int) error, settle time.Duration) *Matrix {
	t.Helper()
	paths := append(MatrixPaths(top, []wire.Protocol{wire.TCP}), DNSPaths(top, "")...)
	byTarget := map[string]Path{}
	for _, p := range paths {
		tg := p.Target("")
		byTarget[p.Src.Namespace+"/"+p.Src.Name+" "+string(tg.Protocol)+" "+tg.Host+":"+strconv.Itoa(tg.Port)] = p
	}
	sim := &probing.Simulated{ConnectFunc: func(src probing.Pod, tg wire.ConnectTarget, call int) wire.ConnectResult {
		p, ok := byTarget[src.String()+" "+string(tg.Protocol)+" "+tg.Host+":"+strconv.Itoa(tg.Port)]
		require.True(t, ok, "a target the matrix did not plan: %v from %s", tg, src)
		if !reach(p, call) {
			return wire.ConnectResult{Outcome: wire.Timeout}
		}
		r := wire.ConnectResult{Outcome: wire.Reachable}
		if p.Via != ViaDNS {
			r.Peer = &wire.Identity{Pod: p.Dst.Name, Namespace: p.Dst.Namespace}
		}
		return r
	}}
	if execErr != nil {
		sim.ExecErr = func(src probing.Pod, mode string, call int) error { return execErr(src, call) }
	}
	env := &checks.Env{Topology: top, Probes: sim,
		Timing: checks.Timing{ConnectTimeout: time.Second, Enforcement: settle, Rounds: 2, Pause: time.Millisecond}}
	m, err := Probe(context.Background(), env, paths)
	require.NoError(t, err)
	return m
}

func always(v bool) func(Path, int) bool { return func(p Path, _ int) bool { return v } }

func asDesigned(p Path, _ int) bool { return p.Allowed }

func verdict(t *testing.T, id string, top checks.Topology, m *Matrix) (reports.Verdict, string) {
	t.Helper()
	for _, c := range Checks() {
		if c.ID != id {
			continue
		}
		slice := map[string]slicer{IDCrossTenant: crossTenant, IDTenantIngress: tenantIngress, IDTenantEgress: tenantEgress,
			IDSameTenant: sameTenant, IDDNS: dnsResolution}[id]
		j := checks.Judge(c, Slice(top, m, slice))
		return j.Verdict, j.Reason
	}
	t.Fatalf("no check %s", id)
	return "", ""
}

func TestVerdictsOnAnIsolatedCluster(t *testing.T) {
	top := reference()
	m := simulate(t, top, asDesigned, nil)
	for _, id := range []string{IDCrossTenant, IDTenantIngress, IDTenantEgress, IDSameTenant, IDDNS} {
		v, reason := verdict(t, id, top, m)
		assert.Equal(t, reports.Pass, v, "%s: %s", id, reason)
	}
}

func TestVerdictsWhenNothingIsReachable(t *testing.T) {
	top := reference()
	m := simulate(t, top, always(false), nil)
	for id, want := range map[string]reports.Verdict{
		// nothing connects, so no blocked path is proven: not a pass, and
		// not a leak either
		IDCrossTenant: reports.Unproven, IDTenantIngress: reports.Unproven, IDTenantEgress: reports.Unproven,
		// what must work does not: that is where the broken control fails
		IDSameTenant: reports.Fail, IDDNS: reports.Fail,
	} {
		v, reason := verdict(t, id, top, m)
		assert.Equal(t, want, v, "%s when nothing works: %s", id, reason)
	}
}

func TestVerdictsWhenTheCNIIgnoresPolicy(t *testing.T) {
	top := reference()
	m := simulate(t, top, always(true), nil)
	for id, want := range map[string]reports.Verdict{IDCrossTenant: reports.Fail, IDTenantIngress: reports.Fail, IDTenantEgress: reports.Fail,
		IDSameTenant: reports.Pass, IDDNS: reports.Pass} {
		v, reason := verdict(t, id, top, m)
		assert.Equal(t, want, v, "%s: %s", id, reason)
	}
}

func TestOneTenantOpenedUpFailsOnlyItsOwnChecks(t *testing.T) {
	// Tenant b allows everything in and out; tenant a still denies, so a<->b
	// stays blocked (defence in depth) but control<->b leaks.
	top := reference()
	m := simulate(t, top, func(p Path, _ int) bool {
		if p.Allowed {
			return true
		}
		return (p.Src.Tenant == "control" && p.Dst.Tenant == "b") || (p.Src.Tenant == "b" && p.Dst.Tenant == "control")
	}, nil)
	v, _ := verdict(t, IDCrossTenant, top, m)
	assert.Equal(t, reports.Pass, v)
	v, reason := verdict(t, IDTenantIngress, top, m)
	assert.Equal(t, reports.Fail, v)
	assert.Contains(t, reason, "bh-x-control/p5 -> bh-x-b/p3")
	v, reason = verdict(t, IDTenantEgress, top, m)
	assert.Equal(t, reports.Fail, v)
	assert.Contains(t, reason, "bh-x-b/p3 -> bh-x-control/p5")
}

// A path that must work gets three connect timeouts to answer; one that
// must be blocked gets the request's own (a blocked path pays it in full
// every round, so it stays short).
func TestPathsThatMustWorkGetMoreTime(t *testing.T) {
	top := reference()
	paths := append(MatrixPaths(top, []wire.Protocol{wire.TCP}), DNSPaths(top, "")...)
	allowed := map[string]bool{}
	for _, p := range paths {
		tg := p.Target("")
		allowed[p.Src.Namespace+"/"+p.Src.Name+" "+tg.Host+":"+strconv.Itoa(tg.Port)] = p.Allowed
	}
	var mu sync.Mutex
	seen := map[bool]map[int]int{true: {}, false: {}}
	sim := &probing.Simulated{ConnectFunc: func(src probing.Pod, tg wire.ConnectTarget, _ int) wire.ConnectResult {
		mu.Lock()
		seen[allowed[src.String()+" "+tg.Host+":"+strconv.Itoa(tg.Port)]][tg.TimeoutMS]++
		mu.Unlock()
		return wire.ConnectResult{Outcome: wire.Timeout}
	}}
	env := &checks.Env{Topology: top, Probes: sim, Timing: checks.Timing{ConnectTimeout: 2 * time.Second, Rounds: 1, Pause: time.Millisecond}}
	_, err := Probe(context.Background(), env, paths)
	require.NoError(t, err)
	assert.Equal(t, []int{6000}, slices.Collect(maps.Keys(seen[true])), "must work: 3 x 2s")
	assert.Equal(t, []int{0}, slices.Collect(maps.Keys(seen[false])), "must be blocked: the request's 2s")
}

// A lookup that resolved needs no proof: DNS failing in the control
// namespace makes none of the tenants' resolved names unproven (the old
// whole-check rule did), and a tenant whose lookups fail still fails.
func TestDNSNeedsNoProofToResolve(t *testing.T) {
	top := reference()
	controlDNSFails := func(p Path, _ int) bool {
		if p.Via == ViaDNS && p.Src.Tenant == "control" {
			return false
		}
		return p.Allowed
	}
	v, reason := verdict(t, IDDNS, top, simulate(t, top, controlDNSFails, nil))
	assert.Equal(t, reports.Pass, v, reason)

	tenantBDNSFails := func(p Path, _ int) bool {
		if p.Via == ViaDNS && p.Src.Tenant == "b" {
			return false
		}
		return p.Allowed
	}
	v, reason = verdict(t, IDDNS, top, simulate(t, top, tenantBDNSFails, nil))
	assert.Equal(t, reports.Fail, v)
	assert.Contains(t, reason, "bh-x-b/p3")
}

func TestChecksSkipWithoutTheirSubjects(t *testing.T) {
	top := checks.Topology{
		Tenants: []checks.Tenant{{Name: "a", Isolated: true}, {Name: "b", Isolated: true}},
		Probes:  []checks.ProbePod{pod("a", "p1"), pod("a", "p2"), pod("b", "p3")},
	}
	m := simulate(t, top, asDesigned, nil)
	out := Slice(top, m, tenantEgress)
	assert.False(t, hasTest(out.Observations), "without a control namespace there is nothing to test")
}

func TestTruthTableFromMatrix(t *testing.T) {
	top := reference()
	m := simulate(t, top, asDesigned, nil)
	tables := reports.TruthTables(Slice(top, m, crossTenant).Observations)
	require.Len(t, tables, 3, "one table per address kind for TCP")
	tb := tables[0]
	assert.Equal(t, "tcp/pod-ip", tb.Method)
	assert.Equal(t, "timeout", tb.Cells["bh-x-a/p1"]["bh-x-b/p3"].Observed)
	assert.Equal(t, "reachable", tb.Cells["bh-x-a/p1"]["bh-x-a/p2"].Observed)
	assert.Zero(t, tb.Mismatches())
}

func TestPodsWithoutServicesAreProbedByPodIPOnly(t *testing.T) {
	top := reference()
	for i := range top.Probes {
		if top.Probes[i].Tenant == "b" {
			top.Probes[i].Service, top.Probes[i].ClusterIP, top.Probes[i].DNSName = "", "", ""
		}
	}
	for _, p := range MatrixPaths(top, []wire.Protocol{wire.TCP}) {
		if p.Dst.Tenant == "b" {
			assert.Equal(t, ViaPodIP, p.Via, p.String())
		}
	}
	for _, p := range DNSPaths(top, "") {
		assert.NotEmpty(t, p.Name, "no resolution of a name that does not exist")
	}
}

func withSentinel(top checks.Topology) checks.Topology {
	top.Tenants = append(top.Tenants, checks.Tenant{Name: "sentinel", Isolated: true, Reference: true, Sentinel: true})
	top.Probes = append(top.Probes, pod("sentinel", "p7"))
	return top
}

func TestEnforcementDiagnosis(t *testing.T) {
	top := withSentinel(reference())
	isolated := simulate(t, top, asDesigned, nil)
	assert.Empty(t, EnforcementDiagnosis(top, isolated), "a working cluster")

	ignored := simulate(t, top, always(true), nil)
	d := EnforcementDiagnosis(top, ignored)
	assert.Contains(t, d, "the CNI does not enforce NetworkPolicy")
	assert.Contains(t, d, "bh-x-sentinel")

	tenantsOpen := simulate(t, top, func(p Path, _ int) bool { return p.Allowed || p.Dst.Tenant != "sentinel" }, nil)
	assert.Empty(t, EnforcementDiagnosis(top, tenantsOpen), "open tenants are leaks, not a CNI without policy support: the sentinel still holds")

	nothing := simulate(t, top, always(false), nil)
	assert.Empty(t, EnforcementDiagnosis(top, nothing), "a broken data path is a failed positive control, not this")

	assert.Empty(t, EnforcementDiagnosis(reference(), simulate(t, reference(), always(true), nil)),
		"without a sentinel there is nothing to tell the two apart")
}

func TestADeadTargetLeavesOnlyItsPathsUnproven(t *testing.T) {
	top := reference()
	// b/p3 answers nobody (its pod is gone or its traffic dropped): every
	// "blocked" into it proves nothing, and neither do those from b/p4,
	// whose only peer it was (nothing shows b/p4's own traffic works); the
	// other paths stay proven.
	m := simulate(t, top, func(p Path, _ int) bool { return p.Allowed && p.Dst.Name != "p3" }, nil)
	v, reason := verdict(t, IDCrossTenant, top, m)
	assert.Equal(t, reports.Unproven, v, reason)
	assert.Contains(t, reason, "bh-x-b/p3 answers tcp/pod-ip")
	j := judged(t, IDCrossTenant, top, m)
	for _, o := range j.Observations {
		if o.Role != reports.RoleTest {
			continue
		}
		if o.Target.Name == "p3" || o.Actor.Pod == "p4" {
			assert.Equal(t, reports.StatusUnproven, o.Status, checks.DescribeOne(o))
		} else {
			assert.Equal(t, reports.StatusPass, o.Status, "paths into live pods stay proven: %s", checks.DescribeOne(o))
		}
	}
	same, reason := verdict(t, IDSameTenant, top, m)
	assert.Equal(t, reports.Fail, same, "the broken control is reported where it belongs")
	assert.Contains(t, reason, "-> bh-x-b/p3")
}

func judged(t *testing.T, id string, top checks.Topology, m *Matrix) checks.Judgement {
	t.Helper()
	for _, c := range Checks() {
		if c.ID == id {
			slice := map[string]slicer{IDCrossTenant: crossTenant, IDTenantIngress: tenantIngress, IDTenantEgress: tenantEgress}[id]
			return checks.Judge(c, Slice(top, m, slice))
		}
	}
	t.Fatalf("no check %s", id)
	return checks.Judgement{}
}

func TestAFlappingLeakFailsInTheRoundItLeaked(t *testing.T) {
	top := reference()
	// a -> b connects only in the second round (a policy applied and
	// removed): one round is enough to fail, and the reason cites it.
	m := simulate(t, top, func(p Path, round int) bool {
		return p.Allowed || (p.Src.Tenant == "a" && p.Dst.Tenant == "b" && round == m2(p, round))
	}, nil)
	v, reason := verdict(t, IDCrossTenant, top, m)
	assert.Equal(t, reports.Fail, v, reason)
	assert.Contains(t, reason, "round 2")
	assert.GreaterOrEqual(t, m.Rounds, 2)
}

func m2(Path, int) int { return 2 }

func TestAUsersTenantGetsNoGraceWhileBulkheadSettles(t *testing.T) {
	top := reference()
	top.Tenants[1].Reference = false // b is a user's tenant: its policy was there before bulkhead
	// Round 1: bulkhead's control pods are not reachable yet (settling), and
	// a <-> b leaks. a is bulkhead's, b is not: the leak counts.
	m := simulateSettling(t, top, func(p Path, round int) bool {
		if round == 1 {
			return p.Src.Tenant == "a" && p.Dst.Tenant == "b"
		}
		return p.Allowed
	}, nil, 10*time.Second)
	assert.Equal(t, 2, m.SettledRound, "bulkhead's own paths settled in round 2")
	v, reason := verdict(t, IDCrossTenant, top, m)
	assert.Equal(t, reports.Fail, v, reason)
	assert.Contains(t, reason, "round 1")

	top.Tenants[1].Reference = true // both bulkhead's: the settle round is grace
	m = simulateSettling(t, top, func(p Path, round int) bool {
		if round == 1 {
			return p.Src.Tenant == "a" && p.Dst.Tenant == "b"
		}
		return p.Allowed
	}, nil, 10*time.Second)
	v, reason = verdict(t, IDCrossTenant, top, m)
	assert.Equal(t, reports.Pass, v, reason)
}

func TestAUsersTenantIsNotUnprovenWhileBulkheadSettles(t *testing.T) {
	top := reference()
	top.Tenants[1].Reference = false
	// Round 1: nothing answers yet (bulkhead's pods settling); no leak ever.
	m := simulateSettling(t, top, func(p Path, round int) bool { return round > 1 && p.Allowed }, nil, 10*time.Second)
	assert.Equal(t, 2, m.SettledRound)
	j := judged(t, IDCrossTenant, top, m)
	assert.Equal(t, reports.Pass, j.Verdict, "a block before bulkhead's pods answer proves nothing, and is no gap: %s", j.Reason)
	for _, o := range j.Observations {
		assert.GreaterOrEqual(t, o.Round, 2, checks.DescribeOne(o))
	}
	assert.Positive(t, m.SettleBlocks)
	assert.Contains(t, strings.Join(matrixNotes(m), "\n"), "settle-round results of paths counted from round 1 were no leak")
}

func TestEveryCheckSaysWhatItsControlsProved(t *testing.T) {
	top := reference()
	m := simulate(t, top, func(p Path, _ int) bool { return p.Allowed && p.Dst.Name != "p3" }, nil)
	notes := strings.Join(Slice(top, m, crossTenant).Notes, "\n")
	assert.Regexp(t, `per-path proof: \d+ of \d+ blocked observations shown by a positive control of their own round`, notes)
	assert.Regexp(t, `not shown: bh-x-b/p3 answers tcp/pod-ip \(rounds \d+, \d+\)`, notes, "b/p3 answers nobody in either counted round")
	notes = strings.Join(Slice(top, simulate(t, top, asDesigned, nil), crossTenant).Notes, "\n")
	assert.Regexp(t, `per-path proof: (\d+) of \d+ blocked`, notes)
	assert.NotContains(t, notes, "not shown")
}

func TestAFailedExecMakesOnlyThatSourceUnproven(t *testing.T) {
	top := reference()
	m := simulate(t, top, asDesigned, func(src probing.Pod, round int) error {
		if src.Name == "p1" && round == 2 {
			return errors.New("stream reset")
		}
		return nil
	})
	j := judged(t, IDCrossTenant, top, m)
	// Round 1 proved every path of p1 and into p2: round 2's gap is named,
	// the check is not unproven for it.
	assert.Equal(t, reports.Pass, j.Verdict, j.Reason)
	assert.Contains(t, j.Reason, "round results unproven whose paths another round proved")
	for _, o := range j.Observations {
		switch {
		case o.Role != reports.RoleTest:
		case o.Actor.Pod == "p1" && o.Round == 2:
			assert.Equal(t, reports.StatusUnproven, o.Status)
			assert.Contains(t, o.Why, "inconclusive")
		case o.Target.Name == "p2" && o.Round == 2:
			// only p1 may reach its tenant peer p2: without p1 nothing
			// shows p2 answered in that round
			assert.Equal(t, reports.StatusUnproven, o.Status)
			assert.Contains(t, o.Why, "bh-x-a/p2 answers")
		default:
			assert.Equal(t, reports.StatusPass, o.Status, checks.DescribeOne(o))
		}
	}
	assert.True(t, strings.Contains(strings.Join(m.Notes, "\n"), "stream reset"), m.Notes)

	// p1 never answers its exec: its paths are proven in no round.
	m = simulate(t, top, asDesigned, func(src probing.Pod, _ int) error {
		if src.Name == "p1" {
			return errors.New("stream reset")
		}
		return nil
	})
	assert.Equal(t, reports.Unproven, judged(t, IDCrossTenant, top, m).Verdict)
}

// A path that must work and loses its first answer in a round (a busy node)
// is asked again in that round: the retry's answer is kept and said, and
// neither NET-004 fails nor the blocked paths it proves go unproven. A
// path that misses again still fails.
func TestAMustWorkPathThatMissesOnceIsAskedAgain(t *testing.T) {
	top := reference()
	var mu sync.Mutex
	asked := map[string]int{}
	lost := func(p Path) bool { return p.Allowed && p.Via != ViaDNS && p.Src.Tenant == "a" && p.Dst.Tenant == "a" }
	reach := func(p Path, round int) bool {
		mu.Lock()
		defer mu.Unlock()
		k := p.String() + " round " + strconv.Itoa(round)
		asked[k]++
		if lost(p) && asked[k] == 1 {
			return false // the first answer of every round is lost
		}
		return p.Allowed
	}
	m := simulate(t, top, reach, nil)
	v, reason := verdict(t, IDSameTenant, top, m)
	assert.Equal(t, reports.Pass, v, reason)
	v, reason = verdict(t, IDCrossTenant, top, m)
	assert.Equal(t, reports.Pass, v, reason)
	assert.Positive(t, m.Retried)
	assert.Equal(t, m.Retried, m.Recovered)
	retried := 0
	for _, o := range Slice(top, m, sameTenant).Observations {
		if o.Attempts == 2 {
			retried++
			assert.Equal(t, "reachable", o.Observed, checks.DescribeOne(o))
		}
	}
	assert.Equal(t, m.Retried, retried, "each retried path round says it took two attempts")
	assert.Contains(t, strings.Join(matrixNotes(m), "\n"), fmt.Sprintf("paths that must work missed %d time(s) and were probed again in the same round; %d of those answered then", m.Retried, m.Recovered))

	// missing every time: asked twice a round, and NET-004 fails
	m = simulate(t, top, func(p Path, _ int) bool { return p.Allowed && !lost(p) }, nil)
	v, reason = verdict(t, IDSameTenant, top, m)
	assert.Equal(t, reports.Fail, v, reason)
	assert.Positive(t, m.Retried)
	assert.Zero(t, m.Recovered)
}
