package reports

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/reports/oscal"
)

func TestMarkdownSummary(t *testing.T) {
	r := brokenRun(t)
	md := Markdown(r, testCatalogue(t))
	lines := strings.Split(md, "\n")
	assert.Equal(t, "## bulkhead tenant isolation: FAIL", lines[0])
	assert.Contains(t, md, "**2 passed, 1 failed, 0 unproven, 1 could not run, 1 not evaluated, 0 waived (5 checks)**")
	assert.Contains(t, md, "| Check | Title | Severity | Verdict | Reason |")
	assert.Contains(t, md, "| NET-004 | Traffic within a tenant still works | medium | ✅ pass |  |")
	assert.Contains(t, md, "#### NET-001 Cross-tenant traffic is blocked in both directions (fail, critical)")
	assert.Contains(t, md, "- [test] `bh-xd1m0-a/probe-0 -> bh-xd1m0-b/probe-0 tcp/pod-ip: reachable (want blocked)`")
	assert.Contains(t, md, "Remediation: Give every tenant namespace a default-deny NetworkPolicy")
	// Untrusted text cannot inject markup; there are no links.
	assert.Contains(t, md, "&lt;script&gt;")
	assert.NotContains(t, md, "<script>")
	assert.NotRegexp(t, regexp.MustCompile(`\]\(|https?://`), md)
	// Every table row has the header's number of cells.
	for _, l := range lines {
		if strings.HasPrefix(l, "| NET-") {
			assert.Equal(t, 6, strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"), l)
		}
	}

	ok := Markdown(realRun(t), testCatalogue(t))
	assert.True(t, strings.HasPrefix(ok, "## bulkhead tenant isolation: PASS\n"))
	assert.NotContains(t, ok, "### Failed")
	assert.Less(t, len(ok), 4000, "short enough for a PR comment")
}

func TestMarkdownListsFirstFailingObservationsOnly(t *testing.T) {
	r := realRun(t)
	c := findCheck(t, r, "NET-001")
	for i := range c.Observations {
		if c.Observations[i].Role == RoleTest {
			c.Observations[i].OK, c.Observations[i].Observed = false, "reachable"
		}
	}
	c.Verdict, c.Reason = Fail, "everything leaks"
	md := Markdown(r, testCatalogue(t))
	assert.Equal(t, mdFailingListed, strings.Count(md, "- [test] `"))
	assert.Contains(t, md, "… and 43 more failing observations")
}

func TestRenderAllFormatsAndManifest(t *testing.T) {
	dir := t.TempDir()
	written, err := WriteAll(dir, brokenRun(t))
	require.NoError(t, err)
	var names []string
	for _, p := range written {
		names = append(names, filepath.Base(p))
	}
	assert.Equal(t, []string{ResultsFile, JUnitFile, MarkdownFile, HTMLFile, OSCALFile, ManifestFile, ManifestJSONFile}, names)
	// results.json round-trips.
	back, err := ReadJSON(filepath.Join(dir, ResultsFile))
	require.NoError(t, err)
	assert.Equal(t, "xd1m0", back.Run.ID)
	// The manifest covers every report file and verifies.
	sums, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	require.NoError(t, err)
	for _, n := range names[:5] {
		assert.Regexp(t, regexp.MustCompile(`(?m)^[0-9a-f]{64}  `+regexp.QuoteMeta(n)+`$`), string(sums))
	}
	require.NoError(t, VerifyManifest(dir))
	var m Manifest
	data, err := os.ReadFile(filepath.Join(dir, ManifestJSONFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &m))
	assert.Equal(t, ManifestSchema, m.Schema)
	assert.Len(t, m.Files, 5)
	// Tampering is detected.
	require.NoError(t, os.WriteFile(filepath.Join(dir, HTMLFile), []byte("<p>all good</p>"), 0o644))
	err = VerifyManifest(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "report.html: sha256")
}

// Reports are re-made from results.json alone, byte for byte.
func TestRenderFromResultsFileIsReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	_, err := WriteAll(a, brokenRun(t))
	require.NoError(t, err)
	r, err := ReadJSON(filepath.Join(a, ResultsFile))
	require.NoError(t, err)
	_, err = Render(r, b, RenderOptions{})
	require.NoError(t, err)
	for _, name := range []string{ResultsFile, JUnitFile, MarkdownFile, HTMLFile, OSCALFile, ManifestFile} {
		x, err := os.ReadFile(filepath.Join(a, name))
		require.NoError(t, err)
		y, err := os.ReadFile(filepath.Join(b, name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(x, y), "%s differs when re-rendered from results.json", name)
	}
}

func TestRenderWithWaiversAndBaseline(t *testing.T) {
	dir := t.TempDir()
	ws := parseWaivers(t, "waivers:\n- check: NET-001\n  justification: accepted\n  expires: 2026-12-31\n")
	d := CompareBaseline(realRun(t), waivedResults(t, brokenRun(t)))
	written, err := Render(brokenRun(t), dir, RenderOptions{
		Formats: []string{FormatHTML, FormatJSON}, Waivers: ws, Now: waiverNow, Baseline: &d,
	})
	require.NoError(t, err)
	var names []string
	for _, p := range written {
		names = append(names, filepath.Base(p))
	}
	assert.Equal(t, []string{ResultsFile, HTMLFile, DiffMarkdownFile, DiffJSONFile, ManifestFile, ManifestJSONFile}, names)
	r, err := ReadJSON(filepath.Join(dir, ResultsFile))
	require.NoError(t, err)
	assert.Equal(t, Waived, findCheck(t, r, "NET-001").Verdict, "results.json records the waived verdict")
	diff, err := os.ReadFile(filepath.Join(dir, DiffMarkdownFile))
	require.NoError(t, err)
	assert.Contains(t, string(diff), "| NET-003 |")
	require.NoError(t, VerifyManifest(dir))

	_, err = Render(brokenRun(t), t.TempDir(), RenderOptions{Formats: []string{"pdf"}})
	assert.ErrorContains(t, err, `unknown report format "pdf"`)
	bad := parseWaivers(t, "waivers:\n- check: NOPE-1\n  justification: j\n  expires: 2026-12-31\n")
	_, err = Render(brokenRun(t), t.TempDir(), RenderOptions{Formats: []string{FormatHTML}, Waivers: bad, Now: time.Now()})
	assert.ErrorContains(t, err, `unknown check "NOPE-1"`)
}

func TestParseFormats(t *testing.T) {
	all, err := ParseFormats("all")
	require.NoError(t, err)
	assert.ElementsMatch(t, strings.Split(AllFormats, ","), all)
	got, err := ParseFormats(" HTML, md,junit,html ")
	require.NoError(t, err)
	assert.Equal(t, []string{"html", "junit", "markdown"}, got)
	_, err = ParseFormats("html,docx")
	assert.ErrorContains(t, err, `unknown report format "docx"`)
	_, err = ParseFormats(" , ")
	assert.Error(t, err)
}

func TestUUIDv5(t *testing.T) {
	// RFC 9562 / Python's uuid.uuid5(uuid.NAMESPACE_DNS, "python.org").
	assert.Equal(t, "886313e1-3b8a-5372-9b90-0c9aee199e5d", oscal.UUIDv5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org"))
}

// An interrupted run's reports keep the evidence of what ran and say, in
// every format, that the run did not finish.
func TestInterruptedRunInEveryFormat(t *testing.T) {
	dir := t.TempDir()
	r := interruptedRun(t)
	_, err := WriteAll(dir, r)
	require.NoError(t, err)
	back, err := ReadJSON(filepath.Join(dir, ResultsFile))
	require.NoError(t, err)
	assert.True(t, back.Run.Interrupted)
	assert.Equal(t, Pass, findCheck(t, back, "NET-001").Verdict, "what ran before the interruption keeps its verdict")
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return string(data)
	}
	md := read(MarkdownFile)
	assert.Contains(t, md, "tenant isolation: ERROR", "an interrupted run is never a pass, and nothing failed before it")
	assert.Contains(t, md, "the run was interrupted before every selected check had run")
	h := read(HTMLFile)
	assert.Contains(t, h, `id="verdict">ERROR<`)
	assert.Contains(t, h, "<dt>Interrupted</dt>")
	assert.Contains(t, h, "not run: the run was interrupted before this check")
	assert.Contains(t, read(JUnitFile), `<property name="bulkhead.interrupted" value="true"`)
	assert.Contains(t, read(OSCALFile), `"name": "interrupted"`)
}

func TestMarkdownShowsUnprovenChecksApart(t *testing.T) {
	r := roundsRun(t)
	md := Markdown(r, testCatalogue(t))
	assert.True(t, strings.HasPrefix(md, "## bulkhead tenant isolation: FAIL\n\n**4 passed, 2 failed, 1 unproven, 0 could not run, 0 not evaluated, 0 waived (7 checks)**\n\n> ❌ **FAIL**: 2 checks failed: isolation was broken, observed directly.\n"), md)
	assert.Contains(t, md, "| RBAC-002 | Tenants cannot change cluster-scoped resources or read what the reference policy denies | critical | ❔ **unproven** | 14 of 14 tested paths unproven: ")
	assert.Contains(t, md, "| NET-005 | DNS resolution works from tenant pods | medium | ✅ pass |")
	// NET-003's round-2 gaps are covered by rounds 1 and 3: a pass, saying so.
	assert.Contains(t, md, "| NET-003 | Tenant egress to other namespaces is blocked | high | ✅ pass | 24 round results unproven whose paths another round proved")
	failed := md[strings.Index(md, "### Failed or could not run"):strings.Index(md, "### Not proven")]
	assert.Contains(t, failed, "#### NET-001 ")
	assert.Contains(t, failed, "#### NET-002 ")
	assert.NotContains(t, failed, "#### NET-003 ")
	assert.Contains(t, failed, "- [test] `bh-rnd3x-a/probe-0 -> bh-rnd3x-b/probe-1 tcp/cluster-ip: reachable (want blocked, round 3)`")
	notProven := md[strings.Index(md, "### Not proven"):]
	assert.NotContains(t, notProven, "#### NET-003 ")
	assert.Contains(t, notProven, "#### RBAC-002 Tenants cannot change cluster-scoped resources or read what the reference policy denies (unproven, critical)")
	assert.Contains(t, notProven, "- [test] `bulkhead:rnd3x:a:admin -> GET /api/v1/nodes/bh-dev-control-plane get nodes: denied (want denied) [unproven: not shown: get nodes gets past authorization as bulkhead:positive-control]`")
	assert.Contains(t, notProven, "Failed positive controls (7):\n\n- [control] `bulkhead:positive-control -> ")
	assert.Contains(t, notProven, "- … and 9 more unproven paths")
	assert.Less(t, len(md), 10000, "short enough for a job summary")
}

func TestMarkdownIncompleteRun(t *testing.T) {
	md := Markdown(incompleteRun(t), testCatalogue(t))
	assert.True(t, strings.HasPrefix(md, "## bulkhead tenant isolation: INCOMPLETE\n"))
	assert.Contains(t, md, "> ❔ **INCOMPLETE**: nothing failed, but 1 check was not proven and 0 not evaluated: this run does not show that the cluster keeps tenants apart.")
	assert.NotContains(t, md, "### Failed or could not run")
	assert.Contains(t, md, "#### RBAC-002 Tenants cannot change cluster-scoped resources or read what the reference policy denies (unproven, critical)")

	// A run where nothing was evaluated is not a pass either.
	none := realRun(t)
	for i := range none.Checks {
		none.Checks[i].Verdict, none.Checks[i].Reason, none.Checks[i].Observations = Skipped, "no subject in this run", []Observation{}
	}
	md = Markdown(none, testCatalogue(t))
	assert.True(t, strings.HasPrefix(md, "## bulkhead tenant isolation: INCOMPLETE\n"))
	assert.Contains(t, md, "nothing failed, but 0 checks were not proven and 5 not evaluated")
	assert.Contains(t, md, "| ⏭️ not evaluated | no subject in this run |")
	assert.NotContains(t, md, "skipped")
}
