package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

func TestServeHTTP(t *testing.T) {
	s := startTestServers(t)
	base := "http://" + s.tcpAddr().String()
	for _, path := range []string{"/", "/any/path?q=1"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		var id wire.Identity
		err = json.NewDecoder(resp.Body).Decode(&id)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || id != testIdentity {
			t.Errorf("GET %s: status %d identity %+v err %v", path, resp.StatusCode, id, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("GET /healthz: status %d body %q", resp.StatusCode, body)
	}
}

func TestServeUDP(t *testing.T) {
	s := startTestServers(t)
	conn, err := net.Dial("udp", s.udpAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 2048)
	// Every datagram gets its own answer.
	for i := range 3 {
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		id, err := parseIdentity(buf[:n])
		if err != nil || *id != testIdentity {
			t.Errorf("datagram %d: answer %q: %v", i, buf[:n], err)
		}
	}
}

// TestServeSCTPOptional: a kernel without SCTP must not stop serve.
func TestServeSCTPOptional(t *testing.T) {
	s := startTestServers(t)
	supported, why := sctpCapability()
	switch {
	case supported && s.sctp == nil:
		t.Errorf("kernel supports SCTP but serve has no SCTP listener")
	case !supported && s.sctp != nil:
		t.Errorf("kernel lacks SCTP (%s) but serve has an SCTP listener", why)
	}
	if s.tcp == nil || s.udp == nil {
		t.Errorf("tcp/udp listeners missing: %v %v", s.tcp, s.udp)
	}
}

func TestServeBindConflict(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = startServers(serveConfig{TCP: taken.Addr().String()}, testIdentity, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "listen tcp") {
		t.Errorf("err = %v, want a listen tcp error", err)
	}
}

// TestRunServeStops: serve returns promptly (and cleanly) when its context
// ends, which is what SIGTERM does in main.
func TestRunServeStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	e, _, stderr := testEnv("")
	done := make(chan int)
	go func() {
		done <- run(ctx, e, []string{"serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--sctp", "127.0.0.1:0"})
	}()

	waitFor(t, func() bool { return strings.Contains(stderr.String(), "msg=serving") })
	addr := logValue(stderr.String(), "tcp")
	if code := run(context.Background(), e, []string{"ready", "--addr", addr}); code != exitOK {
		t.Errorf("ready against running serve: exit %d", code)
	}
	start := time.Now()
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve exit %d, want 0; log:\n%s", code, stderr)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("serve took %v to stop", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("serve did not stop; log:\n%s", stderr)
	}
}

func TestRunServeBadFlags(t *testing.T) {
	e, _, _ := testEnv("")
	if code := run(context.Background(), e, []string{"serve", "--nope"}); code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if code := run(context.Background(), e, []string{"serve", "extra"}); code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
}

func TestRunReady(t *testing.T) {
	s := startTestServers(t)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hanging.Close()

	tests := []struct {
		name string
		addr string
		want int
	}{
		{"serving", s.tcpAddr().String(), exitOK},
		{"nothing listening", fmt.Sprintf("127.0.0.1:%d", closedTCPPort(t)), exitFail},
		{"unhealthy", failing.Listener.Addr().String(), exitFail},
		{"hanging", hanging.Listener.Addr().String(), exitFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _, stderr := testEnv("")
			start := time.Now()
			if code := run(context.Background(), e, []string{"ready", "--addr", tt.addr}); code != tt.want {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.want, stderr)
			}
			if d := time.Since(start); d > readyTimeout+500*time.Millisecond {
				t.Errorf("ready took %v", d)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

// logValue returns key's value from the first slog text line that has it.
func logValue(log, key string) string {
	for _, field := range strings.Fields(log) {
		if v, ok := strings.CutPrefix(field, key+"="); ok {
			return v
		}
	}
	return ""
}

// A server with a token tells strangers nothing: no status line, no
// identity, no health; only a request carrying the token gets the
// identity. UDP and SCTP, which cannot ask for the token, are off.
func TestServeWithTokenAnswersOnlyTheToken(t *testing.T) {
	const token = "run-token-3f9a"
	s, err := startServers(serveConfig{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0", SCTP: "127.0.0.1:0", Token: token},
		testIdentity, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	if s.udp != nil || s.sctp != nil {
		t.Errorf("udp/sctp listeners with a token: %v %v", s.udp, s.sctp)
	}
	addr := s.tcpAddr().String()

	for _, header := range []string{"", "X-Bulkhead-Token: wrong\r\n", "X-Bulkhead-Token: " + token + "x\r\n"} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: x\r\n%s\r\n", header)
		got, err := io.ReadAll(conn)
		conn.Close()
		if len(got) != 0 {
			t.Errorf("header %q: got %q, want nothing", header, got)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("header %q: the connection was left open", header)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set(wire.TokenHeader, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET with the token: %v", err)
	}
	var id wire.Identity
	err = json.NewDecoder(resp.Body).Decode(&id)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || id != testIdentity {
		t.Errorf("GET with the token: status %d identity %+v err %v", resp.StatusCode, id, err)
	}

	// The readiness probe asks from loopback, without the token.
	e, _, stderr := testEnv("")
	if code := run(context.Background(), e, []string{"ready", "--addr", addr}); code != exitOK {
		t.Errorf("ready against a token server: exit %d: %s", code, stderr)
	}
	h := s.tokenHandler()
	rec := httptest.NewRecorder()
	remote := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	remote.RemoteAddr = "10.0.0.7:41000"
	func() {
		defer func() { _ = recover() }() // the handler aborts: no answer
		h.ServeHTTP(rec, remote)
	}()
	if rec.Body.Len() != 0 {
		t.Errorf("/healthz from another host answered %q", rec.Body.String())
	}
}

// The connect side sends the token; without it the same server is
// reachable but says nothing, so a probe never mistakes it for a peer.
func TestConnectCarriesTheToken(t *testing.T) {
	const token = "run-token-77c1"
	s, err := startServers(serveConfig{TCP: "127.0.0.1:0", Token: token}, testIdentity, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	p := port(t, s.tcpAddr())
	with := connectOne(t, wire.ConnectTarget{ID: "with", Protocol: wire.TCP, Host: "127.0.0.1", Port: p, Token: token})
	if with.Outcome != wire.Reachable || with.Peer == nil || *with.Peer != testIdentity {
		t.Errorf("with the token: %+v", with)
	}
	without := connectOne(t, wire.ConnectTarget{ID: "without", Protocol: wire.TCP, Host: "127.0.0.1", Port: p})
	if without.Outcome != wire.Reachable || without.Peer != nil || !strings.Contains(without.Detail, "no identity answer") {
		t.Errorf("without the token: %+v", without)
	}
	if _, err := decodeRequest(strings.NewReader(`{"targets":[{"id":"u","protocol":"udp","host":"h","port":1,"token":"t"}]}`)); err == nil {
		t.Error("a token on a udp target is a bug to surface")
	}
}
