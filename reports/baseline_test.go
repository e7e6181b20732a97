package reports

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// otherRun is the real run as a later run would record it: another run ID,
// so other namespace names, same checks.
func otherRun(t *testing.T, r *Results) *Results {
	t.Helper()
	old := r.Run.ID
	id := "n3w1d"
	rename := func(s string) string { return strings.ReplaceAll(s, "bh-"+old+"-", "bh-"+id+"-") }
	r.Run.ID = id
	for i := range r.Run.Tenants {
		for j := range r.Run.Tenants[i].Namespaces {
			r.Run.Tenants[i].Namespaces[j] = rename(r.Run.Tenants[i].Namespaces[j])
		}
	}
	for i := range r.Checks {
		for j := range r.Checks[i].Observations {
			o := &r.Checks[i].Observations[j]
			o.Actor.Namespace, o.Target.Namespace = rename(o.Actor.Namespace), rename(o.Target.Namespace)
		}
	}
	return r
}

func ids(cs []CheckChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestBaselineNewFailuresAndFixed(t *testing.T) {
	prev := realRun(t)
	cur := otherRun(t, brokenRun(t))
	d := CompareBaseline(prev, cur)
	assert.Equal(t, []string{"NET-001", "NET-003"}, ids(d.NewFailures))
	assert.Empty(t, d.Fixed)
	assert.Equal(t, []string{"NET-005"}, ids(d.Coverage), "pass -> skipped is a coverage change")
	assert.True(t, d.HasNewFailures())
	verdict, why := Gate(cur, &d, true)
	assert.Equal(t, RunFail, verdict)
	assert.Contains(t, why, "NET-001, NET-003")

	// The other way round: the broken run is the baseline, the fixed run is current.
	d = CompareBaseline(brokenRun(t), otherRun(t, realRun(t)))
	assert.Equal(t, []string{"NET-001", "NET-003"}, ids(d.Fixed))
	assert.Empty(t, d.NewFailures)
	assert.False(t, d.HasNewFailures())
	assert.Equal(t, "xd1m0", d.Previous.ID)
	assert.Equal(t, "n3w1d", d.Current.ID)
}

func TestBaselineOnlyNewFailuresGate(t *testing.T) {
	// Same failure in both runs (namespaces differ by run ID): not new.
	prev := brokenRun(t)
	cur := otherRun(t, brokenRun(t))
	d := CompareBaseline(prev, cur)
	assert.Empty(t, d.NewFailures)
	assert.Empty(t, d.Regressed, "the same paths leak: observations are matched across run IDs")
	assert.Equal(t, []string{"NET-001", "NET-003"}, ids(d.StillFailing))
	verdict, why := Gate(cur, &d, true)
	assert.NotEqual(t, RunFail, verdict, why)
	assert.Contains(t, why, "no new failures")
	verdict, _ = Gate(cur, &d, false)
	assert.Equal(t, RunFail, verdict, "without --fail-on new any failure fails")
	verdict, _ = Gate(cur, nil, true)
	assert.Equal(t, RunFail, verdict, "without a baseline any failure fails")
}

func TestBaselineRegressedWhenAFailingCheckLeaksMore(t *testing.T) {
	prev := brokenRun(t)
	cur := otherRun(t, brokenRun(t))
	c := findCheck(t, cur, "NET-001")
	for i := range c.Observations {
		o := &c.Observations[i]
		if o.Role == RoleTest && o.Actor.Tenant == "b" && o.Target.Tenant == "a" && o.Method == "udp/pod-ip" {
			o.Observed, o.OK = "reachable", false
			break
		}
	}
	d := CompareBaseline(prev, cur)
	require.Equal(t, []string{"NET-001"}, ids(d.Regressed))
	require.Len(t, d.Regressed[0].NewlyFailing, 1)
	assert.Contains(t, d.Regressed[0].NewlyFailing[0], "bh-n3w1d-b/")
	assert.Contains(t, d.Regressed[0].NewlyFailing[0], "udp/pod-ip: reachable (want blocked)")
	assert.True(t, d.HasNewFailures())
}

func TestBaselineScopeChanges(t *testing.T) {
	prev := realRun(t)
	cur := otherRun(t, realRun(t))
	// A check disappeared, a new one appeared and fails, the cluster changed,
	// a tenant was added, NET-002 probed fewer paths.
	cur.Checks = cur.Checks[1:]
	cur.Checks = append(cur.Checks, CheckResult{ID: "RBAC-001", Title: "new", Area: "rbac", Verdict: Fail, Reason: "leak"})
	cur.Run.Cluster.KubernetesVersion = "v1.37.0"
	cur.Run.Tenants = append(cur.Run.Tenants, Tenant{Name: "c", Namespaces: []string{"bh-n3w1d-c"}, Isolated: true, Reference: true})
	n2 := findCheck(t, cur, "NET-002")
	n2.Observations = n2.Observations[:10]
	d := CompareBaseline(prev, cur)
	assert.Equal(t, []string{"NET-001"}, ids(d.Removed))
	assert.Equal(t, []string{"RBAC-001"}, ids(d.Added))
	assert.Equal(t, []string{"RBAC-001"}, ids(d.NewFailures))
	scope := strings.Join(d.Scope, "\n")
	assert.Contains(t, scope, "Kubernetes: v1.37.0 (baseline: v1.36.3)")
	assert.Contains(t, scope, "c (isolated reference, 1 namespaces)")
	assert.Contains(t, scope, "NET-002: 10 observations, baseline had 84")
	assert.NotContains(t, scope, "cluster:", "the same cluster")

	md := d.Markdown()
	assert.Contains(t, md, "**1 new failures**")
	assert.Contains(t, md, "### Removed checks")
	assert.Contains(t, md, "| RBAC-001 | new | - | fail | leak |")
	assert.Contains(t, md, "### Scope changes")
	txt := d.Text()
	assert.Contains(t, txt, "NEW FAILURE   RBAC-001 new: - -> fail (leak)")
	assert.Contains(t, txt, "removed       NET-001")
}

func TestInterruptedRunNeverPasses(t *testing.T) {
	r := realRun(t)
	verdict, _ := Gate(r, nil, false)
	require.NotEqual(t, RunFail, verdict, "nothing failed in the real run")

	r.Run.Interrupted = true // nothing failed until the interruption
	assert.Equal(t, RunError, r.Verdict())
	assert.Contains(t, Headline(r), "interrupted")
	verdict, why := Gate(r, nil, false)
	assert.Equal(t, RunError, verdict)
	assert.Contains(t, why, "interrupted")
	d := CompareBaseline(realRun(t), r)
	verdict, _ = Gate(r, &d, true)
	assert.Equal(t, RunError, verdict, "--fail-on new does not let an interrupted run pass")
}

func TestFailOnNewStillCountsLostCoverage(t *testing.T) {
	prev := realRun(t)
	for i := range prev.Checks {
		prev.Checks[i].Verdict = Pass
	}
	cur := otherRun(t, realRun(t))
	for i := range cur.Checks {
		cur.Checks[i].Verdict = Pass
	}
	cur.Checks[0].Verdict, cur.Checks[0].Reason = Skipped, "not evaluated"
	d := CompareBaseline(prev, cur)
	verdict, why := Gate(cur, &d, true)
	assert.Equal(t, RunIncomplete, verdict, "pass -> not evaluated is not forgiven by --fail-on new: %s", why)
	cur.Checks[0].Verdict = Unproven
	d = CompareBaseline(prev, cur)
	verdict, _ = Gate(cur, &d, true)
	assert.Equal(t, RunIncomplete, verdict, "pass -> unproven neither")
}

func TestBaselineDiffShowsRunVerdictsAndUnprovenAsCoverage(t *testing.T) {
	// The baseline ran RBAC-002 too, and it passed there; in the rounds
	// run it is unproven.
	prev, cur := realRun(t), roundsRun(t)
	was := *findCheck(t, cur, "RBAC-002")
	was.Verdict, was.Reason = Pass, ""
	prev.Checks = append(prev.Checks, was)
	d := CompareBaseline(prev, cur)
	assert.Equal(t, RunFail, d.Verdict)
	assert.Equal(t, RunPass, d.PreviousVerdict)
	assert.Equal(t, []string{"NET-001", "NET-002"}, ids(d.NewFailures))
	assert.Equal(t, []string{"RBAC-002"}, ids(d.Coverage), "pass -> unproven is lost coverage, not a failure")
	assert.Equal(t, []string{"RBAC-001"}, ids(d.Added))
	md := d.Markdown()
	assert.Contains(t, md, "❌ Run rnd3x: **FAIL** (baseline xd1m0: PASS).")
	assert.Contains(t, md, "| RBAC-002 | Tenants cannot change cluster-scoped resources or read what the reference policy denies | pass | unproven | 14 of 14 tested paths unproven")
	txt := d.Text()
	assert.True(t, strings.HasPrefix(txt, "baseline xd1m0 -> rnd3x: FAIL (baseline PASS); 2 new failures"), txt)
	assert.Contains(t, txt, "coverage      RBAC-002 Tenants cannot change cluster-scoped resources or read what the reference policy denies: pass -> unproven")

	skipped := otherRun(t, realRun(t))
	findCheck(t, skipped, "NET-005").Verdict = Skipped
	d = CompareBaseline(realRun(t), skipped)
	assert.Equal(t, RunIncomplete, d.Verdict)
	assert.Contains(t, d.Markdown(), "❔ Run n3w1d: **INCOMPLETE** (baseline xd1m0: PASS).")
	assert.Contains(t, d.Text(), "coverage      NET-005 DNS resolution works from tenant pods: pass -> not evaluated")
}

// A path that leaks in several rounds is one new failing path.
func TestBaselineNewlyFailingPathsAreCountedOncePerPath(t *testing.T) {
	prev := roundsRun(t)
	cur := roundsRun(t)
	c := findCheck(t, cur, "NET-001")
	for i := range c.Observations {
		o := &c.Observations[i]
		if o.Role == RoleTest && o.Actor.Pod == "probe-1" && o.Target.Namespace == "bh-rnd3x-b" && o.Target.Name == "probe-0" && o.Method == "udp/pod-ip" && o.Round >= 2 {
			o.Observed, o.OK, o.Status = "reachable", false, StatusFail
		}
	}
	d := CompareBaseline(prev, cur)
	require.Equal(t, []string{"NET-001"}, ids(d.Regressed))
	assert.Equal(t, []string{"bh-rnd3x-a/probe-1 -> bh-rnd3x-b/probe-0 udp/pod-ip: reachable (want blocked, round 2)"}, d.Regressed[0].NewlyFailing)
}
