package reports

// pathKey names one path (or request) across rounds: who tried what, how.
type pathKey struct {
	actor  Actor
	target Target
	method string
}

func pathOf(o Observation) pathKey {
	return pathKey{actor: o.Actor, target: o.Target, method: o.Method}
}

// CoveredByOtherRounds says, for each observation, whether it is a test
// unproven in its round whose path another round proved (passed) and no
// round failed. Such a round is no gap: the path was shown blocked with its
// proof, and every counted round could have shown a leak; it stays
// unproven in the evidence, but neither the check's verdict nor a JUnit
// pair rests on it. A path that failed in any round is a failure whatever
// its other rounds say. Observations of checks that try once (Round 0)
// are never covered.
func CoveredByOtherRounds(obs []Observation) []bool {
	proven, failed := map[pathKey]bool{}, map[pathKey]bool{}
	for _, o := range obs {
		if o.Role == RoleControl || o.Round == 0 {
			continue
		}
		switch o.Status {
		case StatusPass:
			proven[pathOf(o)] = true
		case StatusFail:
			failed[pathOf(o)] = true
		}
	}
	out := make([]bool, len(obs))
	for i, o := range obs {
		k := pathOf(o)
		out[i] = o.Role != RoleControl && o.Round > 0 && o.Status == StatusUnproven && proven[k] && !failed[k]
	}
	return out
}
