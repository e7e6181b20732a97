package network

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Check IDs of the network area.
const (
	IDCrossTenant   = "NET-001"
	IDTenantIngress = "NET-002"
	IDTenantEgress  = "NET-003"
	IDSameTenant    = "NET-004"
	IDDNS           = "NET-005"
)

// Checks returns the network checks.
func Checks() []checks.Check {
	return []checks.Check{
		{
			ID: IDCrossTenant, Area: checks.Network,
			Run:     matrixCheck(crossTenant, "no two isolated tenants in this run"),
			Creates: checks.CreatesNothing("probes from the run's probe pods"),
			Lane:    checks.LaneNetwork,
		},
		{
			ID: IDTenantIngress, Area: checks.Network,
			Run:     matrixCheck(tenantIngress, "no unprotected control namespace in this run"),
			Creates: checks.CreatesNothing("probes from the run's probe pods"),
			Lane:    checks.LaneNetwork,
		},
		{
			ID: IDTenantEgress, Area: checks.Network,
			Run:     matrixCheck(tenantEgress, "no unprotected control namespace in this run"),
			Creates: checks.CreatesNothing("probes from the run's probe pods"),
			Lane:    checks.LaneNetwork,
		},
		{
			ID: IDSameTenant, Area: checks.Network,
			NoControl: "every observation is a path that must work: the check is its own positive case",
			Run:       matrixCheck(sameTenant, "no tenant with two probe pods in this run"),
			Creates:   checks.CreatesNothing("probes from the run's probe pods"),
			Lane:      checks.LaneNetwork,
		},
		{
			ID: IDDNS, Area: checks.Network,
			NoControl: "every observation is a lookup that must resolve: a resolved name needs no proof, one that does not fails; the control namespace's lookups are evidence of where DNS works, not proof",
			Run:       matrixCheck(dnsResolution, "no isolated tenant in this run"),
			Creates:   checks.CreatesNothing("probes from the run's probe pods"),
			Lane:      checks.LaneNetwork,
		},
	}
}

// DefaultProtocols are probed on every cluster; SCTP is added where every
// probe pod's kernel can open SCTP sockets.
var DefaultProtocols = []wire.Protocol{wire.TCP, wire.UDP}

// MatrixKey is the memo key of the shared matrix; negative-control tests
// forget it to make the next check probe again.
const MatrixKey = "network/matrix"

// Shared returns the run's matrix, probing it on first use.
func Shared(ctx context.Context, env *checks.Env) (*Matrix, error) {
	return checks.Memo(env, MatrixKey, func() (*Matrix, error) { return probeAll(ctx, env) })
}

func probeAll(ctx context.Context, env *checks.Env) (*Matrix, error) {
	top := env.Topology
	if len(top.Probes) < 2 {
		return nil, fmt.Errorf("the network matrix needs at least two probe pods, the run has %d", len(top.Probes))
	}
	protocols := slices.Clone(DefaultProtocols)
	var notes []string
	if sctp, why := sctpAvailable(capabilities(ctx, env, top.Probes)); sctp {
		protocols = append(protocols, wire.SCTP)
	} else {
		notes = append(notes, "SCTP not evaluated: "+why)
	}
	paths := append(MatrixPaths(top, protocols), DNSPaths(top, clusterDomain)...)
	m, err := Probe(ctx, env, paths)
	if err != nil {
		return nil, err
	}
	m.Execs += len(top.Probes) // the capability queries
	m.Protocols = protocols
	m.Notes = append(append(notes, matrixNotes(m)...), m.Notes...)
	m.NotEnforced = EnforcementDiagnosis(top, m)
	return m, nil
}

// EnforcementDiagnosis tells a CNI that ignores NetworkPolicy apart from a
// tenant that is merely misconfigured: the sentinel namespace carries a
// default-deny policy bulkhead wrote itself and no negative control opens.
// If, in the last round, every path from the unprotected namespace into it
// was reachable while the unprotected pods reached each other, policy is
// not enforced at all. It returns "" otherwise.
func EnforcementDiagnosis(top checks.Topology, m *Matrix) string {
	into, reached, controls, controlsOK := 0, 0, 0, 0
	var where []string
	for _, r := range m.Results {
		if r.Via == ViaDNS {
			continue
		}
		s, d, ok := tenants(top, r.Path)
		if !ok || s.Isolated {
			continue
		}
		last := r.Last()
		switch {
		case d.Sentinel:
			into++
			if last.Last.Outcome == wire.Reachable {
				reached++
			}
			if !slices.Contains(where, r.Dst.Namespace) {
				where = append(where, r.Dst.Namespace)
			}
		case !d.Isolated:
			controls++
			if last.Match == Matched {
				controlsOK++
			}
		}
	}
	if into == 0 || reached < into || controls == 0 || controlsOK < controls {
		return ""
	}
	return fmt.Sprintf("the CNI does not enforce NetworkPolicy: every path from the unprotected namespace into %s was reachable despite bulkhead's own default-deny policy there (%d of %d); network isolation cannot be evaluated on this cluster", strings.Join(where, ", "), reached, into)
}

// clusterDomain is left relative: "<svc>.<ns>.svc" plus the pods' DNS search
// path finds the Service whatever the cluster's domain is.
const clusterDomain = ""

func matrixNotes(m *Matrix) []string {
	notes := []string{fmt.Sprintf("%d paths probed in %d round(s), %d exec round trips, %s",
		len(m.Results), m.Rounds, m.Execs, m.Elapsed.Round(10*time.Millisecond))}
	if m.Settled {
		notes = append(notes, fmt.Sprintf("bulkhead's own setup (new probe pods, its policies) took effect after %s (round %d); from there every round counts, and paths into and out of tenants bulkhead did not create counted from round 1",
			m.SettledAfter.Round(100*time.Millisecond), m.SettledRound))
	} else {
		notes = append(notes, fmt.Sprintf("bulkhead's own setup had not fully taken effect by the enforcement deadline (round %d): counting started anyway", m.SettledRound))
	}
	if m.Retried > 0 {
		notes = append(notes, fmt.Sprintf("paths that must work missed %d time(s) and were probed again in the same round; %d of those answered then (a lost answer on a busy node is not a broken path; the second answer is the one kept)",
			m.Retried, m.Recovered))
	}
	if m.SettleBlocks > 0 {
		notes = append(notes, fmt.Sprintf("%d settle-round results of paths counted from round 1 were no leak and are left out: a block proves nothing before bulkhead's own pods answer, a leak there would have counted", m.SettleBlocks))
	}
	return notes
}

// capabilities asks every probe pod what its kernel can do; a pod that
// cannot be asked counts as one without SCTP.
func capabilities(ctx context.Context, env *checks.Env, pods []checks.ProbePod) []wire.Capabilities {
	out := make([]wire.Capabilities, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := env.Prober().Caps(ctx, p.Pod())
			if err != nil {
				out[i] = wire.Capabilities{Source: wire.Identity{Pod: p.Name, Node: p.Node}, SCTPDetail: "capabilities unknown: " + err.Error()}
				return
			}
			out[i] = *c
		}()
	}
	wg.Wait()
	return out
}

func sctpAvailable(caps []wire.Capabilities) (bool, string) {
	for _, c := range caps {
		if !c.SCTP {
			why := c.SCTPDetail
			if why == "" {
				why = "unsupported"
			}
			return false, fmt.Sprintf("the kernel of node %s cannot open SCTP sockets (%s)", c.Source.Node, why)
		}
	}
	return true, ""
}

// A slicer picks the paths a check is about (role Test) and, for checks
// whose tests are themselves paths that must work, the paths that show
// probing works at all (role Control). Blocked tests get their proof added
// by Slice: the paths that show their target answers and their source
// reaches something, in the same round.
type slicer func(top checks.Topology, p Path) (reports.Role, bool)

func crossTenant(top checks.Topology, p Path) (reports.Role, bool) {
	s, d, ok := underTest(top, p)
	if !ok || p.Via == ViaDNS || !s.Isolated || !d.Isolated || s.Name == d.Name {
		return "", false
	}
	return reports.RoleTest, true
}

func tenantIngress(top checks.Topology, p Path) (reports.Role, bool) {
	s, d, ok := underTest(top, p)
	if !ok || p.Via == ViaDNS || s.Isolated || !d.Isolated {
		return "", false
	}
	return reports.RoleTest, true
}

func tenantEgress(top checks.Topology, p Path) (reports.Role, bool) {
	s, d, ok := underTest(top, p)
	if !ok || p.Via == ViaDNS || !s.Isolated || d.Isolated {
		return "", false
	}
	return reports.RoleTest, true
}

func sameTenant(top checks.Topology, p Path) (reports.Role, bool) {
	s, d, ok := tenants(top, p)
	if !ok || p.Via == ViaDNS || s.Name != d.Name {
		return "", false
	}
	if s.Isolated {
		return reports.RoleTest, true
	}
	return reports.RoleControl, true
}

func dnsResolution(top checks.Topology, p Path) (reports.Role, bool) {
	if p.Via != ViaDNS {
		return "", false
	}
	s, ok := top.Tenant(p.Src.Tenant)
	if !ok {
		return "", false
	}
	if s.Isolated {
		return reports.RoleTest, true
	}
	return reports.RoleControl, true
}

func tenants(top checks.Topology, p Path) (checks.Tenant, checks.Tenant, bool) {
	s, ok1 := top.Tenant(p.Src.Tenant)
	if p.Via == ViaDNS {
		return s, s, ok1
	}
	d, ok2 := top.Tenant(p.Dst.Tenant)
	return s, d, ok1 && ok2
}

// underTest is tenants without the sentinel: it takes part in the matrix
// (EnforcementDiagnosis) but is not a tenant under test, and with one pod
// behind default-deny nothing could prove its paths.
func underTest(top checks.Topology, p Path) (checks.Tenant, checks.Tenant, bool) {
	s, d, ok := tenants(top, p)
	return s, d, ok && !s.Sentinel && !d.Sentinel
}

// matrixCheck builds a check's Run from a slicer over the shared matrix.
func matrixCheck(slice slicer, skipWhy string) func(context.Context, *checks.Env) checks.Outcome {
	return func(ctx context.Context, env *checks.Env) checks.Outcome {
		m, err := Shared(ctx, env)
		if err != nil {
			return checks.Outcome{Err: fmt.Errorf("probe the network matrix: %w", err)}
		}
		out := Slice(env.Topology, m, slice)
		if m.NotEnforced != "" {
			// Keep the evidence, but this is not a verdict on the tenants.
			out.Err = errors.New(m.NotEnforced)
			return out
		}
		if !hasTest(out.Observations) {
			return checks.Outcome{Skip: skipWhy}
		}
		return out
	}
}

// Proof keys: what a blocked path rests on, and what a working path shows.
// A blocked path proves isolation only if, in the same round, its target
// answered on the same protocol and address kind (so it was alive and
// listening there) and its source reached some pod over that protocol (so
// its own networking worked).
func answersKey(p Path) string {
	return fmt.Sprintf("%s/%s answers %s", p.Dst.Namespace, p.Dst.Name, p.Method())
}

func sendsKey(p Path) string {
	return fmt.Sprintf("%s/%s reaches a pod over %s", p.Src.Namespace, p.Src.Name, p.Protocol)
}

// Slice turns the matrix results a slicer selects into observations, one
// per path and counted round, and adds as controls the working paths that
// prove the blocked ones.
func Slice(top checks.Topology, m *Matrix, slice slicer) checks.Outcome {
	var out checks.Outcome
	type at struct{ path, round int }
	taken := map[at]bool{}
	needs := map[int]map[string]bool{} // round -> proof keys the tests need
	for i, r := range m.Results {
		role, in := slice(top, r.Path)
		if !in {
			continue
		}
		for _, pr := range r.Rounds {
			o := Observation(r.Path, pr, role)
			out.Observations = append(out.Observations, o)
			taken[at{i, pr.N}] = true
			if needs[pr.N] == nil {
				needs[pr.N] = map[string]bool{}
			}
			for _, k := range o.Needs {
				needs[pr.N][k] = true
			}
		}
	}
	for i, r := range m.Results {
		if !r.Allowed || r.Via == ViaDNS {
			continue
		}
		for _, pr := range r.Rounds {
			if taken[at{i, pr.N}] || (!needs[pr.N][answersKey(r.Path)] && !needs[pr.N][sendsKey(r.Path)]) {
				continue
			}
			out.Observations = append(out.Observations, Observation(r.Path, pr, reports.RoleControl))
		}
	}
	out.Notes = append(out.Notes, m.Notes...)
	if n := checks.ProofNote(out.Observations); n != "" {
		out.Notes = append(out.Notes, n)
	}
	return out
}

func hasTest(obs []reports.Observation) bool {
	for _, o := range obs {
		if o.Role == reports.RoleTest {
			return true
		}
	}
	return false
}

// Observation is the evidence for one path in one round. A blocked path
// needs its target to answer and its source to reach something (answersKey,
// sendsKey); a working path proves both for its own ends.
func Observation(p Path, pr PathRound, role reports.Role) reports.Observation {
	expected := ExpectBlocked
	switch {
	case p.Via == ViaDNS:
		expected = ExpectResolves
	case p.Allowed:
		expected = ExpectReachable
	}
	target := reports.Target{Tenant: p.Dst.Tenant, Namespace: p.Dst.Namespace, Name: p.Dst.Name, Kind: "pod", Address: p.Address()}
	if p.Via == ViaDNS {
		target = reports.Target{Namespace: p.Dst.Namespace, Name: p.Dst.Name, Kind: "service", Address: p.Name}
	}
	o := reports.Observation{
		Role:      role,
		Actor:     reports.Actor{Tenant: p.Src.Tenant, Namespace: p.Src.Namespace, Pod: p.Src.Name, Node: p.Src.Node},
		Target:    target,
		Method:    p.Method(),
		Expected:  expected,
		Observed:  pr.Observed,
		OK:        pr.Match == Matched,
		Detail:    pr.Detail,
		LatencyMS: pr.Last.LatencyMS,
		Attempts:  max(pr.Attempts, 1),
		Round:     pr.N,
		At:        pr.Last.Started,
	}
	if o.At.IsZero() {
		o.At = pr.Start // not reported by the pod: when its round began
	}
	if pr.Match == Inconclusive && role == reports.RoleTest {
		o.Status, o.Why = reports.StatusUnproven, "inconclusive: "+pr.Observed
	}
	switch {
	case p.Via == ViaDNS:
	case p.Allowed && pr.Match == Matched:
		o.Proves = []string{answersKey(p), sendsKey(p)}
	case !p.Allowed:
		o.Needs = []string{answersKey(p), sendsKey(p)}
	}
	return o
}
