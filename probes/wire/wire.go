// Package wire is the JSON contract between bulkhead's checks and the probe
// program that runs inside pods. Both sides import it; nothing else does.
//
// A check sends a request on the probe's standard input (one `kubectl exec`
// per source pod) and reads one response from its standard output.
package wire

import (
	"fmt"
	"time"
)

// Version of this contract. The probe prints it in every response so a check
// can refuse an image that speaks another dialect.
const Version = 1

// Ports the probe's `serve` mode listens on inside the pod. They are above
// 1024 so the probe needs no capability to bind them.
const (
	PortTCP  = 8080 // HTTP: answers with the pod's Identity as JSON
	PortUDP  = 8081 // answers every datagram with the pod's Identity as JSON
	PortSCTP = 8082 // writes the pod's Identity as JSON, then closes
)

// TokenHeader carries a ConnectTarget's Token on a TCP probe's HTTP
// request. A probe serving with a token (`serve --token`) answers only
// requests that carry it, and nothing else at all: bulkhead publishes such
// a server where strangers can reach it (a NodePort), and it must tell them
// nothing.
const TokenHeader = "X-Bulkhead-Token"

// Protocol is how a target is probed.
type Protocol string

const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	SCTP Protocol = "sctp"
	// DNS only resolves the target's host name; no connection is made.
	DNS Protocol = "dns"
)

// Outcome classifies what happened to one probe. The classes are kept apart
// because they mean different things: a timeout is what a policy drop looks
// like, a refusal means the packet reached a host that had nothing listening.
type Outcome string

const (
	Reachable Outcome = "reachable" // connected (TCP/SCTP) or answered (UDP), or the name resolved (DNS)
	Refused   Outcome = "refused"   // connection refused / ICMP port unreachable / reset
	Timeout   Outcome = "timeout"   // no answer before the deadline
	// Unreachable: ICMP host/network unreachable or administratively
	// prohibited, or a local netfilter refusal. Policy engines that reject
	// rather than drop answer this way.
	Unreachable Outcome = "unreachable"
	DNSFailure  Outcome = "dns-failure" // the host name did not resolve
	Unsupported Outcome = "unsupported" // the kernel cannot open this protocol (SCTP without the module)
	Failed      Outcome = "error"       // anything else; see Detail
)

// Identity is who a probe pod is, from the downward API.
type Identity struct {
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Node      string `json:"node,omitempty"`
	IP        string `json:"ip,omitempty"`
}

// ConnectTarget is one thing to probe.
type ConnectTarget struct {
	// ID is the caller's key for this target, echoed in the result.
	ID       string   `json:"id"`
	Protocol Protocol `json:"protocol"`
	// Host is an IP address or a DNS name.
	Host string `json:"host"`
	// Port is ignored for DNS.
	Port int `json:"port,omitempty"`
	// TimeoutMS overrides the request's timeout for this target.
	TimeoutMS int `json:"timeoutMs,omitempty"`
	// Token, for TCP, is sent as TokenHeader, so a server serving with that
	// token answers with its identity. Optional and additive: a probe that
	// predates it ignores it, and the token-only server then answers it
	// nothing (Reachable without a Peer), never a false identity.
	Token string `json:"token,omitempty"`
}

// ConnectRequest is what `probe connect` reads on stdin.
type ConnectRequest struct {
	Targets []ConnectTarget `json:"targets"`
	// TimeoutMS is the per-target deadline (connect plus answer). Default 2000.
	TimeoutMS int `json:"timeoutMs,omitempty"`
	// ResolveTimeoutMS bounds resolving a target's host name, before its
	// own deadline starts: a slow lookup says nothing about the path, and
	// must not eat the time in which a blocked path shows it is dropped.
	// For DNS targets the lookup is the probe, under TimeoutMS. Default
	// 6000, or the target's deadline when that is longer. Optional and
	// additive: a probe that predates it resolves within TimeoutMS.
	ResolveTimeoutMS int `json:"resolveTimeoutMs,omitempty"`
}

// ConnectResult is the outcome for one target.
type ConnectResult struct {
	ID      string  `json:"id"`
	Outcome Outcome `json:"outcome"`
	// Address is the IP that was dialled (after resolution for names).
	Address string `json:"address,omitempty"`
	// Peer is the Identity the server answered with, when it answered.
	Peer *Identity `json:"peer,omitempty"`
	// LatencyMS is the whole probe's time, resolution included.
	LatencyMS float64 `json:"latencyMs"`
	// ResolveMS is how long a host name took to resolve (not set for IPs).
	ResolveMS float64 `json:"resolveMs,omitempty"`
	// OverrunMS, for a Timeout, is how long past its deadline the probe
	// ended. A probe pod starved of CPU notices its deadline late, and an
	// answer that came in time may then lose to the timer: a timeout that
	// overran by much proves nothing.
	OverrunMS float64   `json:"overrunMs,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Started   time.Time `json:"started"`
}

// StarvedOverrunMS: a timeout that ended this long past its deadline came
// from a probe pod starved of CPU (probe pods request almost none, so as
// not to take a tenant's quota). Seen only with the node's CPUs taken (up
// to 2.8 s); a loaded run without that stayed under 0.8 s.
const StarvedOverrunMS = 1000

// Starved reports whether r is a timeout noticed so late (see OverrunMS)
// that it proves nothing: not a block, not a broken path.
func (r ConnectResult) Starved() bool {
	return r.Outcome == Timeout && r.OverrunMS >= StarvedOverrunMS
}

// StarvedWhy says, for evidence, why a Starved result proves nothing.
func (r ConnectResult) StarvedWhy() string {
	return fmt.Sprintf("the probe ended %.1fs past its deadline (its pod was starved of CPU), so a timeout proves nothing", r.OverrunMS/1000)
}

// ConnectResponse is what `probe connect` prints on stdout.
type ConnectResponse struct {
	Version int             `json:"version"`
	Source  Identity        `json:"source"`
	Results []ConnectResult `json:"results"`
}

// Capabilities is what `probe caps` prints: what this pod's kernel lets the
// probe do, so checks can say "not evaluated" rather than "failed".
type Capabilities struct {
	Version int      `json:"version"`
	Source  Identity `json:"source"`
	SCTP    bool     `json:"sctp"`
	// SCTPDetail says why SCTP is unavailable.
	SCTPDetail string `json:"sctpDetail,omitempty"`
}
