package suites

import (
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/reports"
	"github.com/bulkhead-k8s/bulkhead/reports/verify"
)

// verifyReportDir checks a run's reports the way their consumers read them:
// every digest in the manifest, results.json read back, JUnit through a real
// JUnit parser, OSCAL against NIST's schema, and the HTML rendered in
// headless Chromium, whose DOM must show the run's summary. It leaves a
// screenshot of the summary beside the reports (report.png, not in the
// manifest: it is evidence about the report, not part of it).
func verifyReportDir(ctx context.Context, dir string) error {
	if err := reports.VerifyManifest(dir); err != nil {
		return err
	}
	res, err := reports.ReadJSON(filepath.Join(dir, reports.ResultsFile))
	if err != nil {
		return err
	}
	if _, err := verify.JUnit(filepath.Join(dir, reports.JUnitFile)); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(dir, reports.OSCALFile))
	if err != nil {
		return fmt.Errorf("read OSCAL: %w", err)
	}
	if err := verify.OSCAL(data); err != nil {
		return err
	}
	chromium, err := verify.Chromium(ctx)
	if err != nil {
		return err
	}
	b := verify.Browser{Path: chromium}
	html := filepath.Join(dir, reports.HTMLFile)
	dom, err := b.DOM(ctx, html)
	if err != nil {
		return err
	}
	s := res.Summarize()
	verdict := string(s.Verdict())
	for _, want := range []string{
		`id="verdict">` + verdict + `<`,
		fmt.Sprintf(`id="count-pass">%d<`, s.Pass),
		fmt.Sprintf(`id="count-fail">%d<`, s.Fail),
		res.Run.ID,
	} {
		if !strings.Contains(dom, want) {
			return fmt.Errorf("%s rendered in chromium lacks %q", html, want)
		}
	}
	for _, c := range res.Checks {
		if !strings.Contains(dom, `id="check-`+c.ID+`"`) {
			return fmt.Errorf("%s rendered in chromium lacks check %s", html, c.ID)
		}
	}
	shot := filepath.Join(dir, "report.png")
	if err := b.Screenshot(ctx, html, shot); err != nil {
		return err
	}
	f, err := os.Open(shot)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		return fmt.Errorf("screenshot %s: %w", shot, err)
	}
	return nil
}
