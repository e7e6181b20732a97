package checks

import (
	"context"
	"errors"
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
		{"nothing works fails: control broken", blocked, Outcome{Observations: []reports.Observation{obs(reports.RoleTest, true), obs(reports.RoleControl, false)}}, reports.Fail, "positive control failed (1 of 1)"},
		{"blocked without any control fails", blocked, Outcome{Observations: []reports.Observation{obs(reports.RoleTest, true)}}, reports.Fail, "no positive control"},
		{"positive check needs no control", positive, Outcome{Observations: []reports.Observation{obs(reports.RoleTest, true)}}, reports.Pass, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, reason := Judge(c.check, c.out)
			assert.Equal(t, c.verdict, v)
			if c.reason == "" {
				assert.Empty(t, reason)
			} else {
				assert.Contains(t, reason, c.reason)
			}
		})
	}
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
	r.Register(Check{ID: "NET-002", Area: Network, Title: "t", Run: run}, Check{ID: "NET-001", Area: Network, Title: "t", Run: run},
		Check{ID: "META-001", Area: Metadata, Title: "t", Run: run})
	ids := []string{}
	for _, c := range r.All() {
		ids = append(ids, c.ID)
	}
	assert.Equal(t, []string{"META-001", "NET-001", "NET-002"}, ids)
	assert.Len(t, r.InArea(Network), 2)
	assert.Panics(t, func() { r.Register(Check{ID: "NET-001", Area: Network, Title: "t", Run: run}) })
	assert.Panics(t, func() { r.Register(Check{ID: "X", Area: Network, Title: "t"}) }, "a check without Run is incomplete")
}

func TestMemoComputesOnceAndForgets(t *testing.T) {
	env := &Env{}
	calls := 0
	f := func() (int, error) { calls++; return calls, nil }
	v1, _ := Memo(env, "k", f)
	v2, _ := Memo(env, "k", f)
	assert.Equal(t, 1, v1)
	assert.Equal(t, 1, v2)
	env.Forget("k")
	v3, _ := Memo(env, "k", f)
	assert.Equal(t, 2, v3)
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
	c := Check{ID: "X-1", Title: "t", Area: Network, Proves: "p"}
	res := NotRun(c, "not run: the run was interrupted before this check")
	assert.Equal(t, reports.Skipped, res.Verdict)
	assert.Equal(t, "not run: the run was interrupted before this check", res.Reason)
	assert.Equal(t, []string{"X-1", "t", "network", "p"}, []string{res.ID, res.Title, res.Area, res.Proves})
	assert.NotNil(t, res.Observations, "results.json gets [] rather than null")
}
