// Package oscal is the subset of the OSCAL 1.0.4 Assessment Results model
// (JSON) that bulkhead emits, and name-based UUIDs for it. There is no Go
// OSCAL library on the module proxy; these types follow NIST's JSON schema
// (oscal_assessment-results_schema-1.0.4.json), against which the tests of
// package reports validate every generated document. Field order is the
// schema's, so encoding is deterministic.
package oscal

import (
	"crypto/sha1"
	"fmt"
	"strings"
)

// Version is the OSCAL version the types follow.
const Version = "1.0.4"

// Document is the root: {"assessment-results": {...}}.
type Document struct {
	AssessmentResults AssessmentResults `json:"assessment-results"`
}

type AssessmentResults struct {
	UUID       string      `json:"uuid"`
	Metadata   Metadata    `json:"metadata"`
	ImportAP   ImportAP    `json:"import-ap"`
	Results    []Result    `json:"results"`
	BackMatter *BackMatter `json:"back-matter,omitempty"`
}

type Metadata struct {
	Title        string     `json:"title"`
	Published    string     `json:"published,omitempty"`
	LastModified string     `json:"last-modified"`
	Version      string     `json:"version"`
	OSCALVersion string     `json:"oscal-version"`
	Props        []Property `json:"props,omitempty"`
	Links        []Link     `json:"links,omitempty"`
	Roles        []Role     `json:"roles,omitempty"`
	Parties      []Party    `json:"parties,omitempty"`
	Remarks      string     `json:"remarks,omitempty"`
}

type Role struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type Party struct {
	UUID  string     `json:"uuid"`
	Type  string     `json:"type"` // person, organization
	Name  string     `json:"name,omitempty"`
	Props []Property `json:"props,omitempty"`
	Links []Link     `json:"links,omitempty"`
}

type Property struct {
	Name    string `json:"name"`
	UUID    string `json:"uuid,omitempty"`
	NS      string `json:"ns,omitempty"`
	Value   string `json:"value"`
	Class   string `json:"class,omitempty"`
	Remarks string `json:"remarks,omitempty"`
}

type Link struct {
	Href      string `json:"href"`
	Rel       string `json:"rel,omitempty"`
	MediaType string `json:"media-type,omitempty"`
	Text      string `json:"text,omitempty"`
}

type ImportAP struct {
	Href    string `json:"href"`
	Remarks string `json:"remarks,omitempty"`
}

type Result struct {
	UUID             string            `json:"uuid"`
	Title            string            `json:"title"`
	Description      string            `json:"description"`
	Start            string            `json:"start"`
	End              string            `json:"end,omitempty"`
	Props            []Property        `json:"props,omitempty"`
	Links            []Link            `json:"links,omitempty"`
	LocalDefinitions *LocalDefinitions `json:"local-definitions,omitempty"`
	ReviewedControls ReviewedControls  `json:"reviewed-controls"`
	Observations     []Observation     `json:"observations,omitempty"`
	Risks            []Risk            `json:"risks,omitempty"`
	Findings         []Finding         `json:"findings,omitempty"`
	Remarks          string            `json:"remarks,omitempty"`
}

type LocalDefinitions struct {
	Components       []Component       `json:"components,omitempty"`
	InventoryItems   []InventoryItem   `json:"inventory-items,omitempty"`
	AssessmentAssets *AssessmentAssets `json:"assessment-assets,omitempty"`
}

type Component struct {
	UUID        string          `json:"uuid"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Purpose     string          `json:"purpose,omitempty"`
	Props       []Property      `json:"props,omitempty"`
	Links       []Link          `json:"links,omitempty"`
	Status      ComponentStatus `json:"status"`
	Remarks     string          `json:"remarks,omitempty"`
}

type ComponentStatus struct {
	State   string `json:"state"` // under-development, operational, disposition, other
	Remarks string `json:"remarks,omitempty"`
}

type InventoryItem struct {
	UUID        string     `json:"uuid"`
	Description string     `json:"description"`
	Props       []Property `json:"props,omitempty"`
	Remarks     string     `json:"remarks,omitempty"`
}

type AssessmentAssets struct {
	Components          []Component          `json:"components,omitempty"`
	AssessmentPlatforms []AssessmentPlatform `json:"assessment-platforms"`
}

type AssessmentPlatform struct {
	UUID           string          `json:"uuid"`
	Title          string          `json:"title,omitempty"`
	Props          []Property      `json:"props,omitempty"`
	UsesComponents []UsesComponent `json:"uses-components,omitempty"`
}

type UsesComponent struct {
	ComponentUUID string `json:"component-uuid"`
}

type ReviewedControls struct {
	Description       string             `json:"description,omitempty"`
	Props             []Property         `json:"props,omitempty"`
	Links             []Link             `json:"links,omitempty"`
	ControlSelections []ControlSelection `json:"control-selections"`
	Remarks           string             `json:"remarks,omitempty"`
}

type ControlSelection struct {
	Description     string          `json:"description,omitempty"`
	Props           []Property      `json:"props,omitempty"`
	Links           []Link          `json:"links,omitempty"`
	IncludeControls []SelectControl `json:"include-controls,omitempty"`
	ExcludeControls []SelectControl `json:"exclude-controls,omitempty"`
	Remarks         string          `json:"remarks,omitempty"`
}

type SelectControl struct {
	ControlID string `json:"control-id"`
}

type Observation struct {
	UUID             string             `json:"uuid"`
	Title            string             `json:"title,omitempty"`
	Description      string             `json:"description"`
	Props            []Property         `json:"props,omitempty"`
	Methods          []string           `json:"methods"` // EXAMINE, INTERVIEW, TEST, UNKNOWN
	Types            []string           `json:"types,omitempty"`
	Origins          []Origin           `json:"origins,omitempty"`
	Subjects         []SubjectReference `json:"subjects,omitempty"`
	RelevantEvidence []RelevantEvidence `json:"relevant-evidence,omitempty"`
	Collected        string             `json:"collected"`
	Remarks          string             `json:"remarks,omitempty"`
}

type Origin struct {
	Actors []OriginActor `json:"actors"`
}

type OriginActor struct {
	Type      string `json:"type"` // tool, assessment-platform, party
	ActorUUID string `json:"actor-uuid"`
}

type SubjectReference struct {
	SubjectUUID string     `json:"subject-uuid"`
	Type        string     `json:"type"` // component, inventory-item, location, party, user
	Title       string     `json:"title,omitempty"`
	Props       []Property `json:"props,omitempty"`
	Remarks     string     `json:"remarks,omitempty"`
}

type RelevantEvidence struct {
	Href        string     `json:"href,omitempty"`
	Description string     `json:"description"`
	Props       []Property `json:"props,omitempty"`
	Remarks     string     `json:"remarks,omitempty"`
}

type Risk struct {
	UUID                string               `json:"uuid"`
	Title               string               `json:"title"`
	Description         string               `json:"description"`
	Statement           string               `json:"statement"`
	Props               []Property           `json:"props,omitempty"`
	Status              string               `json:"status"` // open, investigating, remediating, deviation-requested, deviation-approved, closed
	Origins             []Origin             `json:"origins,omitempty"`
	Deadline            string               `json:"deadline,omitempty"`
	Remediations        []Response           `json:"remediations,omitempty"`
	RelatedObservations []RelatedObservation `json:"related-observations,omitempty"`
}

type Response struct {
	UUID        string `json:"uuid"`
	Lifecycle   string `json:"lifecycle"` // recommendation, planned, completed
	Title       string `json:"title"`
	Description string `json:"description"`
	Remarks     string `json:"remarks,omitempty"`
}

type Finding struct {
	UUID                string               `json:"uuid"`
	Title               string               `json:"title"`
	Description         string               `json:"description"`
	Props               []Property           `json:"props,omitempty"`
	Origins             []Origin             `json:"origins,omitempty"`
	Target              FindingTarget        `json:"target"`
	RelatedObservations []RelatedObservation `json:"related-observations,omitempty"`
	RelatedRisks        []RelatedRisk        `json:"related-risks,omitempty"`
	Remarks             string               `json:"remarks,omitempty"`
}

type FindingTarget struct {
	Type     string          `json:"type"` // statement-id, objective-id
	TargetID string          `json:"target-id"`
	Title    string          `json:"title,omitempty"`
	Props    []Property      `json:"props,omitempty"`
	Status   ObjectiveStatus `json:"status"`
	Remarks  string          `json:"remarks,omitempty"`
}

type ObjectiveStatus struct {
	State   string `json:"state"` // satisfied, not-satisfied
	Reason  string `json:"reason,omitempty"`
	Remarks string `json:"remarks,omitempty"`
}

type RelatedObservation struct {
	ObservationUUID string `json:"observation-uuid"`
}

type RelatedRisk struct {
	RiskUUID string `json:"risk-uuid"`
}

type BackMatter struct {
	Resources []Resource `json:"resources"`
}

type Resource struct {
	UUID        string     `json:"uuid"`
	Title       string     `json:"title,omitempty"`
	Description string     `json:"description,omitempty"`
	Props       []Property `json:"props,omitempty"`
	Citation    *Citation  `json:"citation,omitempty"`
	RLinks      []RLink    `json:"rlinks,omitempty"`
	Remarks     string     `json:"remarks,omitempty"`
}

type Citation struct {
	Text string `json:"text"`
}

type RLink struct {
	Href      string `json:"href"`
	MediaType string `json:"media-type,omitempty"`
}

// UUIDv5 is the RFC 9562 name-based (SHA-1) UUID of name in namespace ns
// (a UUID string). The same inputs always give the same UUID, which is what
// makes re-rendering a report byte-identical.
func UUIDv5(ns, name string) string {
	nsb, err := parseUUID(ns)
	if err != nil {
		panic(err) // namespaces are constants
	}
	h := sha1.New()
	h.Write(nsb[:])
	h.Write([]byte(name))
	sum := h.Sum(nil)
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	hex := strings.ReplaceAll(s, "-", "")
	if len(hex) != 32 {
		return u, fmt.Errorf("uuid %q: want 32 hex digits", s)
	}
	for i := range 16 {
		var b byte
		if _, err := fmt.Sscanf(hex[2*i:2*i+2], "%02x", &b); err != nil {
			return u, fmt.Errorf("uuid %q: %w", s, err)
		}
		u[i] = b
	}
	return u, nil
}
