package metadata

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata/endpoints"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// How a probe's answers read: blocked, answered, by whom, with what. No
// function here ever looks at an answer's content: the probe sends only
// status, size, fingerprint and the shape of a credential.

func blockedOutcome(o wire.Outcome) bool {
	switch o {
	case wire.Timeout, wire.Refused, wire.Unreachable, wire.DNSFailure:
		return true
	}
	return false
}

func outcomeWord(o wire.Outcome) string {
	if o == wire.DNSFailure {
		return "unresolved"
	}
	return string(o)
}

// RequestURL is the URL of an endpoint's main request, as evidence names it.
func RequestURL(e wire.MetadataEndpoint) string {
	host := e.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if e.Port != 80 {
		host += ":" + strconv.Itoa(e.Port)
	}
	return "http://" + host + e.Request.Path
}

func hostPort(e wire.MetadataEndpoint) string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// exchangeSummary describes one exchange without revealing any answer.
func exchangeSummary(ex wire.HTTPExchange) string {
	s := ex.Method + " " + ex.URL + ": "
	if ex.Outcome != wire.Reachable {
		s += outcomeWord(ex.Outcome)
		if ex.Detail != "" {
			s += " (" + ex.Detail + ")"
		}
		return s
	}
	s += fmt.Sprintf("HTTP %d, %d bytes", ex.Status, ex.Bytes)
	if ex.Fingerprint != "" {
		s += ", body " + ex.Fingerprint
	}
	if c := ex.Credential; c != nil {
		s += fmt.Sprintf(", CREDENTIAL-SHAPED (%s", strings.Join(c.Kinds, ", "))
		if len(c.Fields) > 0 {
			s += "; fields " + strings.Join(c.Fields, ", ")
		}
		s += "; values redacted, fingerprint " + c.Fingerprint + ")"
	}
	if ex.Decoy != "" {
		s += ", answered by the bulkhead decoy of run " + ex.Decoy
	}
	if ex.Detail != "" {
		s += " (" + ex.Detail + ")"
	}
	return s
}

func exchangesDetail(r wire.MetadataResult) string {
	parts := make([]string, len(r.Exchanges))
	for i, ex := range r.Exchanges {
		parts[i] = exchangeSummary(ex)
	}
	return strings.Join(parts, "; ")
}

// credential returns the first exchange that brought credentials back (the
// token step's session token is not one).
func credential(r wire.MetadataResult) *wire.HTTPExchange {
	for i, ex := range r.Exchanges {
		if ex.Step != wire.StepToken && ex.Credential != nil {
			return &r.Exchanges[i]
		}
	}
	return nil
}

// lastAnswer is the last exchange that got an HTTP answer.
func lastAnswer(r wire.MetadataResult) *wire.HTTPExchange {
	for i := len(r.Exchanges) - 1; i >= 0; i-- {
		if r.Exchanges[i].Outcome == wire.Reachable {
			return &r.Exchanges[i]
		}
	}
	return nil
}

// final is the exchange the endpoint's verdict rests on: the last one sent.
func final(r wire.MetadataResult) *wire.HTTPExchange {
	if len(r.Exchanges) == 0 {
		return nil
	}
	return &r.Exchanges[len(r.Exchanges)-1]
}

// httpObserved describes an endpoint's HTTP outcome in a word or three.
func httpObserved(r wire.MetadataResult) (reached bool, observed string) {
	if credential(r) != nil {
		return true, "answered with credentials"
	}
	if a := lastAnswer(r); a != nil {
		return true, fmt.Sprintf("answered HTTP %d", a.Status)
	}
	if len(r.Exchanges) == 0 {
		return false, "not sent"
	}
	return false, outcomeWord(r.Exchanges[0].Outcome)
}

// httpBlocked: nothing answered, and every failure is one a block looks like.
func httpBlocked(r wire.MetadataResult) bool {
	if len(r.Exchanges) == 0 {
		return blockedOutcome(r.Connect)
	}
	for _, ex := range r.Exchanges {
		if !blockedOutcome(ex.Outcome) {
			return false
		}
	}
	return true
}

// decoyAnswered: the endpoint's final request got a 200 from this run's decoy.
func decoyAnswered(r wire.MetadataResult, marker string) bool {
	f := final(r)
	return f != nil && f.Outcome == wire.Reachable && f.Status == 200 && f.Decoy == marker
}

// liveAnswer: the final request got a 200 (a metadata service, without a decoy).
func liveAnswer(r wire.MetadataResult) bool {
	f := final(r)
	return f != nil && f.Outcome == wire.Reachable && f.Status == 200
}

func actor(p checks.ProbePod) reports.Actor {
	return reports.Actor{Tenant: p.Tenant, Namespace: p.Namespace, Pod: p.Name, Node: p.Node}
}

func target(address string) reports.Target {
	return reports.Target{Kind: "metadata-endpoint", Address: address}
}

// connectFor picks, for one pod, the TCP connect result standing for a
// host:port: a connection that got through wins over one that did not.
func connectFor(s Sample, cat []endpoints.Endpoint, hp string) (wire.MetadataResult, bool) {
	var pick wire.MetadataResult
	found := false
	for _, e := range cat {
		if hostPort(e.Wire) != hp {
			continue
		}
		r, ok := s.Results[e.ID]
		if !ok {
			continue
		}
		if !found || (r.Connect == wire.Reachable && pick.Connect != wire.Reachable) {
			pick, found = r, true
		}
	}
	return pick, found
}

func hostPorts(cat []endpoints.Endpoint) []string {
	var out []string
	for _, e := range cat {
		if hp := hostPort(e.Wire); !slices.Contains(out, hp) {
			out = append(out, hp)
		}
	}
	return out
}
