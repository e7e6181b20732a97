package reports

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Framework mapping keys, as used in the catalogue's mappings, JUnit
// properties and OSCAL props. CIS keys carry the benchmark version:
// "cis.1.10".
const (
	FrameworkCISPrefix  = "cis."
	FrameworkNSACISA    = "nsaCisa"
	FrameworkMTB        = "mtb"
	FrameworkNIST80053  = "nist80053"
	FrameworkNIST800190 = "nist800190"
	FrameworkPCIDSS     = "pciDss"
)

// FrameworkRef is one mapping of a control into an external framework.
type FrameworkRef struct {
	// Framework is the key: "cis.1.10", "nsaCisa", "mtb", "nist80053", ...
	Framework string
	// ID is the framework's identifier or section: "5.3.2", "AC-4".
	ID string
}

// FrameworkName is the human name of a framework key.
func FrameworkName(key string) string {
	if v, ok := strings.CutPrefix(key, FrameworkCISPrefix); ok {
		return "CIS Kubernetes Benchmark v" + v
	}
	switch key {
	case FrameworkNSACISA:
		return "NSA/CISA Kubernetes Hardening Guide v1.2"
	case FrameworkMTB:
		return "Kubernetes Multi-Tenancy Benchmarks"
	case FrameworkNIST80053:
		return "NIST SP 800-53 Rev. 5"
	case FrameworkNIST800190:
		return "NIST SP 800-190"
	case FrameworkPCIDSS:
		return "PCI DSS v4.0"
	}
	return key
}

// Refs lists every mapping in a stable order: CIS (by benchmark version),
// NSA/CISA, MTB, NIST SP 800-53, NIST SP 800-190, PCI DSS.
func (m Mappings) Refs() []FrameworkRef {
	var out []FrameworkRef
	versions := make([]string, 0, len(m.CIS))
	for v := range m.CIS {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	for _, v := range versions {
		for _, id := range m.CIS[v] {
			out = append(out, FrameworkRef{FrameworkCISPrefix + v, id})
		}
	}
	add := func(key string, ids []string) {
		for _, id := range ids {
			out = append(out, FrameworkRef{key, id})
		}
	}
	add(FrameworkNSACISA, m.NSACISA)
	add(FrameworkMTB, m.MTB)
	add(FrameworkNIST80053, m.NIST80053)
	add(FrameworkNIST800190, m.NIST800190)
	add(FrameworkPCIDSS, m.PCIDSS)
	return out
}

// frameworkOrder sorts framework keys: CIS versions first, then the fixed order of Refs.
func frameworkOrder(key string) string {
	if strings.HasPrefix(key, FrameworkCISPrefix) {
		return "0" + key
	}
	for i, k := range []string{FrameworkNSACISA, FrameworkMTB, FrameworkNIST80053, FrameworkNIST800190, FrameworkPCIDSS} {
		if k == key {
			return fmt.Sprintf("%d", i+1)
		}
	}
	return "9" + key
}

var embedded = sync.OnceValues(LoadCatalogue)

// DefaultCatalogue is the embedded catalogue, loaded once.
func DefaultCatalogue() (Catalogue, error) { return embedded() }

// NotEvaluated returns the catalogue's controls that have no result in r
// (not selected or not run), sorted by ID.
func (c Catalogue) NotEvaluated(r *Results) []Control {
	ran := map[string]bool{}
	for _, cr := range r.Checks {
		ran[cr.ID] = true
	}
	var out []Control
	for _, id := range c.IDs() {
		if !ran[id] {
			out = append(out, c[id])
		}
	}
	return out
}

// For returns the catalogue entry of a check result. A result without an
// entry (e.g. from an older bulkhead whose check was since renamed) gets a
// stand-in made of the result itself, without severity or mappings.
func (c Catalogue) For(r CheckResult) Control {
	if ctl, ok := c[r.ID]; ok {
		return ctl
	}
	return Control{ID: r.ID, Title: r.Title, Area: r.Area, Description: r.Proves}
}
