// Package verify checks written reports the way their consumers read them:
// JUnit through a real JUnit parser, OSCAL against NIST's schema, HTML in a
// real headless browser. The reports unit tests (on sample results) and the
// e2e suites (on a real run's reports) share it; it does not import reports,
// so reports' own tests can use it.
package verify

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	junit "github.com/joshdk/go-junit"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// OSCALSchema is NIST's OSCAL 1.0.4 Assessment Results JSON schema (public
// domain), a copy of ../shared/data/oscal/ so a plain checkout can validate;
// a test proves the copy identical to the shared one where that exists.
//
//go:embed oscal_assessment-results_schema-1.0.4.json
var OSCALSchema []byte

// OSCALSchemaID is the schema's $id, as it is registered with the compiler.
const OSCALSchemaID = "http://csrc.nist.gov/ns/oscal/1.0.4/oscal-ar-schema.json"

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// OSCAL validates an OSCAL document against NIST's schema, formats included.
func OSCAL(data []byte) error {
	schemaOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(OSCALSchema))
		if err != nil {
			schemaErr = fmt.Errorf("read NIST's OSCAL schema: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource(OSCALSchemaID, doc); err != nil {
			schemaErr = fmt.Errorf("load NIST's OSCAL schema: %w", err)
			return
		}
		schema, schemaErr = c.Compile(OSCALSchemaID)
	})
	if schemaErr != nil {
		return schemaErr
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("OSCAL document is not JSON: %w", err)
	}
	if err := schema.Validate(inst); err != nil {
		return fmt.Errorf("OSCAL document does not validate against NIST's schema: %w", err)
	}
	return nil
}

// JUnit reads a JUnit file with a real JUnit consumer (joshdk/go-junit) and
// checks the structure CI test views need: at least one suite, named test
// cases with a class name, unique names within a suite, and a message on
// every failure.
func JUnit(path string) ([]junit.Suite, error) {
	suites, err := junit.IngestFile(path)
	if err != nil {
		return nil, fmt.Errorf("parse %s as JUnit: %w", path, err)
	}
	if len(suites) == 0 {
		return nil, fmt.Errorf("%s: no test suite", path)
	}
	var errs []error
	for _, s := range suites {
		seen := map[string]bool{}
		for _, tc := range s.Tests {
			switch {
			case tc.Name == "" || tc.Classname == "":
				errs = append(errs, fmt.Errorf("suite %s: a test case without name or classname", s.Name))
			case seen[tc.Name]:
				errs = append(errs, fmt.Errorf("suite %s: test case name %q is not unique", s.Name, tc.Name))
			case tc.Status == junit.StatusFailed && (tc.Error == nil || tc.Error.Error() == ""):
				errs = append(errs, fmt.Errorf("suite %s: failed test case %q has no message", s.Name, tc.Name))
			}
			seen[tc.Name] = true
		}
	}
	return suites, errors.Join(errs...)
}

//go:embed ensure-chromium.sh
var ensureChromiumScript string

// Chromium returns Debian's chromium, installing it (apt-get) when missing.
func Chromium(ctx context.Context) (string, error) {
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-s")
	cmd.Stdin = strings.NewReader(ensureChromiumScript)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("install chromium (waited up to 8m): %w: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// Browser runs headless chromium on a page with no network access beyond
// the file itself.
type Browser struct {
	Path string
	// Width and Height of the window (default 1280x1600).
	Width, Height int
}

// Run runs chromium with args after the headless, offline flags, and
// returns its standard output.
func (b Browser) Run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	profile, err := os.MkdirTemp("", "bulkhead-chromium")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(profile)
	w, h := b.Width, b.Height
	if w == 0 || h == 0 {
		w, h = 1280, 1600
	}
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--host-resolver-rules=MAP * ~NOTFOUND", "--user-data-dir=" + profile, fmt.Sprintf("--window-size=%d,%d", w, h)}
	cmd := exec.CommandContext(ctx, b.Path, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("chromium %v: %w: %s", args, err, stderr.String())
	}
	return stdout.String(), nil
}

// DOM returns the page's DOM after chromium rendered it.
func (b Browser) DOM(ctx context.Context, file string) (string, error) {
	return b.Run(ctx, "--dump-dom", "file://"+file)
}

// Screenshot writes a PNG of the page to png.
func (b Browser) Screenshot(ctx context.Context, file, png string) error {
	if err := os.Remove(png); err != nil && !os.IsNotExist(err) {
		return err
	}
	if _, err := b.Run(ctx, "--screenshot="+png, "file://"+file); err != nil {
		return err
	}
	if _, err := os.Stat(png); err != nil {
		return fmt.Errorf("chromium wrote no screenshot: %w", err)
	}
	return nil
}
