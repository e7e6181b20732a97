package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/bulkhead-k8s/bulkhead/internal/syncbuf"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// testIdentity is what test servers answer with.
var testIdentity = wire.Identity{Pod: "probe-0", Namespace: "tenant-a", Node: "node-1", IP: "127.0.0.1"}

// testEnv is an env with the downward-API variables of testIdentity.
func testEnv(stdin string) (*env, *syncbuf.Buffer, *syncbuf.Buffer) {
	vars := map[string]string{
		envPodName:      testIdentity.Pod,
		envPodNamespace: testIdentity.Namespace,
		envNodeName:     testIdentity.Node,
		envPodIP:        testIdentity.IP,
	}
	stdout, stderr := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	return &env{
		stdin:    strings.NewReader(stdin),
		stdout:   stdout,
		stderr:   stderr,
		getenv:   func(k string) string { return vars[k] },
		hostname: func() (string, error) { return "host-fallback", nil },
	}, stdout, stderr
}

// startTestServers runs serve's listeners on loopback ephemeral ports.
func startTestServers(t *testing.T) *servers {
	t.Helper()
	cfg := serveConfig{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0", SCTP: "127.0.0.1:0"}
	s, err := startServers(cfg, testIdentity, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatalf("startServers: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

func port(t *testing.T, a net.Addr) int {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatalf("parse %s: %v", a, err)
	}
	return int(ap.Port())
}

// closedTCPPort returns a loopback port nothing listens on.
func closedTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := port(t, l.Addr())
	l.Close()
	return p
}

func closedUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := port(t, c.LocalAddr())
	c.Close()
	return p
}

// silentUDPPort returns a bound UDP port that never answers: what a policy
// drop looks like to the prober.
func silentUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return port(t, c.LocalAddr())
}

// silentDNS returns a resolver Dial for a DNS server that never answers
// (what a policy blocking DNS looks like).
func silentDNS(t *testing.T) func(ctx context.Context, _, _ string) (net.Conn, error) {
	t.Helper()
	return dialDNS(fmt.Sprintf("127.0.0.1:%d", silentUDPPort(t)))
}

// dialDNS is a resolver Dial that sends every query to server over UDP.
func dialDNS(server string) func(ctx context.Context, _, _ string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", server)
	}
}

// slowDNS returns a resolver Dial for a DNS server on 127.0.0.1 that
// answers every A question with addr after delay, and AAAA with nothing.
func slowDNS(t *testing.T, delay time.Duration, addr netip.Addr) func(ctx context.Context, _, _ string) (net.Conn, error) {
	return fakeDNS(t, delay, 0, addr)
}

// fakeDNS is slowDNS that also drops the first drop queries it gets.
func fakeDNS(t *testing.T, delay time.Duration, drop int, addr netip.Addr) func(ctx context.Context, _, _ string) (net.Conn, error) {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if drop > 0 {
				drop--
				continue
			}
			answer, err := dnsAnswer(buf[:n], addr)
			if err != nil {
				continue
			}
			time.AfterFunc(delay, func() { c.WriteTo(answer, from) })
		}
	}()
	return dialDNS(c.LocalAddr().String())
}

// dnsAnswer answers query: addr for A, no records for anything else.
func dnsAnswer(query []byte, addr netip.Addr) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA {
		hdr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5}
		if err := b.AResource(hdr, dnsmessage.AResource{A: addr.As4()}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
