package suites

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

// ordinaryGaps are the genuine gaps of tenants set up the ordinary way
// (testdata/ordinary/tenants.yaml: no cluster-wide admission policy), by
// check: what its failure must name. Every other check must not fail.
var ordinaryGaps = map[string]string{
	// nothing forbids spec.externalIPs without an admission policy (CVE-2020-8554)
	"EXP-002": "externalIPs",
	// nothing stops an ExternalName alias of another tenant's Service
	"EXP-003": "ExternalName",
	// ClusterRole admin may bind its namespace's roles to anyone, e.g.
	// every authenticated user
	"RBAC-005": "Group system:authenticated",
	// the namespaces' default ServiceAccounts automount their tokens
	"SEC-003": ":default",
}

// TestOrdinaryTenants runs bulkhead on tenants a platform team set up the
// ordinary way, without bulkhead: one namespace per tenant, the tenant's
// group bound to ClusterRole admin, a read-only CI ServiceAccount listed
// as an identity too. A cluster that isolates them must get no FAIL but
// for the genuine gaps of that setup, each named; the read-only identity
// is "not applicable" where it may not try, never a failure.
func TestOrdinaryTenants(t *testing.T) {
	f := features.New("bulkhead run against ordinary tenants").
		WithLabel(labelArea, "cli").
		Setup(func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			byo := newBYO(t, cfg)
			byo.apply(ctx, t, "ordinary/tenants.yaml")
			return context.WithValue(ctx, byoKey{}, byo)
		}).
		Assess("no check fails except the setup's genuine gaps, each named", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			code, out, run := byo.runConfig(t, byo.kubeconfig, "ordinary/config.yaml", map[string]any{"Identities": true}, "--areas", allAreas())
			res := byo.results(t, run)
			assert.Equal(t, reports.RunFail, res.Verdict(), "the genuine gaps fail the run")
			assert.Equal(t, reports.ExitFail, code, withNotPassed(out))
			seen := map[string]bool{}
			for _, c := range res.Checks {
				seen[c.ID] = true
				if gap, ok := ordinaryGaps[c.ID]; ok {
					assert.Equal(t, reports.Fail, c.Verdict, "%s is a genuine gap of this setup: %s", c.ID, c.Reason)
					assert.Contains(t, c.Reason, gap)
					continue
				}
				assert.NotEqual(t, reports.Fail, c.Verdict, "%s must not fail on ordinary tenants: %s", c.ID, c.Reason)
				assert.NotEqual(t, reports.Error, c.Verdict, "%s could not run: %s", c.ID, c.Reason)
				for _, o := range c.Observations {
					if strings.HasSuffix(o.Actor.Identity, ":ci") && o.Failed() && o.Role == reports.RoleControl {
						t.Errorf("%s: the read-only ServiceAccount's missing rights fail a control: %s", c.ID, o.Detail)
					}
				}
			}
			for id := range ordinaryGaps {
				assert.True(t, seen[id], "%s ran", id)
			}
			// The read-only identity may not create workloads or Services:
			// where a check needs that, it is not applicable, and says why.
			for _, id := range []string{"EXP-001", "QUOTA-001", "PSA-001"} {
				c := checkOf(t, res, id)
				na := 0
				for _, o := range c.Observations {
					if o.Status == reports.StatusNotApplicable {
						na++
						assert.Contains(t, o.Why, "serviceaccount byo-"+byo.id+"-hx-", "names the identity")
						assert.Contains(t, o.Why, "(RBAC)")
					}
				}
				assert.Positive(t, na, "%s records the read-only ServiceAccount as not applicable", id)
			}
			assertRunLeftNothing(ctx, t, run, byo.ns("hx-a"), byo.ns("hx-b"))
			return ctx
		}).
		Assess("tenants nobody acts for: the API checks are not evaluated, the run INCOMPLETE (exit 3)", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			code, out, run := byo.runConfig(t, byo.kubeconfig, "ordinary/config.yaml", map[string]any{"Identities": false}, "--areas", "quota")
			assert.Equal(t, reports.ExitIncomplete, code, out)
			assert.Contains(t, out, "INCOMPLETE")
			res := byo.results(t, run)
			assert.Equal(t, reports.RunIncomplete, res.Verdict())
			for _, c := range res.Checks {
				assert.Contains(t, []reports.Verdict{reports.Skipped, reports.Unproven}, c.Verdict, "%s: %s", c.ID, c.Reason)
				assert.Contains(t, c.Reason, "no identities", c.ID)
			}
			md, err := os.ReadFile(filepath.Join(byo.dir, "reports", run, reports.MarkdownFile))
			require.NoError(t, err)
			assert.Contains(t, string(md), "tenant isolation: INCOMPLETE")
			byo.assertReports(t, run)
			assertRunLeftNothing(ctx, t, run, byo.ns("hx-a"), byo.ns("hx-b"))
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
