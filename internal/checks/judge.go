package checks

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Judgement is a check's verdict and its observations, each judged.
type Judgement struct {
	Verdict      reports.Verdict
	Reason       string
	Observations []reports.Observation
}

// maxListed bounds how many observations a reason names.
const maxListed = 8

// Judge computes a verdict from an outcome. Observations are judged first:
//   - a control passes when it worked (OK), else it fails;
//   - a test that contradicts its expectation fails: a leak, observed
//     directly, needs no proof;
//   - a test that matched (blocked, denied) passes only when it is proven:
//     every key in its Needs is Proven by a passing control of the same
//     round. A test without Needs is proven by the check's controls as a
//     whole (all of them passed, at least one was observed), or needs no
//     proof when the check says why it has no control (NoControl);
//   - a check may mark a test not applicable (the identity may not try) or
//     unproven (an inconclusive probe) itself; the judge keeps that.
//
// A path probed in rounds is proven when one round proved it and no round
// failed it: its other, unproven rounds are named in the reason but do not
// make the check unproven.
//
// Then the check: an error is Error, a skip Skipped, nothing observed
// Error; any failed test is Fail; else any unproven test or anything the
// check could not evaluate is Unproven; else, when every test was not
// applicable, Skipped (nobody could try); else Pass. A failed control never
// fails a check by itself: it makes the tests resting on it unproven.
func Judge(c Check, out Outcome) Judgement {
	switch {
	case out.Err != nil:
		return Judgement{Verdict: reports.Error, Reason: out.Err.Error(), Observations: out.Observations}
	case out.Skip != "":
		return Judgement{Verdict: reports.Skipped, Reason: out.Skip, Observations: out.Observations}
	case len(out.Observations) == 0:
		return Judgement{Verdict: reports.Error, Reason: "no observations: nothing was tried"}
	}
	obs := judgeObservations(c, out.Observations)
	coveredRound := reports.CoveredByOtherRounds(obs)
	var failed, unproven, covered, applicable, tests, badControls []reports.Observation
	var notApplicable []string
	for i, o := range obs {
		if o.Role == reports.RoleControl {
			if o.Status == reports.StatusFail {
				badControls = append(badControls, o)
			}
			continue
		}
		tests = append(tests, o)
		switch o.Status {
		case reports.StatusFail:
			failed = append(failed, o)
		case reports.StatusUnproven:
			if coveredRound[i] {
				covered = append(covered, o)
				break
			}
			unproven = append(unproven, o)
		case reports.StatusNotApplicable:
			if !slices.Contains(notApplicable, o.Why) {
				notApplicable = append(notApplicable, o.Why)
			}
			continue
		}
		applicable = append(applicable, o)
	}
	j := Judgement{Observations: obs}
	var parts []string
	if len(failed) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d tested paths not as expected: %s", len(failed), len(applicable), Describe(failed)))
	}
	if len(unproven) > 0 {
		p := fmt.Sprintf("%d of %d tested paths unproven: %s", len(unproven), len(applicable), Describe(unproven))
		if len(badControls) > 0 {
			p += fmt.Sprintf("; failed positive controls (%d): %s", len(badControls), Describe(badControls))
		}
		parts = append(parts, p)
	}
	if len(out.NotEvaluated) > 0 {
		parts = append(parts, "not evaluated: "+strings.Join(out.NotEvaluated, "; "))
	}
	if len(covered) > 0 {
		parts = append(parts, fmt.Sprintf("%d round results unproven whose paths another round proved (and no round contradicted): %s", len(covered), Describe(covered)))
	}
	switch {
	case len(tests) == 0:
		j.Verdict, j.Reason = reports.Skipped, "only positive controls were observed: nothing was tested"
		return j
	case len(failed) > 0:
		j.Verdict = reports.Fail
	case len(unproven) > 0 || len(out.NotEvaluated) > 0:
		j.Verdict = reports.Unproven
	case len(applicable) == 0:
		j.Verdict = reports.Skipped
		parts = append(parts, "not evaluated: no identity may try: "+strings.Join(notApplicable, "; "))
	default:
		j.Verdict = reports.Pass
	}
	j.Reason = strings.Join(parts, "; ")
	return j
}

// judgeObservations returns a copy of obs with every Status set.
func judgeObservations(c Check, obs []reports.Observation) []reports.Observation {
	out := slices.Clone(obs)
	proofs := provenKeys(out)
	controls, controlsOK := 0, 0
	for i := range out {
		o := &out[i]
		if o.Role != reports.RoleControl {
			continue
		}
		controls++
		if o.OK {
			o.Status = reports.StatusPass
			controlsOK++
		} else {
			o.Status = reports.StatusFail
		}
	}
	for i := range out {
		o := &out[i]
		if o.Role == reports.RoleControl {
			continue
		}
		switch {
		case o.Status == reports.StatusNotApplicable || o.Status == reports.StatusUnproven:
			// set by the check: not applicable, or inconclusive
		case !o.OK:
			o.Status = reports.StatusFail
		case len(o.Needs) > 0:
			var missing []string
			for _, k := range o.Needs {
				if !proofs[o.Round][k] {
					missing = append(missing, k)
				}
			}
			if len(missing) == 0 {
				o.Status = reports.StatusPass
				break
			}
			o.Status = reports.StatusUnproven
			o.Why = "not shown" + roundWords(o.Round) + ": " + strings.Join(missing, "; ")
		case c.NoControl != "":
			o.Status = reports.StatusPass
		case controls == 0:
			o.Status, o.Why = reports.StatusUnproven, "no positive control was observed"
		case controlsOK < controls:
			o.Status, o.Why = reports.StatusUnproven, fmt.Sprintf("%d of %d positive controls failed", controls-controlsOK, controls)
		default:
			o.Status = reports.StatusPass
		}
	}
	return out
}

// provenKeys returns proofs[round][key]: true when a passing (OK) control
// of that round proves key.
func provenKeys(obs []reports.Observation) map[int]map[string]bool {
	proofs := map[int]map[string]bool{}
	for _, o := range obs {
		if o.Role != reports.RoleControl || !o.OK {
			continue
		}
		if proofs[o.Round] == nil {
			proofs[o.Round] = map[string]bool{}
		}
		for _, k := range o.Proves {
			proofs[o.Round][k] = true
		}
	}
	return proofs
}

// ProofNote says, before judging, how much of a check's per-path proof is
// in place: how many blocked or denied tests with Needs had every key shown
// by a passing control of their own round, and which keys were not shown,
// in which rounds. Areas that give tests Needs add it to their notes, so a
// reader sees what the controls proved without reading every observation.
// It returns "" when no test has Needs.
func ProofNote(obs []reports.Observation) string {
	proofs := provenKeys(obs)
	total, proven := 0, 0
	missing := map[string][]int{}
	var order []string
	for _, o := range obs {
		if o.Role != reports.RoleTest || !o.OK || len(o.Needs) == 0 || o.Status != "" {
			continue
		}
		total++
		ok := true
		for _, k := range o.Needs {
			if proofs[o.Round][k] {
				continue
			}
			ok = false
			if _, seen := missing[k]; !seen {
				order = append(order, k)
			}
			if rs := missing[k]; !slices.Contains(rs, o.Round) {
				missing[k] = append(rs, o.Round)
			}
		}
		if ok {
			proven++
		}
	}
	if total == 0 {
		return ""
	}
	facts := 0
	for _, keys := range proofs {
		facts += len(keys)
	}
	s := fmt.Sprintf("per-path proof: %d of %d blocked observations shown by a positive control of their own round (%d facts proven over %d rounds)",
		proven, total, facts, len(proofs))
	if len(order) == 0 {
		return s
	}
	var parts []string
	for i, k := range order {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(order)-maxListed))
			break
		}
		rs := missing[k]
		slices.Sort(rs)
		words := make([]string, len(rs))
		for j, r := range rs {
			words[j] = fmt.Sprint(r)
		}
		r := "round"
		if len(rs) > 1 {
			r = "rounds"
		}
		parts = append(parts, fmt.Sprintf("%s (%s %s)", k, r, strings.Join(words, ", ")))
	}
	return s + "; not shown: " + strings.Join(parts, "; ")
}

func roundWords(round int) string {
	if round == 0 {
		return ""
	}
	return fmt.Sprintf(" in round %d", round)
}

// Describe names observations compactly: "a/probe-0 -> b/probe-1 tcp/pod-ip: reachable (want blocked)".
func Describe(obs []reports.Observation) string {
	var b strings.Builder
	for i, o := range obs {
		if i == maxListed {
			fmt.Fprintf(&b, "; and %d more", len(obs)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(DescribeOne(o))
	}
	return b.String()
}

// DescribeOne names one observation, with the round and, for an unproven
// one, what was not shown.
func DescribeOne(o reports.Observation) string {
	from := o.Actor.Identity
	if o.Actor.Pod != "" {
		from = o.Actor.Namespace + "/" + o.Actor.Pod
		if o.Actor.Identity != "" { // a request from inside a pod: as whom
			from += " as " + o.Actor.Identity
		}
	}
	to := o.Target.Address
	if o.Target.Name != "" {
		to = o.Target.Namespace + "/" + o.Target.Name
	}
	s := fmt.Sprintf("%s -> %s %s: %s (want %s", from, to, o.Method, o.Observed, o.Expected)
	if o.Round > 0 {
		s += fmt.Sprintf(", round %d", o.Round)
	}
	s += ")"
	if o.Why != "" && (o.Status == reports.StatusUnproven || o.Status == reports.StatusNotApplicable) {
		s += " [" + string(o.Status) + ": " + o.Why + "]"
	}
	return s
}
