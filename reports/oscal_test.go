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
	data, err := OSCAL(r, testCatalogue(t))
	require.NoError(t, err)
	var doc oscal.Document
	require.NoError(t, json.Unmarshal(data, &doc))
	ar := doc.AssessmentResults
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
