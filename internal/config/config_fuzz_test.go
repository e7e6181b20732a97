package config

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/bulkhead-k8s/bulkhead/internal/strictyaml"
)

// FuzzParse: loading never panics; every error has a position and, unless
// it is about the document as a whole, names the field; a file that loads
// round-trips (written back as JSON or YAML 1.2, it loads as the same
// config). Seeds: testdata/fuzz/FuzzParse (YAML 1.1 specials, DNS-label
// edges, unicode, anchors, duplicates).
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse("tenants.yaml", data)
		if err != nil {
			var es strictyaml.Errors
			require.True(t, errors.As(err, &es), "%T: %v", err, err)
			require.NotEmpty(t, es)
			for _, e := range es {
				assert.Equal(t, "tenants.yaml", e.File)
				assert.True(t, e.Line > 0 || e.Document, "no position: %s", e)
				assert.True(t, e.Path != "" || e.Document, "no field: %s", e)
			}
			return
		}
		js, err := json.Marshal(cfg)
		require.NoError(t, err)
		again, err := Parse(js)
		require.NoError(t, err, "written back as JSON:\n%s", js)
		assert.Equal(t, cfg, again, "written back as JSON:\n%s", js)

		var generic map[string]any
		require.NoError(t, json.Unmarshal(js, &generic))
		y, err := yaml.Marshal(generic)
		require.NoError(t, err)
		again, err = Parse(y)
		require.NoError(t, err, "written back as YAML:\n%s", y)
		assert.Equal(t, cfg, again, "written back as YAML:\n%s", y)
	})
}
