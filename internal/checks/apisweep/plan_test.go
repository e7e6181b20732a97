package apisweep_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep/sweeptest"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/rbac"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/secrets"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Both areas' planners register with the sweep when their packages load.
var ids = []string{rbac.IDCrossNamespace, rbac.IDClusterScope, rbac.IDEscalation, rbac.IDAnonymous, rbac.IDCrossTenantGrant, secrets.IDRead, secrets.IDThroughPods}

func TestPlanIsCompleteAndControlled(t *testing.T) {
	var registered []string
	for _, p := range apisweep.Planners() {
		registered = append(registered, p.Check)
	}
	assert.Equal(t, ids, registered, "one planner per check, by ID")
	byCheck := map[string][2]int{}
	for _, a := range apisweep.Plan(sweeptest.Reference()) {
		c := byCheck[a.Check]
		if a.Role == reports.RoleTest {
			c[0]++
		} else {
			c[1]++
		}
		byCheck[a.Check] = c
		assert.NotEmpty(t, a.Target.Address, "%s %s has an address", a.Check, a.Req.Describe())
		if a.Via == apisweep.ViaNone {
			assert.True(t, a.Review, "an attempt without a request is an access review")
		}
	}
	for _, id := range ids {
		assert.Positive(t, byCheck[id][0], "%s has tests", id)
		assert.Positive(t, byCheck[id][1], "%s has positive controls", id)
	}
	assert.Len(t, byCheck, len(ids))
}

func TestPositiveControlsImpersonateASyntheticIdentityAndAreHarmless(t *testing.T) {
	for name, s := range map[string]apisweep.Scope{"reference": sweeptest.Reference(), "bring-your-own": sweeptest.BYO()} {
		var admin int
		for _, a := range apisweep.Plan(s) {
			if a.Via != apisweep.ViaAdmin {
				assert.NotEqual(t, apisweep.PositiveControl.User, a.Identity.User)
				continue
			}
			admin++
			assert.Equal(t, reports.RoleControl, a.Role, "%s: only positive controls act as %s", name, apisweep.PositiveControl.User)
			assert.Equal(t, apisweep.PositiveControl, a.Identity)
			assert.Contains(t, a.Note, "impersonated by "+s.Runner, "the evidence names who impersonated it")
			assert.NoError(t, apisweep.Harmless(a), "%s: %s", name, a.Req.Address())
			if a.Req.Method != http.MethodGet {
				assert.True(t, a.Req.DryRun, "%s: %s is a dry-run", name, a.Req.Address())
			}
			if a.Req.Subresource == "proxy" {
				assert.Equal(t, "GET /api/v1/nodes/node-1/proxy/healthz", a.Req.Address())
			}
		}
		assert.Equal(t, 2*7+2, admin, "%s: cluster-scoped requests, CSR approval and nodes/proxy", name)
	}
	assert.Equal(t, []string{"system:masters", "system:authenticated"}, apisweep.PositiveControl.Groups)
}

// Every test's "denied" rests on facts a control of the same check
// proves, however much or little the identities' grants hold; and no
// control of a tenant identity asks for a right its grant does not hold.
func TestEveryNeedIsProvedByAControlOfItsCheck(t *testing.T) {
	for name, scope := range map[string]func() apisweep.Scope{"reference": sweeptest.Reference, "bring-your-own": sweeptest.BYO} {
		grants := map[string]func(apisweep.Scope) apisweep.Grants{
			"every right":               func(apisweep.Scope) apisweep.Grants { return nil },
			"read-only ServiceAccounts": func(s apisweep.Scope) apisweep.Grants { return sweeptest.ReadOnlyServiceAccounts(s) },
			"only list pods":            func(s apisweep.Scope) apisweep.Grants { return sweeptest.Only(s, actors.List("pods")) },
			"only create configmaps":    func(s apisweep.Scope) apisweep.Grants { return sweeptest.Only(s, actors.Create("configmaps")) },
		}
		for gname, g := range grants {
			s := scope()
			s.Grants = g(s)
			plan := apisweep.Plan(s)
			proves := map[string]map[string]bool{}
			for _, a := range plan {
				if a.Role != reports.RoleControl {
					continue
				}
				if proves[a.Check] == nil {
					proves[a.Check] = map[string]bool{}
				}
				for _, k := range a.Proves {
					proves[a.Check][k] = true
				}
				if slices.ContainsFunc(s.Actors(), func(t checks.Tenant) bool { return t.Name == a.Tenant }) {
					assert.True(t, s.May(a.Identity, a.Req.Namespace, apisweep.RightOf(a.Req)),
						"%s, %s: %s control %s %s asks for a right its grant does not hold", name, gname, a.Check, a.Identity.User, a.Req.Describe())
				}
			}
			for _, a := range plan {
				if a.Role != reports.RoleTest {
					continue
				}
				assert.NotEmpty(t, a.Needs, "%s, %s: %s test %s rests on nothing", name, gname, a.Check, a.Req.Describe())
				for _, k := range a.Needs {
					assert.True(t, proves[a.Check][k], "%s, %s: %s test %s %s needs %q, which no control of the check proves",
						name, gname, a.Check, a.Identity.User, a.Req.Describe(), k)
				}
			}
		}
	}
}
