package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

func connectOne(t *testing.T, target wire.ConnectTarget) wire.ConnectResult {
	t.Helper()
	results := newProber().connectAll(context.Background(), wire.ConnectRequest{Targets: []wire.ConnectTarget{target}})
	if len(results) != 1 {
		t.Fatalf("got %d results, want 1", len(results))
	}
	r := results[0]
	t.Logf("%s %s:%d -> %s address=%s latency=%.1fms detail=%q", target.Protocol, target.Host, target.Port, r.Outcome, r.Address, r.LatencyMS, r.Detail)
	return r
}

func TestConnect(t *testing.T) {
	s := startTestServers(t)
	sctpOK, sctpWhy := sctpCapability()

	type tc struct {
		name     string
		target   wire.ConnectTarget
		want     wire.Outcome
		wantPeer bool
		// minMS/maxMS bound the result's latency when set.
		minMS, maxMS float64
		skip         string
	}
	tests := []tc{
		{name: "tcp reachable", target: wire.ConnectTarget{Protocol: wire.TCP, Host: "127.0.0.1", Port: port(t, s.tcpAddr())},
			want: wire.Reachable, wantPeer: true},
		{name: "tcp refused", target: wire.ConnectTarget{Protocol: wire.TCP, Host: "127.0.0.1", Port: closedTCPPort(t)},
			want: wire.Refused},
		{name: "udp reachable", target: wire.ConnectTarget{Protocol: wire.UDP, Host: "127.0.0.1", Port: port(t, s.udpAddr())},
			want: wire.Reachable, wantPeer: true},
		{name: "udp refused", target: wire.ConnectTarget{Protocol: wire.UDP, Host: "127.0.0.1", Port: closedUDPPort(t)},
			want: wire.Refused},
		{name: "udp timeout", target: wire.ConnectTarget{Protocol: wire.UDP, Host: "127.0.0.1", Port: silentUDPPort(t), TimeoutMS: 700},
			want: wire.Timeout, minMS: 700, maxMS: 700 + 500},
		{name: "dns failure", target: wire.ConnectTarget{Protocol: wire.DNS, Host: "no-such-host.invalid", TimeoutMS: 1500},
			want: wire.DNSFailure, maxMS: 1500 + 500},
		{name: "tcp to unresolvable name", target: wire.ConnectTarget{Protocol: wire.TCP, Host: "no-such-host.invalid", Port: 80, TimeoutMS: 1500},
			want: wire.DNSFailure},
		{name: "dns ip literal", target: wire.ConnectTarget{Protocol: wire.DNS, Host: "127.0.0.1"},
			want: wire.Reachable},
	}
	if sctpOK {
		tests = append(tests,
			tc{name: "sctp reachable", target: wire.ConnectTarget{Protocol: wire.SCTP, Host: "127.0.0.1", Port: port(t, s.sctpAddr())},
				want: wire.Reachable, wantPeer: true},
			tc{name: "sctp refused", target: wire.ConnectTarget{Protocol: wire.SCTP, Host: "127.0.0.1", Port: closedTCPPort(t)},
				want: wire.Refused},
			tc{name: "sctp unsupported", skip: "this kernel supports SCTP, so the Unsupported branch cannot be exercised"})
	} else {
		t.Logf("no SCTP here (%s): the sctp reachable/refused cases cannot run", sctpWhy)
		tests = append(tests,
			tc{name: "sctp unsupported", target: wire.ConnectTarget{Protocol: wire.SCTP, Host: "127.0.0.1", Port: wire.PortSCTP},
				want: wire.Unsupported})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			t.Parallel()
			tt.target.ID = tt.name
			r := connectOne(t, tt.target)
			if r.ID != tt.name {
				t.Errorf("ID = %q, want %q", r.ID, tt.name)
			}
			if r.Outcome != tt.want {
				t.Fatalf("outcome = %q (detail %q), want %q", r.Outcome, r.Detail, tt.want)
			}
			if tt.wantPeer {
				if r.Peer == nil || *r.Peer != testIdentity {
					t.Errorf("peer = %+v, want %+v", r.Peer, testIdentity)
				}
			} else if r.Peer != nil {
				t.Errorf("peer = %+v, want none", r.Peer)
			}
			if tt.want != wire.DNSFailure && r.Address != "127.0.0.1" {
				t.Errorf("address = %q, want 127.0.0.1", r.Address)
			}
			if tt.minMS > 0 && r.LatencyMS < tt.minMS {
				t.Errorf("latency %.1f ms, want at least %.0f ms", r.LatencyMS, tt.minMS)
			}
			if tt.maxMS > 0 && r.LatencyMS > tt.maxMS {
				t.Errorf("latency %.1f ms, want at most %.0f ms", r.LatencyMS, tt.maxMS)
			}
			if r.Started.IsZero() || r.Started.Location() != time.UTC {
				t.Errorf("started = %v, want a UTC time", r.Started)
			}
		})
	}
}

func TestConnectDNSFailureDetail(t *testing.T) {
	// Whether this machine has a working resolver or none, the outcome is a
	// DNS failure; the detail says which kind.
	r := connectOne(t, wire.ConnectTarget{ID: "x", Protocol: wire.DNS, Host: "no-such-host.invalid", TimeoutMS: 1500})
	if r.Outcome != wire.DNSFailure {
		t.Fatalf("outcome = %q, want %q", r.Outcome, wire.DNSFailure)
	}
	if !strings.Contains(r.Detail, "no such host") && !strings.Contains(r.Detail, "resolver") {
		t.Errorf("detail %q says neither no-such-host nor resolver trouble", r.Detail)
	}
	if r.Address != "" {
		t.Errorf("address = %q, want none", r.Address)
	}
}

func TestConnectResolvesNames(t *testing.T) {
	s := startTestServers(t)
	ips, err := newProber().resolver.LookupNetIP(context.Background(), "ip4", "localhost")
	if err != nil || len(ips) == 0 {
		t.Skipf("localhost does not resolve here (%v); name resolution is covered by the DNS failure cases", err)
	}
	r := connectOne(t, wire.ConnectTarget{ID: "n", Protocol: wire.TCP, Host: "localhost", Port: port(t, s.tcpAddr())})
	// localhost may resolve to ::1 first, where nothing listens.
	if r.Address == "127.0.0.1" && (r.Outcome != wire.Reachable || r.Peer == nil) {
		t.Errorf("localhost via 127.0.0.1: outcome %q peer %v detail %q", r.Outcome, r.Peer, r.Detail)
	}
	if r.Address == "" {
		t.Errorf("address empty after resolving localhost")
	}
}

// TestConnectParallel: the wall time of a request is about one timeout, not
// the sum of them, and results keep the targets' order.
func TestConnectParallel(t *testing.T) {
	const n, timeoutMS = 20, 300
	req := wire.ConnectRequest{TimeoutMS: timeoutMS}
	for i := range n {
		req.Targets = append(req.Targets, wire.ConnectTarget{ID: fmt.Sprint("t", i), Protocol: wire.UDP, Host: "127.0.0.1", Port: silentUDPPort(t)})
	}
	start := time.Now()
	results := newProber().connectAll(context.Background(), req)
	elapsed := time.Since(start)
	if elapsed > 1500*time.Millisecond {
		t.Errorf("%d targets of %d ms took %v; want < 1.5s (they must run in parallel)", n, timeoutMS, elapsed)
	}
	if elapsed < timeoutMS*time.Millisecond {
		t.Errorf("took %v, less than the %d ms timeout", elapsed, timeoutMS)
	}
	for i, r := range results {
		if r.ID != req.Targets[i].ID {
			t.Errorf("result %d has ID %q, want %q", i, r.ID, req.Targets[i].ID)
		}
		if r.Outcome != wire.Timeout {
			t.Errorf("result %d: outcome %q (%s), want timeout", i, r.Outcome, r.Detail)
		}
	}
}

func TestConnectMixedOrder(t *testing.T) {
	s := startTestServers(t)
	req := wire.ConnectRequest{TimeoutMS: 400, Targets: []wire.ConnectTarget{
		{ID: "slow", Protocol: wire.UDP, Host: "127.0.0.1", Port: silentUDPPort(t)},
		{ID: "fast", Protocol: wire.TCP, Host: "127.0.0.1", Port: port(t, s.tcpAddr())},
		{ID: "own-timeout", Protocol: wire.UDP, Host: "127.0.0.1", Port: silentUDPPort(t), TimeoutMS: 100},
		{ID: "refused", Protocol: wire.TCP, Host: "127.0.0.1", Port: closedTCPPort(t)},
	}}
	want := []wire.Outcome{wire.Timeout, wire.Reachable, wire.Timeout, wire.Refused}
	results := newProber().connectAll(context.Background(), req)
	for i, r := range results {
		if r.ID != req.Targets[i].ID || r.Outcome != want[i] {
			t.Errorf("result %d = %s/%s, want %s/%s", i, r.ID, r.Outcome, req.Targets[i].ID, want[i])
		}
	}
	if l := results[2].LatencyMS; l < 100 || l > 350 {
		t.Errorf("target with its own 100 ms timeout took %.1f ms", l)
	}
}

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; empty for success
	}{
		{"valid", `{"timeoutMs":500,"targets":[{"id":"a","protocol":"tcp","host":"10.0.0.1","port":8080},{"id":"b","protocol":"dns","host":"kubernetes.default"}]}`, ""},
		{"no targets", `{"targets":[]}`, ""},
		{"empty", ``, "empty input"},
		{"not json", `hello`, "decode request"},
		{"truncated", `{"targets":[`, "decode request"},
		{"trailing data", `{"targets":[]} {"targets":[]}`, "after the request"},
		{"wrong type", `{"targets":"tcp"}`, "decode request"},
		{"unknown protocol", `{"targets":[{"id":"a","protocol":"icmp","host":"10.0.0.1","port":1}]}`, `unknown protocol "icmp"`},
		{"no host", `{"targets":[{"id":"a","protocol":"tcp","port":1}]}`, "empty host"},
		{"no port", `{"targets":[{"id":"a","protocol":"udp","host":"10.0.0.1"}]}`, "port 0"},
		{"port too big", `{"targets":[{"id":"a","protocol":"sctp","host":"10.0.0.1","port":70000}]}`, "port 70000"},
		{"negative timeout", `{"timeoutMs":-1,"targets":[]}`, "negative"},
		{"negative target timeout", `{"targets":[{"id":"a","protocol":"dns","host":"x","timeoutMs":-5}]}`, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeRequest(strings.NewReader(tt.in))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestTimeoutFor(t *testing.T) {
	req := wire.ConnectRequest{TimeoutMS: 500}
	if got := timeoutFor(req, wire.ConnectTarget{TimeoutMS: 100}); got != 100*time.Millisecond {
		t.Errorf("target timeout: got %v", got)
	}
	if got := timeoutFor(req, wire.ConnectTarget{}); got != 500*time.Millisecond {
		t.Errorf("request timeout: got %v", got)
	}
	if got := timeoutFor(wire.ConnectRequest{}, wire.ConnectTarget{}); got != 2*time.Second {
		t.Errorf("default timeout: got %v", got)
	}
}

func TestResolveTimeoutFor(t *testing.T) {
	if got := resolveTimeoutFor(wire.ConnectRequest{ResolveTimeoutMS: 900}, wire.ConnectTarget{}); got != 900*time.Millisecond {
		t.Errorf("request's resolve timeout: got %v", got)
	}
	if got := resolveTimeoutFor(wire.ConnectRequest{TimeoutMS: 500}, wire.ConnectTarget{}); got != 6*time.Second {
		t.Errorf("default resolve timeout: got %v, want 6s (longer than one resolver attempt)", got)
	}
	if got := resolveTimeoutFor(wire.ConnectRequest{}, wire.ConnectTarget{TimeoutMS: 8000}); got != 8*time.Second {
		t.Errorf("a target deadline longer than the default: got %v, want 8s", got)
	}
}

// TestConnectSlowLookupKeepsTheConnectDeadline: a name that takes longer to
// resolve than the connect deadline (a busy cluster DNS) still gets its
// connection tried with the whole deadline; before, the lookup ate it and
// a path that must be blocked came back "dns-failure", proving nothing.
func TestConnectSlowLookupKeepsTheConnectDeadline(t *testing.T) {
	s := startTestServers(t)
	p := newProber()
	p.resolver.Dial = slowDNS(t, 600*time.Millisecond, netip.MustParseAddr("127.0.0.1"))
	target := wire.ConnectTarget{ID: "n", Protocol: wire.TCP, Host: "probe-0.tenant-b.svc.", Port: port(t, s.tcpAddr())}
	r := p.probe(context.Background(), target, deadlines{resolve: 5 * time.Second, probe: 300 * time.Millisecond})
	if r.Outcome != wire.Reachable || r.Peer == nil {
		t.Fatalf("outcome %q peer %v detail %q; want reachable, answered", r.Outcome, r.Peer, r.Detail)
	}
	if r.ResolveMS < 600 {
		t.Errorf("resolveMs = %.0f, want the lookup's time (>= 600)", r.ResolveMS)
	}
	if r.LatencyMS < r.ResolveMS {
		t.Errorf("latencyMs %.0f < resolveMs %.0f: latency includes resolution", r.LatencyMS, r.ResolveMS)
	}
}

// TestConnectLookupAsksAgain: a lookup whose queries were lost is asked
// again before the resolver's own 5 s wait, within the resolve deadline.
func TestConnectLookupAsksAgain(t *testing.T) {
	s := startTestServers(t)
	p := newProber()
	p.resolver.Dial = fakeDNS(t, 0, 2, netip.MustParseAddr("127.0.0.1")) // the first A and AAAA
	target := wire.ConnectTarget{ID: "n", Protocol: wire.TCP, Host: "probe-0.tenant-b.svc.", Port: port(t, s.tcpAddr())}
	r := p.probe(context.Background(), target, deadlines{resolve: 4 * time.Second, probe: 300 * time.Millisecond})
	if r.Outcome != wire.Reachable {
		t.Fatalf("outcome %q detail %q; want reachable after asking again", r.Outcome, r.Detail)
	}
	if r.ResolveMS < float64(resolveAttempt/time.Millisecond) || r.ResolveMS > 3500 {
		t.Errorf("resolveMs = %.0f, want one attempt's wait and a quick answer", r.ResolveMS)
	}
}

// TestConnectLookupDeadline: a lookup that never answers fails at the
// resolve deadline, not at the (shorter) connect deadline, and says so.
func TestConnectLookupDeadline(t *testing.T) {
	p := newProber()
	p.resolver.Dial = silentDNS(t)
	start := time.Now()
	r := p.probe(context.Background(), wire.ConnectTarget{ID: "n", Protocol: wire.TCP, Host: "probe-0.tenant-b.svc.", Port: 80},
		deadlines{resolve: 700 * time.Millisecond, probe: 200 * time.Millisecond})
	elapsed := time.Since(start)
	if r.Outcome != wire.DNSFailure || !strings.Contains(r.Detail, "resolver timeout") {
		t.Fatalf("outcome %q detail %q, want a resolver timeout", r.Outcome, r.Detail)
	}
	if elapsed < 650*time.Millisecond || elapsed > 1500*time.Millisecond {
		t.Errorf("took %v; want about the 700ms resolve deadline", elapsed)
	}
}

// TestRunConnect drives the subcommand as the checks do: JSON in, JSON out.
func TestRunConnect(t *testing.T) {
	s := startTestServers(t)
	in := fmt.Sprintf(`{"timeoutMs":1000,"targets":[{"id":"web","protocol":"tcp","host":"127.0.0.1","port":%d}]}`, port(t, s.tcpAddr()))
	e, stdout, stderr := testEnv(in)
	if code := run(context.Background(), e, []string{"connect"}); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var resp wire.ConnectResponse
	if err := json.Unmarshal([]byte(stdout.String()), &resp); err != nil {
		t.Fatalf("stdout is not a ConnectResponse: %v\n%s", err, stdout)
	}
	if resp.Version != wire.Version || resp.Source != testIdentity {
		t.Errorf("version %d source %+v", resp.Version, resp.Source)
	}
	if len(resp.Results) != 1 || resp.Results[0].Outcome != wire.Reachable || resp.Results[0].Peer == nil {
		t.Errorf("results = %+v", resp.Results)
	}
}

func TestRunConnectEmptyTargets(t *testing.T) {
	e, stdout, _ := testEnv(`{"targets":[]}`)
	if code := run(context.Background(), e, []string{"connect"}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stdout.String(), `"results":[]`) {
		t.Errorf("want an empty results array, got %s", stdout)
	}
}

func TestRunConnectBadInput(t *testing.T) {
	e, stdout, stderr := testEnv(`{"targets":[{"id":"a","protocol":"tcp"`)
	if code := run(context.Background(), e, []string{"connect"}); code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(stderr.String(), "decode request") {
		t.Errorf("stderr %q does not say why", stderr)
	}
	if stdout.String() != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
}

// TestConnectResolverTimeout points the pure-Go resolver at a DNS server that
// never answers (what a policy blocking DNS looks like): still a DNS failure,
// but the detail says the resolver timed out, not that the name is missing.
func TestConnectResolverTimeout(t *testing.T) {
	p := newProber()
	p.resolver.Dial = silentDNS(t)
	start := time.Now()
	r := p.probe(context.Background(), wire.ConnectTarget{ID: "d", Protocol: wire.DNS, Host: "kubernetes.default.svc.cluster.local."},
		deadlines{resolve: 5 * time.Second, probe: 400 * time.Millisecond})
	elapsed := time.Since(start)
	t.Logf("outcome %s after %v: %s", r.Outcome, elapsed, r.Detail)
	if r.Outcome != wire.DNSFailure {
		t.Fatalf("outcome = %q, want %q", r.Outcome, wire.DNSFailure)
	}
	if !strings.Contains(r.Detail, "resolver timeout") {
		t.Errorf("detail %q, want a resolver timeout", r.Detail)
	}
	if elapsed > 400*time.Millisecond+500*time.Millisecond {
		t.Errorf("took %v; the deadline must bound resolution", elapsed)
	}
}

// TestOverrun: only a timeout carries how long past its deadline it ended.
func TestOverrun(t *testing.T) {
	for _, c := range []struct {
		o                 wire.Outcome
		elapsed, deadline time.Duration
		want              float64
	}{
		{wire.Timeout, 4800 * time.Millisecond, 2 * time.Second, 2800},
		{wire.Timeout, 1900 * time.Millisecond, 2 * time.Second, 0},
		{wire.Reachable, 4800 * time.Millisecond, 2 * time.Second, 0},
		{wire.Refused, 4800 * time.Millisecond, 2 * time.Second, 0},
	} {
		if got := overrun(c.o, c.elapsed, c.deadline); got != c.want {
			t.Errorf("overrun(%s, %v, %v) = %v, want %v", c.o, c.elapsed, c.deadline, got, c.want)
		}
	}
}

// TestConnectTimeoutSaysItsOverrun: a UDP target that never answers times
// out at its deadline and says by how much it overran, which on a pod with
// CPU to spare is far less than a second.
func TestConnectTimeoutSaysItsOverrun(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ap := netip.MustParseAddrPort(silent.LocalAddr().String())
	res := newProber().probe(context.Background(), wire.ConnectTarget{ID: "0", Protocol: wire.UDP, Host: ap.Addr().String(), Port: int(ap.Port())},
		deadlines{resolve: time.Second, probe: 200 * time.Millisecond})
	if res.Outcome != wire.Timeout {
		t.Fatalf("outcome %s (%s), want timeout", res.Outcome, res.Detail)
	}
	if res.OverrunMS >= 1000 {
		t.Errorf("overran by %v ms on an idle pod", res.OverrunMS)
	}
	if res.LatencyMS < 200 {
		t.Errorf("latency %v ms: ended before its deadline", res.LatencyMS)
	}
}
