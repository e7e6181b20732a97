package checks

import (
	"fmt"
	"slices"
)

// Lane is a queue of checks. Checks in one lane run one after another, in
// selection order; a run executes its lanes side by side. Most of a probe
// round is waiting (a blocked connection costs its whole timeout), and the
// API checks spend their time on access reviews and requests: running the
// two apart would make a run the sum of both instead of the longer.
type Lane string

const (
	// LaneAPI is the default: checks that act through the API server as
	// the tenants, and may create objects in tenant namespaces (quota fills,
	// the API sweep's canaries). They run one at a time, because each
	// counts on what the others leave alone.
	LaneAPI Lane = ""
	// The probe lanes hold checks that only probe from the run's probe
	// pods, one lane per engine (each its own probe rounds). They create
	// nothing in tenant namespaces (Lanes refuses one that declares
	// otherwise), so nothing an API check counts changes under them, and
	// what they measure (connections between probe pods, to the metadata
	// addresses, to the nodes) depends on nothing an API check creates.
	LaneNetwork  Lane = "network"
	LaneMetadata Lane = "metadata"
	LaneNodes    Lane = "nodes"
)

// Lanes splits cs by lane, keeping each lane in cs's order (the API lane
// first). A check outside the API lane that declares objects in tenant
// namespaces is an error: it could change what an API check counts.
func Lanes(cs []Check) ([][]Check, error) {
	var order []Lane
	by := map[Lane][]Check{}
	for _, c := range cs {
		if c.Lane != LaneAPI && slices.ContainsFunc(c.Creates, func(f Footprint) bool { return f.Where == TenantNamespaces }) {
			return nil, fmt.Errorf("check %s runs in lane %q but creates objects in tenant namespaces: it belongs in the API lane", c.ID, c.Lane)
		}
		if _, ok := by[c.Lane]; !ok {
			order = append(order, c.Lane)
		}
		by[c.Lane] = append(by[c.Lane], c)
	}
	slices.SortStableFunc(order, func(a, b Lane) int {
		switch {
		case a == b:
			return 0
		case a == LaneAPI:
			return -1
		case b == LaneAPI:
			return 1
		}
		return 0
	})
	out := make([][]Check, 0, len(order))
	for _, l := range order {
		out = append(out, by[l])
	}
	return out, nil
}
