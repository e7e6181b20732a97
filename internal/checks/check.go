// Package checks defines what a bulkhead check is, how its verdict follows
// from its observations, and the registry of all checks. Check
// implementations live in sub-packages by area; both front ends (the e2e
// suites and the bulkhead CLI) run them through Execute.
package checks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Area groups checks; it is also the e2e-framework label "area".
type Area string

const (
	Network     Area = "network"
	Metadata    Area = "metadata"
	Quota       Area = "quota"
	RBAC        Area = "rbac"
	Secrets     Area = "secrets"
	PodSecurity Area = "podsecurity"
)

// Check is one isolation property bulkhead proves by trying it.
// A check never prints, never fails a test, never writes a report: it returns
// observations, and Execute turns them into a verdict.
type Check struct {
	// ID is stable across releases; reports, waivers and baselines key on it.
	ID    string
	Area  Area
	Title string
	// Proves is one sentence: what holds when this check passes.
	Proves string
	// Slow marks a check that costs more than a probe round or a handful of
	// API calls; the "quick" profile leaves it out.
	Slow bool
	// NoControl explains why the check has no positive control, for the rare
	// check whose observations are themselves the positive case (e.g. "same
	// tenant traffic works"). Empty means a passing control is required.
	NoControl string
	// Creates declares what the check puts into the cluster (footprint.go).
	Creates []Footprint
	// Run tries the property against the cluster described by env.
	Run func(ctx context.Context, env *Env) Outcome
}

// Outcome is what a check's Run returns.
type Outcome struct {
	Observations []reports.Observation
	// Notes are facts about the run worth reporting (coverage gaps, timings).
	Notes []string
	// Skip, when set, means the check was not evaluated, and why.
	Skip string
	// Err means the check could not run; the verdict is Error.
	Err error
}

// Errorf is a convenience for a Run that cannot proceed.
func Errorf(format string, args ...any) Outcome {
	return Outcome{Err: fmt.Errorf(format, args...)}
}

// newResult is c's result, started now, with nothing observed or judged yet.
func newResult(c Check) reports.CheckResult {
	now := time.Now().UTC()
	return reports.CheckResult{ID: c.ID, Title: c.Title, Area: string(c.Area), Proves: c.Proves,
		Started: now, Finished: now, Observations: []reports.Observation{}}
}

// NotRun is the result of a selected check a run never reached: skipped,
// saying why.
func NotRun(c Check, reason string) reports.CheckResult {
	res := newResult(c)
	res.Verdict, res.Reason = reports.Skipped, reason
	return res
}

// Execute runs c against env and judges the outcome.
func Execute(ctx context.Context, c Check, env *Env) reports.CheckResult {
	res := newResult(c)
	out := c.Run(ctx, env)
	res.Finished = time.Now().UTC()
	if out.Observations != nil {
		res.Observations = out.Observations
	}
	res.Notes = out.Notes
	res.Verdict, res.Reason = Judge(c, out)
	if err := ctx.Err(); err != nil {
		// A probe cut short by the interruption looks like a blocked path:
		// nothing observed after that point may count either way.
		res.Verdict = reports.Error
		res.Reason = fmt.Sprintf("the run was interrupted while this check ran (%v): its observations are incomplete and were not judged", context.Cause(ctx))
	}
	return res
}

// maxListed bounds how many failing observations a reason names.
const maxListed = 8

// Judge computes a verdict from an outcome. The rules:
//   - an error is Error, a skip is Skipped;
//   - no observations is Error (nothing was tried, nothing is proven);
//   - any observation that contradicts its expectation is Fail; the reason
//     names them, and says so when it was a positive control that failed,
//     because then the "blocked" results prove nothing;
//   - a check that needs a positive control and has none is Fail.
func Judge(c Check, out Outcome) (reports.Verdict, string) {
	switch {
	case out.Err != nil:
		return reports.Error, out.Err.Error()
	case out.Skip != "":
		return reports.Skipped, out.Skip
	case len(out.Observations) == 0:
		return reports.Error, "no observations: nothing was tried"
	}
	var badTests, badControls []reports.Observation
	controls := 0
	for _, o := range out.Observations {
		if o.Role == reports.RoleControl {
			controls++
		}
		if o.OK {
			continue
		}
		if o.Role == reports.RoleControl {
			badControls = append(badControls, o)
		} else {
			badTests = append(badTests, o)
		}
	}
	var parts []string
	if len(badTests) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d tested paths not as expected: %s",
			len(badTests), len(out.Observations)-controls, Describe(badTests)))
	}
	if len(badControls) > 0 {
		parts = append(parts, fmt.Sprintf("positive control failed (%d of %d), so blocked results prove nothing: %s",
			len(badControls), controls, Describe(badControls)))
	}
	if len(parts) > 0 {
		return reports.Fail, strings.Join(parts, "; ")
	}
	if controls == 0 && c.NoControl == "" {
		return reports.Fail, "no positive control was observed, so blocked results prove nothing"
	}
	return reports.Pass, ""
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

// DescribeOne names one observation.
func DescribeOne(o reports.Observation) string {
	from := o.Actor.Identity
	if o.Actor.Pod != "" {
		from = o.Actor.Namespace + "/" + o.Actor.Pod
	}
	to := o.Target.Address
	if o.Target.Name != "" {
		to = o.Target.Namespace + "/" + o.Target.Name
	}
	return fmt.Sprintf("%s -> %s %s: %s (want %s)", from, to, o.Method, o.Observed, o.Expected)
}

// Registry holds the checks, by ID.
type Registry struct {
	byID map[string]Check
}

// Register adds checks; a duplicate ID is a programming error and panics.
func (r *Registry) Register(cs ...Check) {
	if r.byID == nil {
		r.byID = map[string]Check{}
	}
	for _, c := range cs {
		if _, dup := r.byID[c.ID]; dup {
			panic("duplicate check ID " + c.ID)
		}
		if c.Run == nil || c.ID == "" || c.Area == "" || c.Title == "" {
			panic("incomplete check " + c.ID)
		}
		r.byID[c.ID] = c
	}
}

// All returns every check, ordered by area then ID.
func (r *Registry) All() []Check {
	out := make([]Check, 0, len(r.byID))
	for _, c := range r.byID {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Area != out[j].Area {
			return out[i].Area < out[j].Area
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Get returns the check with id.
func (r *Registry) Get(id string) (Check, bool) {
	c, ok := r.byID[id]
	return c, ok
}

// InArea returns the checks of one area, ordered by ID.
func (r *Registry) InArea(a Area) []Check {
	var out []Check
	for _, c := range r.All() {
		if c.Area == a {
			out = append(out, c)
		}
	}
	return out
}
