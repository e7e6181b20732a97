package checks

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

func obs(role reports.Role, ok bool) reports.Observation {
	return reports.Observation{Role: role, OK: ok, Method: "tcp/pod-ip", Expected: "blocked", Observed: "timeout",
		Actor: reports.Actor{Namespace: "a", Pod: "p0"}, Target: reports.Target{Namespace: "b", Name: "p1"}}
}

func TestJudge(t *testing.T) {
	blocked := Check{ID: "X-1"}
	positive := Check{ID: "X-2", NoControl: "the observations are the positive case"}
	cases := []struct {
		name    string
		check   Check
		out     Outcome
		verdict reports.Verdict
		reason  string
	}{
		{"error wins", blocked, Outcome{Err: errors.New("boom"), Observations: []reports.Observation{obs(reports.RoleTest, true)}}, reports.Error, "boom"},
		{"skip", blocked, Outcome{Skip: "not here"}, reports.Skipped, "not here"},
		{"nothing tried is an error, not a pass", blocked, Outcome{}, reports.Error, "no observations"},
		{"all blocked and control works", blocked, Outcome{Observations: []reports.Observation{obs(reports.RoleTest, true), obs(reports.RoleControl, true)}}, reports.Pass, ""},
		{"a leak fails", blocked, Outcome{Observations: []reports.Observation{obs(reports.RoleTest, false), obs(reports.RoleControl, true)}}, reports.Fail, "1 of 1 tested paths not as expected: a/p0 -> b/p1 tcp/pod-ip"},
		{"a broken control leaves the blocked paths unproven, not failed", blocked, Outcome{Observations: []reports.Observation{obs(reports.RoleTest, true), obs(reports.RoleControl, false)}}, reports.Unproven, "1 of 1 positive controls failed"},
		{"blocked without any control is unproven", blocked, Outcome{Observations: []reports.Observation{obs(reports.RoleTest, true)}}, reports.Unproven, "no positive control"},
		{"a leak fails even without a control", blocked, Outcome{Observations: []reports.Observation{obs(reports.RoleTest, false)}}, reports.Fail, "not as expected"},
		{"something not evaluated is not a pass", blocked, Outcome{NotEvaluated: []string{"tenant b: no identity may create services"},
			Observations: []reports.Observation{obs(reports.RoleTest, true), obs(reports.RoleControl, true)}}, reports.Unproven, "not evaluated: tenant b"},
		{"only controls: nothing tested", blocked, Outcome{Observations: []reports.Observation{obs(reports.RoleControl, true)}}, reports.Skipped, "nothing was tested"},
		{"positive check needs no control", positive, Outcome{Observations: []reports.Observation{obs(reports.RoleTest, true)}}, reports.Pass, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := Judge(c.check, c.out)
			v, reason := j.Verdict, j.Reason
			assert.Equal(t, c.verdict, v)
			if c.reason == "" {
				assert.Empty(t, reason)
			} else {
				assert.Contains(t, reason, c.reason)
			}
		})
	}
}

// path builds a test observation that needs keys, or a control that proves
// them, in a round.
func path(role reports.Role, ok bool, round int, keys ...string) reports.Observation {
	o := obs(role, ok)
	o.Round = round
	if role == reports.RoleTest {
		o.Needs = keys
		if len(keys) > 0 {
			o.Target.Name = keys[0] // one path per first key, across rounds
		}
	} else {
		o.Proves = keys
	}
	return o
}

func TestJudgeProvesEachPathInItsRound(t *testing.T) {
	c := Check{ID: "X-1"}
	j := Judge(c, Outcome{Observations: []reports.Observation{
		path(reports.RoleTest, true, 1, "b/p1 answers", "a/p0 sends"),
		path(reports.RoleTest, true, 2, "b/p1 answers", "a/p0 sends"),
		path(reports.RoleTest, true, 1, "b/p2 answers", "a/p0 sends"),
		path(reports.RoleControl, true, 1, "b/p1 answers"),
		path(reports.RoleControl, true, 1, "a/p0 sends"),
		// b/p1 answered only in round 1; b/p2 never: its control failed
		path(reports.RoleControl, true, 2, "a/p0 sends"),
		path(reports.RoleControl, false, 1, "b/p2 answers"),
	}})
	assert.Equal(t, reports.Unproven, j.Verdict)
	st := func(i int) reports.ObservationStatus { return j.Observations[i].Status }
	assert.Equal(t, reports.StatusPass, st(0), "proven in its own round")
	assert.Equal(t, reports.StatusUnproven, st(1), "a proof from another round does not count")
	assert.Contains(t, j.Observations[1].Why, "not shown in round 2: b/p1 answers")
	assert.Equal(t, reports.StatusUnproven, st(2), "its control failed: unproven, not failed")
	assert.Equal(t, reports.StatusFail, st(6))
	assert.Contains(t, j.Reason, "1 of 3 tested paths unproven", "b/p1's path is proven in round 1, b/p2's in none")
	assert.Contains(t, j.Reason, "1 round results unproven whose paths another round proved")
	assert.Contains(t, j.Reason, "failed positive controls (1)")
	assert.NotContains(t, j.Reason, "not as expected", "nothing leaked")

	j = Judge(c, Outcome{Observations: []reports.Observation{
		path(reports.RoleTest, true, 1, "b/p1 answers"), path(reports.RoleControl, true, 1, "b/p1 answers"),
		path(reports.RoleTest, false, 1, "b/p2 answers"),
	}})
	assert.Equal(t, reports.Fail, j.Verdict, "a leak needs no proof")
	assert.Equal(t, reports.StatusFail, j.Observations[2].Status)
}

func TestJudgeAPathProvenInOneRoundIsProven(t *testing.T) {
	c := Check{ID: "X-1"}
	flaky := []reports.Observation{
		// b/p1's path: proven in rounds 1 and 3; in round 2 b/p1 did not
		// answer (a DNS flake, a busy node).
		path(reports.RoleTest, true, 1, "b/p1 answers"), path(reports.RoleControl, true, 1, "b/p1 answers"),
		path(reports.RoleTest, true, 2, "b/p1 answers"), path(reports.RoleControl, false, 2, "b/p1 answers"),
		path(reports.RoleTest, true, 3, "b/p1 answers"), path(reports.RoleControl, true, 3, "b/p1 answers"),
	}
	j := Judge(c, Outcome{Observations: flaky})
	assert.Equal(t, reports.Pass, j.Verdict, j.Reason)
	assert.Equal(t, reports.StatusUnproven, j.Observations[2].Status, "the round itself stays unproven in the evidence")
	assert.Contains(t, j.Reason, "1 round results unproven whose paths another round proved")

	// The same path leaking in round 3 fails, whatever round 1 proved.
	leak := slices.Clone(flaky)
	leak[4] = path(reports.RoleTest, false, 3, "b/p1 answers")
	assert.Equal(t, reports.Fail, Judge(c, Outcome{Observations: leak}).Verdict)

	// Proven in no round: unproven.
	none := []reports.Observation{
		path(reports.RoleTest, true, 1, "b/p1 answers"), path(reports.RoleControl, false, 1, "b/p1 answers"),
		path(reports.RoleTest, true, 2, "b/p1 answers"), path(reports.RoleControl, false, 2, "b/p1 answers"),
	}
	assert.Equal(t, reports.Unproven, Judge(c, Outcome{Observations: none}).Verdict)
}

func TestProofNoteSaysWhatTheControlsProved(t *testing.T) {
	obs := []reports.Observation{
		path(reports.RoleTest, true, 1, "b/p1 answers", "a/p0 sends"),
		path(reports.RoleTest, true, 2, "b/p1 answers", "a/p0 sends"),
		path(reports.RoleTest, true, 3, "b/p1 answers", "a/p0 sends"),
		path(reports.RoleTest, false, 2, "b/p2 answers"), // a leak: no proof to count
		path(reports.RoleControl, true, 1, "b/p1 answers", "a/p0 sends"),
		path(reports.RoleControl, true, 2, "a/p0 sends"),
		path(reports.RoleControl, false, 3, "b/p1 answers", "a/p0 sends"),
	}
	assert.Equal(t, "per-path proof: 1 of 3 blocked observations shown by a positive control of their own round (3 facts proven over 2 rounds); not shown: b/p1 answers (rounds 2, 3); a/p0 sends (round 3)",
		ProofNote(obs))
	assert.Empty(t, ProofNote([]reports.Observation{obs[3], obs[4]}), "no blocked test with Needs: nothing to say")
}

func TestJudgeNotApplicable(t *testing.T) {
	c := Check{ID: "X-1"}
	na := obs(reports.RoleTest, false)
	na.Status, na.Why = reports.StatusNotApplicable, "serviceaccount b/ci may not create services in b (RBAC)"
	j := Judge(c, Outcome{Observations: []reports.Observation{na, obs(reports.RoleTest, true), obs(reports.RoleControl, true)}})
	assert.Equal(t, reports.Pass, j.Verdict, "an identity that may not try neither passes nor fails: %s", j.Reason)
	assert.Equal(t, reports.StatusNotApplicable, j.Observations[0].Status)

	j = Judge(c, Outcome{Observations: []reports.Observation{na, obs(reports.RoleControl, true)}})
	assert.Equal(t, reports.Skipped, j.Verdict, "nobody could try: not evaluated")
	assert.Contains(t, j.Reason, "may not create services")
}

func TestDescribeBoundsTheList(t *testing.T) {
	var many []reports.Observation
	for range 12 {
		many = append(many, obs(reports.RoleTest, false))
	}
	assert.Contains(t, Describe(many), "and 4 more")
}

func TestRegistryRejectsDuplicatesAndOrders(t *testing.T) {
	run := func(context.Context, *Env) Outcome { return Outcome{} }
	var r Registry
	r.Register(Check{ID: "NET-002", Area: Network, Run: run}, Check{ID: "NET-001", Area: Network, Run: run},
		Check{ID: "META-001", Area: Metadata, Run: run})
	ids := []string{}
	for _, c := range r.All() {
		ids = append(ids, c.ID)
	}
	assert.Equal(t, []string{"META-001", "NET-001", "NET-002"}, ids)
	assert.Panics(t, func() { r.Register(Check{ID: "NET-001", Area: Network, Run: run}) })
	assert.Panics(t, func() { r.Register(Check{ID: "X", Area: Network}) }, "a check without Run is incomplete")
	assert.Panics(t, func() { r.Register(Check{ID: "NET-999", Area: Network, Run: run}) }, "a check without a catalogue entry has no words")
}

func TestMemoComputesOncePerEnv(t *testing.T) {
	env := &Env{}
	calls := 0
	f := func() (int, error) { calls++; return calls, nil }
	v1, _ := Memo(env, "k", f)
	v2, _ := Memo(env, "k", f)
	assert.Equal(t, 1, v1)
	assert.Equal(t, 1, v2)
	v3, _ := Memo(env.Derive(), "k", f)
	assert.Equal(t, 2, v3, "a derived env probes afresh")
}

func TestFlowAllowed(t *testing.T) {
	top := Topology{Tenants: []Tenant{
		{Name: "a", Isolated: true, AllowedTo: []string{"shared"}},
		{Name: "b", Isolated: true},
		{Name: "shared", Isolated: true},
		{Name: "control"},
		{Name: "control2"},
	}}
	assert.True(t, top.FlowAllowed("a", "a"))
	assert.False(t, top.FlowAllowed("a", "b"))
	assert.False(t, top.FlowAllowed("b", "a"))
	assert.True(t, top.FlowAllowed("a", "shared"), "declared flows are allowed")
	assert.False(t, top.FlowAllowed("shared", "a"), "flows are directional")
	assert.False(t, top.FlowAllowed("a", "control"))
	assert.False(t, top.FlowAllowed("control", "a"))
	assert.True(t, top.FlowAllowed("control", "control2"), "unprotected namespaces talk")
	assert.False(t, top.FlowAllowed("a", "nobody"))
}

func TestExecuteDoesNotJudgeAnInterruptedCheck(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := Check{ID: "X-1", Run: func(ctx context.Context, _ *Env) Outcome {
		// The interruption arrives mid-check; the probes cut short look blocked.
		cancel()
		return Outcome{Observations: []reports.Observation{obs(reports.RoleTest, true), obs(reports.RoleControl, true)}}
	}}
	res := Execute(ctx, c, nil)
	assert.Equal(t, reports.Error, res.Verdict, "a check cut short must not pass")
	assert.Contains(t, res.Reason, "interrupted")
	assert.Len(t, res.Observations, 2, "the evidence gathered so far is kept")

	res = Execute(context.Background(), c, nil)
	assert.Equal(t, reports.Pass, res.Verdict, "the same outcome, not interrupted, passes")
}

func TestNotRunIsSkippedWithItsReason(t *testing.T) {
	c := Check{ID: "NET-001", Area: Network}
	res := NotRun(c, "not run: the run was interrupted before this check")
	assert.Equal(t, reports.Skipped, res.Verdict)
	assert.Equal(t, "not run: the run was interrupted before this check", res.Reason)
	assert.Equal(t, []string{"NET-001", "Cross-tenant traffic is blocked in both directions", "network"}, []string{res.ID, res.Title, res.Area})
	assert.Contains(t, res.Proves, "No pod of one tenant", "the words come from the control catalogue")
	assert.NotNil(t, res.Observations, "results.json gets [] rather than null")
}
