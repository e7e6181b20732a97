package metadata

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata/endpoints"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Sample is what one probe pod saw in one round, by endpoint ID.
type Sample struct {
	Pod     checks.ProbePod
	Results map[string]wire.MetadataResult
}

// Round is what the probe pods saw in one round.
type Round struct {
	// N is the round's number, from 1, settle rounds included.
	N       int
	Samples []Sample
	// Failed are the probe pods that could not be asked this round (the
	// exec failed after retries), with why.
	Failed []Failure
	// Settling marks a round of the settle phase: only the attempts of
	// tenants bulkhead did not create are in it, and only their leaks
	// count (their policies were in place before bulkhead came).
	Settling bool
}

// Failure is a probe pod that could not be asked in a round.
type Failure struct {
	Pod checks.ProbePod
	Err string
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

// serves reports whether the decoy answers on host.
func (l Live) serves(host string) bool {
	if l.Decoy == nil {
		return false
	}
	for _, a := range l.Decoy.Addresses {
		if a == host {
			return true
		}
	}
	return false
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
	MethodPeer          = "http GET (probe pod)"
	MethodProbe         = "probe metadata"
)

// Proof keys. A tenant's blocked attempt proves isolation only if, in the
// same round, the endpoint was live where it should be (the decoy answered
// the control namespace on that endpoint; without a decoy, a metadata
// service answered it at that address) and the tenant pod itself reached
// something (a probe pod of its tenant, or the decoy's own address).
func endpointKey(e endpoints.Endpoint) string {
	return fmt.Sprintf("the decoy answers %s (%s) to the control namespace", e.ID, RequestURL(e.Wire))
}

func addressKey(hp string) string {
	return fmt.Sprintf("a metadata service at %s answers the control namespace", hp)
}

func credsKey(e endpoints.Endpoint) string {
	return fmt.Sprintf("the decoy's fake credentials at %s are recognised from the control namespace", e.ID)
}

func reachesKey(p checks.ProbePod) string {
	return fmt.Sprintf("%s/%s reaches a probe pod of its tenant or the decoy's own address", p.Namespace, p.Name)
}

// Evaluate turns the rounds into both checks' outcomes, phase by phase:
// which endpoints a live service stands behind (scope), then per round the
// positive controls (what they prove), the tenant attempts (what each
// needs), and the pods that could not be asked; then the notes.
func Evaluate(top checks.Topology, cat []endpoints.Endpoint, rounds []Round, live Live) Evaluation {
	sc := scopeOf(top, cat, rounds, live)
	var ends, creds []reports.Observation
	var ctlEnds, ctlCreds []reports.Observation
	seen := map[string]string{} // endpoint ID -> control attempts that were not positive controls
	for _, r := range rounds {
		tests, controls := split(top, r.Samples)
		te, tc := tenantAttempts(cat, tests, live, sc, r.N)
		if r.Settling {
			ends, creds = append(ends, leaks(te)...), append(creds, leaks(tc)...)
			continue
		}
		ce, cc := controlAttempts(cat, controls, live, r.N, seen)
		reach := reachControls(tests, r.N)
		fe, fc := unasked(top, r, len(cat))
		ends = append(append(ends, te...), fe...)
		creds = append(append(creds, tc...), fc...)
		ctlEnds = append(append(ctlEnds, ce...), reach...)
		ctlCreds = append(append(ctlCreds, cc...), reach...)
	}
	var credCat []endpoints.Endpoint
	for _, e := range cat {
		if e.Credentials {
			credCat = append(credCat, e)
		}
	}
	last := lastCounted(rounds)
	endNotes := append(liveNotes(live), scopeNote(cat, sc, live))
	endNotes = append(endNotes, directNotes(top, last)...)
	endNotes = append(endNotes, notControlNotes(cat, seen)...)
	credNotes := append(liveNotes(live), scopeNote(credCat, sc, live))
	return Evaluation{
		Endpoints:   assemble(ends, ctlEnds, append(endNotes, failedNotes(rounds)...), live, sc.any()),
		Credentials: assemble(creds, ctlCreds, append(credNotes, failedNotes(rounds)...), live, sc.any()),
	}
}

// split sorts a round's samples into tenant pods under test and control
// pods; pods of unknown tenants and of the sentinel are neither.
func split(top checks.Topology, samples []Sample) (tests, controls []Sample) {
	for _, s := range samples {
		tn, ok := top.Tenant(s.Pod.Tenant)
		switch {
		case !ok || tn.Sentinel:
		case tn.Isolated:
			tests = append(tests, s)
		default:
			controls = append(controls, s)
		}
	}
	return tests, controls
}

// scope says which host:ports a live metadata service stands behind, so a
// tenant's block there can be proven: with a decoy, the addresses it
// serves; without one, the addresses where the control namespace got an
// answer in a round that counts. Elsewhere a tenant's block proves
// nothing: its attempts there are not evaluated (a leak still fails).
type scope struct {
	in  map[string]bool   // host:port -> a live service stands behind it
	why map[string]string // host:port -> why not
}

func (s scope) any() bool { return len(s.in) > 0 }

func scopeOf(top checks.Topology, cat []endpoints.Endpoint, rounds []Round, live Live) scope {
	sc := scope{in: map[string]bool{}, why: map[string]string{}}
	for _, hp := range hostPorts(cat) {
		host, _, _ := net.SplitHostPort(hp)
		if live.Decoy != nil {
			if live.serves(host) {
				sc.in[hp] = true
			} else {
				sc.why[hp] = decoySkipped(live, host)
			}
			continue
		}
		sc.why[hp] = "no metadata service answered the unprotected control namespace at " + hp + " in any round"
	}
	if live.Decoy != nil {
		return sc
	}
	for _, r := range rounds {
		if r.Settling {
			continue
		}
		_, controls := split(top, r.Samples)
		for _, s := range controls {
			for _, e := range cat {
				if res, ok := s.Results[e.ID]; ok && liveAnswer(res) {
					sc.in[hostPort(e.Wire)] = true
					delete(sc.why, hostPort(e.Wire))
				}
			}
		}
	}
	return sc
}

func decoySkipped(live Live, host string) string {
	for _, s := range live.Decoy.Skipped {
		if strings.HasPrefix(s, host+":") || strings.HasPrefix(s, host+" ") {
			return "the decoy does not serve " + s
		}
	}
	return "the decoy does not serve " + host
}

// controlAttempts are the positive controls of one round: the control
// namespace reaching the live endpoint, each proving what tenant attempts
// at that endpoint need. Control attempts that cannot be positive controls
// (the decoy does not serve the address; without a decoy, nothing answered)
// are collected in notControl, by endpoint.
func controlAttempts(cat []endpoints.Endpoint, controls []Sample, live Live, round int, notControl map[string]string) (ends, creds []reports.Observation) {
	for _, s := range controls {
		if live.Decoy != nil {
			for _, hp := range hostPorts(cat) {
				host, _, _ := net.SplitHostPort(hp)
				r, ok := connectFor(s, cat, hp)
				if !ok || !live.serves(host) {
					continue
				}
				o := reports.Observation{
					Role: reports.RoleControl, Actor: actor(s.Pod), Target: target(hp), Method: MethodTCP,
					Expected: ExpectReachable, Observed: outcomeWord(r.Connect), OK: r.Connect == wire.Reachable,
					Detail: strings.TrimPrefix(r.ConnectDetail+"; the decoy listens here", "; "), LatencyMS: r.ConnectMS, At: r.Started, Round: round,
				}
				if o.OK {
					o.Proves = []string{addressKey(hp)}
				}
				ends = append(ends, o)
			}
		}
		liveAt := map[string]bool{} // without a decoy: one credentials control per live address
		for _, e := range cat {
			r, ok := s.Results[e.ID]
			if !ok {
				continue
			}
			_, observed := httpObserved(r)
			base := reports.Observation{Role: reports.RoleControl, Actor: actor(s.Pod), Target: target(RequestURL(e.Wire)),
				Method: e.Method, Observed: observed, Detail: e.Title + ": " + exchangesDetail(r), At: r.Started, Round: round}
			hp := hostPort(e.Wire)
			switch {
			case live.serves(e.Wire.Host):
				o := base
				o.Expected, o.OK = ExpectDecoy, decoyAnswered(r, live.Decoy.Marker)
				if o.OK {
					o.Observed = "answered HTTP 200 by the decoy"
					o.Proves = []string{endpointKey(e), addressKey(hp)}
				} else if a := lastAnswer(r); a != nil && a.Decoy != live.Decoy.Marker {
					o.Observed += " (not the decoy)"
				}
				ends = append(ends, o)
				if e.Credentials {
					c := base
					c.Expected = ExpectDecoyCreds
					ex := credential(r)
					c.OK = ex != nil && ex.Decoy == live.Decoy.Marker
					if c.OK {
						c.Observed = "credentials (the decoy's fake ones)"
						c.Proves = []string{credsKey(e)}
					}
					creds = append(creds, c)
				}
			case live.Decoy == nil && liveAnswer(r):
				o := base
				o.Expected, o.OK, o.Proves = ExpectLive, true, []string{addressKey(hp)}
				ends = append(ends, o)
				if !liveAt[hp] {
					liveAt[hp] = true
					c := o
					c.Detail = "live metadata service at " + hp + " (the credential endpoints there are tried from tenant pods only): " + o.Detail
					creds = append(creds, c)
				}
			default:
				why := "the decoy does not serve " + e.Wire.Host
				if live.Decoy == nil {
					why = "no live endpoint answered"
				}
				notControl[e.ID] = fmt.Sprintf("not a positive control (%s): %s %s from the control namespace: %s/%s: %s",
					why, e.ID, RequestURL(e.Wire), s.Pod.Namespace, s.Pod.Name, observed)
			}
		}
	}
	return ends, creds
}

// reachControls show, per tenant pod and round, that its own networking
// worked: it reached a probe pod of its tenant (expected to work), or the
// decoy's own address (only tenants with egress beyond the cluster do; an
// unreached decoy address is no failed control).
func reachControls(tests []Sample, round int) []reports.Observation {
	var out []reports.Observation
	for _, s := range tests {
		for _, id := range slices.Sorted(maps.Keys(s.Results)) {
			r := s.Results[id]
			peer, isPeer := peerOf(id)
			if !isPeer && (id != DirectID || !liveAnswer(r)) {
				continue
			}
			_, observed := httpObserved(r)
			o := reports.Observation{Role: reports.RoleControl, Actor: actor(s.Pod), Method: MethodPeer, Expected: ExpectReachable,
				Observed: observed, OK: liveAnswer(r), Detail: exchangesDetail(r), At: r.Started, Round: round}
			if isPeer {
				o.Target = reports.Target{Tenant: s.Pod.Tenant, Namespace: peer.Namespace, Name: peer.Name, Kind: "pod", Address: r.Address}
			} else {
				o.Target, o.Method = target("the decoy's own address"), "http GET"
			}
			if o.OK {
				o.Proves = []string{reachesKey(s.Pod)}
			}
			out = append(out, o)
		}
	}
	return out
}

// tenantAttempts are the tests of one round: every tenant pod's TCP
// connects (one per host:port) and HTTP requests must be blocked, and no
// credential may come back. A blocked attempt needs the endpoint live and
// the pod reaching something in the same round; outside the scope it is
// not evaluated; an attempt that failed inside the probe is inconclusive.
func tenantAttempts(cat []endpoints.Endpoint, tests []Sample, live Live, sc scope, round int) (ends, creds []reports.Observation) {
	for _, s := range tests {
		reaches := reachesKey(s.Pod)
		for _, hp := range hostPorts(cat) {
			r, ok := connectFor(s, cat, hp)
			if !ok {
				continue
			}
			o := reports.Observation{Role: reports.RoleTest, Actor: actor(s.Pod), Target: target(hp), Method: MethodTCP,
				Expected: ExpectBlocked, Observed: outcomeWord(r.Connect), OK: r.Connect != wire.Reachable,
				Detail: r.ConnectDetail, LatencyMS: r.ConnectMS, At: r.Started, Round: round, Needs: []string{addressKey(hp), reaches}}
			if o.OK && !blockedOutcome(r.Connect) {
				o.Status, o.Why = reports.StatusUnproven, "inconclusive: the connection was not tested ("+outcomeWord(r.Connect)+")"
			}
			ends = append(ends, scoped(o, sc, hp))
		}
		for _, e := range cat {
			r, ok := s.Results[e.ID]
			if !ok {
				continue
			}
			hp := hostPort(e.Wire)
			reached, observed := httpObserved(r)
			detail := e.Title + ": " + exchangesDetail(r)
			o := reports.Observation{Role: reports.RoleTest, Actor: actor(s.Pod), Target: target(RequestURL(e.Wire)), Method: e.Method,
				Expected: ExpectBlocked, Observed: observed, OK: !reached, Detail: detail, At: r.Started, Round: round,
				Needs: []string{addressKey(hp), reaches}}
			if live.Decoy != nil {
				o.Needs[0] = endpointKey(e)
			}
			if f := final(r); f != nil {
				o.LatencyMS = f.LatencyMS
			}
			inconclusive := !reached && !httpBlocked(r)
			if inconclusive {
				o.Status, o.Why = reports.StatusUnproven, "inconclusive: the request failed inside the probe"
			}
			ends = append(ends, scoped(o, sc, hp))
			if !e.Credentials {
				continue
			}
			c := o
			c.Expected, c.Detail, c.Needs = ExpectNoCredentials, detail, []string{addressKey(hp), reaches}
			if live.Decoy != nil {
				c.Needs[0] = credsKey(e)
			}
			ex := credential(r)
			c.OK = ex == nil
			c.Observed = "no credentials (" + observed + ")"
			if ex != nil {
				c.Observed, c.Status, c.Why = "credentials "+ex.Credential.Fingerprint, "", ""
			}
			creds = append(creds, scoped(c, sc, hp))
		}
	}
	return ends, creds
}

// scoped marks a matching attempt at an endpoint no live service stands
// behind as not evaluated there: nothing shows the block is the tenant's
// policy rather than nothing listening. A leak stays a leak.
func scoped(o reports.Observation, sc scope, hp string) reports.Observation {
	if !sc.in[hp] && o.OK {
		o.Status, o.Why, o.Needs = reports.StatusNotApplicable, "not evaluated: "+sc.why[hp], nil
		o.Detail = strings.TrimPrefix(o.Detail+"; blocked from tenant pods, not proven against a live endpoint", "; ")
	}
	return o
}

// unasked are the tests a tenant pod could not make in a round because its
// exec failed: one per check, unproven.
func unasked(top checks.Topology, r Round, endpoints int) (ends, creds []reports.Observation) {
	for _, f := range r.Failed {
		if tn, ok := top.Tenant(f.Pod.Tenant); !ok || !tn.Isolated || tn.Sentinel {
			continue
		}
		o := reports.Observation{Role: reports.RoleTest, Actor: actor(f.Pod), Target: target(fmt.Sprintf("the %d catalogue endpoints", endpoints)),
			Method: MethodProbe, Expected: ExpectBlocked, Observed: "not probed", OK: true, Detail: f.Err, Round: r.N,
			Status: reports.StatusUnproven, Why: "the probe pod could not be asked this round: " + f.Err}
		c := o
		c.Expected = ExpectNoCredentials
		ends, creds = append(ends, o), append(creds, c)
	}
	return ends, creds
}

func leaks(obs []reports.Observation) []reports.Observation {
	var out []reports.Observation
	for _, o := range obs {
		if !o.OK {
			out = append(out, o)
		}
	}
	return out
}

func lastCounted(rounds []Round) []Sample {
	for i := len(rounds) - 1; i >= 0; i-- {
		if !rounds[i].Settling {
			return rounds[i].Samples
		}
	}
	return nil
}

// assemble is one check's outcome. With no live endpoint at all and no
// leak, it is not evaluated, saying exactly what was and was not shown.
func assemble(tests, controls []reports.Observation, notes []string, live Live, anyLive bool) checks.Outcome {
	out := checks.Outcome{Observations: append(tests, controls...)}
	out.Notes = compact(append(notes, checks.ProofNote(out.Observations)))
	if len(tests) == 0 {
		out.Skip = "no isolated tenant probe pod in this run"
		return out
	}
	if anyLive || len(leaks(tests)) > 0 {
		return out // a leak is a leak, proven or not: Judge fails it
	}
	why := live.NoDecoy
	if why == "" {
		why = "no decoy"
	}
	out.Skip = "blocked from tenant pods; not proven against a live endpoint (" + why +
		"; no metadata endpoint answered the unprotected control namespace; node-level vantage point: " + nodeVantage(live) + ")"
	return out
}
