package reports

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/reports/oscal"
	"github.com/bulkhead-k8s/bulkhead/reports/verify"
)

func TestOSCALValidatesAgainstNISTSchema(t *testing.T) {
	cat := testCatalogue(t)
	for name, r := range map[string]*Results{
		"real run":     realRun(t),
		"failures":     brokenRun(t),
		"waived":       waivedRun(t),
		"small sample": sample(),
		"interrupted":  interruptedRun(t),
		"rounds":       roundsRun(t),
		"incomplete":   incompleteRun(t),
	} {
		t.Run(name, func(t *testing.T) {
			data, err := OSCAL(r, cat)
			require.NoError(t, err)
			require.NoError(t, verify.OSCAL(data))
		})
	}
}

func TestOSCALSchemaCatchesInvalidDocuments(t *testing.T) {
	// The validation is real: a document with a bad status is rejected.
	data, err := OSCAL(realRun(t), testCatalogue(t))
	require.NoError(t, err)
	bad := bytes.Replace(data, []byte(`"state": "satisfied"`), []byte(`"state": "mostly-fine"`), 1)
	require.NotEqual(t, data, bad)
	assert.Error(t, verify.OSCAL(bad))
}

func TestOSCALIsDeterministic(t *testing.T) {
	cat := testCatalogue(t)
	a, err := OSCAL(brokenRun(t), cat)
	require.NoError(t, err)
	b, err := OSCAL(brokenRun(t), cat)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(a, b), "re-rendering the same results must give the same bytes")
	// Another run gives other UUIDs.
	other := brokenRun(t)
	other.Run.ID = "zzzzz"
	c, err := OSCAL(other, cat)
	require.NoError(t, err)
	var da, dc oscal.Document
	require.NoError(t, json.Unmarshal(a, &da))
	require.NoError(t, json.Unmarshal(c, &dc))
	assert.NotEqual(t, da.AssessmentResults.UUID, dc.AssessmentResults.UUID)
}

func TestOSCALContent(t *testing.T) {
	r := brokenRun(t)
	ar := oscalDocOf(t, r).AssessmentResults
	assert.Equal(t, "1.0.4", ar.Metadata.OSCALVersion)
	assert.Equal(t, r.Run.Finished.UTC().Format(time.RFC3339Nano), ar.Metadata.LastModified)
	require.Len(t, ar.Results, 1)
	res := ar.Results[0]
	states := map[string]string{}
	for _, f := range res.Findings {
		states[strings.TrimSuffix(f.Target.TargetID, "_obj")] = f.Target.Status.State
	}
	assert.Equal(t, "not-satisfied", states["NET-001"])
	assert.Equal(t, "satisfied", states["NET-004"])
	// Every finding points at an observation that exists; the failing one
	// lists its failing observations as evidence.
	obs := map[string]oscal.Observation{}
	for _, o := range res.Observations {
		obs[o.UUID] = o
	}
	for _, f := range res.Findings {
		require.Len(t, f.RelatedObservations, 1)
		o, ok := obs[f.RelatedObservations[0].ObservationUUID]
		require.True(t, ok, "finding %s: related observation exists", f.Title)
		if f.Target.TargetID == "NET-001_obj" {
			assert.Contains(t, o.Description, "2 not as expected")
			require.Len(t, o.RelevantEvidence, 3)
			assert.Contains(t, o.RelevantEvidence[1].Description, "reachable (want blocked)")
			require.Len(t, f.RelatedRisks, 1)
		}
	}
	var included []string
	for _, c := range res.ReviewedControls.ControlSelections[0].IncludeControls {
		included = append(included, c.ControlID)
	}
	assert.Contains(t, included, "NET-001")
}

// oscalGolden is the OSCAL document of brokenRun as committed: a change to
// the writer shows up as a diff of this file (go test -run TestOSCALGolden
// ./reports/ -update rewrites it; review the diff).
const oscalGolden = "testdata/oscal-broken.golden.json"

func TestOSCALGolden(t *testing.T) {
	data, err := OSCAL(brokenRun(t), testCatalogue(t))
	require.NoError(t, err)
	if *UpdateGolden {
		require.NoError(t, os.WriteFile(oscalGolden, data, 0o644))
	}
	want, err := os.ReadFile(oscalGolden)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, data), "OSCAL of brokenRun differs from %s (rerun with -update and review the diff)", oscalGolden)
}

// Unproven checks get no objective status: no finding, excluded from the
// reviewed controls, an observation that says why with the unproven
// observations as evidence.
func TestOSCALUnprovenHasNoFinding(t *testing.T) {
	res := oscalResult(t, incompleteRun(t))
	findings := map[string]string{}
	for _, f := range res.Findings {
		findings[strings.TrimSuffix(f.Target.TargetID, "_obj")] = f.Target.Status.State
	}
	assert.Equal(t, map[string]string{"NET-001": "not-satisfied", "NET-002": "not-satisfied", "NET-003": "satisfied", "NET-004": "satisfied", "NET-005": "satisfied", "RBAC-001": "satisfied"}, findings,
		"NET-001 and NET-002 leaks waived (still not satisfied), NET-003 proven by rounds 1 and 3; RBAC-002 has no finding")
	for _, rk := range res.Risks {
		assert.NotContains(t, rk.Title, "RBAC-002")
	}
	sel := res.ReviewedControls.ControlSelections[0]
	var excluded []string
	for _, c := range sel.ExcludeControls {
		excluded = append(excluded, c.ControlID)
	}
	assert.Subset(t, excluded, []string{"RBAC-002"})
	assert.NotContains(t, excluded, "NET-003")
	assert.Contains(t, sel.Remarks, "Not proven (nothing leaked, but not every tested path was shown to work where it should): RBAC-002")
	props := map[string]string{}
	for _, p := range res.Props {
		props[p.Name] = p.Value
	}
	assert.Equal(t, "INCOMPLETE", props["run-verdict"])
	assert.Equal(t, "1", props["checks-unproven"])

	r2 := observationOf(t, res, "RBAC-002")
	assert.Contains(t, r2.Description, "RBAC-002 Tenants cannot change cluster-scoped resources or read what the reference policy denies: UNPROVEN. 23 observations (14 tested paths, 9 positive controls), 7 not as expected, 14 unproven.")
	assert.True(t, strings.HasPrefix(r2.Remarks, "Not proven, so no finding: "), r2.Remarks)
	require.Len(t, r2.RelevantEvidence, 1+7+14, "the results file, the failed controls, the unproven paths")
	ev := r2.RelevantEvidence[1+7]
	assert.Equal(t, "[test] bulkhead:rnd3x:a:admin -> GET /api/v1/nodes/bh-dev-control-plane get nodes: denied (want denied) [unproven: not shown: get nodes gets past authorization as bulkhead:positive-control]", ev.Description)
	evProps := map[string]string{}
	for _, p := range ev.Props {
		evProps[p.Name] = p.Value
	}
	assert.Equal(t, "unproven", evProps["status"])
	assert.Empty(t, evProps["round"], "an API sweep has no rounds")
	assert.Equal(t, "not shown: get nodes gets past authorization as bulkhead:positive-control", evProps["why"])

	rbac := observationOf(t, res, "RBAC-001")
	assert.Contains(t, rbac.Description, "2 not applicable")
}

// observationOf is the OSCAL observation of check id.
func observationOf(t *testing.T, res oscal.Result, id string) oscal.Observation {
	t.Helper()
	for _, o := range res.Observations {
		if o.Title == id+" evidence" {
			return o
		}
	}
	t.Fatalf("no OSCAL observation for %s", id)
	return oscal.Observation{}
}

// oscalDocOf renders r as OSCAL and reads the document back.
func oscalDocOf(t *testing.T, r *Results) oscal.Document {
	t.Helper()
	data, err := OSCAL(r, testCatalogue(t))
	require.NoError(t, err)
	var doc oscal.Document
	require.NoError(t, json.Unmarshal(data, &doc))
	return doc
}

// oscalResult is the one result of r's OSCAL document.
func oscalResult(t *testing.T, r *Results) oscal.Result {
	t.Helper()
	res := oscalDocOf(t, r).AssessmentResults.Results
	require.Len(t, res, 1)
	return res[0]
}
