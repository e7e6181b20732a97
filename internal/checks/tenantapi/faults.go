package tenantapi

import (
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Namespace is the first namespace of a reference tenant, where negative
// controls inject their faults.
func Namespace(env *checks.Env, tenant string) string {
	t, ok := env.Topology.Tenant(tenant)
	if !ok || len(t.Namespaces) == 0 {
		return "(no tenant " + tenant + ")"
	}
	return t.Namespaces[0]
}

// OnlyTenantLeaks asserts, under a fault injected into tenant, that every
// other tenant's tests still passed: the fault broke only what it was meant
// to.
func OnlyTenantLeaks(tenant string) func(env *checks.Env, res reports.CheckResult) []string {
	return func(_ *checks.Env, res reports.CheckResult) []string {
		var problems []string
		for _, o := range res.Observations {
			if o.Role == reports.RoleTest && o.Status != reports.StatusNotApplicable && o.Actor.Tenant != tenant && !o.Passed() {
				problems = append(problems, "another tenant's test did not pass: "+checks.DescribeOne(o))
			}
		}
		return problems
	}
}
