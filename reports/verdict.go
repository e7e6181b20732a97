package reports

import "fmt"

// The verdict ladder. An observation is judged first (ObservationStatus),
// a check's verdict follows from its observations (Verdict), and the run's
// verdict from its checks (RunVerdict). No writer computes its own: every
// report reads these, so none can soften a failure.

// Verdict is a check's result.
type Verdict string

const (
	// Pass: every tested path or request matched its expectation and each
	// blocked or denied one was proven (its positive control worked in the
	// same round).
	Pass Verdict = "pass"
	// Fail: at least one tested path or request contradicts the
	// expectation: a leak, observed directly, which needs no proof.
	Fail Verdict = "fail"
	// Unproven: nothing leaked, but part of what the check covers was not
	// proven (a control did not work, a probe was inconclusive, a tenant had
	// no identity that may try). Reason names what is missing. Not a pass.
	Unproven Verdict = "unproven"
	// Error: the check could not run (setup failed, the API server refused
	// the check's own requests, ...). The cluster was not judged.
	Error Verdict = "error"
	// Skipped: the check was not evaluated (no subject in this run, or the
	// run never reached it); Reason says why. Shown as "not evaluated".
	Skipped Verdict = "skipped"
	// Waived: failed, but active waivers cover every leak and every tested
	// path was proven. A waiver never covers a control.
	Waived Verdict = "waived"
)

// Word is the verdict as reports print it.
func (v Verdict) Word() string {
	if v == Skipped {
		return "not evaluated"
	}
	return string(v)
}

// Role says whether an observation tests the isolation or proves the test path works.
type Role string

const (
	// RoleTest observations are what the check is about (usually: this must be blocked).
	RoleTest Role = "test"
	// RoleControl observations are positive controls: the same path where it
	// must work. Without them a "blocked" result could mean "nothing works".
	RoleControl Role = "control"
)

// ObservationStatus is the judged state of one observation.
type ObservationStatus string

const (
	// StatusPass: as expected, and (for a blocked or denied test) proven.
	StatusPass ObservationStatus = "pass"
	// StatusFail: not as expected. For a test this is a leak; for a control
	// it makes the tests resting on it unproven.
	StatusFail ObservationStatus = "fail"
	// StatusUnproven: a test that matched its expectation without its proof,
	// or whose result was inconclusive (Why says which).
	StatusUnproven ObservationStatus = "unproven"
	// StatusNotApplicable: the identity may not try this (RBAC forbids it),
	// so it neither passes nor fails; Why names the missing right.
	StatusNotApplicable ObservationStatus = "not-applicable"
)

// Passed reports whether o is judged pass; observations judged before the
// status existed (results files of older runs) fall back to OK.
func (o Observation) Passed() bool {
	if o.Status == "" {
		return o.OK
	}
	return o.Status == StatusPass
}

// Failed reports whether o contradicts its expectation (a leak for a test,
// a broken control).
func (o Observation) Failed() bool {
	if o.Status == "" {
		return !o.OK
	}
	return o.Status == StatusFail
}

// Judged is o's status; observations judged before the status existed
// fall back to pass or fail by OK.
func (o Observation) Judged() ObservationStatus {
	switch {
	case o.Status != "":
		return o.Status
	case o.OK:
		return StatusPass
	}
	return StatusFail
}

// Leak reports whether o is a failed test: what a waiver may cover.
func (o Observation) Leak() bool { return o.Role == RoleTest && o.Failed() }

// RunVerdict is the verdict of a whole run.
type RunVerdict string

const (
	// RunPass: every selected check passed or was waived.
	RunPass RunVerdict = "PASS"
	// RunFail: at least one check failed (a leak was observed).
	RunFail RunVerdict = "FAIL"
	// RunIncomplete: nothing failed, but some selected check was not
	// evaluated or not proven: the run does not show the cluster isolates.
	RunIncomplete RunVerdict = "INCOMPLETE"
	// RunError: nothing failed, but a check could not run or the run was
	// interrupted.
	RunError RunVerdict = "ERROR"
)

// Exit codes of `bulkhead run` and `bulkhead report`, one per run verdict.
const (
	ExitPass       = 0
	ExitFail       = 1
	ExitError      = 2 // also: bulkhead could not run at all
	ExitIncomplete = 3
)

// ExitCode is the exit status for v.
func (v RunVerdict) ExitCode() int {
	switch v {
	case RunPass:
		return ExitPass
	case RunFail:
		return ExitFail
	case RunIncomplete:
		return ExitIncomplete
	}
	return ExitError
}

// Summary counts verdicts.
type Summary struct {
	Total, Pass, Fail, Unproven, Error, Skipped, Waived int
	// Interrupted: the run stopped before every selected check had run.
	Interrupted bool
}

// Summarize counts the verdicts of results.
func (r *Results) Summarize() Summary {
	s := Summary{Interrupted: r.Run.Interrupted}
	for _, c := range r.Checks {
		s.Total++
		switch c.Verdict {
		case Pass:
			s.Pass++
		case Fail:
			s.Fail++
		case Unproven:
			s.Unproven++
		case Error:
			s.Error++
		case Skipped:
			s.Skipped++
		case Waived:
			s.Waived++
		}
	}
	return s
}

// Verdict is the run's verdict: FAIL when a check failed; else ERROR when
// a check could not run or the run was interrupted; else INCOMPLETE when a
// selected check was not evaluated or not proven (or nothing was checked);
// else PASS.
func (s Summary) Verdict() RunVerdict {
	switch {
	case s.Fail > 0:
		return RunFail
	case s.Error > 0 || s.Interrupted:
		return RunError
	case s.Skipped > 0 || s.Unproven > 0 || s.Pass+s.Waived == 0:
		return RunIncomplete
	}
	return RunPass
}

// Meaning says in a sentence what the run verdict of s means, for the
// headline of a report.
func (s Summary) Meaning() string {
	switch s.Verdict() {
	case RunPass:
		return "every selected check passed or was waived, each blocked path and denied request proven by a positive control"
	case RunFail:
		return fmt.Sprintf("%d %s failed: isolation was broken, observed directly", s.Fail, checkWord(s.Fail))
	case RunError:
		if s.Interrupted {
			return "the run was interrupted: what did not run was not judged, so the run cannot pass"
		}
		return fmt.Sprintf("nothing failed, but %d %s could not run: the cluster was not fully judged", s.Error, checkWord(s.Error))
	}
	if s.Pass+s.Waived+s.Unproven+s.Skipped == 0 {
		return "nothing was checked"
	}
	return fmt.Sprintf("nothing failed, but %d %s not proven and %d not evaluated: this run does not show that the cluster keeps tenants apart",
		s.Unproven, plural(s.Unproven, "check was", "checks were"), s.Skipped)
}

func checkWord(n int) string { return plural(n, "check", "checks") }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Verdict is the run's verdict (see Summary.Verdict).
func (r *Results) Verdict() RunVerdict { return r.Summarize().Verdict() }
