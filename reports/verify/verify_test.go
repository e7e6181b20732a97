package verify

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The embedded schema is NIST's file as shipped in ../shared/data/oscal
// (SANDBOX_SHARED overrides where shared/ is), byte for byte.
func TestEmbeddedSchemaIsNISTs(t *testing.T) {
	shared := os.Getenv("SANDBOX_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "shared")
	}
	path := filepath.Join(shared, "data", "oscal", "oscal_assessment-results_schema-1.0.4.json")
	want, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skipf("no shared/ beside this checkout (%s): nothing to compare the embedded copy with", path)
	}
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, OSCALSchema), "reports/verify's copy of the OSCAL schema differs from %s", path)
}

func TestOSCALRejectsInvalidDocuments(t *testing.T) {
	require.Error(t, OSCAL([]byte(`{"assessment-results": {"uuid": "not-a-uuid"}}`)))
	require.Error(t, OSCAL([]byte(`{nope`)))
}

func TestJUnitRejectsBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	_, err := JUnit(write("dup.xml", `<testsuites><testsuite name="s"><testcase name="a" classname="c"/><testcase name="a" classname="c"/></testsuite></testsuites>`))
	assert.ErrorContains(t, err, "not unique")
	_, err = JUnit(write("noclass.xml", `<testsuites><testsuite name="s"><testcase name="a"/></testsuite></testsuites>`))
	assert.ErrorContains(t, err, "without name or classname")
	_, err = JUnit(write("garbage.xml", `not xml`))
	assert.Error(t, err)
	suites, err := JUnit(write("ok.xml", `<testsuites><testsuite name="s"><testcase name="a" classname="c"><failure message="leak">x</failure></testcase></testsuite></testsuites>`))
	require.NoError(t, err)
	require.Len(t, suites, 1)
}

func TestBrowserRendersAPage(t *testing.T) {
	ctx := context.Background()
	path, err := Chromium(ctx)
	require.NoError(t, err)
	dir := t.TempDir()
	page := filepath.Join(dir, "p.html")
	require.NoError(t, os.WriteFile(page, []byte(`<html><body style="background:#cf222e"><h1 id="x">hello</h1></body></html>`), 0o644))
	b := Browser{Path: path, Width: 400, Height: 300}
	dom, err := b.DOM(ctx, page)
	require.NoError(t, err)
	assert.Contains(t, dom, `<h1 id="x">hello</h1>`)
	shot := filepath.Join(dir, "p.png")
	require.NoError(t, b.Screenshot(ctx, page, shot))
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, image.Pt(400, 300), img.Bounds().Size())
	r, g, bl, _ := img.At(200, 250).RGBA()
	assert.Equal(t, [3]uint32{0xcf, 0x22, 0x2e}, [3]uint32{r >> 8, g >> 8, bl >> 8}, "the page's colour is on screen")
}
