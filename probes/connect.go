package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

const (
	// defaultTimeout is the per-target deadline when neither the target nor
	// the request sets one.
	defaultTimeout = 2000 * time.Millisecond
	// defaultResolveTimeout bounds a name's resolution when the request does
	// not: longer than one resolver attempt (5 s by default), so one lost
	// datagram is retried before the lookup counts as failed.
	defaultResolveTimeout = 6000 * time.Millisecond
	// maxParallel bounds concurrent probes (sockets and goroutines); beyond
	// it, targets wait their turn, and each deadline starts when its probe does.
	maxParallel = 256
	// maxRequest bounds stdin; a request is a few bytes per target.
	maxRequest = 8 << 20
)

func runConnect(ctx context.Context, e *env, args []string) int {
	if len(args) != 0 {
		fmt.Fprintln(e.stderr, "probe connect: takes no arguments; reads a ConnectRequest JSON on stdin")
		return exitUsage
	}
	req, err := decodeRequest(e.stdin)
	if err != nil {
		fmt.Fprintf(e.stderr, "probe connect: %v\n", err)
		return exitFail
	}
	resp := wire.ConnectResponse{
		Version: wire.Version,
		Source:  e.identity(),
		Results: newProber().connectAll(ctx, req),
	}
	if err := json.NewEncoder(e.stdout).Encode(resp); err != nil {
		fmt.Fprintf(e.stderr, "probe connect: write response: %v\n", err)
		return exitFail
	}
	return exitOK
}

// decodeRequest reads exactly one ConnectRequest and rejects what the probe
// could only guess at: the checks generate requests, so a bad one is a bug to
// surface, not to paper over.
func decodeRequest(r io.Reader) (wire.ConnectRequest, error) {
	var req wire.ConnectRequest
	dec := json.NewDecoder(io.LimitReader(r, maxRequest))
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return req, errors.New("empty input: want a ConnectRequest JSON on stdin")
		}
		return req, fmt.Errorf("decode request: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, errors.New("decode request: unexpected data after the request")
	}
	if req.TimeoutMS < 0 {
		return req, fmt.Errorf("request timeoutMs %d is negative", req.TimeoutMS)
	}
	for i, t := range req.Targets {
		if err := validateTarget(t); err != nil {
			return req, fmt.Errorf("target %d (id %q): %w", i, t.ID, err)
		}
	}
	return req, nil
}

func validateTarget(t wire.ConnectTarget) error {
	switch t.Protocol {
	case wire.TCP, wire.UDP, wire.SCTP:
		if t.Port < 1 || t.Port > 65535 {
			return fmt.Errorf("port %d out of range 1-65535", t.Port)
		}
	case wire.DNS:
	default:
		return fmt.Errorf("unknown protocol %q", t.Protocol)
	}
	if t.Host == "" {
		return errors.New("empty host")
	}
	if t.TimeoutMS < 0 {
		return fmt.Errorf("timeoutMs %d is negative", t.TimeoutMS)
	}
	if t.Token != "" && (t.Protocol != wire.TCP || strings.ContainsAny(t.Token, "\r\n")) {
		return errors.New("a token goes only with tcp, on one line")
	}
	return nil
}

func timeoutFor(req wire.ConnectRequest, t wire.ConnectTarget) time.Duration {
	switch {
	case t.TimeoutMS > 0:
		return time.Duration(t.TimeoutMS) * time.Millisecond
	case req.TimeoutMS > 0:
		return time.Duration(req.TimeoutMS) * time.Millisecond
	}
	return defaultTimeout
}

// resolveTimeoutFor bounds the resolution of t's host name (see
// wire.ConnectRequest.ResolveTimeoutMS).
func resolveTimeoutFor(req wire.ConnectRequest, t wire.ConnectTarget) time.Duration {
	if req.ResolveTimeoutMS > 0 {
		return time.Duration(req.ResolveTimeoutMS) * time.Millisecond
	}
	return resolveWithin(timeoutFor(req, t))
}

// resolveWithin is the default resolve deadline for a probe whose own
// deadline is timeout: defaultResolveTimeout, or timeout when longer.
func resolveWithin(timeout time.Duration) time.Duration {
	return max(defaultResolveTimeout, timeout)
}

// deadlines of one target: its name's resolution, then the probe itself.
type deadlines struct {
	resolve, probe time.Duration
}

func deadlinesFor(req wire.ConnectRequest, t wire.ConnectTarget) deadlines {
	return deadlines{resolve: resolveTimeoutFor(req, t), probe: timeoutFor(req, t)}
}

// prober runs probes. Every probe opens its own socket: policies change
// between rounds, so nothing is reused.
type prober struct {
	resolver *net.Resolver
}

func newProber() *prober {
	// The pure-Go resolver: no cgo, and it honours the context deadline.
	return &prober{resolver: &net.Resolver{PreferGo: true}}
}

// connectAll probes every target in parallel; results are in target order.
func (p *prober) connectAll(ctx context.Context, req wire.ConnectRequest) []wire.ConnectResult {
	results := make([]wire.ConnectResult, len(req.Targets))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i, t := range req.Targets {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = p.probe(ctx, t, deadlinesFor(req, t))
		}()
	}
	wg.Wait()
	return results
}

// probe runs one target: its host name resolves under d.resolve, then the
// connection and answer run under d.probe. A DNS target's lookup is the
// probe itself, under d.probe.
func (p *prober) probe(ctx context.Context, t wire.ConnectTarget, d deadlines) (res wire.ConnectResult) {
	start := time.Now()
	res = wire.ConnectResult{ID: t.ID, Started: start.UTC()}
	defer func() {
		// One target's bug must not lose every other target's result.
		if r := recover(); r != nil {
			res.Outcome, res.Detail = wire.Failed, fmt.Sprintf("internal error: %v", r)
		}
		res.LatencyMS = millis(time.Since(start))
	}()
	resolveFor := d.resolve
	if t.Protocol == wire.DNS {
		resolveFor = d.probe
	}
	rctx, cancel := context.WithTimeout(ctx, resolveFor)
	ips, err := p.resolve(rctx, t.Host)
	cancel()
	if _, perr := netip.ParseAddr(t.Host); perr != nil {
		res.ResolveMS = millis(time.Since(start))
	}
	if err != nil {
		res.Outcome, res.Detail = classify(err)
		return res
	}
	probeStart := time.Now() // after the lookup, which has its own deadline
	defer func() { res.OverrunMS = overrun(res.Outcome, time.Since(probeStart), d.probe) }()
	ctx, cancel = context.WithTimeout(ctx, d.probe)
	defer cancel()
	res.Address = ips[0].String()
	ap := netip.AddrPortFrom(ips[0], uint16(t.Port))
	switch t.Protocol {
	case wire.DNS:
		res.Outcome, res.Detail = wire.Reachable, resolvedDetail(t.Host, ips)
	case wire.TCP:
		probeTCP(ctx, &res, ap, t.Host, t.Token)
	case wire.UDP:
		probeUDP(ctx, &res, ap)
	case wire.SCTP:
		probeSCTP(ctx, &res, ap)
	default: // decodeRequest rejects these; keep the result honest anyway
		res.Outcome, res.Detail = wire.Failed, fmt.Sprintf("unknown protocol %q", t.Protocol)
	}
	return res
}

// overrun is how long past deadline a probe that took elapsed ended, for a
// timeout (see wire.ConnectResult.OverrunMS); 0 otherwise.
func overrun(o wire.Outcome, elapsed, deadline time.Duration) float64 {
	if o != wire.Timeout || elapsed <= deadline {
		return 0
	}
	return millis(elapsed - deadline)
}

// resolve returns host's addresses: host itself if it is an IP, else what the
// resolver says. Resolution errors are always *net.DNSError, marked as a
// timeout when the deadline cut the lookup short.
func (p *prober) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ips, err := p.lookup(ctx, host)
	if err == nil && len(ips) == 0 {
		err = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	if err != nil {
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) {
			dnsErr = &net.DNSError{Err: err.Error(), Name: host}
		} else {
			copied := *dnsErr
			dnsErr = &copied
		}
		if !dnsErr.IsNotFound && (isTimeout(err) || errors.Is(ctx.Err(), context.DeadlineExceeded)) {
			dnsErr.IsTimeout = true
		}
		return nil, dnsErr
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// resolveAttempt bounds one lookup. The resolver waits 5 s for an answer
// before it asks again; a datagram lost on the way to the cluster DNS (a
// busy node, the conntrack race of parallel A and AAAA queries) is asked
// again after this instead, for as long as the deadline lasts.
const resolveAttempt = 2 * time.Second

func (p *prober) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, resolveAttempt)
		ips, err := p.resolver.LookupNetIP(actx, "ip", host)
		cancel()
		if err == nil || ctx.Err() != nil || !isTimeout(err) {
			return ips, err
		}
	}
}

func resolvedDetail(host string, ips []netip.Addr) string {
	if ips[0].String() == host {
		return "an IP address; nothing to resolve"
	}
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return "resolved to " + strings.Join(s, ", ")
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// noIdentity is the Detail of a Reachable result whose peer did not say who
// it is (it is not a probe, or it answered too slowly).
func noIdentity(err error) string {
	return "connected, but no identity answer: " + err.Error()
}
