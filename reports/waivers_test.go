package reports

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var waiverNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func parseWaivers(t *testing.T, doc string) *Waivers {
	t.Helper()
	ws, err := ParseWaivers("waivers.yaml", []byte(doc))
	require.NoError(t, err)
	return ws
}

func TestWaiverActiveCoversFailure(t *testing.T) {
	r := brokenRun(t)
	ws := parseWaivers(t, `
waivers:
- check: NET-001
  justification: "known: a reaches b through the shared cache, ticket SEC-1"
  expires: 2026-12-31
`)
	out, err := ApplyWaivers(r, ws, testCatalogue(t), waiverNow)
	require.NoError(t, err)
	c := findCheck(t, out, "NET-001")
	assert.Equal(t, Waived, c.Verdict)
	require.NotNil(t, c.Waiver)
	assert.Equal(t, "known: a reaches b through the shared cache, ticket SEC-1", c.Waiver.Justification)
	assert.Equal(t, "2026-12-31", c.Waiver.Expires.Format(time.DateOnly))
	assert.Equal(t, "waivers.yaml:3", c.Waiver.Source)
	assert.False(t, c.Waiver.Expired)
	assert.Equal(t, findCheck(t, r, "NET-001").Reason, c.Reason, "the failure stays on record")
	assert.Contains(t, c.Notes[len(c.Notes)-1], "until 2026-12-31")
	// Pure: the input is untouched.
	assert.Equal(t, Fail, findCheck(t, r, "NET-001").Verdict)
	assert.Nil(t, findCheck(t, r, "NET-001").Waiver)
	s := out.Summarize()
	assert.Equal(t, 1, s.Waived)
	assert.Equal(t, 0, s.Fail)
	// The waiver holds through its expiry day, not after.
	out, err = ApplyWaivers(r, ws, testCatalogue(t), time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC))
	require.NoError(t, err)
	assert.Equal(t, Waived, findCheck(t, out, "NET-001").Verdict)
}

func TestWaiverExpiredStaysFailing(t *testing.T) {
	r := brokenRun(t)
	ws := parseWaivers(t, "waivers:\n- check: NET-001\n  justification: temporary\n  expires: 2026-11-30\n")
	out, err := ApplyWaivers(r, ws, testCatalogue(t), waiverNow)
	require.NoError(t, err)
	c := findCheck(t, out, "NET-001")
	assert.Equal(t, Fail, c.Verdict)
	assert.Contains(t, c.Reason, "waiver waivers.yaml:2 expired on 2026-11-30")
	assert.Contains(t, c.Reason, findCheck(t, r, "NET-001").Reason)
	require.NotNil(t, c.Waiver)
	assert.True(t, c.Waiver.Expired)
	assert.NotEqual(t, RunPass, out.Summarize().Verdict())
}

func TestWaiverNamespaceScope(t *testing.T) {
	r := brokenRun(t)
	nsA, nsB := r.Run.Tenants[0].Namespaces[0], r.Run.Tenants[1].Namespaces[0]
	// The leaks go from a to b: a waiver scoped to b covers them (target) ...
	out, err := ApplyWaivers(r, parseWaivers(t, "waivers:\n- check: NET-001\n  namespace: "+nsB+"\n  justification: j\n  expires: 2027-01-01\n"), testCatalogue(t), waiverNow)
	require.NoError(t, err)
	c := findCheck(t, out, "NET-001")
	assert.Equal(t, Waived, c.Verdict)
	assert.Equal(t, nsB, c.Waiver.Namespace)
	// ... so does one scoped to a (actor) ...
	out, err = ApplyWaivers(r, parseWaivers(t, "waivers:\n- check: NET-001\n  namespace: "+nsA+"\n  justification: j\n  expires: 2027-01-01\n"), testCatalogue(t), waiverNow)
	require.NoError(t, err)
	assert.Equal(t, Waived, findCheck(t, out, "NET-001").Verdict)
	// ... one scoped to another namespace does not.
	out, err = ApplyWaivers(r, parseWaivers(t, "waivers:\n- check: NET-001\n  namespace: elsewhere\n  justification: j\n  expires: 2027-01-01\n"), testCatalogue(t), waiverNow)
	require.NoError(t, err)
	c = findCheck(t, out, "NET-001")
	assert.Equal(t, Fail, c.Verdict)
	assert.Nil(t, c.Waiver)
	assert.Contains(t, c.Notes[len(c.Notes)-1], "active waivers cover 0 of 2 leaks")
}

func TestWaiverPartialCoverage(t *testing.T) {
	r := brokenRun(t)
	// One leak is in b, the other one is made to target the control namespace.
	c := findCheck(t, r, "NET-001")
	n := 0
	for i := range c.Observations {
		if !c.Observations[i].OK {
			n++
			if n == 2 {
				c.Observations[i].Target.Namespace = r.Run.Tenants[2].Namespaces[0]
				c.Observations[i].Actor.Namespace = "somewhere"
			}
		}
	}
	out, err := ApplyWaivers(r, parseWaivers(t, "waivers:\n- check: NET-001\n  namespace: "+r.Run.Tenants[1].Namespaces[0]+"\n  justification: j\n  expires: 2027-01-01\n"), testCatalogue(t), waiverNow)
	require.NoError(t, err)
	got := findCheck(t, out, "NET-001")
	assert.Equal(t, Fail, got.Verdict, "a waiver must cover every leak")
	assert.Contains(t, got.Notes[len(got.Notes)-1], "cover 1 of 2")
}

func TestWaiverDoesNotWaiveErrorsOrPasses(t *testing.T) {
	r := brokenRun(t)
	ws := parseWaivers(t, "waivers:\n- check: NET-003\n  justification: j\n  expires: 2027-01-01\n- check: NET-004\n  justification: j\n  expires: 2027-01-01\n")
	out, err := ApplyWaivers(r, ws, testCatalogue(t), waiverNow)
	require.NoError(t, err)
	assert.Equal(t, Error, findCheck(t, out, "NET-003").Verdict)
	n3 := findCheck(t, out, "NET-003").Notes
	assert.Contains(t, n3[len(n3)-1], "not applied")
	assert.Equal(t, Pass, findCheck(t, out, "NET-004").Verdict)
	n4 := findCheck(t, out, "NET-004").Notes
	assert.Contains(t, n4[len(n4)-1], "not needed")
}

// A waiver covers leaks, never a failed or missing positive control: a
// check that failed for want of a control stays failed, even under a
// waiver without a namespace.
func TestWaiverNeverCoversAControl(t *testing.T) {
	r := realRun(t)
	c := findCheck(t, r, "NET-002")
	failFirstControl(t, c)
	c.Verdict, c.Reason = Fail, "a positive control failed, so blocked results prove nothing"
	for _, doc := range []string{
		"waivers:\n- check: NET-002\n  justification: j\n  expires: 2027-01-01\n",
		"waivers:\n- check: NET-002\n  namespace: " + r.Run.Tenants[0].Namespaces[0] + "\n  justification: j\n  expires: 2027-01-01\n",
	} {
		out, err := ApplyWaivers(r, parseWaivers(t, doc), testCatalogue(t), waiverNow)
		require.NoError(t, err)
		got := findCheck(t, out, "NET-002")
		assert.Equal(t, Fail, got.Verdict)
		assert.Nil(t, got.Waiver)
		assert.Contains(t, got.Notes[len(got.Notes)-1], "not applied: the check failed without a leak (a failed or missing positive control)")
	}
}

// Results of older runs carry no status, so which tests a failed control
// left unproven is not recorded: waiving their leaks leaves the check
// unproven, not waived.
func TestWaiverOverLeaksAndAFailedControlOfAnOlderRun(t *testing.T) {
	r := brokenRun(t)
	c := findCheck(t, r, "NET-001")
	failFirstControl(t, c)
	out, err := ApplyWaivers(r, parseWaivers(t, "waivers:\n- check: NET-001\n  justification: j\n  expires: 2027-01-01\n"), testCatalogue(t), waiverNow)
	require.NoError(t, err)
	got := findCheck(t, out, "NET-001")
	assert.Equal(t, Unproven, got.Verdict)
	assert.Contains(t, got.Reason, "2 leaks waived (until 2027-01-01), but not proven: failed positive controls (1)")
}

// The engine's run: NET-001 failed by a leak alone, NET-002 by a leak with
// round-2 gaps that rounds 1 and 3 cover; here one of those paths is made
// unproven in every round, so NET-002 has a path unproven besides its leak.
// RBAC-002 is unproven (its positive controls failed).
func TestWaiversOnAJudgedRun(t *testing.T) {
	r := roundsRun(t)
	n2obs := findCheck(t, r, "NET-002").Observations
	for i := range n2obs {
		o := &n2obs[i]
		if o.Role == RoleTest && o.Actor.Pod == "probe-1" && o.Actor.Namespace == "bh-rnd3x-control" &&
			o.Target.Namespace == "bh-rnd3x-a" && o.Target.Name == "probe-0" && o.Method == "tcp/pod-ip" && o.Round != 2 {
			o.Status, o.Why = StatusUnproven, "not shown in round "+strconv.Itoa(o.Round)+": bh-rnd3x-a/probe-0 answers tcp/pod-ip"
		}
	}
	nsB := r.Run.Tenants[1].Namespaces[0]
	ws := parseWaivers(t, `
waivers:
- check: NET-001
  namespace: `+nsB+`
  justification: "a -> b over the cache Service is approved, ticket SEC-9"
  expires: 2027-01-31
- check: NET-002
  justification: "control namespace is being retired, ticket SEC-10"
  expires: 2027-01-31
- check: RBAC-002
  justification: "trying to waive missing proof"
  expires: 2027-01-31
`)
	out, err := ApplyWaivers(r, ws, testCatalogue(t), waiverNow)
	require.NoError(t, err)
	// A leak, and everything else proven: waived.
	n1 := findCheck(t, out, "NET-001")
	assert.Equal(t, Waived, n1.Verdict)
	assert.Equal(t, findCheck(t, r, "NET-001").Reason, n1.Reason, "the leak stays on record")
	// A leak waived, unproven paths left: unproven, saying both.
	n2 := findCheck(t, out, "NET-002")
	assert.Equal(t, Unproven, n2.Verdict)
	require.NotNil(t, n2.Waiver)
	assert.Equal(t, "waivers.yaml:7", n2.Waiver.Source)
	assert.Contains(t, n2.Reason, "1 leaks waived (until 2027-01-31), but not proven: 3 of 144 tested paths unproven: ")
	assert.Contains(t, n2.Reason, "bh-rnd3x-control/probe-1 -> bh-rnd3x-a/probe-0 tcp/pod-ip: not probed (want blocked, round 2) [unproven: inconclusive: not probed]")
	assert.NotContains(t, n2.Reason, "tcp/cluster-ip: not probed", "round 2's gaps that rounds 1 and 3 cover are not missing proof")
	assert.Contains(t, n2.Notes[len(n2.Notes)-1], "waived by the waiver waivers.yaml:7 until 2027-01-31")
	// An unproven check is not waived.
	n3 := findCheck(t, out, "RBAC-002")
	assert.Equal(t, Unproven, n3.Verdict)
	assert.Nil(t, n3.Waiver)
	assert.Equal(t, findCheck(t, r, "RBAC-002").Reason, n3.Reason)
	assert.Contains(t, n3.Notes[len(n3.Notes)-1], "not applied: the check is unproven, and a waiver covers leaks, never missing proof")
	// Every leak waived, and still not a pass.
	s := out.Summarize()
	assert.Equal(t, Summary{Total: 7, Pass: 4, Unproven: 2, Waived: 1}, s)
	assert.Equal(t, RunIncomplete, s.Verdict())
	// Expired, the same waivers leave the leaks failing.
	late, err := ApplyWaivers(r, ws, testCatalogue(t), time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	assert.Equal(t, Fail, findCheck(t, late, "NET-002").Verdict)
	assert.Contains(t, findCheck(t, late, "NET-002").Reason, "waiver waivers.yaml:7 expired on 2027-01-31")
	assert.Equal(t, RunFail, late.Verdict())
}

func TestWaiverUnknownCheck(t *testing.T) {
	ws := parseWaivers(t, "waivers:\n- check: NET-999\n  justification: typo\n  expires: 2027-01-01\n")
	_, err := ApplyWaivers(realRun(t), ws, testCatalogue(t), waiverNow)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `waivers.yaml:2:10: waivers[0].check: unknown check "NET-999"`)
	assert.Contains(t, err.Error(), "NET-001")
}

func TestMalformedWaiverFiles(t *testing.T) {
	cases := map[string]struct{ doc, want string }{
		"bad YAML":              {"waivers:\n- check: NET-001\n  justification: [unclosed\n", "waivers.yaml:3: not valid YAML: did not find expected ',' or ']'"},
		"missing justification": {"waivers:\n- check: NET-001\n  expires: 2027-01-01\n", "waivers.yaml:2:3: waivers[0].justification: waiver for NET-001: missing justification"},
		"blank justification":   {"waivers:\n- check: NET-001\n  justification: '  '\n  expires: 2027-01-01\n", "waivers.yaml:3:18: waivers[0].justification: waiver for NET-001: missing justification"},
		"missing expiry":        {"waivers:\n- check: NET-001\n  justification: j\n", "waivers.yaml:2:3: waivers[0].expires: waiver for NET-001: missing expires"},
		"bad date":              {"waivers:\n- check: NET-001\n  justification: j\n  expires: 31.12.2026\n", `waivers.yaml:4:12: waivers[0].expires: waiver for NET-001: expires "31.12.2026" is not a date`},
		"impossible date":       {"waivers:\n- check: NET-001\n  justification: j\n  expires: 2026-02-30\n", `waivers.yaml:4:12: waivers[0].expires: waiver for NET-001: expires "2026-02-30" is not a date`},
		"unknown field":         {"waivers:\n- check: NET-001\n  justification: j\n  expires: 2027-01-01\n  approver: bob\n", `waivers.yaml:5:3: waivers[0].approver: unknown field "approver" (want one of check, namespace, justification, expires)`},
		"unknown top level":     {"waiver:\n- check: NET-001\n", `waivers.yaml:1:1: waiver: unknown field "waiver" (want one of waivers)`},
		"missing check":         {"waivers:\n- justification: j\n  expires: 2027-01-01\n", "waivers.yaml:2:3: waivers[0].check: waiver without a check ID"},
		"not a list":            {"waivers: NET-001\n", `waivers.yaml:1:10: waivers: NET-001 is a string where a list is expected`},
		"item not a mapping":    {"waivers:\n- NET-001\n", "waivers.yaml:2:3: waivers[0]: NET-001 is a string where a mapping is expected"},
		"nested value":          {"waivers:\n- check: [NET-001]\n  justification: j\n  expires: 2027-01-01\n", "waivers.yaml:2:10: waivers[0].check: a list where a check ID is expected"},
		"number namespace":      {"waivers:\n- check: NET-001\n  namespace: 0123\n  justification: j\n  expires: 2027-01-01\n", `waivers.yaml:3:14: waivers[0].namespace: 0123 is a number where a namespace name is expected; quote it ("0123")`},
		"null namespace":        {"waivers:\n- check: NET-001\n  namespace: null\n  justification: j\n  expires: 2027-01-01\n", `waivers.yaml:3:14: waivers[0].namespace: null is null where a namespace name is expected; quote it ("null")`},
		"boolean justification": {"waivers:\n- check: NET-001\n  justification: true\n  expires: 2027-01-01\n", `waivers.yaml:3:18: waivers[0].justification: true is a boolean where a justification is expected; quote it ("true")`},
		"number expiry":         {"waivers:\n- check: NET-001\n  justification: j\n  expires: 20271231\n", `waivers.yaml:4:12: waivers[0].expires: 20271231 is a number where a date (YYYY-MM-DD) or RFC 3339 time is expected`},
		"field twice":           {"waivers:\n- check: NET-001\n  check: NET-002\n", `waivers.yaml:3:3: waivers[0]: "check" is given twice (first on line 2)`},
		"empty file":            {"", "waivers.yaml: the file is empty"},
		"duplicate":             {"waivers:\n- check: NET-001\n  justification: j\n  expires: 2027-01-01\n- check: NET-001\n  justification: k\n  expires: 2027-02-01\n", "waivers.yaml:5:3: waivers[1]: waiver for NET-001 duplicates waivers.yaml:2"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWaivers("waivers.yaml", []byte(tc.doc))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestWaiverNamespacesYAML11WouldMisread(t *testing.T) {
	ws := parseWaivers(t, "waivers:\n- {check: NET-001, namespace: y, justification: j, expires: 2027-01-01}\n- {check: NET-001, namespace: on, justification: yes, expires: 2027-01-01}\n- {check: NET-001, namespace: \"0123\", justification: j, expires: \"2027-01-01\"}\n")
	require.Len(t, ws.Items, 3)
	assert.Equal(t, []string{"y", "on", "0123"}, []string{ws.Items[0].Namespace, ws.Items[1].Namespace, ws.Items[2].Namespace})
	assert.Equal(t, "yes", ws.Items[1].Justification)
	assert.Equal(t, "waivers.yaml:4", ws.Items[2].Source)
	assert.True(t, ws.Items[2].DateOnly)
}

func TestLoadWaiversFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "waivers.yaml")
	require.NoError(t, os.WriteFile(path, []byte("waivers:\n- check: NET-001\n  justification: j\n  expires: 2026-12-31T18:00:00+01:00\n"), 0o644))
	ws, err := LoadWaivers(path)
	require.NoError(t, err)
	require.Len(t, ws.Items, 1)
	w := ws.Items[0]
	assert.False(t, w.DateOnly)
	assert.True(t, w.ActiveAt(time.Date(2026, 12, 31, 16, 59, 0, 0, time.UTC)))
	assert.False(t, w.ActiveAt(time.Date(2026, 12, 31, 17, 0, 0, 0, time.UTC)))
	_, err = LoadWaivers(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorContains(t, err, "read waivers")
	empty, err := ParseWaivers("w.yaml", []byte("waivers:\n"))
	require.NoError(t, err)
	assert.Empty(t, empty.Items)
}

func TestWaiverLeavesWhatWasNotEvaluated(t *testing.T) {
	r := brokenRun(t)
	for i := range r.Checks {
		if r.Checks[i].ID == "NET-001" {
			r.Checks[i].NotEvaluated = []string{"tenant c in c-web: no identity may create pods"}
		}
	}
	ws := parseWaivers(t, `
waivers:
- check: NET-001
  justification: "known leak, ticket SEC-1"
  expires: 2026-12-31
`)
	out, err := ApplyWaivers(r, ws, testCatalogue(t), waiverNow)
	require.NoError(t, err)
	c := findCheck(t, out, "NET-001")
	assert.Equal(t, Unproven, c.Verdict, "the leaks are waived, but part of the check was never evaluated")
	assert.Contains(t, c.Reason, "not evaluated: tenant c")
}
