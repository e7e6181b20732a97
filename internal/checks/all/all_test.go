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
