package actors

import (
	"context"
	"fmt"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Scope is one tenant namespace and the actors that may try there.
type Scope struct {
	Tenant    checks.Tenant
	Namespace string
	Actors    []Actor
}

// Coverage is what EachNamespace found: the namespaces where someone may
// try, the not-applicable observations of the identities that may not,
// and what is not evaluated because nobody may.
type Coverage struct {
	Scopes        []Scope
	NotApplicable []reports.Observation
	NotEvaluated  []string
}

// EachNamespace finds, for every namespace of every isolated tenant under
// test, the identities that hold all of rights there. A tenant without
// identities, or whose identities all lack a right, is not evaluated
// (saying why); it is not a failure: an identity RBAC forbids to try
// cannot break the isolation the check is about.
func (m *Model) EachNamespace(ctx context.Context, rights ...Right) (Coverage, error) {
	var cov Coverage
	for _, t := range m.env.Topology.Isolated() {
		if len(t.Identities) == 0 {
			cov.NotEvaluated = append(cov.NotEvaluated, fmt.Sprintf("tenant %s: no identities in the config", t.Name))
			continue
		}
		for _, ns := range t.Namespaces {
			able, na, err := m.Able(ctx, t, ns, rights...)
			if err != nil {
				return cov, err
			}
			cov.NotApplicable = append(cov.NotApplicable, na...)
			if len(able) == 0 {
				cov.NotEvaluated = append(cov.NotEvaluated, fmt.Sprintf("tenant %s in %s: no identity may %s", t.Name, ns, rightsWords(rights)))
				continue
			}
			cov.Scopes = append(cov.Scopes, Scope{Tenant: t, Namespace: ns, Actors: able})
		}
	}
	return cov, nil
}

func rightsWords(rs []Right) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return strings.Join(out, " and ")
}

// Apply adds the coverage's not-applicable observations and not-evaluated
// entries to out.
func (c Coverage) Apply(out *checks.Outcome) {
	out.Observations = append(out.Observations, c.NotApplicable...)
	out.NotEvaluated = append(out.NotEvaluated, c.NotEvaluated...)
}
