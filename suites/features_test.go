package suites

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
	"sigs.k8s.io/e2e-framework/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Feature labels.
const (
	labelArea  = "area"
	labelCheck = "check"
	labelType  = "type"
	// typeConformance features run a check and record its result; the
	// reports are made of them.
	typeConformance = "conformance"
	// typeNegativeControl features inject a leak and expect a check to fail;
	// their results are not part of the conformance report.
	typeNegativeControl = "negative-control"
)

// checkFeatures wraps each check in an e2e-framework feature. The check runs
// through the session, so its result lands in the run's reports; a failing
// verdict fails the test with the check's reason.
//
// Labels (checks.Labels) carry area, check ID, profile and the catalogue's
// mappings, so a run can be narrowed as the CLI does:
// --labels area=network, --labels mtb=MTB-PL1-BC-NI-1, --labels profile=quick.
func checkFeatures(cs []checks.Check) []types.Feature {
	cat, err := reports.LoadCatalogue()
	if err != nil {
		panic(err) // the embedded catalogue is validated by unit tests
	}
	var out []types.Feature
	for _, c := range cs {
		f := features.New(c.Name()).WithLabel(labelType, typeConformance)
		labels := checks.Labels(c, cat[c.ID])
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			for _, v := range labels[k] {
				f = f.WithLabel(k, v)
			}
		}
		f = f.Assess(c.Name(), func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			res := h.session.Execute(ctx, c)
			requireVerdict(t, res, reports.Pass)
			return ctx
		})
		out = append(out, f.Feature())
	}
	return out
}

// requireVerdict fails t unless res has the wanted verdict. A check that
// was not evaluated or not proven fails the test too: the suite's reference
// tenants give every check its subject, so "not evaluated" here is a gap,
// not a pass (a run that means to leave a check out deselects it with
// --skip-labels).
func requireVerdict(t *testing.T, res reports.CheckResult, want reports.Verdict) {
	t.Helper()
	for _, n := range res.Notes {
		t.Logf("%s note: %s", res.ID, n)
	}
	if res.Verdict == want {
		t.Logf("%s: %s (%d observations)", res.ID, res.Verdict, len(res.Observations))
		return
	}
	t.Errorf("%s %s: verdict %s, want %s: %s", res.ID, res.Title, res.Verdict.Word(), want.Word(), res.Reason)
}

// mustCheck returns the check with id from cs.
func mustCheck(t *testing.T, cs []checks.Check, id string) checks.Check {
	t.Helper()
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %s", id)
	return checks.Check{}
}

// negativeControl starts a negative-control feature of an area: a test that
// injects a fault and expects a check to fail, naming what leaked.
func negativeControl(area checks.Area, fault string) *features.FeatureBuilder {
	return features.New("negative control: "+fault).
		WithLabel(labelArea, string(area)).
		WithLabel(labelType, typeNegativeControl)
}

// failsUnderFault runs check id against env with a fault injected and
// requires it to FAIL because of a leak, not because a positive control
// broke (which would prove nothing about the check). It returns the result
// for the assertions that name the leak.
func failsUnderFault(ctx context.Context, t *testing.T, cs []checks.Check, id string, env *checks.Env) reports.CheckResult {
	t.Helper()
	res := checks.Execute(ctx, mustCheck(t, cs, id), env)
	t.Logf("%s under the injected fault: %s: %.600s", res.ID, res.Verdict, res.Reason)
	require.Equal(t, reports.Fail, res.Verdict, res.Reason)
	assert.NotContains(t, res.Reason, "positive control failed")
	return res
}
