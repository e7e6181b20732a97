package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// udpResend is how often the payload is sent again while no answer came, so
// one lost datagram does not turn into a false Timeout.
const udpResend = 300 * time.Millisecond

var udpPayload = []byte("bulkhead-probe\n")

// probeUDP sends datagrams on a connected socket until an answer arrives, an
// ICMP port unreachable comes back (ECONNREFUSED), or the deadline passes.
func probeUDP(ctx context.Context, res *wire.ConnectResult, ap netip.AddrPort) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", ap.String())
	if err != nil {
		res.Outcome, res.Detail = classify(err)
		return
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	buf := make([]byte, 4096) // an Identity is a few hundred bytes
	for {
		// A pending ICMP error from the previous datagram can surface here.
		if _, err := conn.Write(udpPayload); err != nil {
			res.Outcome, res.Detail = classify(err)
			return
		}
		conn.SetReadDeadline(earliest(time.Now().Add(udpResend), deadline))
		n, err := conn.Read(buf)
		if err == nil {
			res.Outcome = wire.Reachable
			if peer, perr := parseIdentity(buf[:n]); perr == nil {
				res.Peer = peer
			} else {
				res.Detail = "answered, but not with an identity: " + perr.Error()
			}
			return
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			res.Outcome, res.Detail = classify(fmt.Errorf("udp %s: %w", ap, ctx.Err()))
			return
		}
		if isTimeout(err) && time.Now().Before(deadline) {
			continue // resend
		}
		res.Outcome, res.Detail = classify(err)
		return
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
