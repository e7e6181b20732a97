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

// Cell is one probed pair.
type Cell struct {
	Expected string
	Observed string
	OK       bool
	Role     Role
}

// Mismatches counts the cells that did not match.
func (t TruthTable) Mismatches() int {
	n := 0
	for _, row := range t.Cells {
		for _, c := range row {
			if !c.OK {
				n++
			}
		}
	}
	return n
}

// TruthTables groups observations by method into grids, in first-seen
// method order. Observations without an actor pod or target (API checks)
// produce no table.
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
		t.Cells[row][col] = Cell{Expected: o.Expected, Observed: o.Observed, OK: o.OK, Role: o.Role}
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

// Text renders the table for plain-text reports (JUnit system-out, logs).
// A cell shows the observed outcome; a cell that contradicts the
// expectation is marked "!" (and "?" for a failed positive control).
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
	fmt.Fprintf(&b, "%-*s", width+2, t.Method)
	for _, c := range t.Cols {
		fmt.Fprintf(&b, "%-*s", colw+2, c)
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "%-*s", width+2, r)
		for _, c := range t.Cols {
			cell, ok := t.Cells[r][c]
			s := "-"
			if ok {
				s = cell.Observed
				if !cell.OK {
					s = "!" + s
					if cell.Role == RoleControl {
						s = "?" + cell.Observed
					}
				}
			}
			fmt.Fprintf(&b, "%-*s", colw+2, s)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TruthTableLegend explains the marks of Text.
const TruthTableLegend = `cells: observed outcome; "!" = contradicts the expectation (a leak or a broken path); "?" = a positive control that failed; "-" = not probed`
