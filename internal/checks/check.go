// Package checks defines what a bulkhead check is, how its verdict follows
// from its observations, and the registry of all checks. Check
// implementations live in sub-packages by area; both front ends (the e2e
// suites and the bulkhead CLI) run them through Execute.
package checks

import (
	"context"
	"fmt"
	"sort"
	"sync"
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
	Exposure    Area = "exposure"
)

// Check is one isolation property bulkhead proves by trying it.
// A check never prints, never fails a test, never writes a report: it returns
// observations, and Execute turns them into a verdict.
//
// A check's words (title, what it proves, severity, remediation, framework
// mappings) live in one place, its control catalogue entry
// (reports/catalogue/<area>.yaml); the Go value holds what runs.
type Check struct {
	// ID is stable across releases; reports, waivers and baselines key on
	// it, and it names the check's catalogue entry.
	ID   string
	Area Area
	// Slow marks a check that costs more than a probe round or a handful of
	// API calls; the "quick" profile leaves it out.
	Slow bool
	// NoControl explains why the check has no positive control, for the rare
	// check whose observations are themselves the positive case (e.g. "same
	// tenant traffic works"). Empty means a passing control is required.
	NoControl string
	// Creates declares what the check puts into the cluster (footprint.go).
	Creates []Footprint
	// Lane is the queue the check runs in (lanes.go): a run executes its
	// lanes side by side, each in order. Empty is the API lane.
	Lane Lane
	// NoNegativeControl explains why no fault can make the check fail in
	// the e2e suites (its area's NegativeControls has none for it). Empty
	// means it must have a negative control; a unit test enforces it.
	NoNegativeControl string
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
	// NotEvaluated names what the check covers but could not evaluate
	// (e.g. "tenant b: no identity may create services in b-web"): the
	// check then cannot pass, however its observations look.
	NotEvaluated []string
	// Err means the check could not run; the verdict is Error.
	Err error
}

// Errorf is a convenience for a Run that cannot proceed.
func Errorf(format string, args ...any) Outcome {
	return Outcome{Err: fmt.Errorf(format, args...)}
}

// catalogue is the embedded control catalogue, read once.
var catalogue = sync.OnceValues(reports.LoadCatalogue)

// Control is c's catalogue entry (the zero Control if it has none, which
// Register refuses).
func (c Check) Control() reports.Control {
	cat, err := catalogue()
	if err != nil {
		return reports.Control{}
	}
	return cat[c.ID]
}

// Title is the check's title, from its catalogue entry.
func (c Check) Title() string { return c.Control().Title }

// Proves says what holds when the check passes: its catalogue description.
func (c Check) Proves() string { return c.Control().Description }

// Name is "ID title", how test steps and progress lines name the check.
func (c Check) Name() string { return c.ID + " " + c.Title() }

// newResult is c's result, started now, with nothing observed or judged yet.
func newResult(c Check) reports.CheckResult {
	now := time.Now().UTC()
	return reports.CheckResult{ID: c.ID, Title: c.Title(), Area: string(c.Area), Proves: c.Proves(),
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
	j := Judge(c, out)
	if j.Observations != nil {
		res.Observations = j.Observations
	}
	res.Notes, res.NotEvaluated = out.Notes, out.NotEvaluated
	res.Verdict, res.Reason = j.Verdict, j.Reason
	if err := ctx.Err(); err != nil {
		// A probe cut short by the interruption looks like a blocked path:
		// nothing observed after that point may count either way.
		res.Verdict = reports.Error
		res.Reason = fmt.Sprintf("the run was interrupted while this check ran (%v): its observations are incomplete and were not judged", context.Cause(ctx))
	}
	return res
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
		if c.Run == nil || c.ID == "" || c.Area == "" {
			panic("incomplete check " + c.ID)
		}
		if c.Title() == "" {
			panic("check " + c.ID + " has no entry in the control catalogue (reports/catalogue/" + string(c.Area) + ".yaml)")
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
