package reports

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A cell sums up a pair's rounds: the worst status shows, with the rounds
// it was seen in.
func TestTruthTableCellsAreTheWorstOfTheirRounds(t *testing.T) {
	r := roundsRun(t)
	leak := tableOf(t, findCheck(t, r, "NET-001").Observations, "tcp/cluster-ip")
	c := leak.Cells["bh-rnd3x-a/probe-0"]["bh-rnd3x-b/probe-1"]
	assert.Equal(t, StatusFail, c.Status)
	assert.Equal(t, "reachable", c.Observed, "the leaking round's outcome, not the first round's timeout")
	assert.Equal(t, 3, c.Rounds)
	assert.Equal(t, []int{3}, c.WorstRounds)
	assert.Equal(t, "!reachable 1/3", c.Mark())
	assert.Equal(t, 1, leak.Mismatches())
	blocked := leak.Cells["bh-rnd3x-a/probe-0"]["bh-rnd3x-b/probe-0"]
	assert.Equal(t, StatusPass, blocked.Status)
	assert.Equal(t, "timeout", blocked.Mark(), "a pass in every round needs no round count")

	unproven := tableOf(t, findCheck(t, r, "NET-003").Observations, "tcp/pod-ip")
	u := unproven.Cells["bh-rnd3x-a/probe-0"]["bh-rnd3x-control/probe-0"]
	assert.Equal(t, StatusUnproven, u.Status)
	assert.Equal(t, "~timeout 1/3", u.Mark())
	assert.Equal(t, "not shown in round 2: bh-rnd3x-control/probe-0 answers tcp/pod-ip", u.Why)
	assert.Equal(t, 1, unproven.Mismatches(), "the failed control below")
	assert.Positive(t, unproven.Unproven())
	// The control that would have proven it failed (the exec into
	// control/probe-1 failed in round 2).
	ctl := unproven.Cells["bh-rnd3x-control/probe-1"]["bh-rnd3x-control/probe-0"]
	assert.Equal(t, RoleControl, ctl.Role)
	assert.Equal(t, "?not probed 1/3", ctl.Mark())

	txt := unproven.Text()
	assert.Contains(t, txt, "~timeout 1/3")
	assert.Contains(t, txt, "?not probed 1/3")
	for _, mark := range []string{`"~" = unproven`, `"n/a" = the identity may not try`, `"k/n" = in k of n rounds`} {
		assert.Contains(t, TruthTableLegend, mark)
	}
}

func TestTruthTableWorstStatusWinsWhateverTheOrder(t *testing.T) {
	o := func(round int, st ObservationStatus, observed string) Observation {
		return Observation{Role: RoleTest, Actor: Actor{Namespace: "a", Pod: "p"}, Target: Target{Namespace: "b", Name: "q"},
			Method: "tcp/pod-ip", Expected: "blocked", Observed: observed, OK: st != StatusFail, Status: st, Round: round, Why: string(st) + " why"}
	}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}} {
		all := []Observation{o(1, StatusPass, "timeout"), o(2, StatusUnproven, "timeout"), o(3, StatusFail, "reachable"), o(4, StatusNotApplicable, "may not")}
		var obs []Observation
		for _, i := range order {
			obs = append(obs, all[i])
		}
		c := tableOf(t, obs, "tcp/pod-ip").Cells["a/p"]["b/q"]
		assert.Equal(t, StatusFail, c.Status, "order %v", order)
		assert.Equal(t, []int{3}, c.WorstRounds)
		assert.Equal(t, "!reachable 1/4", c.Mark())
	}
	c := tableOf(t, []Observation{o(1, StatusPass, "timeout"), o(2, StatusUnproven, "timeout"), o(3, StatusUnproven, "refused")}, "tcp/pod-ip").Cells["a/p"]["b/q"]
	assert.Equal(t, StatusUnproven, c.Status)
	assert.Equal(t, []int{2, 3}, c.WorstRounds)
	assert.Equal(t, "~timeout 2/3", c.Mark())
	assert.Equal(t, "unproven why", c.Why)
	na := tableOf(t, []Observation{o(0, StatusNotApplicable, "may not (RBAC)")}, "tcp/pod-ip").Cells["a/p"]["b/q"]
	assert.Equal(t, "n/a", na.Mark())
	assert.Empty(t, na.InRounds(), "tried once")
}

// Results of older runs carry no status: OK decides, as before.
func TestTruthTableOfUnjudgedObservations(t *testing.T) {
	tables := TruthTables(sample().Checks[1].Observations)
	require.Len(t, tables, 1)
	assert.Equal(t, 1, tables[0].Mismatches())
	assert.True(t, strings.Contains(tables[0].Text(), "!reachable"))
}

func TestHTMLTruthTableCells(t *testing.T) {
	r := roundsRun(t)
	tb := tableOf(t, findCheck(t, r, "NET-003").Observations, "tcp/pod-ip")
	u := htmlCell("a", "c", tb.Cells["bh-rnd3x-a/probe-0"]["bh-rnd3x-control/probe-0"])
	assert.Equal(t, tableCell{Text: "~ timeout 1/3", Class: "unproven",
		Title: "a -> c (test): expected blocked, observed timeout; unproven in 1 of 3 rounds (round 2): not shown in round 2: bh-rnd3x-control/probe-0 answers tcp/pod-ip"}, u)
	ctl := htmlCell("a", "c", tb.Cells["bh-rnd3x-control/probe-1"]["bh-rnd3x-control/probe-0"])
	assert.Equal(t, "badctl", ctl.Class)
	assert.Equal(t, "? not probed 1/3", ctl.Text)
	ok := htmlCell("a", "c", tb.Cells["bh-rnd3x-a/probe-0"]["bh-rnd3x-control/probe-1"])
	assert.Equal(t, "ok", ok.Class)
	assert.Contains(t, ok.Title, "pass in all 3 rounds")
	na := htmlCell("a", "c", Cell{Observed: "may not (RBAC)", Role: RoleTest, Status: StatusNotApplicable, Rounds: 1, Why: "may not list secrets"})
	assert.Equal(t, tableCell{Text: "n/a", Class: "na", Title: "a -> c (test): expected , observed may not (RBAC); not-applicable: may not list secrets"}, na)
}
