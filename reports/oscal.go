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
// one); a risk per failed or waived control. Checks that errored or were
// skipped have an observation saying why, but no finding: OSCAL has no
// "not assessed" state, and they were not assessed. UUIDs are name-based
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

func oscalDocument(r *Results, cat Catalogue) (*oscal.Document, error) {
	if r.Run.ID == "" {
		return nil, fmt.Errorf("OSCAL: results have no run ID")
	}
	start, end := r.Run.Started, r.Run.Finished
	for _, c := range r.Checks {
		if start.IsZero() || (!c.Started.IsZero() && c.Started.Before(start)) {
			start = c.Started
		}
		if c.Finished.After(end) {
			end = c.Finished
		}
	}
	if start.IsZero() || end.IsZero() {
		return nil, fmt.Errorf("OSCAL: results of run %s have no start or end time", r.Run.ID)
	}
	id := func(path string) string { return oscal.UUIDv5(oscalNamespace, r.Run.ID+"/"+path) }
	version := r.Run.Bulkhead.Version
	if version == "" {
		version = "unknown"
	}
	s := r.Summarize()
	cl := r.Run.Cluster

	toolUUID := id("component/bulkhead")
	clusterUUID := id("component/cluster")
	origins := []oscal.Origin{{Actors: []oscal.OriginActor{{Type: "tool", ActorUUID: toolUUID}}}}
	tenantUUID := map[string]string{}
	var inventory []oscal.InventoryItem
	for _, t := range r.Run.Tenants {
		u := id("tenant/" + t.Name)
		tenantUUID[t.Name] = u
		kind := "isolated tenant"
		if !t.Isolated {
			kind = "unprotected control namespace (no NetworkPolicy, no tenant RBAC)"
		}
		if t.Reference {
			kind += ", created by bulkhead from its reference fixtures"
		}
		inventory = append(inventory, oscal.InventoryItem{
			UUID:        u,
			Description: fmt.Sprintf("Tenant %s: %s; namespaces %s.", t.Name, kind, strings.Join(t.Namespaces, ", ")),
			Props: props(prop("tenant", t.Name), prop("namespaces", strings.Join(t.Namespaces, " ")),
				prop("isolated", fmt.Sprint(t.Isolated)), prop("identities", strings.Join(t.Identities, "; "))),
		})
	}
	backMatterUUID := id("resource/catalogue")

	var include, exclude []oscal.SelectControl
	var notEvaluated []string
	var observations []oscal.Observation
	var findings []oscal.Finding
	var risks []oscal.Risk
	for i, c := range r.Checks {
		ctl := cat.For(c)
		obsUUID := id("observation/" + c.ID)
		observations = append(observations, oscalObservation(r, c, i, obsUUID, origins, clusterUUID, tenantUUID))
		switch c.Verdict {
		case Error, Skipped:
			exclude = append(exclude, oscal.SelectControl{ControlID: c.ID})
			notEvaluated = append(notEvaluated, fmt.Sprintf("%s (%s: %s)", c.ID, c.Verdict, c.Reason))
			continue
		}
		include = append(include, oscal.SelectControl{ControlID: c.ID})
		f := oscal.Finding{
			UUID:        id("finding/" + c.ID),
			Title:       c.ID + " " + ctl.Title,
			Description: ctl.Description,
			Props:       controlProps(c, ctl),
			Origins:     origins,
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
			return nil, fmt.Errorf("OSCAL: check %s has unknown verdict %q", c.ID, c.Verdict)
		}
		if c.Verdict != Pass {
			riskUUID := id("risk/" + c.ID)
			risk := oscal.Risk{
				UUID:                riskUUID,
				Title:               c.ID + " " + ctl.Title + " does not hold",
				Description:         ctl.Description,
				Statement:           c.Reason,
				Props:               props(prop("severity", string(ctl.Severity))),
				Status:              "open",
				Origins:             origins,
				RelatedObservations: []oscal.RelatedObservation{{ObservationUUID: obsUUID}},
				Remediations: []oscal.Response{{
					UUID: id("risk/" + c.ID + "/remediation"), Lifecycle: "recommendation",
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
			risks = append(risks, risk)
			f.RelatedRisks = []oscal.RelatedRisk{{RiskUUID: riskUUID}}
		}
		findings = append(findings, f)
	}
	for _, ctl := range cat.NotEvaluated(r) {
		exclude = append(exclude, oscal.SelectControl{ControlID: ctl.ID})
		notEvaluated = append(notEvaluated, ctl.ID+" (not run)")
	}
	selection := oscal.ControlSelection{
		Description:     "Controls of the bulkhead catalogue (control-id = bulkhead check ID) evaluated in this run; excluded controls were not evaluated.",
		Links:           []oscal.Link{{Href: OSCALCatalogHref, Rel: "reference", Text: "bulkhead control catalogue"}},
		IncludeControls: include,
		ExcludeControls: exclude,
	}
	if len(notEvaluated) > 0 {
		selection.Remarks = "Not evaluated: " + strings.Join(notEvaluated, "; ") + "."
	}

	runProps := props(
		prop("run-id", r.Run.ID), prop("frontend", r.Run.Frontend),
		prop("bulkhead-version", version), prop("bulkhead-commit", r.Run.Bulkhead.Commit),
		prop("probe-image", r.Run.ProbeImage), prop("selection", selectionText(r.Run.Selection)),
		prop("checks-passed", fmt.Sprint(s.Pass)), prop("checks-failed", fmt.Sprint(s.Fail)),
		prop("checks-error", fmt.Sprint(s.Error)), prop("checks-skipped", fmt.Sprint(s.Skipped)),
		prop("checks-waived", fmt.Sprint(s.Waived)), prop("interrupted", interrupted(s)),
	)
	result := oscal.Result{
		UUID:  id("result"),
		Title: "bulkhead tenant-isolation run " + r.Run.ID,
		Description: fmt.Sprintf("bulkhead proved tenant isolation on cluster %s by trying it: from inside probe pods and as the tenants against the API server. %s.",
			orNone(cl.Context), Headline(r)),
		Start: oscalTime(start),
		End:   oscalTime(end),
		Props: runProps,
		LocalDefinitions: &oscal.LocalDefinitions{
			Components: []oscal.Component{{
				UUID: clusterUUID, Type: "this-system",
				Title:       "Kubernetes cluster " + orNone(cl.Context),
				Description: fmt.Sprintf("The cluster under test: Kubernetes %s, CNI %s, %d nodes, API server %s.", orNone(cl.KubernetesVersion), orNone(strings.TrimSpace(cl.CNI+" "+cl.CNIVersion)), cl.Nodes, orNone(cl.Server)),
				Props: props(prop("kubernetes-version", cl.KubernetesVersion), prop("cni", cl.CNI), prop("cni-version", cl.CNIVersion),
					prop("nodes", fmt.Sprint(cl.Nodes)), prop("disposable", fmt.Sprint(cl.Disposable)), prop("context", cl.Context), prop("server", cl.Server)),
				Status: oscal.ComponentStatus{State: "operational"},
			}},
			InventoryItems: inventory,
			AssessmentAssets: &oscal.AssessmentAssets{
				Components: []oscal.Component{{
					UUID: toolUUID, Type: "software", Title: "bulkhead " + version,
					Description: "bulkhead, the Kubernetes tenant-isolation conformance suite.",
					Props:       props(prop("version", version), prop("commit", r.Run.Bulkhead.Commit)),
					Status:      oscal.ComponentStatus{State: "operational"},
				}},
				AssessmentPlatforms: []oscal.AssessmentPlatform{{
					UUID: id("platform"), Title: "bulkhead (" + orNone(r.Run.Frontend) + ")",
					UsesComponents: []oscal.UsesComponent{{ComponentUUID: toolUUID}},
				}},
			},
		},
		ReviewedControls: oscal.ReviewedControls{ControlSelections: []oscal.ControlSelection{selection}},
		Observations:     observations,
		Risks:            risks,
		Findings:         findings,
	}
	if len(inventory) == 0 {
		result.LocalDefinitions.InventoryItems = nil
	}
	doc := &oscal.Document{AssessmentResults: oscal.AssessmentResults{
		UUID: id("assessment-results"),
		Metadata: oscal.Metadata{
			Title:        "bulkhead tenant-isolation assessment results, run " + r.Run.ID,
			Published:    oscalTime(end),
			LastModified: oscalTime(end),
			Version:      version,
			OSCALVersion: oscal.Version,
			Props:        props(prop("run-id", r.Run.ID), prop("results-schema", r.Schema)),
		},
		ImportAP: oscal.ImportAP{
			Href:    "#" + backMatterUUID,
			Remarks: "bulkhead has no separate assessment plan: the plan is its control catalogue (see back-matter), every control of which is a check that bulkhead runs.",
		},
		Results: []oscal.Result{result},
		BackMatter: &oscal.BackMatter{Resources: []oscal.Resource{{
			UUID:        backMatterUUID,
			Title:       "bulkhead control catalogue",
			Description: fmt.Sprintf("The controls bulkhead %s evaluates (%d): %s. Each maps to the CIS Kubernetes Benchmark, the NSA/CISA Kubernetes Hardening Guide, the Multi-Tenancy Benchmarks, NIST SP 800-53 Rev. 5, NIST SP 800-190 and PCI DSS 4.0 where applicable (see the findings' props).", version, len(cat), strings.Join(cat.IDs(), ", ")),
			RLinks:      []oscal.RLink{{Href: OSCALCatalogHref}},
		}}},
	}}
	return doc, nil
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

func oscalObservation(r *Results, c CheckResult, index int, uuid string, origins []oscal.Origin, clusterUUID string, tenantUUID map[string]string) oscal.Observation {
	var tests, controls, bad int
	methods := map[string]int{}
	tenants := map[string]bool{}
	var failing []Observation
	for _, o := range c.Observations {
		if o.Role == RoleControl {
			controls++
		} else {
			tests++
		}
		methods[o.Method]++
		if !o.OK {
			bad++
			failing = append(failing, o)
		}
		for _, t := range []string{o.Actor.Tenant, o.Target.Tenant} {
			if t != "" {
				tenants[t] = true
			}
		}
	}
	var methodList []string
	for m, n := range methods {
		methodList = append(methodList, fmt.Sprintf("%s (%d)", m, n))
	}
	sort.Strings(methodList)
	collected := c.Finished
	if collected.IsZero() {
		collected = r.Run.Finished
	}
	var desc string
	switch c.Verdict {
	case Error, Skipped:
		desc = fmt.Sprintf("%s %s was not evaluated (%s): %s", c.ID, c.Title, c.Verdict, c.Reason)
	default:
		desc = fmt.Sprintf("%s %s: %s. %d observations (%d tested paths, %d positive controls), %d not as expected.", c.ID, c.Title, strings.ToUpper(string(c.Verdict)), len(c.Observations), tests, controls, bad)
		if len(methodList) > 0 {
			desc += " Methods: " + strings.Join(methodList, ", ") + "."
		}
	}
	ob := oscal.Observation{
		UUID:        uuid,
		Title:       c.ID + " evidence",
		Description: desc,
		Props: props(prop("check-id", c.ID), prop("verdict", string(c.Verdict)), prop("observations", fmt.Sprint(len(c.Observations))),
			prop("tested-paths", fmt.Sprint(tests)), prop("positive-controls", fmt.Sprint(controls)), prop("not-as-expected", fmt.Sprint(bad))),
		Methods:   []string{"TEST"},
		Types:     []string{"control-objective"},
		Origins:   origins,
		Collected: oscalTime(collected),
	}
	if len(c.Notes) > 0 {
		ob.Remarks = strings.Join(c.Notes, "\n")
	}
	ob.Subjects = []oscal.SubjectReference{{SubjectUUID: clusterUUID, Type: "component", Title: "cluster under test"}}
	tnames := make([]string, 0, len(tenants))
	for t := range tenants {
		tnames = append(tnames, t)
	}
	sort.Strings(tnames)
	for _, t := range tnames {
		if u, ok := tenantUUID[t]; ok {
			ob.Subjects = append(ob.Subjects, oscal.SubjectReference{SubjectUUID: u, Type: "inventory-item", Title: "tenant " + t})
		}
	}
	ob.RelevantEvidence = []oscal.RelevantEvidence{{
		Href:        fmt.Sprintf("%s#/checks/%d", ResultsFile, index),
		Description: fmt.Sprintf("All %d observations of %s (actor, target, method, expected and observed outcome, detail, time) in the results file of run %s.", len(c.Observations), c.ID, r.Run.ID),
	}}
	for i, o := range failing {
		if i == oscalEvidenceListed {
			ob.RelevantEvidence = append(ob.RelevantEvidence, oscal.RelevantEvidence{
				Href:        fmt.Sprintf("%s#/checks/%d/observations", ResultsFile, index),
				Description: fmt.Sprintf("%d more observations not as expected; see the results file.", len(failing)-oscalEvidenceListed),
			})
			break
		}
		ev := oscal.RelevantEvidence{
			Description: fmt.Sprintf("[%s] %s", o.Role, describeObservation(o)),
			Props: props(prop("role", string(o.Role)), prop("method", o.Method), prop("expected", o.Expected), prop("observed", o.Observed),
				prop("actor-namespace", o.Actor.Namespace), prop("actor-pod", o.Actor.Pod), prop("actor-identity", o.Actor.Identity),
				prop("target-namespace", o.Target.Namespace), prop("target-name", o.Target.Name), prop("target-address", o.Target.Address),
				prop("at", nonZeroTime(o.At))),
		}
		if o.Detail != "" {
			ev.Remarks = o.Detail
		}
		ob.RelevantEvidence = append(ob.RelevantEvidence, ev)
	}
	return ob
}

func nonZeroTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return oscalTime(t)
}
