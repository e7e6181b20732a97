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

// Sample is what one probe pod saw in the last round, by endpoint ID.
type Sample struct {
	Pod     checks.ProbePod
	Results map[string]wire.MetadataResult
}

// DecoyInfo is the decoy standing in for the metadata service.
type DecoyInfo struct {
	// Marker is the value of wire.DecoyHeader on its answers (the run ID).
	Marker    string
	Container string
	// IP is the decoy's own address on the kind network: outside the
	// cluster, and not a metadata address.
	IP string
	// Addresses are the metadata addresses it answers on.
	Addresses []string
	// Skipped are catalogue addresses it does not serve, with why.
	Skipped []string
}

// Live says what the positive control can reach.
type Live struct {
	// Decoy is set when bulkhead's decoy stands in for the metadata service.
	Decoy *DecoyInfo
	// NoDecoy says why there is none.
	NoDecoy string
	// NodeVantage is what the nodes themselves saw (the node-level vantage
	// point), one line per node; empty when not tested.
	NodeVantage []string
}

// Evaluation is both checks' outcomes from one probing.
type Evaluation struct {
	Endpoints   checks.Outcome
	Credentials checks.Outcome
}

// DirectID is the extra endpoint probed when a decoy is installed: the
// decoy at its own kind-network address, outside the cluster but not a
// metadata address. Whether a tenant reaches it says whether its metadata
// block is an egress policy's except (reaches it) or default deny (does not).
const DirectID = "decoy-direct"

// Words used in observations.
const (
	ExpectBlocked       = "blocked"
	ExpectReachable     = "reachable"
	ExpectDecoy         = "answered by the decoy"
	ExpectLive          = "answered (live endpoint)"
	ExpectNoCredentials = "no credentials"
	ExpectDecoyCreds    = "credentials (the decoy's fake ones)"
	MethodTCP           = "tcp-connect"
)

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

// Evaluate turns the last round's samples into both checks' outcomes.
func Evaluate(top checks.Topology, cat []endpoints.Endpoint, samples []Sample, live Live) Evaluation {
	var ev Evaluation
	var tests, controls []Sample
	for _, s := range samples {
		tn, ok := top.Tenant(s.Pod.Tenant)
		switch {
		case !ok:
		case tn.Isolated:
			tests = append(tests, s)
		default:
			controls = append(controls, s)
		}
	}
	served := map[string]bool{}
	if live.Decoy != nil {
		for _, a := range live.Decoy.Addresses {
			served[a] = true
		}
	}

	// Positive controls first: they decide which endpoints are proven. The
	// proof is by address: a control that reached a live service at a
	// host:port shows the path to it works, so a tenant's block of any
	// request to that host:port is the policy at work.
	liveHosts := map[string]string{} // host:port -> endpoint that answered live
	decoyCreds := false              // the decoy handed the control its fake credentials
	var ctlEndpoints, ctlCreds []reports.Observation
	// Control attempts that are not positive controls, by endpoint.
	notControl := map[string][]string{}
	notControlWhy := map[string]string{}
	for _, s := range controls {
		for _, hp := range hostPorts(cat) {
			host, _, _ := net.SplitHostPort(hp)
			if !served[host] {
				continue
			}
			r, ok := connectFor(s, cat, hp)
			if !ok {
				continue
			}
			ctlEndpoints = append(ctlEndpoints, reports.Observation{
				Role: reports.RoleControl, Actor: actor(s.Pod), Target: target(hp), Method: MethodTCP,
				Expected: ExpectReachable, Observed: outcomeWord(r.Connect), OK: r.Connect == wire.Reachable,
				Detail: strings.TrimPrefix(r.ConnectDetail+"; the decoy listens here", "; "), LatencyMS: r.ConnectMS, At: r.Started,
			})
		}
		for _, e := range cat {
			r, ok := s.Results[e.ID]
			if !ok {
				continue
			}
			_, observed := httpObserved(r)
			base := reports.Observation{Role: reports.RoleControl, Actor: actor(s.Pod), Target: target(RequestURL(e.Wire)),
				Method: e.Method, Observed: observed, Detail: e.Title + ": " + exchangesDetail(r), At: r.Started}
			switch {
			case live.Decoy != nil && served[e.Wire.Host]:
				o := base
				o.Expected, o.OK = ExpectDecoy, decoyAnswered(r, live.Decoy.Marker)
				if o.OK {
					o.Observed = "answered HTTP 200 by the decoy"
					if _, seen := liveHosts[hostPort(e.Wire)]; !seen {
						liveHosts[hostPort(e.Wire)] = e.ID
					}
				} else if a := lastAnswer(r); a != nil && a.Decoy != live.Decoy.Marker {
					o.Observed += " (not the decoy)"
				}
				ctlEndpoints = append(ctlEndpoints, o)
				if e.Credentials {
					c := base
					c.Expected = ExpectDecoyCreds
					ex := credential(r)
					c.OK = ex != nil && ex.Decoy == live.Decoy.Marker
					if c.OK {
						c.Observed = "credentials (the decoy's fake ones)"
						decoyCreds = true
					}
					ctlCreds = append(ctlCreds, c)
				}
			case live.Decoy == nil && liveAnswer(r):
				o := base
				o.Expected, o.OK = ExpectLive, true
				ctlEndpoints = append(ctlEndpoints, o)
				if _, seen := liveHosts[hostPort(e.Wire)]; !seen {
					liveHosts[hostPort(e.Wire)] = e.ID
					c := o
					c.Detail = "live metadata service at " + hostPort(e.Wire) + " (the credential endpoints there are tried from tenant pods only): " + o.Detail
					ctlCreds = append(ctlCreds, c)
				}
			default:
				why := "the decoy does not serve " + e.Wire.Host
				if live.Decoy == nil {
					why = "no live endpoint answered"
				}
				notControl[e.ID] = append(notControl[e.ID], s.Pod.Namespace+"/"+s.Pod.Name+": "+observed)
				notControlWhy[e.ID] = why
			}
		}
	}
	provenHTTP, provenCreds := map[string]bool{}, map[string]bool{}
	for _, e := range cat {
		provenHTTP[e.ID] = liveHosts[hostPort(e.Wire)] != ""
		// With a decoy, credential endpoints are proven only if the decoy's
		// fake credentials were recognised: that proves the detector too.
		provenCreds[e.ID] = provenHTTP[e.ID] && (live.Decoy == nil || decoyCreds)
	}

	// Tenant observations.
	var testEndpoints, testCreds []reports.Observation
	for _, s := range tests {
		for _, hp := range hostPorts(cat) {
			r, ok := connectFor(s, cat, hp)
			if !ok {
				continue
			}
			o := reports.Observation{Role: reports.RoleTest, Actor: actor(s.Pod), Target: target(hp), Method: MethodTCP,
				Expected: ExpectBlocked, Observed: outcomeWord(r.Connect), OK: blockedOutcome(r.Connect),
				Detail: r.ConnectDetail, LatencyMS: r.ConnectMS, At: r.Started}
			if r.Connect == wire.Failed {
				o.Detail = strings.TrimPrefix(o.Detail+"; inconclusive: the connection was not tested", "; ")
			}
			testEndpoints = append(testEndpoints, o)
		}
		for _, e := range cat {
			r, ok := s.Results[e.ID]
			if !ok {
				continue
			}
			_, observed := httpObserved(r)
			detail := e.Title + ": " + exchangesDetail(r)
			o := reports.Observation{Role: reports.RoleTest, Actor: actor(s.Pod), Target: target(RequestURL(e.Wire)), Method: e.Method,
				Expected: ExpectBlocked, Observed: observed, OK: httpBlocked(r), Detail: detail, At: r.Started}
			if f := final(r); f != nil {
				o.LatencyMS = f.LatencyMS
			}
			if o.OK && !provenHTTP[e.ID] {
				o.Detail += "; blocked from tenant pods, not proven against a live endpoint"
			}
			testEndpoints = append(testEndpoints, o)
			if !e.Credentials {
				continue
			}
			c := o
			c.Expected, c.Detail = ExpectNoCredentials, detail
			ex := credential(r)
			c.OK = ex == nil && (httpBlocked(r) || lastAnswer(r) != nil)
			switch {
			case ex != nil:
				c.Observed = "credentials " + ex.Credential.Fingerprint
			default:
				c.Observed = "no credentials (" + observed + ")"
			}
			switch {
			case !c.OK && ex == nil:
				c.Detail += "; inconclusive: the request failed"
			case c.OK && !provenCreds[e.ID]:
				c.Detail += "; no credentials from tenant pods, not proven against a live endpoint"
			}
			testCreds = append(testCreds, c)
		}
	}

	notes := liveNotes(live)
	notes = append(notes, unprovenNote(cat, provenHTTP, live))
	notes = append(notes, directNotes(top, samples)...)
	for _, e := range cat {
		if seen := notControl[e.ID]; len(seen) > 0 {
			notes = append(notes, fmt.Sprintf("not a positive control (%s): %s %s from the control namespace: %s",
				notControlWhy[e.ID], e.ID, RequestURL(e.Wire), strings.Join(seen, ", ")))
		}
	}
	ev.Endpoints = assemble(testEndpoints, ctlEndpoints, notes, live)
	credNotes := liveNotes(live)
	var credCat []endpoints.Endpoint
	for _, e := range cat {
		if e.Credentials {
			credCat = append(credCat, e)
		}
	}
	credNotes = append(credNotes, unprovenNote(credCat, provenCreds, live))
	ev.Credentials = assemble(testCreds, ctlCreds, credNotes, live)
	return ev
}

func assemble(tests, controls []reports.Observation, notes []string, live Live) checks.Outcome {
	out := checks.Outcome{Observations: append(tests, controls...), Notes: compact(notes)}
	if len(tests) == 0 {
		out.Skip = "no isolated tenant probe pod in this run"
		return out
	}
	if len(controls) > 0 {
		return out
	}
	for _, o := range tests {
		if !o.OK {
			return out // a leak is a leak, proven or not: Judge fails it
		}
	}
	why := live.NoDecoy
	if why == "" {
		why = "no decoy"
	}
	out.Skip = "blocked from tenant pods; not proven against a live endpoint (" + why +
		"; no metadata endpoint answered the unprotected control namespace; node-level vantage point: " + nodeVantage(live) + ")"
	return out
}

func nodeVantage(live Live) string {
	if len(live.NodeVantage) == 0 {
		return "not tested"
	}
	return strings.Join(live.NodeVantage, "; ")
}

func liveNotes(live Live) []string {
	if d := live.Decoy; d != nil {
		notes := []string{fmt.Sprintf("positive control: bulkhead's metadata decoy (container %s, %s on the kind network, off the nodes) answers on %s; node-level vantage point: %s",
			d.Container, d.IP, strings.Join(d.Addresses, ", "), nodeVantage(live))}
		if len(d.Skipped) > 0 {
			notes = append(notes, "not served by the decoy: "+strings.Join(d.Skipped, "; "))
		}
		return notes
	}
	return []string{fmt.Sprintf("no decoy (%s): tenant results are \"blocked from tenant pods\", proven only where the control namespace reached a live metadata service; node-level vantage point: %s",
		live.NoDecoy, nodeVantage(live))}
}

func unprovenNote(cat []endpoints.Endpoint, proven map[string]bool, live Live) string {
	var ids []string
	for _, e := range cat {
		if !proven[e.ID] {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) == 0 {
		return fmt.Sprintf("all %d endpoints proven against a live endpoint", len(cat))
	}
	return fmt.Sprintf("%d of %d endpoints proven against a live endpoint; blocked from tenant pods but not proven: %s",
		len(cat)-len(ids), len(cat), strings.Join(ids, ", "))
}

// directNotes say, per tenant, whether its pods reach the decoy's own
// address: a tenant that does has egress beyond its namespace, so its
// metadata block is its policy's except at work, not default deny.
func directNotes(top checks.Topology, samples []Sample) []string {
	byTenant := map[string][]string{}
	var order []string
	for _, s := range samples {
		r, ok := s.Results[DirectID]
		if !ok {
			continue
		}
		if _, seen := byTenant[s.Pod.Tenant]; !seen {
			order = append(order, s.Pod.Tenant)
		}
		_, observed := httpObserved(r)
		byTenant[s.Pod.Tenant] = append(byTenant[s.Pod.Tenant], s.Pod.Name+": "+observed)
	}
	var notes []string
	for _, t := range order {
		tn, _ := top.Tenant(t)
		what := "unprotected"
		if tn.Isolated {
			what = "isolated"
		}
		notes = append(notes, fmt.Sprintf("egress beyond the cluster (the decoy's own address, not a metadata address) from %s tenant %s: %s",
			what, t, strings.Join(byTenant[t], ", ")))
	}
	return notes
}

func compact(notes []string) []string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}
