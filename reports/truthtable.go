package reports

import (
	"fmt"
	"slices"
	"strings"
)

// TruthTable is the expected/observed grid of one method (e.g. "tcp/pod-ip"):
// rows are actors, columns are targets. It is derived from observations, so
// every report can show it without the cluster.
type TruthTable struct {
	Method string
	Rows   []string
	Cols   []string
	// Cells is keyed by row then column; absent pairs were not probed.
	Cells map[string]map[string]Cell
}

// Cell is one probed pair, over every round it was probed in: it shows
// the worst of them (fail, then unproven, then not applicable, then pass)
// and says in how many rounds that was.
type Cell struct {
	Expected string
	// Observed and OK are the first worst round's.
	Observed string
	OK       bool
	Role     Role
	// Status is the worst status over the cell's rounds.
	Status ObservationStatus
	// Rounds is how many observations the cell sums up (one per round);
	// WorstRounds the rounds (0: a check that tries once) that had Status.
	Rounds      int
	WorstRounds []int
	// Why is the first worst observation's (unproven, not applicable).
	Why string
}

// statusRank orders statuses from best to worst.
func statusRank(s ObservationStatus) int {
	switch s {
	case StatusFail:
		return 3
	case StatusUnproven:
		return 2
	case StatusNotApplicable:
		return 1
	}
	return 0
}

// add sums o up into the cell.
func (c *Cell) add(o Observation) {
	st := o.Judged()
	c.Rounds++
	switch {
	case c.Rounds == 1 || statusRank(st) > statusRank(c.Status):
		*c = Cell{Expected: o.Expected, Observed: o.Observed, OK: o.OK, Role: o.Role, Status: st,
			Rounds: c.Rounds, WorstRounds: []int{o.Round}, Why: o.Why}
	case st == c.Status:
		c.WorstRounds = append(c.WorstRounds, o.Round)
	}
}

// InRounds says in how many of its rounds the cell had its status
// ("1/3"), or "" when it was probed once.
func (c Cell) InRounds() string {
	if c.Rounds <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d", len(c.WorstRounds), c.Rounds)
}

// Mark is the cell as the plain-text table shows it: the observed outcome,
// "!" before it for a failed test (a leak or a broken path), "?" for a
// failed positive control, "~" for an unproven one, "n/a" when the
// identity may not try; then, for all but a pass, in how many rounds.
func (c Cell) Mark() string {
	s := c.Observed
	switch c.Status {
	case StatusFail:
		if c.Role == RoleControl {
			s = "?" + s
		} else {
			s = "!" + s
		}
	case StatusUnproven:
		s = "~" + s
	case StatusNotApplicable:
		s = "n/a"
	}
	if r := c.InRounds(); r != "" && c.Status != StatusPass {
		s += " " + r
	}
	return s
}

// Mismatches counts the cells that failed in some round.
func (t TruthTable) Mismatches() int { return t.count(StatusFail) }

// Unproven counts the cells unproven in some round (and failed in none).
func (t TruthTable) Unproven() int { return t.count(StatusUnproven) }

func (t TruthTable) count(s ObservationStatus) int {
	n := 0
	for _, row := range t.Cells {
		for _, c := range row {
			if c.Status == s {
				n++
			}
		}
	}
	return n
}

// TruthTables groups observations by method into grids, in first-seen
// method order; a cell sums up a pair's rounds (see Cell). Observations
// without an actor pod or target (API checks) produce no table.
func TruthTables(obs []Observation) []TruthTable {
	var order []string
	tables := map[string]*TruthTable{}
	for _, o := range obs {
		row := actorKey(o.Actor)
		col := targetKey(o.Target)
		if row == "" || col == "" {
			continue
		}
		t, ok := tables[o.Method]
		if !ok {
			t = &TruthTable{Method: o.Method, Cells: map[string]map[string]Cell{}}
			tables[o.Method] = t
			order = append(order, o.Method)
		}
		if !slices.Contains(t.Rows, row) {
			t.Rows = append(t.Rows, row)
		}
		if !slices.Contains(t.Cols, col) {
			t.Cols = append(t.Cols, col)
		}
		if t.Cells[row] == nil {
			t.Cells[row] = map[string]Cell{}
		}
		c := t.Cells[row][col]
		c.add(o)
		t.Cells[row][col] = c
	}
	out := make([]TruthTable, 0, len(order))
	for _, m := range order {
		t := tables[m]
		slices.Sort(t.Rows)
		slices.Sort(t.Cols)
		out = append(out, *t)
	}
	return out
}

func actorKey(a Actor) string {
	if a.Pod == "" {
		return a.Identity
	}
	return a.Namespace + "/" + a.Pod
}

func targetKey(t Target) string {
	if t.Name == "" {
		return t.Address
	}
	return t.Namespace + "/" + t.Name
}

// Text renders the table for plain-text reports (JUnit system-out, logs),
// a cell as Cell.Mark shows it.
func (t TruthTable) Text() string {
	var b strings.Builder
	width := len(t.Method)
	for _, r := range t.Rows {
		width = max(width, len(r))
	}
	colw := 8
	for _, c := range t.Cols {
		colw = max(colw, len(c))
	}
	mark := func(r, c string) string {
		if cell, ok := t.Cells[r][c]; ok {
			return cell.Mark()
		}
		return "-"
	}
	for _, r := range t.Rows {
		for _, c := range t.Cols {
			colw = max(colw, len(mark(r, c)))
		}
	}
	fmt.Fprintf(&b, "%-*s", width+2, t.Method)
	for _, c := range t.Cols {
		fmt.Fprintf(&b, "%-*s", colw+2, c)
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "%-*s", width+2, r)
		for _, c := range t.Cols {
			fmt.Fprintf(&b, "%-*s", colw+2, mark(r, c))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TruthTableLegend explains the marks of Text.
const TruthTableLegend = `cells: observed outcome, the worst of the pair's rounds (fail, then unproven, then pass); "!" = contradicts the expectation (a leak or a broken path); "?" = a positive control that failed; "~" = unproven (as expected, but what proves it was not shown in that round, or the probe was inconclusive); "n/a" = the identity may not try; "k/n" = in k of n rounds; "-" = not probed`
