package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// startDecoy runs the decoy on a loopback ephemeral port and returns its port.
func startDecoy(t *testing.T, marker string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newDecoyServer(marker, slog.New(slog.NewTextHandler(t.Output(), nil)), true)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return port(t, l.Addr())
}

func decoyGet(t *testing.T, method, url string, headers map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// The decoy must behave like the services it stands in for where a client
// could tell: required headers, the IMDSv2 token handshake.
func TestDecoyEmulatesTheProtocols(t *testing.T) {
	base := "http://127.0.0.1:" + strconv.Itoa(startDecoy(t, "k3x9q"))
	cases := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
	}{
		{"health", "GET", "/healthz", nil, 200},
		{"imdsv1", "GET", "/latest/meta-data/", nil, 200},
		{"imdsv2 token without ttl", "PUT", "/latest/api/token", nil, 400},
		{"imdsv2 token by GET", "GET", "/latest/api/token", nil, 405},
		{"imdsv2 wrong token", "GET", "/latest/meta-data/", map[string]string{"X-aws-ec2-metadata-token": "forged"}, 401},
		{"gcp without flavor", "GET", "/computeMetadata/v1/", nil, 403},
		{"gcp", "GET", "/computeMetadata/v1/", map[string]string{"Metadata-Flavor": "Google"}, 200},
		{"azure without header", "GET", "/metadata/instance?api-version=2021-02-01", nil, 400},
		{"azure", "GET", "/metadata/instance?api-version=2021-02-01", map[string]string{"Metadata": "true"}, 200},
		{"oracle without bearer", "GET", "/opc/v2/instance/", nil, 401},
		{"oracle", "GET", "/opc/v2/instance/", map[string]string{"Authorization": "Bearer Oracle"}, 200},
		{"unknown", "GET", "/nothing/here", nil, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, _, h := decoyGet(t, c.method, base+c.path, c.headers)
			if status != c.status {
				t.Errorf("status %d, want %d", status, c.status)
			}
			if got := h.Get(wire.DecoyHeader); got != "k3x9q" {
				t.Errorf("%s = %q, want the marker on every answer", wire.DecoyHeader, got)
			}
		})
	}

	status, token, _ := decoyGet(t, "PUT", base+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
	if status != 200 || token == "" {
		t.Fatalf("token: %d %q", status, token)
	}
	if status, _, _ := decoyGet(t, "GET", base+"/latest/meta-data/", map[string]string{"X-aws-ec2-metadata-token": token}); status != 200 {
		t.Errorf("IMDSv2 GET with the token: %d", status)
	}
	_, creds, _ := decoyGet(t, "GET", base+"/latest/meta-data/iam/security-credentials/"+decoyRole, nil)
	if !strings.Contains(creds, decoyNotice) || credentialShape([]byte(creds)) == nil {
		t.Errorf("the fake credentials must be marked and credential-shaped: %s", creds)
	}
}

func TestDecoyFlags(t *testing.T) {
	for _, args := range [][]string{nil, {"--marker", "bad marker"}, {"--marker", "ok", "extra"}} {
		e, _, _ := testEnv("")
		if code := run(context.Background(), e, append([]string{"decoy"}, args...)); code != exitUsage {
			t.Errorf("decoy %q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestDecoyStopsOnCancel(t *testing.T) {
	e, _, stderr := testEnv("")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, []string{"decoy", "--addr", "127.0.0.1:0", "--marker", "k3x9q"}) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d: %s", code, stderr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("decoy did not stop on cancel")
	}
}
