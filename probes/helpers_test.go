package main

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

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
