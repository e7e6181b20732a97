package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// probeTCP connects to ap; an established connection is Reachable. It then
// asks for the peer's identity over HTTP on the same connection, carrying
// token when there is one.
func probeTCP(ctx context.Context, res *wire.ConnectResult, ap netip.AddrPort, host, token string) {
	d := net.Dialer{KeepAlive: -1}
	conn, err := d.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		res.Outcome, res.Detail = classify(err)
		return
	}
	defer conn.Close()
	res.Outcome = wire.Reachable
	peer, err := httpIdentity(ctx, conn, net.JoinHostPort(host, strconv.Itoa(int(ap.Port()))), token)
	if err != nil {
		res.Detail = noIdentity(err)
		return
	}
	res.Peer = peer
}

// httpIdentity sends one HTTP/1.0 GET on conn (with the token header when
// token is set) and decodes the Identity the probe's serve mode answers with.
func httpIdentity(ctx context.Context, conn net.Conn, hostHeader, token string) (*wire.Identity, error) {
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	req := "GET / HTTP/1.0\r\nHost: " + hostHeader + "\r\nUser-Agent: bulkhead-probe/" + version +
		"\r\nAccept: application/json\r\nConnection: close\r\n"
	if token != "" {
		req += wire.TokenHeader + ": " + token + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, fmt.Errorf("send http request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, fmt.Errorf("read http response: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("http status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read http body: %w", err)
	}
	id, err := parseIdentity(body)
	if err != nil {
		return nil, fmt.Errorf("decode identity: %w", err)
	}
	return id, nil
}
