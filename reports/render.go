package reports

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report formats.
const (
	FormatJSON     = "json"     // results.json, the model every other format is made from
	FormatJUnit    = "junit"    // junit.xml for CI test views
	FormatMarkdown = "markdown" // summary.md for a CI job summary or a PR comment
	FormatHTML     = "html"     // report.html, self-contained, for people and auditors
	FormatOSCAL    = "oscal"    // oscal-assessment-results.json, OSCAL 1.0.4
)

// AllFormats lists every format, comma-separated, in the order they are written.
const AllFormats = FormatJSON + "," + FormatJUnit + "," + FormatMarkdown + "," + FormatHTML + "," + FormatOSCAL

// Formats lists every format in the order they are written.
var Formats = strings.Split(AllFormats, ",")

// IsFormat reports whether f names a report format.
func IsFormat(f string) bool {
	_, ok := FormatFile(f)
	return ok
}

// Files written besides the formats.
const (
	DiffMarkdownFile = "baseline-diff.md"
	DiffJSONFile     = "baseline-diff.json"
)

// FormatFile is the file name a format is written to.
func FormatFile(format string) (string, bool) {
	switch format {
	case FormatJSON:
		return ResultsFile, true
	case FormatJUnit:
		return JUnitFile, true
	case FormatMarkdown:
		return MarkdownFile, true
	case FormatHTML:
		return HTMLFile, true
	case FormatOSCAL:
		return OSCALFile, true
	}
	return "", false
}

// ParseFormats parses a comma-separated format list ("html,junit", "all").
func ParseFormats(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		switch f {
		case "":
			continue
		case "all":
			out = append(out, strings.Split(AllFormats, ",")...)
			continue
		case "md":
			f = FormatMarkdown
		case "xml":
			f = FormatJUnit
		}
		if _, ok := FormatFile(f); !ok {
			return nil, fmt.Errorf("unknown report format %q (formats: %s, all)", f, AllFormats)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no report format given (formats: %s, all)", AllFormats)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// RenderOptions tune Render.
type RenderOptions struct {
	// Formats to write (see Formats); empty means all of them.
	Formats []string
	// Catalogue to describe checks with; nil means the embedded one.
	Catalogue Catalogue
	// Waivers, when set, are applied before rendering (see ApplyWaivers),
	// so every format, results.json included, shows waived verdicts. A
	// caller that applied them already leaves this nil.
	Waivers *Waivers
	// Now is the waivers' clock; zero means the current time.
	Now time.Time
	// Baseline, when set, is the comparison with a previous run (see
	// CompareBaseline): it is written to baseline-diff.md and
	// baseline-diff.json.
	Baseline *Diff
}

// Render writes the formats of r into dir (created if needed), then the
// digest manifest of everything it wrote, and returns the files written in
// order. It only reads r, never the cluster, so reports can be made again
// later from a results file (`bulkhead report`).
func Render(r *Results, dir string, opts RenderOptions) ([]string, error) {
	formats := opts.Formats
	if len(formats) == 0 {
		formats = Formats
	}
	cat := opts.Catalogue
	if cat == nil {
		var err error
		if cat, err = DefaultCatalogue(); err != nil {
			return nil, err
		}
	}
	if opts.Waivers != nil {
		now := opts.Now
		if now.IsZero() {
			now = time.Now()
		}
		var err error
		if r, err = ApplyWaivers(r, opts.Waivers, cat, now); err != nil {
			return nil, err
		}
	}
	for _, f := range formats {
		if _, ok := FormatFile(f); !ok {
			return nil, fmt.Errorf("unknown report format %q (formats: %s)", f, AllFormats)
		}
	}
	ordered := orderFormats(formats)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create report directory %s: %w", dir, err)
	}
	var written []string
	write := func(name string, data []byte) error {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		written = append(written, path)
		return nil
	}
	for _, f := range ordered {
		data, err := renderFormat(r, f, cat)
		if err != nil {
			return written, err
		}
		name, _ := FormatFile(f)
		if err := write(name, data); err != nil {
			return written, err
		}
	}
	if d := opts.Baseline; d != nil {
		if err := write(DiffMarkdownFile, []byte(d.Markdown())); err != nil {
			return written, err
		}
		data, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return written, fmt.Errorf("encode baseline diff: %w", err)
		}
		if err := write(DiffJSONFile, append(data, '\n')); err != nil {
			return written, err
		}
	}
	m, err := WriteManifest(dir, r.Run.ID, written)
	if err != nil {
		return written, err
	}
	return append(written, m...), nil
}

// orderFormats returns the known formats among fs, deduplicated, in
// AllFormats order.
func orderFormats(fs []string) []string {
	var out []string
	for _, f := range strings.Split(AllFormats, ",") {
		if slices.Contains(fs, f) {
			out = append(out, f)
		}
	}
	return out
}

func renderFormat(r *Results, format string, cat Catalogue) ([]byte, error) {
	switch format {
	case FormatJSON:
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode results: %w", err)
		}
		return append(data, '\n'), nil
	case FormatJUnit:
		return JUnitWith(r, cat)
	case FormatMarkdown:
		return []byte(Markdown(r, cat)), nil
	case FormatHTML:
		return HTML(r, cat)
	case FormatOSCAL:
		return OSCAL(r, cat)
	}
	return nil, fmt.Errorf("unknown report format %q", format)
}
