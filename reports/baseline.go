package reports

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Diff compares a run with a baseline (a previous results.json): what broke,
// what was fixed, and what changed in scope, so a pipeline can fail only on
// regressions while known failures are being worked on.
type Diff struct {
	Previous RunRef `json:"previous"`
	Current  RunRef `json:"current"`
	// Verdict is the current run's own verdict, PreviousVerdict the
	// baseline's (see Results.Verdict; Gate decides the exit status).
	Verdict         RunVerdict `json:"verdict"`
	PreviousVerdict RunVerdict `json:"previousVerdict"`
	// NewFailures failed (or could not run) now but did not before: they
	// passed, were waived, unproven or not evaluated, or did not run.
	NewFailures []CheckChange `json:"newFailures"`
	// Regressed failed before and still fail, with failing observations the
	// baseline did not have (a new leak on a known-bad check).
	Regressed []CheckChange `json:"regressed"`
	// StillFailing failed before and fail now, with no new failing observation.
	StillFailing []CheckChange `json:"stillFailing"`
	// Fixed failed before and pass (or are waived) now.
	Fixed []CheckChange `json:"fixed"`
	// Added ran now but not in the baseline; Removed the other way round.
	Added   []CheckChange `json:"added"`
	Removed []CheckChange `json:"removed"`
	// Coverage lists checks unproven or not evaluated in one run and not
	// in the other.
	Coverage []CheckChange `json:"coverage"`
	// Scope lists changes of what was tested: cluster, tenants, selection,
	// how many paths a check probed.
	Scope []string `json:"scope"`
}

// RunRef names a run.
type RunRef struct {
	ID      string `json:"id"`
	Started string `json:"started"`
}

// CheckChange is one check's verdict in both runs.
type CheckChange struct {
	ID     string  `json:"id"`
	Title  string  `json:"title"`
	Before Verdict `json:"before,omitempty"`
	After  Verdict `json:"after,omitempty"`
	Reason string  `json:"reason,omitempty"`
	// NewlyFailing names failing observations that the baseline did not have.
	NewlyFailing []string `json:"newlyFailing,omitempty"`
}

// failing verdicts are failures for the baseline: a leak, or a check that
// could not run. Unproven and not-evaluated checks are coverage changes.
func failing(v Verdict) bool { return v == Fail || v == Error }

func notProven(v Verdict) bool { return v == Skipped || v == Unproven }

// evaluated verdicts judged the cluster.
func evaluated(v Verdict) bool { return v == Pass || v == Fail || v == Waived }

// CompareBaseline diffs current against previous. Observations are matched
// across runs by role, method, the actor's and target's tenant and name
// (pod or identity with the run's namespaces replaced by tenant names),
// because namespaces carry the run ID.
func CompareBaseline(previous, current *Results) Diff {
	d := Diff{
		Previous:        RunRef{ID: previous.Run.ID, Started: previous.Run.Started.UTC().Format("2006-01-02T15:04:05Z")},
		Current:         RunRef{ID: current.Run.ID, Started: current.Run.Started.UTC().Format("2006-01-02T15:04:05Z")},
		Verdict:         current.Verdict(),
		PreviousVerdict: previous.Verdict(),
	}
	prev := map[string]CheckResult{}
	for _, c := range previous.Checks {
		prev[c.ID] = c
	}
	cur := map[string]bool{}
	for _, c := range current.Checks {
		cur[c.ID] = true
		p, ok := prev[c.ID]
		ch := CheckChange{ID: c.ID, Title: c.Title, After: c.Verdict, Reason: c.Reason}
		if !ok {
			d.Added = append(d.Added, ch)
			if failing(c.Verdict) {
				d.NewFailures = append(d.NewFailures, ch)
			}
			continue
		}
		ch.Before = p.Verdict
		switch {
		case failing(c.Verdict) && !failing(p.Verdict):
			d.NewFailures = append(d.NewFailures, ch)
		case failing(c.Verdict) && failing(p.Verdict):
			ch.NewlyFailing = newlyFailing(previous, p, current, c)
			if len(ch.NewlyFailing) > 0 {
				d.Regressed = append(d.Regressed, ch)
			} else {
				d.StillFailing = append(d.StillFailing, ch)
			}
		case !failing(c.Verdict) && failing(p.Verdict) && (c.Verdict == Pass || c.Verdict == Waived):
			d.Fixed = append(d.Fixed, ch)
		}
		if notProven(c.Verdict) != notProven(p.Verdict) {
			d.Coverage = append(d.Coverage, ch)
		}
		if np, nc := len(p.Observations), len(c.Observations); np != nc && evaluated(p.Verdict) && evaluated(c.Verdict) {
			d.Scope = append(d.Scope, fmt.Sprintf("%s: %d observations, baseline had %d", c.ID, nc, np))
		}
	}
	for _, p := range previous.Checks {
		if !cur[p.ID] {
			d.Removed = append(d.Removed, CheckChange{ID: p.ID, Title: p.Title, Before: p.Verdict, Reason: p.Reason})
		}
	}
	d.Scope = append(scopeChanges(previous, current), d.Scope...)
	return d
}

func scopeChanges(p, c *Results) []string {
	var out []string
	cmp := func(what, a, b string) {
		if a != b {
			out = append(out, fmt.Sprintf("%s: %s (baseline: %s)", what, orNone(b), orNone(a)))
		}
	}
	cmp("cluster", p.Run.Cluster.Context+" "+p.Run.Cluster.Server, c.Run.Cluster.Context+" "+c.Run.Cluster.Server)
	cmp("Kubernetes", p.Run.Cluster.KubernetesVersion, c.Run.Cluster.KubernetesVersion)
	cmp("CNI", strings.TrimSpace(p.Run.Cluster.CNI+" "+p.Run.Cluster.CNIVersion), strings.TrimSpace(c.Run.Cluster.CNI+" "+c.Run.Cluster.CNIVersion))
	if p.Run.Cluster.Nodes != c.Run.Cluster.Nodes {
		out = append(out, fmt.Sprintf("nodes: %d (baseline: %d)", c.Run.Cluster.Nodes, p.Run.Cluster.Nodes))
	}
	cmp("tenants", tenantScope(p), tenantScope(c))
	cmp("selection", selectionText(p.Run.Selection), selectionText(c.Run.Selection))
	return out
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(none)"
	}
	return strings.TrimSpace(s)
}

// tenantScope describes tenants without their run-specific namespace names.
func tenantScope(r *Results) string {
	var parts []string
	for _, t := range r.Run.Tenants {
		kind := "isolated"
		if !t.Isolated {
			kind = "unprotected"
		}
		if t.Reference {
			kind += " reference"
		}
		parts = append(parts, fmt.Sprintf("%s (%s, %d namespaces)", t.Name, kind, len(t.Namespaces)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func selectionText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}

// observationKey identifies an observation across runs.
func observationKey(r *Results, o Observation) string {
	ns := namespaceTenants(r)
	norm := func(namespace, tenant string) string {
		if t, ok := ns[namespace]; ok {
			return "tenant:" + t
		}
		if tenant != "" {
			return "tenant:" + tenant
		}
		return namespace
	}
	actor := norm(o.Actor.Namespace, o.Actor.Tenant) + "/" + o.Actor.Pod + "/" + normalizeIdentity(o.Actor.Identity, ns)
	target := norm(o.Target.Namespace, o.Target.Tenant) + "/" + o.Target.Kind + "/" + o.Target.Name
	if o.Target.Name == "" {
		target += "/" + normalizeIdentity(o.Target.Address, ns)
	}
	return strings.Join([]string{string(o.Role), o.Method, actor, target}, "|")
}

func normalizeIdentity(s string, ns map[string]string) string {
	for n, t := range ns {
		s = strings.ReplaceAll(s, n, "tenant:"+t)
	}
	return s
}

func namespaceTenants(r *Results) map[string]string {
	m := map[string]string{}
	for _, t := range r.Run.Tenants {
		for _, n := range t.Namespaces {
			m[n] = t.Name
		}
	}
	return m
}

func newlyFailing(pr *Results, p CheckResult, cr *Results, c CheckResult) []string {
	before := map[string]bool{}
	for _, o := range p.Observations {
		if o.Leak() {
			before[observationKey(pr, o)] = true
		}
	}
	// One line per path: with rounds, a path that leaked in several of
	// them has an observation per round.
	var out []string
	seen := map[string]bool{}
	for _, o := range c.Observations {
		if k := observationKey(cr, o); o.Leak() && !before[k] && !seen[k] {
			seen[k] = true
			out = append(out, describeObservation(o))
		}
	}
	return out
}

// HasNewFailures reports whether current is worse than the baseline: a
// check fails that did not, or a failing check has new failing observations.
func (d Diff) HasNewFailures() bool { return len(d.NewFailures) > 0 || len(d.Regressed) > 0 }

// Gate decides a run's verdict for its exit status. Without a baseline (d
// nil) or with onlyNew false it is the run's own verdict. With onlyNew,
// checks that failed in the baseline and fail the same way now (no new
// failing observation) do not fail the run; everything else counts as
// usual, so a check that passed before and is not evaluated or unproven now
// makes the run INCOMPLETE, and one that errors makes it ERROR. An
// interrupted run is ERROR at best: what did not run cannot pass. The string
// says why.
func Gate(current *Results, d *Diff, onlyNew bool) (RunVerdict, string) {
	s := current.Summarize()
	counts := fmt.Sprintf("%d failed, %d unproven, %d could not run, %d not evaluated", s.Fail, s.Unproven, s.Error, s.Skipped)
	if d == nil || !onlyNew {
		v := s.Verdict()
		if s.Interrupted {
			return v, "the run was interrupted (until then: " + counts + ")"
		}
		if v == RunPass {
			return v, fmt.Sprintf("%d passed, %d waived", s.Pass, s.Waived)
		}
		return v, counts
	}
	if d.HasNewFailures() {
		var ids []string
		for _, c := range slices.Concat(d.NewFailures, d.Regressed) {
			ids = append(ids, c.ID)
		}
		return RunFail, fmt.Sprintf("new failures since baseline %s: %s", d.Previous.ID, strings.Join(ids, ", "))
	}
	known := map[string]bool{}
	for _, c := range d.StillFailing {
		known[c.ID] = true
	}
	rest := *current
	rest.Checks = nil
	for _, c := range current.Checks {
		if !known[c.ID] {
			rest.Checks = append(rest.Checks, c)
		}
	}
	v := rest.Summarize().Verdict()
	if len(rest.Checks) == 0 && len(known) > 0 && !s.Interrupted {
		v = RunPass // every selected check is a known failure
	}
	why := fmt.Sprintf("no new failures since baseline %s (%d still failing)", d.Previous.ID, len(d.StillFailing))
	if v != RunPass {
		why += "; but " + counts
	}
	return v, why
}

// Markdown renders the diff for a CI job summary or a PR comment.
func (d Diff) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## bulkhead: changes since baseline run %s\n\n", d.Previous.ID)
	fmt.Fprintf(&b, "%s Run %s: **%s** (baseline %s: %s).\n\n", runMark(d.Verdict), d.Current.ID, d.Verdict, d.Previous.ID, d.PreviousVerdict)
	fmt.Fprintf(&b, "Run %s (%s) compared with %s (%s): **%d new failures**, %d regressed, %d still failing, %d fixed, %d added, %d removed.\n",
		d.Current.ID, d.Current.Started, d.Previous.ID, d.Previous.Started,
		len(d.NewFailures), len(d.Regressed), len(d.StillFailing), len(d.Fixed), len(d.Added), len(d.Removed))
	section := func(title string, cs []CheckChange) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n### %s\n\n| Check | Title | Baseline | Now | Reason |\n|---|---|---|---|---|\n", title)
		for _, c := range cs {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mdCell(c.ID), mdCell(c.Title), verdictWord(c.Before), verdictWord(c.After), mdCell(truncate(c.Reason, 200)))
			for i, n := range c.NewlyFailing {
				if i == 5 {
					fmt.Fprintf(&b, "| | ↳ and %d more new failing paths | | | |\n", len(c.NewlyFailing)-5)
					break
				}
				fmt.Fprintf(&b, "| | ↳ new: %s | | | |\n", mdCell(n))
			}
		}
	}
	section("New failures", d.NewFailures)
	section("Regressed (new failing paths on a failing check)", d.Regressed)
	section("Still failing", d.StillFailing)
	section("Fixed", d.Fixed)
	section("Added checks", d.Added)
	section("Removed checks", d.Removed)
	section("Coverage changes", d.Coverage)
	if len(d.Scope) > 0 {
		b.WriteString("\n### Scope changes\n\n")
		for _, s := range d.Scope {
			fmt.Fprintf(&b, "- %s\n", mdCell(s))
		}
	}
	return b.String()
}

// Text renders the diff as plain text for logs.
func (d Diff) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "baseline %s -> %s: %s (baseline %s); %d new failures, %d regressed, %d still failing, %d fixed, %d added, %d removed\n",
		d.Previous.ID, d.Current.ID, d.Verdict, d.PreviousVerdict, len(d.NewFailures), len(d.Regressed), len(d.StillFailing), len(d.Fixed), len(d.Added), len(d.Removed))
	list := func(what string, cs []CheckChange) {
		for _, c := range cs {
			fmt.Fprintf(&b, "%-13s %s %s: %s -> %s", what, c.ID, c.Title, verdictWord(c.Before), verdictWord(c.After))
			if c.Reason != "" && c.After != Pass {
				fmt.Fprintf(&b, " (%s)", truncate(c.Reason, 200))
			}
			b.WriteString("\n")
			for _, n := range c.NewlyFailing {
				fmt.Fprintf(&b, "              new: %s\n", n)
			}
		}
	}
	list("NEW FAILURE", d.NewFailures)
	list("REGRESSED", d.Regressed)
	list("still fails", d.StillFailing)
	list("fixed", d.Fixed)
	list("added", d.Added)
	list("removed", d.Removed)
	list("coverage", d.Coverage)
	for _, s := range d.Scope {
		fmt.Fprintf(&b, "scope         %s\n", s)
	}
	return b.String()
}

// verdictWord is a check's verdict as read, or "-" when it did not run.
func verdictWord(v Verdict) string { return orDash(v.Word()) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
