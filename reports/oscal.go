package reports

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bulkhead-k8s/bulkhead/reports/oscal"
)

// OSCALFile is the OSCAL Assessment Results file name inside a report directory.
const OSCALFile = "oscal-assessment-results.json"

const (
	// oscalNamespace is bulkhead's UUIDv5 namespace: every UUID of an OSCAL
	// document is derived from it, the run ID and the element's path.
	oscalNamespace = "004884f9-daf0-4af9-a860-6cc5b92d4c80"
	// OSCALPropNS qualifies bulkhead's OSCAL props (names outside OSCAL's own).
	OSCALPropNS = "https://bulkhead.dev/ns/oscal"
	// OSCALCatalogHref is where bulkhead's control catalogue (the
	// control-ids of reviewed-controls) lives.
	OSCALCatalogHref = "https://github.com/bulkhead-k8s/bulkhead/tree/main/reports/catalogue"
	// oscalEvidenceListed bounds the failing observations an OSCAL
	// observation lists one by one (all are in results.json).
	oscalEvidenceListed = 50
)

func oscalTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func prop(name, value string) oscal.Property {
	return oscal.Property{Name: name, NS: OSCALPropNS, Value: strings.TrimSpace(value)}
}

// interrupted is the "interrupted" property's value: set only when it is true.
func interrupted(s Summary) string {
	if s.Interrupted {
		return "true"
	}
	return ""
}

// props drops empty values (the schema forbids them).
func props(ps ...oscal.Property) []oscal.Property {
	var out []oscal.Property
	for _, p := range ps {
		if strings.TrimSpace(p.Value) != "" {
			out = append(out, p)
		}
	}
	return out
}

// OSCAL renders results as an OSCAL 1.0.4 Assessment Results document:
// one result per run; reviewed-controls selects the catalogue's controls
// (bulkhead check IDs) that were evaluated and excludes the rest; a finding
// per evaluated control with satisfied / not-satisfied; an observation per
// check summarizing its evidence (counts, the failing observations one by
// one, then the unproven ones); a risk per failed or waived control.
// Checks that are unproven, could not run or were not evaluated have an
// observation saying why, but no finding, and are excluded from the
// reviewed controls: OSCAL's not-satisfied is for observed failures and
// satisfied needs proof, and it has no "not assessed" state. UUIDs are name-based
// and timestamps come from the results, so rendering the same results
// again gives the same bytes.
func OSCAL(r *Results, cat Catalogue) ([]byte, error) {
	doc, err := oscalDocument(r, cat)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode OSCAL: %w", err)
	}
	return append(out, '\n'), nil
}

// oscalDoc builds one document: the run's results, the catalogue, and
// what every section shares (UUIDs, origins, the components).
type oscalDoc struct {
	r       *Results
	cat     Catalogue
	version string
	origins []oscal.Origin
	// toolUUID is bulkhead's component, clusterUUID the cluster's;
	// tenantUUID the inventory item of each tenant.
	toolUUID, clusterUUID string
	tenantUUID            map[string]string
}

// id is the UUID of the element at path in this run's document.
func (d *oscalDoc) id(path string) string { return oscal.UUIDv5(oscalNamespace, d.r.Run.ID+"/"+path) }

func oscalDocument(r *Results, cat Catalogue) (*oscal.Document, error) {
	if r.Run.ID == "" {
		return nil, fmt.Errorf("OSCAL: results have no run ID")
	}
	start, end, err := oscalPeriod(r)
	if err != nil {
		return nil, err
	}
	d := &oscalDoc{r: r, cat: cat, version: r.Run.Bulkhead.Version, tenantUUID: map[string]string{}}
	if d.version == "" {
		d.version = "unknown"
	}
	d.toolUUID = d.id("component/bulkhead")
	d.clusterUUID = d.id("component/cluster")
	d.origins = []oscal.Origin{{Actors: []oscal.OriginActor{{Type: "tool", ActorUUID: d.toolUUID}}}}
	result, err := d.result(start, end)
	if err != nil {
		return nil, err
	}
	backMatterUUID := d.id("resource/catalogue")
	return &oscal.Document{AssessmentResults: oscal.AssessmentResults{
		UUID:     d.id("assessment-results"),
		Metadata: d.metadata(end),
		ImportAP: oscal.ImportAP{
			Href:    "#" + backMatterUUID,
			Remarks: "bulkhead has no separate assessment plan: the plan is its control catalogue (see back-matter), every control of which is a check that bulkhead runs.",
		},
		Results:    []oscal.Result{result},
		BackMatter: d.backMatter(backMatterUUID),
	}}, nil
}

// oscalPeriod is when the assessment ran: the run's start and end, widened
// to every check's.
func oscalPeriod(r *Results) (start, end time.Time, err error) {
	start, end = r.Run.Started, r.Run.Finished
	for _, c := range r.Checks {
		if start.IsZero() || (!c.Started.IsZero() && c.Started.Before(start)) {
			start = c.Started
		}
		if c.Finished.After(end) {
			end = c.Finished
		}
	}
	if start.IsZero() || end.IsZero() {
		return start, end, fmt.Errorf("OSCAL: results of run %s have no start or end time", r.Run.ID)
	}
	return start, end, nil
}

// metadata is the document's metadata section.
func (d *oscalDoc) metadata(end time.Time) oscal.Metadata {
	return oscal.Metadata{
		Title:        "bulkhead tenant-isolation assessment results, run " + d.r.Run.ID,
		Published:    oscalTime(end),
		LastModified: oscalTime(end),
		Version:      d.version,
		OSCALVersion: oscal.Version,
		Props:        props(prop("run-id", d.r.Run.ID), prop("results-schema", d.r.Schema)),
	}
}

// backMatter holds the catalogue as the assessment plan's stand-in.
func (d *oscalDoc) backMatter(uuid string) *oscal.BackMatter {
	return &oscal.BackMatter{Resources: []oscal.Resource{{
		UUID:        uuid,
		Title:       "bulkhead control catalogue",
		Description: fmt.Sprintf("The controls bulkhead %s evaluates (%d): %s. Each maps to the CIS Kubernetes Benchmark, the NSA/CISA Kubernetes Hardening Guide, the Multi-Tenancy Benchmarks, NIST SP 800-53 Rev. 5, NIST SP 800-190 and PCI DSS 4.0 where applicable (see the findings' props).", d.version, len(d.cat), strings.Join(d.cat.IDs(), ", ")),
		RLinks:      []oscal.RLink{{Href: OSCALCatalogHref}},
	}}}
}

// result is the run's one result: local definitions, reviewed controls,
// observations, risks and findings.
func (d *oscalDoc) result(start, end time.Time) (oscal.Result, error) {
	defs := d.localDefinitions() // first: it records the tenants' UUIDs the observations name
	a, err := d.assess()
	if err != nil {
		return oscal.Result{}, err
	}
	return oscal.Result{
		UUID:  d.id("result"),
		Title: "bulkhead tenant-isolation run " + d.r.Run.ID,
		Description: fmt.Sprintf("bulkhead proved tenant isolation on cluster %s by trying it: from inside probe pods and as the tenants against the API server. %s.",
			orNone(d.r.Run.Cluster.Context), Headline(d.r)),
		Start:            oscalTime(start),
		End:              oscalTime(end),
		Props:            d.runProps(),
		LocalDefinitions: defs,
		ReviewedControls: oscal.ReviewedControls{ControlSelections: []oscal.ControlSelection{a.selection()}},
		Observations:     a.observations,
		Risks:            a.risks,
		Findings:         a.findings,
	}, nil
}

// runProps describe the run: what ran and the verdict counts.
func (d *oscalDoc) runProps() []oscal.Property {
	r, s := d.r, d.r.Summarize()
	return props(
		prop("run-id", r.Run.ID), prop("frontend", r.Run.Frontend),
		prop("bulkhead-version", d.version), prop("bulkhead-commit", r.Run.Bulkhead.Commit),
		prop("probe-image", r.Run.ProbeImage), prop("selection", selectionText(r.Run.Selection)),
		prop("run-verdict", string(s.Verdict())),
		prop("checks-passed", fmt.Sprint(s.Pass)), prop("checks-failed", fmt.Sprint(s.Fail)), prop("checks-unproven", fmt.Sprint(s.Unproven)),
		prop("checks-error", fmt.Sprint(s.Error)), prop("checks-skipped", fmt.Sprint(s.Skipped)),
		prop("checks-waived", fmt.Sprint(s.Waived)), prop("interrupted", interrupted(s)),
	)
}

// localDefinitions are the cluster under test, its tenants (inventory
// items) and bulkhead itself (the assessment asset).
func (d *oscalDoc) localDefinitions() *oscal.LocalDefinitions {
	cl := d.r.Run.Cluster
	return &oscal.LocalDefinitions{
		Components: []oscal.Component{{
			UUID: d.clusterUUID, Type: "this-system",
			Title:       "Kubernetes cluster " + orNone(cl.Context),
			Description: fmt.Sprintf("The cluster under test: Kubernetes %s, CNI %s, %d nodes, API server %s.", orNone(cl.KubernetesVersion), orNone(strings.TrimSpace(cl.CNI+" "+cl.CNIVersion)), cl.Nodes, orNone(cl.Server)),
			Props: props(prop("kubernetes-version", cl.KubernetesVersion), prop("cni", cl.CNI), prop("cni-version", cl.CNIVersion),
				prop("nodes", fmt.Sprint(cl.Nodes)), prop("disposable", fmt.Sprint(cl.Disposable)), prop("context", cl.Context), prop("server", cl.Server)),
			Status: oscal.ComponentStatus{State: "operational"},
		}},
		InventoryItems: d.inventory(),
		AssessmentAssets: &oscal.AssessmentAssets{
			Components: []oscal.Component{{
				UUID: d.toolUUID, Type: "software", Title: "bulkhead " + d.version,
				Description: "bulkhead, the Kubernetes tenant-isolation conformance suite.",
				Props:       props(prop("version", d.version), prop("commit", d.r.Run.Bulkhead.Commit)),
				Status:      oscal.ComponentStatus{State: "operational"},
			}},
			AssessmentPlatforms: []oscal.AssessmentPlatform{{
				UUID: d.id("platform"), Title: "bulkhead (" + orNone(d.r.Run.Frontend) + ")",
				UsesComponents: []oscal.UsesComponent{{ComponentUUID: d.toolUUID}},
			}},
		},
	}
}

// inventory makes an inventory item per tenant and records its UUID for
// the observations' subjects.
func (d *oscalDoc) inventory() []oscal.InventoryItem {
	var items []oscal.InventoryItem
	for _, t := range d.r.Run.Tenants {
		u := d.id("tenant/" + t.Name)
		d.tenantUUID[t.Name] = u
		kind := "isolated tenant"
		if !t.Isolated {
			kind = "unprotected control namespace (no NetworkPolicy, no tenant RBAC)"
		}
		if t.Reference {
			kind += ", created by bulkhead from its reference fixtures"
		}
		items = append(items, oscal.InventoryItem{
			UUID:        u,
			Description: fmt.Sprintf("Tenant %s: %s; namespaces %s.", t.Name, kind, strings.Join(t.Namespaces, ", ")),
			Props: props(prop("tenant", t.Name), prop("namespaces", strings.Join(t.Namespaces, " ")),
				prop("isolated", fmt.Sprint(t.Isolated)), prop("identities", strings.Join(t.Identities, "; "))),
		})
	}
	return items
}

// oscalAssessment is what the checks say: an observation each, a finding
// and maybe a risk for each evaluated one, and which controls were
// evaluated.
type oscalAssessment struct {
	include, exclude       []oscal.SelectControl
	notEvaluated, unproven []string
	observations           []oscal.Observation
	findings               []oscal.Finding
	risks                  []oscal.Risk
}

func (d *oscalDoc) assess() (*oscalAssessment, error) {
	a := &oscalAssessment{}
	for i, c := range d.r.Checks {
		ctl := d.cat.For(c)
		obsUUID := d.id("observation/" + c.ID)
		a.observations = append(a.observations, d.observation(c, i, obsUUID))
		switch c.Verdict {
		case Error, Skipped:
			a.exclude = append(a.exclude, oscal.SelectControl{ControlID: c.ID})
			a.notEvaluated = append(a.notEvaluated, fmt.Sprintf("%s (%s: %s)", c.ID, c.Verdict, c.Reason))
			continue
		case Unproven:
			a.exclude = append(a.exclude, oscal.SelectControl{ControlID: c.ID})
			a.unproven = append(a.unproven, fmt.Sprintf("%s (%s)", c.ID, c.Reason))
			continue
		}
		a.include = append(a.include, oscal.SelectControl{ControlID: c.ID})
		f, err := d.finding(c, ctl, obsUUID)
		if err != nil {
			return nil, err
		}
		if c.Verdict != Pass {
			risk := d.risk(c, ctl, obsUUID)
			a.risks = append(a.risks, risk)
			f.RelatedRisks = []oscal.RelatedRisk{{RiskUUID: risk.UUID}}
		}
		a.findings = append(a.findings, f)
	}
	for _, ctl := range d.cat.NotEvaluated(d.r) {
		a.exclude = append(a.exclude, oscal.SelectControl{ControlID: ctl.ID})
		a.notEvaluated = append(a.notEvaluated, ctl.ID+" (not run)")
	}
	return a, nil
}

// selection is the reviewed controls: evaluated ones included, the rest
// excluded with why.
func (a *oscalAssessment) selection() oscal.ControlSelection {
	sel := oscal.ControlSelection{
		Description:     "Controls of the bulkhead catalogue (control-id = bulkhead check ID) evaluated in this run; excluded controls were not evaluated, or not proven.",
		Links:           []oscal.Link{{Href: OSCALCatalogHref, Rel: "reference", Text: "bulkhead control catalogue"}},
		IncludeControls: a.include,
		ExcludeControls: a.exclude,
	}
	var remarks []string
	if len(a.notEvaluated) > 0 {
		remarks = append(remarks, "Not evaluated: "+strings.Join(a.notEvaluated, "; ")+".")
	}
	if len(a.unproven) > 0 {
		remarks = append(remarks, "Not proven (nothing leaked, but not every tested path was shown to work where it should): "+strings.Join(a.unproven, "; ")+".")
	}
	sel.Remarks = strings.Join(remarks, "\n")
	return sel
}

// finding is an evaluated check's objective status.
func (d *oscalDoc) finding(c CheckResult, ctl Control, obsUUID string) (oscal.Finding, error) {
	f := oscal.Finding{
		UUID:        d.id("finding/" + c.ID),
		Title:       c.ID + " " + ctl.Title,
		Description: ctl.Description,
		Props:       controlProps(c, ctl),
		Origins:     d.origins,
		Target: oscal.FindingTarget{
			Type:     "objective-id",
			TargetID: c.ID + "_obj",
			Title:    c.Proves,
		},
		RelatedObservations: []oscal.RelatedObservation{{ObservationUUID: obsUUID}},
	}
	switch c.Verdict {
	case Pass:
		f.Target.Status = oscal.ObjectiveStatus{State: "satisfied", Reason: "pass"}
	case Fail:
		f.Target.Status = oscal.ObjectiveStatus{State: "not-satisfied", Reason: "fail", Remarks: c.Reason}
	case Waived:
		f.Target.Status = oscal.ObjectiveStatus{State: "not-satisfied", Reason: "other",
			Remarks: "Failed, and the failure is accepted by an active waiver: " + waiverText(c.Waiver) + ". Failure: " + c.Reason}
	default:
		return f, fmt.Errorf("OSCAL: check %s has unknown verdict %q", c.ID, c.Verdict)
	}
	return f, nil
}

// risk is what a failed or waived check leaves open (or, waived,
// approved as a deviation until the waiver ends).
func (d *oscalDoc) risk(c CheckResult, ctl Control, obsUUID string) oscal.Risk {
	risk := oscal.Risk{
		UUID:                d.id("risk/" + c.ID),
		Title:               c.ID + " " + ctl.Title + " does not hold",
		Description:         ctl.Description,
		Statement:           c.Reason,
		Props:               props(prop("severity", string(ctl.Severity))),
		Status:              "open",
		Origins:             d.origins,
		RelatedObservations: []oscal.RelatedObservation{{ObservationUUID: obsUUID}},
		Remediations: []oscal.Response{{
			UUID: d.id("risk/" + c.ID + "/remediation"), Lifecycle: "recommendation",
			Title: "Remediate " + c.ID, Description: ctl.Remediation,
		}},
	}
	if risk.Statement == "" {
		risk.Statement = "The check failed."
	}
	if c.Verdict == Waived && c.Waiver != nil {
		risk.Status = "deviation-approved"
		risk.Deadline = oscalTime(waiverEnd(c.Waiver))
	}
	return risk
}

func controlProps(c CheckResult, ctl Control) []oscal.Property {
	ps := []oscal.Property{prop("check-id", c.ID), prop("area", c.Area), prop("verdict", string(c.Verdict)), prop("severity", string(ctl.Severity))}
	for _, ref := range ctl.Mappings.Refs() {
		p := prop(ref.Framework, ref.ID)
		p.Class = "framework-mapping"
		ps = append(ps, p)
	}
	return props(ps...)
}

func waiverEnd(w *WaiverRef) time.Time {
	if w.Expires.Hour() == 0 && w.Expires.Minute() == 0 && w.Expires.Second() == 0 && w.Expires.Nanosecond() == 0 {
		return w.Expires.AddDate(0, 0, 1) // a date: the waiver holds through that day
	}
	return w.Expires
}

func waiverText(w *WaiverRef) string {
	if w == nil {
		return "waiver"
	}
	s := fmt.Sprintf("%q until %s", w.Justification, w.Expires.Format(time.DateOnly))
	if w.Namespace != "" {
		s += " for namespace " + w.Namespace
	}
	if w.Source != "" {
		s += " (" + w.Source + ")"
	}
	return s
}

// observation summarizes a check's evidence: counts, methods, the tenants
// it touched, and the failing and unproven observations one by one. An
// unproven check's observation says in its remarks why it has no finding.
func (d *oscalDoc) observation(c CheckResult, index int, uuid string) oscal.Observation {
	var tests, controls int
	methods := map[string]int{}
	var failing, unproven []Observation
	na := 0
	for _, o := range c.Observations {
		if o.Role == RoleControl {
			controls++
		} else {
			tests++
		}
		methods[o.Method]++
		switch {
		case o.Failed():
			failing = append(failing, o)
		case o.Status == StatusUnproven:
			unproven = append(unproven, o)
		case o.Status == StatusNotApplicable:
			na++
		}
	}
	var methodList []string
	for m, n := range methods {
		methodList = append(methodList, fmt.Sprintf("%s (%d)", m, n))
	}
	sort.Strings(methodList)
	collected := c.Finished
	if collected.IsZero() {
		collected = d.r.Run.Finished
	}
	var desc string
	switch c.Verdict {
	case Error, Skipped:
		desc = fmt.Sprintf("%s %s was not evaluated (%s): %s", c.ID, c.Title, c.Verdict, c.Reason)
	default:
		desc = fmt.Sprintf("%s %s: %s. %d observations (%d tested paths, %d positive controls), %d not as expected", c.ID, c.Title, strings.ToUpper(string(c.Verdict)), len(c.Observations), tests, controls, len(failing))
		if len(unproven) > 0 {
			desc += fmt.Sprintf(", %d unproven", len(unproven))
		}
		if na > 0 {
			desc += fmt.Sprintf(", %d not applicable", na)
		}
		desc += "."
		if len(methodList) > 0 {
			desc += " Methods: " + strings.Join(methodList, ", ") + "."
		}
	}
	ps := []oscal.Property{prop("check-id", c.ID), prop("verdict", string(c.Verdict)), prop("observations", fmt.Sprint(len(c.Observations))),
		prop("tested-paths", fmt.Sprint(tests)), prop("positive-controls", fmt.Sprint(controls)), prop("not-as-expected", fmt.Sprint(len(failing)))}
	if len(unproven) > 0 {
		ps = append(ps, prop("unproven", fmt.Sprint(len(unproven))))
	}
	if na > 0 {
		ps = append(ps, prop("not-applicable", fmt.Sprint(na)))
	}
	ob := oscal.Observation{
		UUID:        uuid,
		Title:       c.ID + " evidence",
		Description: desc,
		Props:       props(ps...),
		Methods:     []string{"TEST"},
		Types:       []string{"control-objective"},
		Origins:     d.origins,
		Subjects:    d.subjects(c),
		Collected:   oscalTime(collected),
	}
	var remarks []string
	if c.Verdict == Unproven {
		remarks = append(remarks, "Not proven, so no finding: nothing leaked, but not every tested path was shown to work where it should, and OSCAL's not-satisfied is for observed failures. "+c.Reason)
	}
	ob.Remarks = strings.Join(append(remarks, c.Notes...), "\n")
	ob.RelevantEvidence = append([]oscal.RelevantEvidence{{
		Href:        fmt.Sprintf("%s#/checks/%d", ResultsFile, index),
		Description: fmt.Sprintf("All %d observations of %s (actor, target, method, expected and observed outcome, detail, time) in the results file of run %s.", len(c.Observations), c.ID, d.r.Run.ID),
	}}, evidenceList(failing, index, "observations not as expected")...)
	ob.RelevantEvidence = append(ob.RelevantEvidence, evidenceList(unproven, index, "unproven observations")...)
	return ob
}

// subjects are the cluster and the tenants a check's observations name.
func (d *oscalDoc) subjects(c CheckResult) []oscal.SubjectReference {
	tenants := map[string]bool{}
	for _, o := range c.Observations {
		for _, t := range []string{o.Actor.Tenant, o.Target.Tenant} {
			if t != "" {
				tenants[t] = true
			}
		}
	}
	out := []oscal.SubjectReference{{SubjectUUID: d.clusterUUID, Type: "component", Title: "cluster under test"}}
	tnames := make([]string, 0, len(tenants))
	for t := range tenants {
		tnames = append(tnames, t)
	}
	sort.Strings(tnames)
	for _, t := range tnames {
		if u, ok := d.tenantUUID[t]; ok {
			out = append(out, oscal.SubjectReference{SubjectUUID: u, Type: "inventory-item", Title: "tenant " + t})
		}
	}
	return out
}

// evidenceList lists observations one by one as relevant evidence, up to
// oscalEvidenceListed, then points at the results file for the rest
// ("N more <what>").
func evidenceList(obs []Observation, index int, what string) []oscal.RelevantEvidence {
	var out []oscal.RelevantEvidence
	for i, o := range obs {
		if i == oscalEvidenceListed {
			out = append(out, oscal.RelevantEvidence{
				Href:        fmt.Sprintf("%s#/checks/%d/observations", ResultsFile, index),
				Description: fmt.Sprintf("%d more %s; see the results file.", len(obs)-oscalEvidenceListed, what),
			})
			break
		}
		ev := oscal.RelevantEvidence{
			Description: fmt.Sprintf("[%s] %s", o.Role, describeObservation(o)),
			Props: props(prop("role", string(o.Role)), prop("method", o.Method), prop("expected", o.Expected), prop("observed", o.Observed),
				prop("actor-namespace", o.Actor.Namespace), prop("actor-pod", o.Actor.Pod), prop("actor-identity", o.Actor.Identity),
				prop("target-namespace", o.Target.Namespace), prop("target-name", o.Target.Name), prop("target-address", o.Target.Address),
				prop("at", nonZeroTime(o.At)), prop("status", string(o.Status)), prop("round", roundText(o.Round)), prop("why", o.Why)),
		}
		if o.Detail != "" {
			ev.Remarks = o.Detail
		}
		out = append(out, ev)
	}
	return out
}

func roundText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

func nonZeroTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return oscalTime(t)
}
