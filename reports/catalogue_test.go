package reports

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmbeddedCatalogueLoads(t *testing.T) {
	cat, err := LoadCatalogue()
	require.NoError(t, err)
	require.Contains(t, cat, "NET-001")
	assert.Equal(t, Critical, cat["NET-001"].Severity)
	assert.Contains(t, cat["NET-001"].Mappings.CIS["1.10"], "5.3.2")
}

func TestCatalogueRejectsBadEntries(t *testing.T) {
	cases := map[string]string{
		"missing fields":  "- id: X-1\n  title: t\n  area: a\n  severity: high\n  mappings: {nist80053: [AC-3]}\n",
		"bad severity":    "- id: X-1\n  title: t\n  area: a\n  description: d\n  remediation: r\n  severity: urgent\n  mappings: {nist80053: [AC-3]}\n",
		"unknown field":   "- id: X-1\n  title: t\n  area: a\n  description: d\n  remediation: r\n  severity: high\n  colour: red\n  mappings: {nist80053: [AC-3]}\n",
		"no NIST mapping": "- id: X-1\n  title: t\n  area: a\n  description: d\n  remediation: r\n  severity: high\n",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := loadCatalogue(fstest.MapFS{"c/x.yaml": {Data: []byte(doc)}}, "c")
			assert.Error(t, err)
		})
	}
	dup := "- id: X-1\n  title: t\n  area: a\n  description: d\n  remediation: r\n  severity: high\n  mappings: {nist80053: [AC-3]}\n"
	_, err := loadCatalogue(fstest.MapFS{"c/a.yaml": {Data: []byte(dup)}, "c/b.yaml": {Data: []byte(dup)}}, "c")
	assert.ErrorContains(t, err, "defined twice")
}
