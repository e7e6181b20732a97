package reports

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/strictyaml"
)

// Waivers accept known failures for a while. A waiver file looks like:
//
//	waivers:
//	- check: NET-003
//	  namespace: bh-xyz-b   # optional: only observations whose actor or target is in this namespace
//	  justification: "egress to the shared cache is approved, ticket SEC-123"
//	  expires: 2026-12-31   # last day the waiver holds (UTC); or an RFC 3339 time
//
// The file is YAML 1.2, read strictly: a namespace that YAML reads as a
// number, boolean or null (0123, true, null) must be quoted, and every
// mistake is reported as file:line:column: field: problem.
//
// A waiver covers leaks: a failing check whose leaks (failed tested paths)
// are all covered by active waivers is reported as Waived, or Unproven when
// some of what it tested was not proven. One that is covered only thanks to
// expired waivers stays Fail and says which waiver expired when. Nothing
// else is ever waived: not a failed or missing positive control, not an
// unproven check, not one that could not run or was not evaluated (see
// ApplyWaivers).
type Waivers struct {
	// File is where the waivers came from (for messages).
	File  string
	Items []Waiver
}

// Waiver is one entry of a waiver file.
type Waiver struct {
	Check         string
	Namespace     string
	Justification string
	// Expires is the last day the waiver holds (00:00 UTC of that day, see
	// DateOnly), or the instant it ends when given as an RFC 3339 time.
	Expires  time.Time
	DateOnly bool
	// Source is "file:line" of the entry.
	Source string
	// checkAt is where the check ID was written, for messages.
	checkAt strictyaml.Error
}

// Until is the first instant the waiver no longer holds.
func (w Waiver) Until() time.Time {
	if w.DateOnly {
		return w.Expires.AddDate(0, 0, 1)
	}
	return w.Expires
}

// ActiveAt reports whether the waiver holds at now.
func (w Waiver) ActiveAt(now time.Time) bool { return now.Before(w.Until()) }

// ExpiresText is the expiry as written: a date or an RFC 3339 time.
func (w Waiver) ExpiresText() string {
	if w.DateOnly {
		return w.Expires.Format(time.DateOnly)
	}
	return w.Expires.UTC().Format(time.RFC3339Nano)
}

func (w Waiver) covers(o Observation) bool {
	return w.Namespace == "" || o.Actor.Namespace == w.Namespace || o.Target.Namespace == w.Namespace
}

func (w Waiver) ref(expired bool) *WaiverRef {
	return &WaiverRef{Justification: w.Justification, Expires: w.Expires, Namespace: w.Namespace, Expired: expired, Source: w.Source}
}

func (w Waiver) describe() string {
	s := "waiver " + w.Source
	if w.Namespace != "" {
		s += " (namespace " + w.Namespace + ")"
	}
	return s
}

// LoadWaivers reads and validates a waiver file.
func LoadWaivers(path string) (*Waivers, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read waivers: %w", err)
	}
	return ParseWaivers(path, data)
}

// waiverFile is a waiver file as written (see Waivers for the format).
type waiverFile struct {
	Waivers []waiverEntry `json:"waivers"`
}

type waiverEntry struct {
	Check         string `json:"check" want:"a check ID"`
	Namespace     string `json:"namespace,omitempty" want:"a namespace name"`
	Justification string `json:"justification" want:"a justification"`
	Expires       string `json:"expires" want:"a date (YYYY-MM-DD) or RFC 3339 time"`
}

// ParseWaivers parses a waiver file; name is used in error messages
// ("name:line:column: field: ..."). The file is read as YAML 1.2, strictly
// (internal/strictyaml): unknown fields, a boolean or number where text is
// expected (namespace: 0123 must be quoted), missing check, justification
// or expiry, bad dates and duplicates are errors, all of them reported.
func ParseWaivers(name string, data []byte) (*Waivers, error) {
	var f waiverFile
	doc, err := strictyaml.Decode(name, data, &f)
	if err != nil {
		return nil, err
	}
	ws := &Waivers{File: name}
	var errs strictyaml.Errors
	bad := func(path, format string, args ...any) { errs = append(errs, doc.Errorf(path, format, args...)) }
	seen := map[string]string{}
	for i, e := range f.Waivers {
		at := fmt.Sprintf("waivers[%d]", i)
		line, _ := doc.At(at)
		w := Waiver{Check: strings.TrimSpace(e.Check), Namespace: strings.TrimSpace(e.Namespace),
			Justification: strings.TrimSpace(e.Justification), Source: fmt.Sprintf("%s:%d", name, line)}
		w.checkAt = *doc.Errorf(at+".check", "")
		if w.Check == "" {
			bad(at+".check", "waiver without a check ID")
			continue
		}
		if w.Justification == "" {
			bad(at+".justification", "waiver for %s: missing justification", w.Check)
			continue
		}
		val := strings.TrimSpace(e.Expires)
		if t, err := time.Parse(time.DateOnly, val); err == nil {
			w.Expires, w.DateOnly = t, true
		} else if t, err := time.Parse(time.RFC3339, val); err == nil {
			w.Expires = t
		} else if val == "" {
			bad(at+".expires", "waiver for %s: missing expires (a date, YYYY-MM-DD)", w.Check)
			continue
		} else {
			bad(at+".expires", "waiver for %s: expires %q is not a date (YYYY-MM-DD) or RFC 3339 time", w.Check, val)
			continue
		}
		key := w.Check + "\x00" + w.Namespace
		if prev, dup := seen[key]; dup {
			bad(at, "waiver for %s%s duplicates %s", w.Check, inNamespace(w.Namespace), prev)
			continue
		}
		seen[key] = w.Source
		ws.Items = append(ws.Items, w)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return ws, nil
}

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return " in namespace " + ns
}

// Validate checks that every waiver names a known check: one in the
// catalogue or in results (nil results are fine). A typo in a waiver
// would otherwise silently waive nothing.
func (w *Waivers) Validate(cat Catalogue, r *Results) error {
	known := map[string]bool{}
	for id := range cat {
		known[id] = true
	}
	if r != nil {
		for _, c := range r.Checks {
			known[c.ID] = true
		}
	}
	var bad strictyaml.Errors
	for _, it := range w.Items {
		if !known[it.Check] {
			e := it.checkAt
			e.Msg = fmt.Sprintf("unknown check %q", it.Check)
			bad = append(bad, &e)
		}
	}
	if len(bad) > 0 {
		ids := make([]string, 0, len(known))
		for id := range known {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return fmt.Errorf("%w\n(known checks: %s)", bad.Err(), strings.Join(ids, ", "))
	}
	return nil
}

// ApplyWaivers returns a copy of r with the waivers applied at now (r is
// not modified). A waiver covers leaks only: failed test observations
// (Observation.Leak) whose actor or target is in its namespace, or all of
// them when it names none. It never covers a failed or missing positive
// control, an unproven path, or a check that is unproven, could not run or
// was not evaluated: those lack proof, and a waiver cannot give proof.
//
// A failed check whose leaks are all covered by active waivers becomes
// Waived when everything else it tested was proven, and Unproven when
// unproven paths remain (its reason then says the leaks were waived and
// what is not proven). A failed check without a leak stays Fail. A failure
// covered only with the help of expired waivers stays Fail; its reason
// says which waiver expired when. Waivers for unknown checks are an error
// (see Validate).
func ApplyWaivers(r *Results, w *Waivers, cat Catalogue, now time.Time) (*Results, error) {
	if w == nil {
		return r, nil
	}
	if err := w.Validate(cat, r); err != nil {
		return nil, err
	}
	out := *r
	out.Checks = make([]CheckResult, len(r.Checks))
	for i, c := range r.Checks {
		out.Checks[i] = applyToCheck(c, w, now)
	}
	return &out, nil
}

func applyToCheck(c CheckResult, w *Waivers, now time.Time) CheckResult {
	var mine []Waiver
	for _, it := range w.Items {
		if it.Check == c.ID {
			mine = append(mine, it)
		}
	}
	if len(mine) == 0 {
		return c
	}
	c.Notes = slices.Clone(c.Notes)
	var leaks []Observation
	for _, o := range c.Observations {
		if o.Leak() {
			leaks = append(leaks, o)
		}
	}
	if state := unwaivable(c, leaks); state != "" {
		for _, it := range mine {
			c.Notes = append(c.Notes, it.describe()+" "+state)
		}
		return c
	}
	var active []Waiver
	for _, it := range mine {
		if it.ActiveAt(now) {
			active = append(active, it)
		}
	}
	if used, ok := cover(leaks, active); ok {
		return waive(c, leaks, used)
	}
	if used, ok := cover(leaks, mine); ok {
		// Covered only with expired waivers: name them in the reason.
		var expired []string
		var ref *WaiverRef
		for _, it := range used {
			if !it.ActiveAt(now) {
				expired = append(expired, fmt.Sprintf("%s expired on %s", it.describe(), it.ExpiresText()))
				if ref == nil {
					ref = it.ref(true)
				}
			}
		}
		c.Reason = strings.Join(append(nonEmpty(c.Reason), expired...), "; ")
		c.Waiver = ref
		return c
	}
	covered := 0
	for _, o := range leaks {
		if slices.ContainsFunc(active, func(it Waiver) bool { return it.covers(o) }) {
			covered++
		}
	}
	c.Notes = append(c.Notes, fmt.Sprintf("not waived: active waivers cover %d of %d leaks", covered, len(leaks)))
	return c
}

// unwaivable says why waivers do not apply to c at all, or "" when they
// may cover its leaks.
func unwaivable(c CheckResult, leaks []Observation) string {
	switch {
	case c.Verdict == Pass || c.Verdict == Waived:
		return "not needed: the check did not fail"
	case c.Verdict == Error || c.Verdict == Skipped:
		return fmt.Sprintf("not applied: a check that %s was not judged, so there is nothing to waive", verdictPhrase(c.Verdict))
	case c.Verdict == Unproven:
		return "not applied: the check is unproven, and a waiver covers leaks, never missing proof"
	case c.Verdict != Fail:
		return fmt.Sprintf("not applied: unknown verdict %q", c.Verdict)
	case len(leaks) == 0:
		return "not applied: the check failed without a leak (a failed or missing positive control), and a waiver covers leaks only"
	}
	return ""
}

func verdictPhrase(v Verdict) string {
	if v == Error {
		return "could not run"
	}
	return "was not evaluated"
}

// cover finds, for every leak, a waiver among ws that covers it; it
// returns the waivers used, in first-use order, or ok=false.
func cover(leaks []Observation, ws []Waiver) (used []Waiver, ok bool) {
	for _, o := range leaks {
		i := slices.IndexFunc(ws, func(it Waiver) bool { return it.covers(o) })
		if i < 0 {
			return used, false
		}
		if !slices.ContainsFunc(used, func(u Waiver) bool { return u.Source == ws[i].Source }) {
			used = append(used, ws[i])
		}
	}
	return used, true
}

// waive applies the active waivers used, which cover every leak of c: c is
// Waived, or Unproven when what it tested besides the leaks was not all
// proven.
func waive(c CheckResult, leaks []Observation, used []Waiver) CheckResult {
	first := used[0]
	for _, it := range used {
		if it.Until().Before(first.Until()) {
			first = it
		}
		c.Notes = append(c.Notes, fmt.Sprintf("waived by the %s until %s: %s", it.describe(), it.ExpiresText(), it.Justification))
	}
	c.Waiver = first.ref(false)
	missing := unprovenBesidesLeaks(c.Observations)
	if len(c.NotEvaluated) > 0 {
		missing = append(missing, "not evaluated: "+strings.Join(c.NotEvaluated, "; "))
	}
	if len(missing) == 0 {
		c.Verdict = Waived
		return c
	}
	c.Verdict = Unproven
	c.Reason = fmt.Sprintf("%d leaks waived (until %s), but not proven: %s", len(leaks), first.ExpiresText(), strings.Join(missing, "; "))
	return c
}

// unprovenBesidesLeaks says what in obs is not proven, leaks aside: unproven tests
// (but for rounds another round of the path proved), and, for results of older runs whose observations carry no status, any
// failed positive control (which tests rested on it is not recorded).
func unprovenBesidesLeaks(obs []Observation) []string {
	var unproven, badControls []Observation
	var tests int
	legacy := false
	covered := CoveredByOtherRounds(obs)
	for i, o := range obs {
		legacy = legacy || o.Status == ""
		switch {
		case o.Role == RoleControl && o.Failed():
			badControls = append(badControls, o)
		case o.Role == RoleControl:
		case o.Status == StatusNotApplicable:
		default:
			tests++
			if o.Status == StatusUnproven && !covered[i] {
				unproven = append(unproven, o)
			}
		}
	}
	var out []string
	if len(unproven) > 0 {
		out = append(out, fmt.Sprintf("%d of %d tested paths unproven: %s", len(unproven), tests, describeList(unproven, 8)))
	}
	if legacy && len(badControls) > 0 {
		out = append(out, fmt.Sprintf("failed positive controls (%d), and these results do not say which tests rest on them: %s", len(badControls), describeList(badControls, 8)))
	}
	return out
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
