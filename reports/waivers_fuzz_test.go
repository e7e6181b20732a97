package reports

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/strictyaml"
)

// FuzzParseWaivers: parsing never panics; every error has a position and,
// unless it is about the document as a whole, names the field; a file that
// parses round-trips (written back, it holds the same waivers). Seeds:
// testdata/fuzz/FuzzParseWaivers.
func FuzzParseWaivers(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		ws, err := ParseWaivers("waivers.yaml", data)
		if err != nil {
			var es strictyaml.Errors
			require.True(t, errors.As(err, &es), "%T: %v", err, err)
			for _, e := range es {
				assert.Equal(t, "waivers.yaml", e.File)
				assert.True(t, e.Line > 0 || e.Document, "no position: %s", e)
				assert.True(t, e.Path != "" || e.Document, "no field: %s", e)
			}
			return
		}
		var back waiverFile
		for _, w := range ws.Items {
			back.Waivers = append(back.Waivers, waiverEntry{Check: w.Check, Namespace: w.Namespace, Justification: w.Justification, Expires: w.ExpiresText()})
		}
		js, err := json.Marshal(back)
		require.NoError(t, err)
		again, err := ParseWaivers("again.yaml", js)
		require.NoError(t, err, "written back:\n%s", js)
		require.Len(t, again.Items, len(ws.Items))
		for i, w := range ws.Items {
			a := again.Items[i]
			assert.Equal(t, []string{w.Check, w.Namespace, w.Justification}, []string{a.Check, a.Namespace, a.Justification})
			assert.True(t, w.Expires.Equal(a.Expires), "expires %s, written back as %s, reads %s", w.Expires, w.ExpiresText(), a.Expires)
			assert.Equal(t, w.DateOnly, a.DateOnly)
		}
	})
}
