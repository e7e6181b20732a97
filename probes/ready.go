package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// readyTimeout bounds the health check; the pod's probe timeout is longer.
const readyTimeout = time.Second

// runReady is the exec readiness probe: exit 0 if the local HTTP server
// answers /healthz with 200 within readyTimeout.
func runReady(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("ready", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	addr := fs.String("addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(wire.PortTCP)), "serve's HTTP address")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(e.stderr, "probe ready: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if err := checkHealth(ctx, *addr); err != nil {
		fmt.Fprintf(e.stderr, "probe ready: %v\n", err)
		return exitFail
	}
	return exitOK
}

func checkHealth(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	u := url.URL{Scheme: "http", Host: addr, Path: "/healthz"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("health request: %w", err)
	}
	// No proxy from the environment, no connection pool: one cheap GET.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", u.String(), err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %s", u.String(), resp.Status)
	}
	return nil
}
