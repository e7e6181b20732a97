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
