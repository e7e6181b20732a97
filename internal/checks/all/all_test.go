package all

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
