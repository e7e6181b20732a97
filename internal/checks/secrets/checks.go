// Package secrets holds the checks that tenants cannot get at each other's
// secrets: by the API (a random canary Secret in each reference tenant,
// named in evidence only by the fingerprint of its value), through each
// other's pods (exec, attach, port-forward), by minting each other's
// ServiceAccount tokens, and that pods only get a ServiceAccount token when
// they ask for one. SEC-001 and SEC-002 are planned here and tried by the
// API sweep (package apisweep), with the rbac checks' identities and pods
// in the same pass.
package secrets

import (
	"fmt"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
)

// Check IDs of the secrets area.
const (
	IDRead         = "SEC-001"
	IDThroughPods  = "SEC-002"
	IDTokenHygiene = "SEC-003"
)

func init() {
	apisweep.Register(
		apisweep.Planner{Check: IDRead, Plan: ReadPlan, Notes: readNotes},
		apisweep.Planner{Check: IDThroughPods, Plan: PodsPlan, Notes: podsNotes},
	)
}

// Checks returns the secrets checks.
func Checks() []checks.Check {
	return []checks.Check{
		{
			ID: IDRead, Area: checks.Secrets,
			Run: apisweep.SliceRun(IDRead, "no two isolated tenants with identities in this run"),

			Creates: apisweep.Footprint,
		},
		{
			ID: IDThroughPods, Area: checks.Secrets,
			Run: apisweep.SliceRun(IDThroughPods, "no two isolated tenants with identities in this run"),

			Creates: apisweep.Footprint,
		},
		{
			ID: IDTokenHygiene, Area: checks.Secrets,
			Run: tokenHygiene,

			Creates: apisweep.Footprint,
		},
	}
}

func readNotes(s apisweep.Scope, sw *apisweep.Sweep) []string {
	var out []string
	for _, c := range sw.Canaries {
		out = append(out, fmt.Sprintf("canary: %s", c))
	}
	for _, t := range s.Actors() {
		if _, ok := s.Canaries[t.Name]; !ok {
			out = append(out, fmt.Sprintf("tenant %s has no canary (bulkhead plants Secrets only in namespaces it created): reads of its Secrets address %s, which does not exist, so a 403 is authorization's deny and a 404 a read let through; its own list of Secrets is the positive control", t.Name, s.Absent()))
		}
	}
	return out
}

func podsNotes(s apisweep.Scope, sw *apisweep.Sweep) []string {
	var out []string
	for _, c := range sw.Canaries {
		if pod, ok := s.CanaryPods[c.Tenant]; ok {
			out = append(out, fmt.Sprintf("canary: %s, mounted in pod %s/%s at %s", c, c.Namespace, pod, canaryFile))
		}
	}
	return out
}
