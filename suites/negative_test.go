package suites

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/all"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// negativeFeatures turns an area's negative controls (data declared next
// to its checks, see checks.NegativeControl) into features: one per fault,
// labelled area, type=negative-control and check=<ID> for every check the
// fault is about, so --labels check=NET-001 keeps them. Setup injects the
// fault (it returns once the fault is in effect) and registers its undo;
// an assessment per expectation runs the check on the fault's own env
// (probed afresh, once per fault) and asserts its verdict and what it
// names.
func negativeFeatures(area checks.Area, ncs []checks.NegativeControl) []types.Feature {
	reg := all.Registry()
	var out []types.Feature
	for _, nc := range ncs {
		f := features.New("negative control: "+nc.Fault).
			WithLabel(labelArea, string(area)).
			WithLabel(labelType, typeNegativeControl)
		for _, e := range nc.Expect {
			f = f.WithLabel(labelCheck, e.Check)
		}
		// One env for the fault: its checks probe the fault afresh, once
		// (checks sharing a probing, like the network matrix, share it here
		// too), not once per expectation.
		var env *checks.Env
		f = f.Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			env = checks.NegativeEnv(h.session.Env())
			restore, err := nc.Inject(ctx, h.session.Env())
			if restore != nil {
				t.Cleanup(func() {
					assert.NoError(t, restore(context.WithoutCancel(ctx)), "restore after %q", nc.Fault)
				})
			}
			require.NoError(t, err, "inject %q", nc.Fault)
			return ctx
		})
		for _, e := range nc.Expect {
			c, ok := reg.Get(e.Check)
			if !ok {
				panic("negative control " + nc.Fault + " expects unknown check " + e.Check)
			}
			f = f.Assess(c.ID+" "+e.Want().Word()+" under the fault", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				res := checks.Execute(ctx, c, env)
				t.Logf("%s under %q: %s: %.800s", res.ID, nc.Fault, res.Verdict, res.Reason)
				require.Equal(t, e.Want(), res.Verdict, res.Reason)
				if e.Want() == reports.Fail {
					assert.True(t, hasLeak(res), "%s fails because of a leak it observed, not only a broken control", res.ID)
				}
				if e.Names != nil {
					for _, name := range e.Names(env) {
						assert.Contains(t, res.Reason, name, "%s names %q", res.ID, name)
					}
				}
				if e.Assert != nil {
					for _, p := range e.Assert(env, res) {
						t.Errorf("%s under %q: %s", res.ID, nc.Fault, p)
					}
				}
				return ctx
			})
		}
		out = append(out, f.Feature())
	}
	return out
}

func hasLeak(res reports.CheckResult) bool {
	for _, o := range res.Observations {
		if o.Leak() {
			return true
		}
	}
	return false
}
