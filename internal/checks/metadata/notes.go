package metadata

import (
	"fmt"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata/endpoints"
)

// The notes both metadata checks carry: what stood in for the metadata
// service, which endpoints could be proven, what the tenants reached
// beyond the cluster, and which probe pods could not be asked.

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
	return []string{fmt.Sprintf("no decoy (%s): tenant attempts are proven only where, in the same round, the control namespace reached a live metadata service at the same address; node-level vantage point: %s",
		live.NoDecoy, nodeVantage(live))}
}

// scopeNote says which endpoints a live service stood behind and which
// were blocked from tenant pods without anything to prove it against.
func scopeNote(cat []endpoints.Endpoint, sc scope, live Live) string {
	var out []string
	for _, e := range cat {
		if !sc.in[hostPort(e.Wire)] {
			out = append(out, e.ID)
		}
	}
	against := "a live metadata service the control namespace reached"
	if live.Decoy != nil {
		against = "the decoy"
	}
	if len(out) == 0 {
		return fmt.Sprintf("all %d endpoints evaluated against %s, round by round", len(cat), against)
	}
	return fmt.Sprintf("%d of %d endpoints evaluated against %s, round by round; not evaluated (no live endpoint to prove a block against; a tenant reaching one would still fail): %s",
		len(cat)-len(out), len(cat), against, strings.Join(out, ", "))
}

// directNotes say, per tenant, whether its pods reached the decoy's own
// address in the last round that counts: a tenant that does has egress
// beyond its namespace, so its metadata block is its policy's except at
// work, not default deny.
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

func notControlNotes(cat []endpoints.Endpoint, seen map[string]string) []string {
	var notes []string
	for _, e := range cat {
		if n := seen[e.ID]; n != "" {
			notes = append(notes, n)
		}
	}
	return notes
}

// failedNotes name the probe pods that could not be asked, by round: a
// tenant pod's attempts are unproven in that round, a control pod's
// missing answers leave what they would have proven unshown.
func failedNotes(rounds []Round) []string {
	var notes []string
	for _, r := range rounds {
		if r.Settling {
			continue
		}
		for _, f := range r.Failed {
			notes = append(notes, fmt.Sprintf("exec failed after retries in round %d, that pod's attempts are unproven in that round: %s/%s: %s",
				r.N, f.Pod.Namespace, f.Pod.Name, f.Err))
		}
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
