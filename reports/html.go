package reports

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"
)

// HTMLFile is the HTML report's file name inside a report directory.
const HTMLFile = "report.html"

// The HTML report is one self-contained file: inline CSS, no scripts, no
// external fetches, so it can be attached to an audit as it is.
//
//go:embed templates/report.html.tmpl
var htmlTemplates embed.FS

var reportTemplate = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"upper":     strings.ToUpper,
	"fwname":    FrameworkName,
	"date":      func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"timestamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"clock":     func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
	"describe":  describeObservation,
	"actor":     observationActor,
	"target":    observationTarget,
	"word":      func(v Verdict) string { return v.Word() },
	"obsClass":  observationClass,
	"status":    observationStatus,
}).ParseFS(htmlTemplates, "templates/report.html.tmpl"))

type htmlView struct {
	Run      RunInfo
	Schema   string
	Headline string
	// Verdict is the run's; VerdictClass its banner class (pass, fail,
	// incomplete, error); Meaning what it says.
	Verdict      string
	VerdictClass string
	Meaning      string
	Duration     string
	Summary      Summary
	Areas        []areaRow
	Frameworks   []frameworkView
	Checks       []checkView
	// Coverage lists the checks that did not judge the cluster or did not
	// prove what they tested: unproven, could not run, not evaluated.
	Coverage []checkView
	NotRun   []Control
	Legend   string
}

type areaRow struct {
	Area string
	// NotEvaluated counts selected checks not evaluated and catalogue
	// checks that did not run.
	Total, Pass, Fail, Unproven, Error, Waived, NotEvaluated int
}

type frameworkView struct {
	Key, Name                                   string
	Rows                                        []frameworkRow
	Pass, Fail, Unproven, Waived, Error, NotRun int
}

type frameworkRow struct {
	ID     string
	Status string // pass, fail, unproven, error, waived, not-evaluated
	Note   string
	Checks []checkRef
}

// Word is the row's status as a reader reads it.
func (r frameworkRow) Word() string { return strings.ReplaceAll(r.Status, "-", " ") }

type checkRef struct {
	ID      string
	Verdict string // a Verdict, or "not-evaluated"
}

func (r checkRef) Word() string {
	if r.Verdict == "not-evaluated" {
		return "not evaluated"
	}
	return Verdict(r.Verdict).Word()
}

type checkView struct {
	CheckResult
	Control  Control
	Refs     []FrameworkRef
	Duration string
	// Tests and Controls count observations by role; Proven, Unproven and
	// NotApplicable count the tests by status.
	Tests, Controls                  int
	Proven, BadControls              int
	Failing, Unproven, NotApplicable []Observation
	Tables                           []tableView
}

type tableView struct {
	Method     string
	Cols       []string
	Rows       []tableRow
	Mismatches int
	Unproven   int
}

type tableRow struct {
	Name  string
	Cells []tableCell
}

type tableCell struct {
	Text, Class, Title string
}

func observationActor(o Observation) string {
	s := actorKey(o.Actor)
	if s == "" {
		s = o.Actor.Namespace
	}
	if o.Actor.Identity != "" && o.Actor.Pod != "" {
		s += " as " + o.Actor.Identity
	}
	return s
}

func observationTarget(o Observation) string {
	s := targetKey(o.Target)
	if s == "" {
		s = o.Target.Namespace
	}
	if o.Target.Address != "" && o.Target.Address != s {
		s += " (" + o.Target.Address + ")"
	}
	return s
}

func observationClass(o Observation) string {
	switch o.Judged() {
	case StatusFail:
		return "bad"
	case StatusUnproven:
		return "unproven"
	case StatusNotApplicable:
		return "na"
	}
	return ""
}

// observationStatus is an observation's status as the evidence table
// shows it, with why when unproven or not applicable.
func observationStatus(o Observation) string {
	st := string(o.Judged())
	if o.Why != "" && (o.Status == StatusUnproven || o.Status == StatusNotApplicable) {
		st += ": " + o.Why
	}
	return st
}

// HTML renders the self-contained HTML report: the run verdict, what it
// means and the counts, run metadata, a summary by area and by framework,
// every check with its evidence (truth tables, failing, unproven and
// not-applicable observations first, then all), and the coverage: checks
// that are unproven, could not run, were not evaluated, or are in the
// catalogue but did not run.
func HTML(r *Results, cat Catalogue) ([]byte, error) {
	v := htmlView{
		Run:      r.Run,
		Schema:   r.Schema,
		Headline: Counts(r),
		Summary:  r.Summarize(),
		Duration: r.Run.Finished.Sub(r.Run.Started).Round(time.Millisecond).String(),
		Legend:   TruthTableLegend,
	}
	v.Verdict = string(v.Summary.Verdict())
	v.VerdictClass = strings.ToLower(v.Verdict)
	v.Meaning = v.Summary.Meaning()
	v.NotRun = cat.NotEvaluated(r)
	verdicts := map[string]Verdict{}
	areas := map[string]*areaRow{}
	area := func(name string) *areaRow {
		if areas[name] == nil {
			areas[name] = &areaRow{Area: name}
		}
		return areas[name]
	}
	for _, c := range r.Checks {
		verdicts[c.ID] = c.Verdict
		a := area(c.Area)
		a.Total++
		switch c.Verdict {
		case Pass:
			a.Pass++
		case Fail:
			a.Fail++
		case Unproven:
			a.Unproven++
		case Error:
			a.Error++
		case Skipped:
			a.NotEvaluated++
		case Waived:
			a.Waived++
		}
		cv := newCheckView(c, cat.For(c))
		v.Checks = append(v.Checks, cv)
		if c.Verdict == Unproven || c.Verdict == Skipped || c.Verdict == Error {
			v.Coverage = append(v.Coverage, cv)
		}
	}
	for _, ctl := range v.NotRun {
		a := area(ctl.Area)
		a.Total++
		a.NotEvaluated++
	}
	for _, a := range areas {
		v.Areas = append(v.Areas, *a)
	}
	sort.Slice(v.Areas, func(i, j int) bool { return v.Areas[i].Area < v.Areas[j].Area })
	v.Frameworks = frameworkViews(cat, r, verdicts)
	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("render HTML report: %w", err)
	}
	return buf.Bytes(), nil
}

func newCheckView(c CheckResult, ctl Control) checkView {
	cv := checkView{CheckResult: c, Control: ctl, Refs: ctl.Mappings.Refs()}
	if !c.Started.IsZero() && !c.Finished.IsZero() {
		cv.Duration = c.Finished.Sub(c.Started).Round(time.Millisecond).String()
	}
	for _, o := range c.Observations {
		if o.Role == RoleControl {
			cv.Controls++
		} else {
			cv.Tests++
		}
		switch st := o.Judged(); {
		case st == StatusFail:
			cv.Failing = append(cv.Failing, o)
			if o.Role == RoleControl {
				cv.BadControls++
			}
		case st == StatusUnproven:
			cv.Unproven = append(cv.Unproven, o)
		case st == StatusNotApplicable:
			cv.NotApplicable = append(cv.NotApplicable, o)
		case o.Role == RoleTest:
			cv.Proven++
		}
	}
	for _, t := range TruthTables(c.Observations) {
		tv := tableView{Method: t.Method, Cols: t.Cols, Mismatches: t.Mismatches(), Unproven: t.Unproven()}
		for _, row := range t.Rows {
			tr := tableRow{Name: row}
			for _, col := range t.Cols {
				if cell, ok := t.Cells[row][col]; ok {
					tr.Cells = append(tr.Cells, htmlCell(row, col, cell))
				} else {
					tr.Cells = append(tr.Cells, tableCell{Text: "–", Class: "none", Title: "not probed"})
				}
			}
			tv.Rows = append(tv.Rows, tr)
		}
		cv.Tables = append(cv.Tables, tv)
	}
	return cv
}

// htmlCell is a truth-table cell: its class by status and role, the
// observed outcome marked as in TruthTable.Text, and the full story
// (expectation, rounds, why) in its title.
func htmlCell(row, col string, c Cell) tableCell {
	class, mark := "ok", ""
	switch {
	case c.Status == StatusFail && c.Role == RoleControl:
		class, mark = "badctl", "? "
	case c.Status == StatusFail:
		class, mark = "bad", "! "
	case c.Status == StatusUnproven:
		class, mark = "unproven", "~ "
	case c.Status == StatusNotApplicable:
		class = "na"
	case c.Role == RoleControl:
		class = "okctl"
	}
	text := mark + c.Observed
	if c.Status == StatusNotApplicable {
		text = "n/a"
	}
	title := fmt.Sprintf("%s -> %s (%s): expected %s, observed %s", row, col, c.Role, c.Expected, c.Observed)
	if c.Status != StatusPass {
		title += "; " + string(c.Status)
		if r := c.InRounds(); r != "" {
			text += " " + r
			title += fmt.Sprintf(" in %d of %d rounds (%s)", len(c.WorstRounds), c.Rounds, roundList(c.WorstRounds))
		}
		if c.Why != "" {
			title += ": " + c.Why
		}
	} else if c.Rounds > 1 {
		title += fmt.Sprintf("; pass in all %d rounds", c.Rounds)
	}
	return tableCell{Text: text, Class: class, Title: title}
}

// roundList names rounds: "round 2, 3".
func roundList(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return "round " + strings.Join(parts, ", ")
}

// frameworkViews lists, per framework, every mapped ID with the checks that
// map to it and their combined status: fail if any failed, else error if
// any could not run, else unproven if any was not proven, else waived,
// else pass if at least one passed (noting checks not evaluated), else
// not evaluated.
func frameworkViews(cat Catalogue, r *Results, verdicts map[string]Verdict) []frameworkView {
	type key struct{ fw, id string }
	checksOf := map[key][]string{}
	byFW := map[string][]string{}
	controls := map[string]Control{}
	for id, ctl := range cat {
		controls[id] = ctl
	}
	for _, c := range r.Checks {
		if _, ok := controls[c.ID]; !ok {
			controls[c.ID] = cat.For(c)
		}
	}
	ids := make([]string, 0, len(controls))
	for id := range controls {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, ref := range controls[id].Mappings.Refs() {
			k := key{ref.Framework, ref.ID}
			if len(checksOf[k]) == 0 {
				byFW[ref.Framework] = append(byFW[ref.Framework], ref.ID)
			}
			checksOf[k] = append(checksOf[k], id)
		}
	}
	fws := make([]string, 0, len(byFW))
	for fw := range byFW {
		fws = append(fws, fw)
	}
	sort.Slice(fws, func(i, j int) bool { return frameworkOrder(fws[i]) < frameworkOrder(fws[j]) })
	var out []frameworkView
	for _, fw := range fws {
		fv := frameworkView{Key: fw, Name: FrameworkName(fw)}
		mapped := byFW[fw]
		sort.Slice(mapped, func(i, j int) bool { return naturalLess(mapped[i], mapped[j]) })
		for _, id := range mapped {
			row := frameworkRow{ID: id}
			counts := map[Verdict]int{}
			notEval := 0
			for _, cid := range checksOf[key{fw, id}] {
				v, ran := verdicts[cid]
				ref := checkRef{ID: cid, Verdict: string(v)}
				if !ran || v == Skipped {
					ref.Verdict = "not-evaluated"
					notEval++
				}
				counts[v]++
				row.Checks = append(row.Checks, ref)
			}
			switch {
			case counts[Fail] > 0:
				row.Status = "fail"
				fv.Fail++
			case counts[Error] > 0:
				row.Status = "error"
				fv.Error++
			case counts[Unproven] > 0:
				row.Status = "unproven"
				fv.Unproven++
			case counts[Waived] > 0:
				row.Status = "waived"
				fv.Waived++
			case counts[Pass] > 0:
				row.Status = "pass"
				fv.Pass++
			default:
				row.Status = "not-evaluated"
				fv.NotRun++
			}
			if notEval > 0 && row.Status != "not-evaluated" {
				row.Note = fmt.Sprintf("%d of %d mapped checks not evaluated", notEval, len(row.Checks))
			}
			fv.Rows = append(fv.Rows, row)
		}
		out = append(out, fv)
	}
	return out
}

// naturalLess orders "5.3.10" after "5.3.2" and "AC-10" after "AC-4".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, ra := leadingNumber(a)
		db, rb := leadingNumber(b)
		if da >= 0 && db >= 0 {
			if da != db {
				return da < db
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func leadingNumber(s string) (int, string) {
	n, i := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && i < 9 {
		n = n*10 + int(s[i]-'0')
		i++
	}
	if i == 0 {
		return -1, s
	}
	return n, s[i:]
}
