package reports

import (
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/reports/verify"
)

// previewRun shows every verdict: NET-001 waived, NET-002 failed (the
// control namespace reached tenant b), NET-003 could not run, NET-004
// passed, NET-005 skipped.
func previewRun(t *testing.T) *Results {
	t.Helper()
	r := brokenRun(t)
	c := findCheck(t, r, "NET-002")
	for i := range c.Observations {
		o := &c.Observations[i]
		if o.Role == RoleTest && o.Actor.Tenant == "control" && o.Target.Tenant == "b" && o.Method == "tcp/pod-ip" {
			o.Observed, o.OK, o.Detail = "reachable", false, "answered by "+o.Target.Namespace+"/"+o.Target.Name
		}
	}
	c.Verdict, c.Reason = Fail, "2 of 48 tested paths not as expected: the control namespace reaches tenant b over tcp/pod-ip"
	return waivedResults(t, r)
}

func waivedResults(t *testing.T, r *Results) *Results {
	t.Helper()
	ws := parseWaivers(t, "waivers:\n- check: NET-001\n  namespace: "+r.Run.Tenants[1].Namespaces[0]+"\n  justification: shared cache, ticket SEC-1\n  expires: 2027-01-31\n")
	out, err := ApplyWaivers(r, ws, testCatalogue(t), waiverNow)
	require.NoError(t, err)
	return out
}

func TestHTMLStructure(t *testing.T) {
	r := previewRun(t)
	data, err := HTML(r, testCatalogue(t))
	require.NoError(t, err)
	h := string(data)
	for _, want := range []string{
		`<section id="summary">`, `id="verdict">FAIL<`,
		`id="count-total">5<`, `id="count-pass">1<`, `id="count-fail">1<`, `id="count-error">1<`,
		`id="count-waived">1<`, `id="count-skipped">1<`,
		`<section id="run">`, `<code>xd1m0</code>`, `v1.36.3`, `cilium v1.20.2`, `bulkhead.local/probe:239b441c320e`,
		`<section id="areas">`, `<section id="frameworks">`, `CIS Kubernetes Benchmark v1.10`, `NIST SP 800-53 Rev. 5`,
		`Kubernetes Multi-Tenancy Benchmarks`, `PCI DSS v4.0`, `MTB-PL1-BC-NI-1`,
		`<section class="check fail" id="check-NET-002">`, `<section class="check waived" id="check-NET-001">`,
		`Waived until 2027-01-31`, `shared cache, ticket SEC-1`,
		`<section id="coverage">`, `no DNS service found in kube-system`,
		`<table class="tt">`, `<td class="bad" title=`, `! reachable`,
	} {
		assert.Contains(t, h, want)
	}
	// The framework summary fails a control when a mapped check fails.
	assert.Regexp(t, regexp.MustCompile(`<tr><td>5\.3\.2</td><td><span class="badge fail">fail</span>`), h)
	// Untrusted text is escaped.
	assert.NotContains(t, h, "<script>")
	assert.Contains(t, h, "&lt;script&gt;alert(1)&lt;/script&gt;")
	// Self-contained: nothing is fetched.
	assert.NotRegexp(t, regexp.MustCompile(`(?i)(src=|<link|@import|url\(|href="(https?:)?//)`), h)

	ok, err := HTML(realRun(t), testCatalogue(t))
	require.NoError(t, err)
	assert.Contains(t, string(ok), `id="verdict">PASS<`)
}

func TestHTMLListsCatalogueChecksThatDidNotRun(t *testing.T) {
	r := realRun(t)
	r.Checks = r.Checks[:3] // NET-004 and NET-005 not selected
	r.Run.Selection = map[string]string{"checks": "NET-001,NET-002,NET-003"}
	data, err := HTML(r, testCatalogue(t))
	require.NoError(t, err)
	h := string(data)
	assert.Contains(t, h, `id="count-not-run">`+strconv.Itoa(len(testCatalogue(t))-3)+`<`)
	assert.Contains(t, h, `id="count-skipped">0<`, "no selected check went unevaluated")
	cov := h[strings.Index(h, `<section id="coverage">`):]
	assert.Contains(t, cov, `<tr id="check-NET-004"><td><code>NET-004</code>`, "framework links to checks that did not run land here")
	assert.Contains(t, cov, "<code>NET-005</code>")
	assert.Contains(t, cov, "not run in this run (selection limited the run)")
	assert.Contains(t, h, `<span class="badge not-evaluated">not evaluated</span>`)
}

// The HTML report in a real browser: Debian's chromium renders it headless
// (no network), the DOM has the summary, and a screenshot of the summary is
// saved next to the report for people to look at:
// _output/report-preview/report.png (BULKHEAD_REPORT_PREVIEW overrides).
func TestHTMLShowsUnprovenAndNotApplicable(t *testing.T) {
	data, err := HTML(roundsRun(t), testCatalogue(t))
	require.NoError(t, err)
	h := string(data)
	section := func(id string) string {
		start := strings.Index(h, `id="check-`+id+`"`)
		require.Positive(t, start, id)
		end := strings.Index(h[start:], "</section>")
		return h[start : start+end]
	}
	for _, want := range []string{
		`<div class="banner fail" id="banner">`, `id="verdict">FAIL<`, `id="meaning">2 checks failed: isolation was broken, observed directly.<`,
		`id="count-unproven">1<`, `id="count-fail">2<`, `id="count-skipped">0<`,
		`<section class="check unproven" id="check-RBAC-002">`,
		`<td><span class="badge unproven">unproven</span></td><td>14 of 14 tested paths unproven: `,
		// NET-003's round-2 gaps are covered by rounds 1 and 3: a pass
		// that still shows them.
		`<section class="check pass" id="check-NET-003">`,
	} {
		assert.Contains(t, h, want)
	}
	n3 := section("NET-003")
	assert.Contains(t, n3, `<strong>Reason:</strong> 24 round results unproven whose paths another round proved`)
	r2 := section("RBAC-002")
	assert.Contains(t, r2, `<strong>Not proven:</strong> 14 of 14 tested paths unproven`)
	assert.Contains(t, r2, `23 observations: 14 tested paths (0 proven, 14 unproven), 9 positive controls (7 failed), 7 not as expected`)
	assert.Contains(t, r2, `<h4>Unproven (14)</h4>`)
	assert.Contains(t, r2, `<td>unproven: not shown: get nodes gets past authorization as bulkhead:positive-control</td>`)
	assert.Contains(t, n3, `144 tested paths (120 proven, 24 unproven), 108 positive controls (6 failed), 6 not as expected`)
	assert.Contains(t, n3, `<h4>Unproven (24)</h4>`)
	assert.Contains(t, n3, `<td>not shown in round 2: bh-rnd3x-control/probe-0 answers tcp/pod-ip</td>`)
	assert.Contains(t, n3, `<td class="unproven" title="bh-rnd3x-a/probe-0 -&gt; bh-rnd3x-control/probe-0 (test): expected blocked, observed timeout; unproven in 1 of 3 rounds (round 2)`)
	assert.Contains(t, n3, `<tr class="unproven"><td>test</td>`)
	assert.Contains(t, n3, `<td>unproven: not shown in round 2: bh-rnd3x-control/probe-0 answers tcp/pod-ip</td>`, "all observations: status with why")
	rbac := section("RBAC-001")
	assert.Contains(t, rbac, `<h4>Not applicable (2)</h4>`)
	assert.Contains(t, rbac, `<td>serviceaccount bh-rnd3x-a/bulkhead-probe may not list secrets in bh-rnd3x-a (RBAC): no RoleBinding grants it</td>`)
	assert.Contains(t, rbac, `4 tested paths (2 proven, 2 not applicable)`)
	// Coverage lists the unproven checks; areas count them.
	cov := h[strings.Index(h, `<section id="coverage">`):]
	assert.Contains(t, cov, `<a href="#check-RBAC-002"><code>RBAC-002</code></a></td><td>Tenants cannot change cluster-scoped resources or read what the reference policy denies</td><td><span class="badge unproven">unproven</span>`)
	assert.NotContains(t, cov, `#check-NET-003`)
	assert.NotContains(t, cov, `#check-NET-005`)
	assert.Contains(t, h, `<tr><td>network</td><td class="num">5</td><td class="num">3</td><td class="num">2</td><td class="num">0</td><td class="num">0</td><td class="num">0</td><td class="num">0</td></tr>`)
	assert.Contains(t, h, `<tr><td>rbac</td><td class="num">5</td><td class="num">1</td><td class="num">0</td><td class="num">1</td><td class="num">0</td><td class="num">0</td><td class="num">3</td></tr>`)

	inc, err := HTML(incompleteRun(t), testCatalogue(t))
	require.NoError(t, err)
	assert.Contains(t, string(inc), `<div class="banner incomplete" id="banner">`)
	assert.Contains(t, string(inc), `id="verdict">INCOMPLETE<`)
	assert.Contains(t, string(inc), `<title>bulkhead report rnd3x: INCOMPLETE</title>`)
	errRun, err := HTML(interruptedRun(t), testCatalogue(t))
	require.NoError(t, err)
	assert.Contains(t, string(errRun), `<div class="banner error" id="banner">`)
	assert.Contains(t, string(errRun), `<span class="badge skipped">not evaluated</span>`)
}

func TestHTMLInHeadlessChromium(t *testing.T) {
	ctx := context.Background()
	chromium, err := verify.Chromium(ctx)
	require.NoError(t, err)
	dir := os.Getenv("BULKHEAD_REPORT_PREVIEW")
	if dir == "" {
		dir = filepath.Join("..", "_output", "report-preview")
	}
	dir, err = filepath.Abs(dir)
	require.NoError(t, err)
	_, err = Render(previewRun(t), dir, RenderOptions{})
	require.NoError(t, err)
	report := filepath.Join(dir, HTMLFile)
	shot := filepath.Join(dir, "report.png")
	browser := verify.Browser{Path: chromium}

	dom, err := browser.DOM(ctx, report)
	require.NoError(t, err)
	for _, want := range []string{
		`id="verdict">FAIL<`, `id="count-pass">1<`, `id="count-fail">1<`, `id="count-waived">1<`,
		`id="count-error">1<`, `id="count-skipped">1<`, `href="#check-NET-002"`, "Summary by framework",
	} {
		assert.Contains(t, dom, want, "rendered DOM")
	}

	require.NoError(t, browser.Screenshot(ctx, report, shot))
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, image.Pt(1280, 1600), img.Bounds().Size())
	// The summary is on screen: the red FAIL banner near the top.
	assert.Greater(t, bannerPixels(img)[[3]uint32{0xcf, 0x22, 0x2e}], 500, "the FAIL banner (#cf222e) is in the screenshot")
	t.Logf("report and screenshot: %s, %s", report, shot)

	// An INCOMPLETE run has its own banner: amber, not green.
	inc := filepath.Join(t.TempDir(), "incomplete")
	_, err = Render(incompleteRun(t), inc, RenderOptions{Formats: []string{FormatHTML}})
	require.NoError(t, err)
	incShot := filepath.Join(inc, "report.png")
	require.NoError(t, browser.Screenshot(ctx, filepath.Join(inc, HTMLFile), incShot))
	g, err := os.Open(incShot)
	require.NoError(t, err)
	defer g.Close()
	img, err = png.Decode(g)
	require.NoError(t, err)
	colours := bannerPixels(img)
	assert.Greater(t, colours[[3]uint32{0x9a, 0x67, 0x00}], 500, "the INCOMPLETE banner (#9a6700) is in the screenshot")
	assert.Zero(t, colours[[3]uint32{0x1a, 0x7f, 0x37}], "no green PASS banner")
}

// bannerPixels counts the colours (8-bit RGB) sampled where the verdict
// banner is drawn, near the top of the screenshot.
func bannerPixels(img image.Image) map[[3]uint32]int {
	n := map[[3]uint32]int{}
	for y := 60; y < 220; y += 2 {
		for x := 40; x < 1200; x += 10 {
			r, g, b, _ := img.At(x, y).RGBA()
			n[[3]uint32{r >> 8, g >> 8, b >> 8}]++
		}
	}
	return n
}
