package all

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Every check must have a catalogue entry (its words: title, description,
// severity, remediation, mappings), and every catalogue entry must belong
// to a check: reports are built from the two together.
func TestEveryCheckHasACatalogueEntry(t *testing.T) {
	cat, err := reports.LoadCatalogue()
	require.NoError(t, err)
	reg := Registry()
	for _, c := range reg.All() {
		entry, ok := cat[c.ID]
		if !assert.True(t, ok, "check %s has no catalogue entry in reports/catalogue/%s.yaml", c.ID, c.Area) {
			continue
		}
		assert.Equal(t, string(c.Area), entry.Area, "check %s: catalogue area", c.ID)
	}
	for _, id := range cat.IDs() {
		_, ok := reg.Get(id)
		assert.True(t, ok, "catalogue entry %s has no check", id)
	}
}

// Every check declares what it creates, or that it creates nothing: the
// footprint list in `bulkhead run --help`, README and `--dry-run` is made
// from these declarations, and a platform team decides from it whether
// bulkhead may run where their tenants serve traffic. A check without a
// declaration fails here; on a real cluster the e2e suites also compare
// what each check really creates with its declaration
// (session.Options.Audit) and fail the run on anything undeclared.
func TestEveryCheckDeclaresItsFootprint(t *testing.T) {
	for _, c := range Registry().All() {
		assert.NoError(t, checks.ValidateFootprints(c))
	}
}

// The run executes its lanes side by side: every check outside the API
// lane must keep out of tenant namespaces, and only the engines that probe
// from pods have lanes of their own.
func TestEveryLaneIsSafeToRunAlongsideTheOthers(t *testing.T) {
	lanes, err := checks.Lanes(Registry().All())
	require.NoError(t, err)
	probes := map[checks.Lane]checks.Area{checks.LaneNetwork: checks.Network, checks.LaneMetadata: checks.Metadata, checks.LaneNodes: checks.Exposure}
	require.Len(t, lanes, 1+len(probes), "the API lane and one lane per probe engine")
	for _, lane := range lanes[1:] {
		for _, c := range lane {
			assert.Equal(t, probes[c.Lane], c.Area, "%s in lane %s", c.ID, c.Lane)
		}
	}
}

// Every check has a negative control — a fault in all.NegativeControls()
// that must make it fail and name the cause — or says in its declaration
// (NoNegativeControl) why no fault can: a check that passes whatever the
// cluster does proves nothing. The e2e suites inject every one of these
// faults on a real cluster (suites/negative_test.go).
func TestEveryCheckHasANegativeControl(t *testing.T) {
	fails := map[string][]string{}
	for _, nc := range NegativeControls() {
		assert.NotEmpty(t, nc.Fault, "a negative control says what it breaks")
		assert.NotNil(t, nc.Inject, "negative control %q has no Inject", nc.Fault)
		for _, e := range nc.Expect {
			_, ok := Registry().Get(e.Check)
			assert.True(t, ok, "negative control %q expects unknown check %s", nc.Fault, e.Check)
			if e.Want() == reports.Fail {
				fails[e.Check] = append(fails[e.Check], nc.Fault)
			}
		}
	}
	for _, c := range Registry().All() {
		if c.NoNegativeControl != "" {
			assert.Empty(t, fails[c.ID], "%s says it can have no negative control (%s), yet %v make it fail", c.ID, c.NoNegativeControl, fails[c.ID])
			continue
		}
		assert.NotEmpty(t, fails[c.ID], "%s has no negative control: add a fault that makes it fail to its area's NegativeControls(), or say in NoNegativeControl why none can", c.ID)
	}
}
