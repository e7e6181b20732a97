package network

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
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
	cases := []struct {
		name string
		path Path
		res  wire.ConnectResult
		ok   bool
	}{
		{"allowed and reachable", allowed, wire.ConnectResult{Outcome: wire.Reachable, Peer: right}, true},
		{"allowed, reachable, no identity", allowed, wire.ConnectResult{Outcome: wire.Reachable}, true},
		{"allowed but the wrong pod answered", allowed, wire.ConnectResult{Outcome: wire.Reachable, Peer: wrong}, false},
		{"allowed but timed out", allowed, wire.ConnectResult{Outcome: wire.Timeout}, false},
		{"blocked by a drop", blocked, wire.ConnectResult{Outcome: wire.Timeout}, true},
		{"blocked by a reject", blocked, wire.ConnectResult{Outcome: wire.Refused}, true},
		{"blocked by an ICMP prohibited", blocked, wire.ConnectResult{Outcome: wire.Unreachable}, true},
		{"a leak", blocked, wire.ConnectResult{Outcome: wire.Reachable, Peer: right}, false},
		{"DNS failure proves nothing", blocked, wire.ConnectResult{Outcome: wire.DNSFailure}, false},
		{"an error proves nothing", blocked, wire.ConnectResult{Outcome: wire.Failed}, false},
		{"resolution works", Path{Via: ViaDNS, Protocol: wire.DNS, Allowed: true}, wire.ConnectResult{Outcome: wire.Reachable}, true},
		{"resolution fails", Path{Via: ViaDNS, Protocol: wire.DNS, Allowed: true}, wire.ConnectResult{Outcome: wire.DNSFailure}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, _, _ := Judge(c.path, c.res)
			assert.Equal(t, c.ok, ok)
		})
	}
}

// fakeMatrix builds a probed matrix where every path behaves as given.
func fakeMatrix(top checks.Topology, reachable func(Path) bool) *Matrix {
	m := &Matrix{}
	for _, p := range append(MatrixPaths(top, []wire.Protocol{wire.TCP}), DNSPaths(top, "")...) {
		res := wire.ConnectResult{Outcome: wire.Timeout}
		if reachable(p) {
			res.Outcome = wire.Reachable
		}
		ok, observed, detail := Judge(p, res)
		m.Results = append(m.Results, Result{Path: p, Last: res, OK: ok, Observed: observed, Detail: detail, Attempts: 1})
	}
	return m
}

func verdict(t *testing.T, id string, top checks.Topology, m *Matrix) (reports.Verdict, string) {
	t.Helper()
	for _, c := range Checks() {
		if c.ID != id {
			continue
		}
		slice := map[string]slicer{IDCrossTenant: crossTenant, IDTenantIngress: tenantIngress, IDTenantEgress: tenantEgress,
			IDSameTenant: sameTenant, IDDNS: dnsResolution}[id]
		return checks.Judge(c, Slice(top, m, slice))
	}
	t.Fatalf("no check %s", id)
	return "", ""
}

func TestVerdictsOnAnIsolatedCluster(t *testing.T) {
	top := reference()
	m := fakeMatrix(top, func(p Path) bool { return p.Allowed })
	for _, id := range []string{IDCrossTenant, IDTenantIngress, IDTenantEgress, IDSameTenant, IDDNS} {
		v, reason := verdict(t, id, top, m)
		assert.Equal(t, reports.Pass, v, "%s: %s", id, reason)
	}
}

func TestVerdictsWhenNothingIsReachable(t *testing.T) {
	top := reference()
	m := fakeMatrix(top, func(Path) bool { return false })
	for _, id := range []string{IDCrossTenant, IDTenantIngress, IDTenantEgress, IDSameTenant, IDDNS} {
		v, reason := verdict(t, id, top, m)
		assert.Equal(t, reports.Fail, v, "%s must fail when nothing works: %s", id, reason)
	}
}

func TestVerdictsWhenTheCNIIgnoresPolicy(t *testing.T) {
	top := reference()
	m := fakeMatrix(top, func(Path) bool { return true })
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
	m := fakeMatrix(top, func(p Path) bool {
		if p.Allowed {
			return true
		}
		return (p.Src.Tenant == "control" && p.Dst.Tenant == "b") || (p.Src.Tenant == "b" && p.Dst.Tenant == "control")
	})
	v, _ := verdict(t, IDCrossTenant, top, m)
	assert.Equal(t, reports.Pass, v)
	v, reason := verdict(t, IDTenantIngress, top, m)
	assert.Equal(t, reports.Fail, v)
	assert.Contains(t, reason, "bh-x-control/p5 -> bh-x-b/p3")
	v, reason = verdict(t, IDTenantEgress, top, m)
	assert.Equal(t, reports.Fail, v)
	assert.Contains(t, reason, "bh-x-b/p3 -> bh-x-control/p5")
}

func TestChecksSkipWithoutTheirSubjects(t *testing.T) {
	top := checks.Topology{
		Tenants: []checks.Tenant{{Name: "a", Isolated: true}, {Name: "b", Isolated: true}},
		Probes:  []checks.ProbePod{pod("a", "p1"), pod("a", "p2"), pod("b", "p3")},
	}
	m := fakeMatrix(top, func(p Path) bool { return p.Allowed })
	out := Slice(top, m, tenantEgress)
	assert.False(t, hasTest(out.Observations), "without a control namespace there is nothing to test")
}

func TestTruthTableFromMatrix(t *testing.T) {
	top := reference()
	m := fakeMatrix(top, func(p Path) bool { return p.Allowed })
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
	isolated := fakeMatrix(top, func(p Path) bool { return p.Allowed })
	assert.Empty(t, EnforcementDiagnosis(top, isolated), "a working cluster")

	ignored := fakeMatrix(top, func(Path) bool { return true })
	d := EnforcementDiagnosis(top, ignored)
	assert.Contains(t, d, "the CNI does not enforce NetworkPolicy")
	assert.Contains(t, d, "bh-x-sentinel")

	tenantsOpen := fakeMatrix(top, func(p Path) bool { return p.Allowed || p.Dst.Tenant != "sentinel" })
	assert.Empty(t, EnforcementDiagnosis(top, tenantsOpen), "open tenants are leaks, not a CNI without policy support: the sentinel still holds")

	nothing := fakeMatrix(top, func(Path) bool { return false })
	assert.Empty(t, EnforcementDiagnosis(top, nothing), "a broken data path is a failed positive control, not this")

	assert.Empty(t, EnforcementDiagnosis(reference(), fakeMatrix(reference(), func(Path) bool { return true })),
		"without a sentinel there is nothing to tell the two apart")
}
