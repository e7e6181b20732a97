package reports

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// UpdateGolden rewrites the golden files and generated fixtures in
// testdata/ (go test ./reports/ -update); review the diff before
// committing. Exported for the external tests of package reports_test.
var UpdateGolden = flag.Bool("update", false, "rewrite the golden files and fixtures in testdata/")

// realRunFile is results.json of a real run on the kind + Cilium dev
// cluster (every network check passed; SCTP not evaluated).
const realRunFile = "testdata/results-xd1m0.json"

func testCatalogue(t *testing.T) Catalogue {
	t.Helper()
	cat, err := DefaultCatalogue()
	require.NoError(t, err)
	return cat
}

func realRun(t *testing.T) *Results {
	t.Helper()
	r, err := ReadJSON(realRunFile)
	require.NoError(t, err)
	require.NotEmpty(t, r.Checks)
	return r
}

func findCheck(t *testing.T, r *Results, id string) *CheckResult {
	t.Helper()
	for i := range r.Checks {
		if r.Checks[i].ID == id {
			return &r.Checks[i]
		}
	}
	t.Fatalf("no check %s in run %s", id, r.Run.ID)
	return nil
}

// brokenRun is the real run with faults: two NET-001 paths from tenant a
// to tenant b leaked, NET-005 was skipped, NET-003 could not run.
func brokenRun(t *testing.T) *Results {
	t.Helper()
	r := realRun(t)
	net1 := findCheck(t, r, "NET-001")
	leaked := 0
	for i := range net1.Observations {
		o := &net1.Observations[i]
		if o.Role == RoleTest && o.Actor.Tenant == "a" && o.Target.Tenant == "b" && leaked < 2 {
			o.Observed, o.OK, o.Detail = "reachable", false, "answered by "+o.Target.Namespace+"/"+o.Target.Name
			leaked++
		}
	}
	require.Equal(t, 2, leaked)
	net1.Verdict = Fail
	net1.Reason = "2 of 48 tested paths not as expected: a leaked to b"
	net5 := findCheck(t, r, "NET-005")
	net5.Verdict, net5.Reason, net5.Observations = Skipped, "no DNS service found in kube-system", []Observation{}
	net3 := findCheck(t, r, "NET-003")
	net3.Verdict, net3.Reason, net3.Observations = Error, "exec probe-0: <script>alert(1)</script> connection refused", []Observation{}
	return r
}

// waivedRun is brokenRun with the NET-001 leak waived.
func waivedRun(t *testing.T) *Results {
	t.Helper()
	r := brokenRun(t)
	ws, err := ParseWaivers("waivers.yaml", []byte("waivers:\n- check: NET-001\n  namespace: "+r.Run.Tenants[1].Namespaces[0]+"\n  justification: shared cache, ticket SEC-1\n  expires: 2027-01-31\n"))
	require.NoError(t, err)
	out, err := ApplyWaivers(r, ws, testCatalogue(t), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, Waived, findCheck(t, out, "NET-001").Verdict)
	return out
}

// interruptedRun is the real run stopped by Ctrl-C during NET-003: the
// checks before it passed, NET-003 was cut short, the rest never ran.
func interruptedRun(t *testing.T) *Results {
	t.Helper()
	r := realRun(t)
	r.Run.Interrupted = true
	reached := false
	for i := range r.Checks {
		c := &r.Checks[i]
		switch {
		case c.ID == "NET-003":
			reached = true
			c.Verdict, c.Reason = Error, "the run was interrupted while this check ran (context canceled): its observations are incomplete and were not judged"
		case reached:
			c.Verdict, c.Reason, c.Observations = Skipped, "not run: the run was interrupted before this check", []Observation{}
		default:
			require.Equal(t, Pass, c.Verdict, c.ID)
		}
	}
	require.True(t, reached)
	return r
}

// roundsFixtureFile is the engine-made run of rounds_fixture_test.go:
// NET-001 failed (a leak in round 3), NET-002 failed (a leak in round 2
// and paths unproven in round 2, covered by rounds 1 and 3), NET-003
// (round-2 gaps covered likewise), NET-004, NET-005 and RBAC-001 passed
// (RBAC-001 with not-applicable ServiceAccounts), RBAC-002 unproven (its
// positive controls as bulkhead:positive-control failed).
const roundsFixtureFile = "testdata/results-rounds.json"

func roundsRun(t *testing.T) *Results {
	t.Helper()
	r, err := ReadJSON(roundsFixtureFile)
	require.NoError(t, err)
	require.Len(t, r.Checks, 7)
	return r
}

func tableOf(t *testing.T, obs []Observation, method string) TruthTable {
	t.Helper()
	for _, tb := range TruthTables(obs) {
		if tb.Method == method {
			return tb
		}
	}
	t.Fatalf("no truth table for %s", method)
	return TruthTable{}
}

// failFirstControl makes c's first positive control fail, as an older
// run recorded it (no status).
func failFirstControl(t *testing.T, c *CheckResult) {
	t.Helper()
	for i := range c.Observations {
		if c.Observations[i].Role == RoleControl {
			c.Observations[i].OK, c.Observations[i].Observed = false, "timeout"
			return
		}
	}
	t.Fatalf("%s has no positive control", c.ID)
}

// incompleteRun is the engine's rounds run with the leaks of NET-001 and
// NET-002 waived (their round-2 gaps covered by rounds 1 and 3): nothing
// failed, one check unproven (RBAC-002): INCOMPLETE.
func incompleteRun(t *testing.T) *Results {
	t.Helper()
	ws := parseWaivers(t, "waivers:\n- check: NET-001\n  justification: j\n  expires: 2027-01-31\n- check: NET-002\n  justification: j\n  expires: 2027-01-31\n")
	out, err := ApplyWaivers(roundsRun(t), ws, testCatalogue(t), waiverNow)
	require.NoError(t, err)
	require.Equal(t, RunIncomplete, out.Verdict())
	return out
}
