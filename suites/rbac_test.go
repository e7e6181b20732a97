package suites

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/rbac"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/secrets"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func TestRBAC(t *testing.T) {
	feats := checkFeatures(rbac.Checks())
	feats = append(feats, negativeFeatures(checks.RBAC, rbac.NegativeControls())...)
	feats = append(feats, ordinaryTenants())
	testenv.Test(t, feats...)
}

// ordinaryTenants drives the real CLI against tenants set up the ordinary
// way (testdata/byo/ordinary.yaml: admin in its namespace, a read-only
// ServiceAccount, Pod Security restricted). A misspelled identity stops
// the run before it starts (exit 2, naming it, nothing left behind): its
// "denied everything" would pass every cross-tenant check. Spelled right,
// the API checks fail only on the two gaps such a cluster has, each named:
// tenant admins may bind roles to outsiders (RBAC-005), and default
// ServiceAccounts hand every pod a token (SEC-003).
func ordinaryTenants() types.Feature {
	return features.New("bulkhead run against tenants set up the ordinary way").
		WithLabel(labelArea, string(checks.RBAC)).
		WithLabel(labelType, typeNegativeControl).
		Setup(func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			byo := newBYO(t, cfg)
			byo.apply(ctx, t, "ordinary.yaml")
			return context.WithValue(ctx, byoKey{}, byo)
		}).
		Assess("a misspelled user: exit 2 naming it, nothing left behind", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			code, out, run := byo.runConfig(t, byo.kubeconfig, "ordinary-config.yaml", map[string]any{"Admin": "rtia"}, "--areas", "rbac,secrets")
			require.Equal(t, 2, code, out)
			assert.Contains(t, out, "user byo-"+byo.id+"-rtia holds no rights in tenant red")
			assert.Contains(t, out, "misspelled, or groups missing from the config?")
			assert.NotContains(t, out, "goran holds no rights", "only the misspelled identity is named")
			assertRunLeftNothing(ctx, t, run, byo.ns("red"), byo.ns("gold"))
			return ctx
		}).
		Assess("spelled right: only the genuine gaps fail, each named", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			byo := ctx.Value(byoKey{}).(*byoTenants)
			code, out, run := byo.runConfig(t, byo.kubeconfig, "ordinary-config.yaml", map[string]any{"Admin": "rita"}, "--areas", "rbac,secrets")
			assert.Equal(t, 1, code, out)
			verdicts := byo.verdicts(t, run)
			want := map[string]reports.Verdict{}
			for _, c := range append(rbac.Checks(), secrets.Checks()...) {
				want[c.ID] = reports.Pass
			}
			want[rbac.IDCrossTenantGrant], want[secrets.IDTokenHygiene] = reports.Fail, reports.Fail
			for id, v := range want {
				res := verdicts[id]
				assert.Equal(t, v, res.Verdict, "%s: %s", id, res.Reason)
			}
			grant := verdicts[rbac.IDCrossTenantGrant].Reason
			assert.Contains(t, grant, "byo-"+byo.id+"-rita", "names the tenant admin")
			assert.Contains(t, grant, "Group system:authenticated")
			for _, tn := range []string{"red", "gold"} {
				// another tenant's ci ServiceAccount may be a subject the
				// admin binds; as an actor it may not bind anything
				assert.NotContains(t, grant, "system:serviceaccount:"+byo.ns(tn)+":ci ->", "the read-only ServiceAccount may not bind anything")
			}
			tokens := verdicts[secrets.IDTokenHygiene].Reason
			assert.Contains(t, tokens, "system:serviceaccount:"+byo.ns("red")+":default")
			assert.Contains(t, tokens, "system:serviceaccount:"+byo.ns("gold")+":default")
			assertRunLeftNothing(ctx, t, run, byo.ns("red"), byo.ns("gold"))
			return ctx
		}).Feature()
}

// verdicts reads the results a run wrote, by check ID.
func (b *byoTenants) verdicts(t *testing.T, run string) map[string]reports.CheckResult {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.dir, "reports", run, reports.ResultsFile))
	require.NoError(t, err, "results of run %s", run)
	var res reports.Results
	require.NoError(t, json.Unmarshal(raw, &res))
	out := map[string]reports.CheckResult{}
	for _, c := range res.Checks {
		out[c.ID] = c
	}
	return out
}
