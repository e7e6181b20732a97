package main

import (
	"context"
	"net/netip"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// probeSCTP associates with ap; an established association is Reachable.
// The probe's serve mode then writes its Identity and closes.
func probeSCTP(ctx context.Context, res *wire.ConnectResult, ap netip.AddrPort) {
	answer, readErr, err := sctpExchange(ctx, ap)
	if err != nil {
		res.Outcome, res.Detail = classify(err)
		return
	}
	res.Outcome = wire.Reachable
	peer, perr := parseIdentity(answer)
	switch {
	case perr == nil:
		res.Peer = peer
	case readErr != nil:
		res.Detail = noIdentity(readErr)
	default:
		res.Detail = noIdentity(perr)
	}
}
