package reports

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// JUnitFile is the JUnit report's file name inside a report directory.
const JUnitFile = "junit.xml"

// JUnit XML as GitLab, Jenkins and the GitHub test-report actions read it:
// a <testsuites> root, one <testsuite> per area, one <testcase> per check
// (or per tenant pair of a check, see JUnitWith).
//
// How verdicts map to test cases: pass and waived-free proven pairs are
// green; fail is <failure>; error (could not run) is <error>; unproven,
// not evaluated and waived are <skipped>, with a message that starts
// "unproven: ", "not evaluated: " or "waived ...". Unproven is <skipped>
// and not <error> because JUnit's error means the test could not run,
// which is bulkhead's error verdict; what an unproven case lacks is proof,
// and it must not read as green. CI that gates on the run reads the run
// verdict (PASS, FAIL, INCOMPLETE, ERROR), which the <testsuites> root and
// every <testsuite> carry as the property bulkhead.verdict, and bulkhead's
// exit code (0, 1, 3, 2).
type junitSuites struct {
	XMLName    xml.Name        `xml:"testsuites"`
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Suites     []junitSuite    `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitCase struct {
	Name       string          `xml:"name,attr"`
	Classname  string          `xml:"classname,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitResult    `xml:"failure,omitempty"`
	Error      *junitResult    `xml:"error,omitempty"`
	Skipped    *junitResult    `xml:"skipped,omitempty"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitResult struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Data    string `xml:",chardata"`
}

// JUnit renders results as JUnit XML with the embedded catalogue.
func JUnit(r *Results) ([]byte, error) {
	cat, err := DefaultCatalogue()
	if err != nil {
		return nil, err
	}
	return JUnitWith(r, cat)
}

// JUnitWith renders results as JUnit XML: a <testsuites> root, a
// <testsuite> per area, and a <testcase> per check, or, for a check whose
// observations all name a tenant on both sides (network paths), a
// <testcase> per (actor tenant -> target tenant) pair, named
// "NET-001 Title [a -> b]", so a CI test view shows which pair leaked
// (see checkCases for when a pair is green). Each
// test case carries the check's ID, verdict, severity and framework
// mappings as properties (cis.1.10, nsaCisa, mtb, nist80053, nist800190,
// pciDss; one property per mapped ID) and its evidence in system-out.
func JUnitWith(r *Results, cat Catalogue) ([]byte, error) {
	verdict := r.Verdict()
	root := junitSuites{Name: "bulkhead", Properties: []junitProperty{{"bulkhead.verdict", string(verdict)}, {"bulkhead.summary", Counts(r)}}}
	byArea := map[string][]CheckResult{}
	var areas []string
	for _, c := range r.Checks {
		if _, ok := byArea[c.Area]; !ok {
			areas = append(areas, c.Area)
		}
		byArea[c.Area] = append(byArea[c.Area], c)
	}
	sort.Strings(areas)
	runProps := []junitProperty{
		{"bulkhead.run", r.Run.ID},
		{"bulkhead.verdict", string(verdict)},
		{"bulkhead.version", r.Run.Bulkhead.Version},
		{"cluster.context", r.Run.Cluster.Context},
		{"cluster.kubernetesVersion", r.Run.Cluster.KubernetesVersion},
		{"cluster.cni", strings.TrimSpace(r.Run.Cluster.CNI + " " + r.Run.Cluster.CNIVersion)},
	}
	if r.Run.Interrupted {
		runProps = append(runProps, junitProperty{"bulkhead.interrupted", "true"})
	}
	var total float64
	for _, area := range areas {
		suite := junitSuite{Name: "bulkhead/" + area, Properties: runProps}
		var suiteTime float64
		for _, c := range byArea[area] {
			secs := c.Finished.Sub(c.Started).Seconds()
			suiteTime += secs
			if suite.Timestamp == "" && !c.Started.IsZero() {
				suite.Timestamp = c.Started.Format("2006-01-02T15:04:05Z07:00")
			}
			for _, tc := range checkCases(c, cat[c.ID], "bulkhead."+area, secs) {
				switch {
				case tc.Failure != nil:
					suite.Failures++
				case tc.Error != nil:
					suite.Errors++
				case tc.Skipped != nil:
					suite.Skipped++
				}
				suite.Tests++
				suite.Cases = append(suite.Cases, tc)
			}
		}
		suite.Time = fmt.Sprintf("%.3f", suiteTime)
		total += suiteTime
		root.Tests += suite.Tests
		root.Failures += suite.Failures
		root.Errors += suite.Errors
		root.Skipped += suite.Skipped
		root.Suites = append(root.Suites, suite)
	}
	root.Time = fmt.Sprintf("%.3f", total)
	out, err := xml.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode JUnit: %w", err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

// TenantPair is the (actor tenant -> target tenant) of an observation.
type TenantPair struct{ From, To string }

func (p TenantPair) String() string { return p.From + " -> " + p.To }

// TenantPairs splits observations by tenant pair, in sorted pair order. It
// returns nil unless every observation names a tenant on both sides.
func TenantPairs(obs []Observation) ([]TenantPair, map[TenantPair][]Observation) {
	if len(obs) == 0 {
		return nil, nil
	}
	by := map[TenantPair][]Observation{}
	var pairs []TenantPair
	for _, o := range obs {
		if o.Actor.Tenant == "" || o.Target.Tenant == "" {
			return nil, nil
		}
		p := TenantPair{o.Actor.Tenant, o.Target.Tenant}
		if _, ok := by[p]; !ok {
			pairs = append(pairs, p)
		}
		by[p] = append(by[p], o)
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].From != pairs[j].From {
			return pairs[i].From < pairs[j].From
		}
		return pairs[i].To < pairs[j].To
	})
	return pairs, by
}

// checkCases makes a check's test cases: one per tenant pair when the
// observations allow it and the verdict follows from them (pass, or fail
// or waived with a leak), else one for the check: an unproven check is
// never split, so it never shows as green pairs. Time is shared equally
// among a check's cases, so the suite's time stays the check's.
func checkCases(c CheckResult, ctl Control, classname string, secs float64) []junitCase {
	props := []junitProperty{{"check.id", c.ID}, {"verdict", string(c.Verdict)}}
	if ctl.Severity != "" {
		props = append(props, junitProperty{"severity", string(ctl.Severity)})
	}
	for _, ref := range ctl.Mappings.Refs() {
		props = append(props, junitProperty{ref.Framework, ref.ID})
	}
	if c.Waiver != nil {
		props = append(props, junitProperty{"waiver.expires", c.Waiver.Expires.Format("2006-01-02")})
	}
	pairs, byPair := TenantPairs(c.Observations)
	leaked := slices.ContainsFunc(c.Observations, Observation.Leak)
	split := len(pairs) > 0 && (c.Verdict == Pass || ((c.Verdict == Fail || c.Verdict == Waived) && leaked))
	if !split {
		tc := junitCase{
			Name:       c.ID + " " + c.Title,
			Classname:  classname,
			Time:       fmt.Sprintf("%.3f", secs),
			Properties: props,
			SystemOut:  EvidenceText(c),
		}
		switch c.Verdict {
		case Fail:
			tc.Failure = &junitResult{Message: c.Reason, Type: "isolation", Data: c.Reason}
		case Error:
			tc.Error = &junitResult{Message: c.Reason, Type: "could-not-run", Data: c.Reason}
		case Unproven:
			tc.Skipped = &junitResult{Message: "unproven: " + c.Reason}
		case Skipped:
			tc.Skipped = &junitResult{Message: "not evaluated: " + c.Reason}
		case Waived:
			tc.Skipped = &junitResult{Message: waivedMessage(c)}
		}
		return []junitCase{tc}
	}
	out := make([]junitCase, 0, len(pairs))
	for _, p := range pairs {
		pc := c
		pc.Observations = byPair[p]
		tc := junitCase{
			Name:       fmt.Sprintf("%s %s [%s]", c.ID, c.Title, p),
			Classname:  classname,
			Time:       fmt.Sprintf("%.3f", secs/float64(len(pairs))),
			Properties: append(slices.Clone(props), junitProperty{"tenant.actor", p.From}, junitProperty{"tenant.target", p.To}),
			SystemOut:  evidenceText(pc, p.String()),
		}
		pairResult(&tc, c, p, byPair[p])
		out = append(out, tc)
	}
	return out
}

// pairResult judges one tenant pair's case of check c. It is green only
// when every tested path of the pair passed (was proven): a leak fails it
// (or, waived, skips it); unproven paths skip it ("unproven: ..."), as do
// tests that no identity may try ("not evaluated: ..."); a pair with only
// positive controls is green when they worked and skipped when one failed
// (the tests resting on it, in other pairs, are unproven).
func pairResult(tc *junitCase, c CheckResult, p TenantPair, obs []Observation) {
	var tests, leaks, unproven, na, badControls []Observation
	covered := CoveredByOtherRounds(obs) // a round's gap another round of the path proved
	for i, o := range obs {
		switch {
		case o.Role == RoleControl:
			if o.Failed() {
				badControls = append(badControls, o)
			}
		case o.Failed():
			tests, leaks = append(tests, o), append(leaks, o)
		case o.Status == StatusUnproven && !covered[i]:
			tests, unproven = append(tests, o), append(unproven, o)
		case o.Status == StatusNotApplicable:
			tests, na = append(tests, o), append(na, o)
		default:
			tests = append(tests, o)
		}
	}
	switch {
	case len(leaks) > 0:
		msg := fmt.Sprintf("%d of %d paths %s not as expected: %s", len(leaks), len(tests), p, describeList(leaks, 8))
		if len(unproven) > 0 {
			msg += fmt.Sprintf("; %d unproven", len(unproven))
		}
		if c.Verdict == Waived {
			tc.Skipped = &junitResult{Message: waivedMessage(c) + "; " + msg}
		} else {
			tc.Failure = &junitResult{Message: msg, Type: "isolation", Data: msg + "\ncheck: " + c.Reason}
		}
	case len(unproven) > 0:
		tc.Skipped = &junitResult{Message: fmt.Sprintf("unproven: %d of %d paths %s not proven: %s", len(unproven), len(tests), p, describeList(unproven, 8))}
	case len(tests) > 0 && len(na) == len(tests):
		tc.Skipped = &junitResult{Message: fmt.Sprintf("not evaluated: no identity may try %s: %s", p, describeList(na, 8))}
	case len(tests) == 0 && len(badControls) > 0:
		tc.Skipped = &junitResult{Message: fmt.Sprintf("positive controls %s failed (%d of %d), so the tests resting on them are unproven: %s", p, len(badControls), len(obs), describeList(badControls, 8))}
	}
}

func waivedMessage(c CheckResult) string {
	if c.Waiver == nil {
		return "waived"
	}
	return fmt.Sprintf("waived until %s: %s", c.Waiver.Expires.Format("2006-01-02"), c.Waiver.Justification)
}

// describeList names up to max observations.
func describeList(obs []Observation, max int) string {
	var parts []string
	for i, o := range obs {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(obs)-max))
			break
		}
		parts = append(parts, describeObservation(o))
	}
	return strings.Join(parts, "; ")
}

// WriteJUnit writes dir/junit.xml.
func WriteJUnit(dir string, r *Results) (string, error) {
	data, err := JUnit(r)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, JUnitFile)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// EvidenceText renders a check's evidence as plain text: verdict, notes,
// truth tables and every observation.
func EvidenceText(c CheckResult) string { return evidenceText(c, "") }

// evidenceText renders the evidence of c; scope, when set, names the subset
// of observations shown (a tenant pair) and the check's verdict is stated
// as the check's, not the subset's.
func evidenceText(c CheckResult, scope string) string {
	var b strings.Builder
	verdict := strings.ToUpper(c.Verdict.Word())
	if scope == "" {
		fmt.Fprintf(&b, "%s %s: %s\n", c.ID, c.Title, verdict)
	} else {
		fmt.Fprintf(&b, "%s %s [%s]; check verdict: %s\n", c.ID, c.Title, scope, verdict)
	}
	if c.Reason != "" {
		label := "reason"
		if scope != "" {
			label = "check reason"
		}
		fmt.Fprintf(&b, "%s: %s\n", label, c.Reason)
	}
	fmt.Fprintf(&b, "proves: %s\n", c.Proves)
	fmt.Fprintf(&b, "ran: %s .. %s\n", c.Started.Format("2006-01-02T15:04:05.000Z07:00"), c.Finished.Format("15:04:05.000"))
	for _, n := range c.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if tables := TruthTables(c.Observations); len(tables) > 0 {
		fmt.Fprintf(&b, "\ntruth tables (%s)\n", TruthTableLegend)
		for _, t := range tables {
			b.WriteString("\n" + t.Text())
		}
	}
	fmt.Fprintf(&b, "\nobservations (%d; %s):\n", len(c.Observations), evidenceMarks)
	for _, o := range c.Observations {
		from := actorKey(o.Actor)
		if o.Actor.Identity != "" && o.Actor.Pod != "" {
			from += " as " + o.Actor.Identity
		}
		fmt.Fprintf(&b, "%s [%s] %s -> %s (%s) %s: expected %s, observed %s", evidenceMark(o), o.Role, from, targetKey(o.Target), o.Target.Address, o.Method, o.Expected, o.Observed)
		if o.Round > 0 {
			fmt.Fprintf(&b, " in round %d", o.Round)
		}
		if o.Detail != "" {
			fmt.Fprintf(&b, " (%s)", o.Detail)
		}
		if o.Why != "" && (o.Status == StatusUnproven || o.Status == StatusNotApplicable) {
			fmt.Fprintf(&b, " [%s: %s]", o.Status, o.Why)
		}
		fmt.Fprintf(&b, " at %s", o.At.Format("15:04:05.000"))
		if o.Attempts > 1 {
			fmt.Fprintf(&b, " after %d attempts", o.Attempts)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// evidenceMarks explains evidenceMark.
const evidenceMarks = "ok = pass, FAIL = not as expected, UNPR = unproven, N/A = not applicable"

// evidenceMark is an observation's status in the plain-text evidence,
// four characters wide.
func evidenceMark(o Observation) string {
	switch o.Judged() {
	case StatusPass:
		return "ok  "
	case StatusUnproven:
		return "UNPR"
	case StatusNotApplicable:
		return "N/A "
	}
	return "FAIL"
}
