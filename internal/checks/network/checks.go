package network

import (
	"context"
	"encoding/json"
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
			Title:  "Cross-tenant traffic is blocked in both directions",
			Proves: "No pod of one tenant can open a TCP/UDP/SCTP connection to a pod of another tenant, by pod IP, ClusterIP or Service DNS name, while pods within each tenant can (positive control).",
			Run:    matrixCheck(crossTenant, "no two isolated tenants in this run"),

			Creates: checks.CreatesNothing("probes from the run's probe pods"),
		},
		{
			ID: IDTenantIngress, Area: checks.Network,
			Title:  "Tenant ingress is isolated from unprotected namespaces",
			Proves: "Pods in a namespace without any policy (which may send anywhere) cannot reach tenant pods: each tenant's ingress policy holds on its own, while tenant pods answer within their tenant and control pods reach each other (positive controls).",
			Run:    matrixCheck(tenantIngress, "no unprotected control namespace in this run"),

			Creates: checks.CreatesNothing("probes from the run's probe pods"),
		},
		{
			ID: IDTenantEgress, Area: checks.Network,
			Title:  "Tenant egress to other namespaces is blocked",
			Proves: "Tenant pods cannot reach pods in a namespace without any policy (which accepts anything): each tenant's egress policy holds on its own, while the control pods answer each other (positive control).",
			Run:    matrixCheck(tenantEgress, "no unprotected control namespace in this run"),

			Creates: checks.CreatesNothing("probes from the run's probe pods"),
		},
		{
			ID: IDSameTenant, Area: checks.Network,
			Title:     "Traffic within a tenant still works",
			Proves:    "Isolation does not break the tenant: its pods reach each other by pod IP, ClusterIP and Service DNS name over every protocol probed.",
			NoControl: "every observation is a path that must work: the check is its own positive case",
			Run:       matrixCheck(sameTenant, "no tenant with two probe pods in this run"),

			Creates: checks.CreatesNothing("probes from the run's probe pods"),
		},
		{
			ID: IDDNS, Area: checks.Network,
			Title:  "DNS resolution works from tenant pods",
			Proves: "Tenant pods resolve the kubernetes Service and their own Services through cluster DNS despite default-deny egress (the control namespace resolves them too: positive control).",
			Run:    matrixCheck(dnsResolution, "no isolated tenant in this run"),

			Creates: checks.CreatesNothing("probes from the run's probe pods"),
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
	caps, err := capabilities(ctx, env, top.Probes)
	if err != nil {
		return nil, err
	}
	protocols := slices.Clone(DefaultProtocols)
	var notes []string
	if sctp, why := sctpAvailable(caps); sctp {
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
	m.Notes = append(notes, matrixNotes(m)...)
	m.NotEnforced = EnforcementDiagnosis(top, m)
	return m, nil
}

// EnforcementDiagnosis tells a CNI that ignores NetworkPolicy apart from a
// tenant that is merely misconfigured: the sentinel namespace carries a
// default-deny policy bulkhead wrote itself and no negative control opens.
// If every path from the unprotected namespace into it is reachable while
// the unprotected pods reach each other, policy is not enforced at all. It
// returns "" otherwise.
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
		switch {
		case d.Sentinel:
			into++
			if r.Last.Outcome == wire.Reachable {
				reached++
			}
			if !slices.Contains(where, r.Dst.Namespace) {
				where = append(where, r.Dst.Namespace)
			}
		case !d.Isolated:
			controls++
			if r.OK {
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
	if m.Converged && m.Rounds > 1 {
		notes = append(notes, fmt.Sprintf("every path matched its expectation after %s (policy enforcement delay)", m.SettledAfter.Round(100*time.Millisecond)))
	}
	if !m.Converged {
		notes = append(notes, fmt.Sprintf("some paths still did not match after the enforcement deadline (%d rounds)", m.Rounds))
	}
	return notes
}

func capabilities(ctx context.Context, env *checks.Env, pods []checks.ProbePod) ([]wire.Capabilities, error) {
	out := make([]wire.Capabilities, len(pods))
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			raw, err := env.ExecProbe(ctx, p, nil, "caps")
			if err != nil {
				errs[i] = err
				return
			}
			if err := json.Unmarshal(raw, &out[i]); err != nil {
				errs[i] = fmt.Errorf("probe caps in %s/%s: %w: %.200q", p.Namespace, p.Name, err, raw)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
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

// A slicer picks the paths a check is about (role Test) and the paths that
// prove those paths could work (role Control).
type slicer func(top checks.Topology, p Path) (reports.Role, bool)

func crossTenant(top checks.Topology, p Path) (reports.Role, bool) {
	s, d, ok := tenants(top, p)
	if !ok || p.Via == ViaDNS || !s.Isolated || !d.Isolated {
		return "", false
	}
	if s.Name != d.Name {
		return reports.RoleTest, true
	}
	return reports.RoleControl, true
}

func tenantIngress(top checks.Topology, p Path) (reports.Role, bool) {
	s, d, ok := tenants(top, p)
	switch {
	case !ok || p.Via == ViaDNS:
		return "", false
	case !s.Isolated && d.Isolated:
		return reports.RoleTest, true
	case !s.Isolated && !d.Isolated, s.Name == d.Name:
		return reports.RoleControl, true
	}
	return "", false
}

func tenantEgress(top checks.Topology, p Path) (reports.Role, bool) {
	s, d, ok := tenants(top, p)
	switch {
	case !ok || p.Via == ViaDNS:
		return "", false
	case s.Isolated && !d.Isolated:
		return reports.RoleTest, true
	case !s.Isolated && !d.Isolated, s.Name == d.Name && s.Isolated:
		return reports.RoleControl, true
	}
	return "", false
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
		if len(out.Observations) == 0 || !hasTest(out.Observations) {
			return checks.Outcome{Skip: skipWhy}
		}
		return out
	}
}

// Slice turns the matrix results a slicer selects into observations.
func Slice(top checks.Topology, m *Matrix, slice slicer) checks.Outcome {
	var out checks.Outcome
	for _, r := range m.Results {
		role, in := slice(top, r.Path)
		if !in {
			continue
		}
		out.Observations = append(out.Observations, Observation(r, role))
	}
	out.Notes = append(out.Notes, m.Notes...)
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

// Observation is the evidence for one path.
func Observation(r Result, role reports.Role) reports.Observation {
	expected := ExpectBlocked
	switch {
	case r.Via == ViaDNS:
		expected = ExpectResolves
	case r.Allowed:
		expected = ExpectReachable
	}
	target := reports.Target{Tenant: r.Dst.Tenant, Namespace: r.Dst.Namespace, Name: r.Dst.Name, Kind: "pod", Address: r.Address()}
	if r.Via == ViaDNS {
		target = reports.Target{Namespace: r.Dst.Namespace, Name: r.Dst.Name, Kind: "service", Address: r.Name}
	}
	return reports.Observation{
		Role:      role,
		Actor:     reports.Actor{Tenant: r.Src.Tenant, Namespace: r.Src.Namespace, Pod: r.Src.Name, Node: r.Src.Node},
		Target:    target,
		Method:    r.Method(),
		Expected:  expected,
		Observed:  r.Observed,
		OK:        r.OK,
		Detail:    r.Detail,
		LatencyMS: r.Last.LatencyMS,
		Attempts:  r.Attempts,
		At:        r.Last.Started,
	}
}
