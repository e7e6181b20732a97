package reports

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// The control catalogue: every check's stable ID, what it is, how bad a
// failure is, how to fix it, and where it maps in the frameworks auditors
// use. It is data (catalogue/*.yaml, a file per area) so it can be reviewed
// without reading Go, and every writer reads it from here.
//
//go:embed catalogue/*.yaml
var catalogueFS embed.FS

// Control is one catalogue entry.
type Control struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Area        string   `json:"area"`
	Description string   `json:"description"`
	Severity    Severity `json:"severity"`
	Remediation string   `json:"remediation"`
	Mappings    Mappings `json:"mappings"`
}

// Severity of a failure.
type Severity string

const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
)

// Mappings place a control in external frameworks.
type Mappings struct {
	// CIS Kubernetes Benchmark sections, keyed by benchmark version ("1.10").
	CIS map[string][]string `json:"cis,omitempty"`
	// NSA/CISA Kubernetes Hardening Guide (v1.2) sections.
	NSACISA []string `json:"nsaCisa,omitempty"`
	// Kubernetes Multi-Tenancy Benchmarks IDs (MTB-PL1-...).
	MTB []string `json:"mtb,omitempty"`
	// NIST SP 800-53 rev. 5 controls.
	NIST80053 []string `json:"nist80053,omitempty"`
	// NIST SP 800-190 sections (4.x risks).
	NIST800190 []string `json:"nist800190,omitempty"`
	// PCI DSS 4.0 requirements.
	PCIDSS []string `json:"pciDss,omitempty"`
}

// Catalogue is every control, by ID.
type Catalogue map[string]Control

// LoadCatalogue reads the embedded catalogue and validates every entry.
func LoadCatalogue() (Catalogue, error) {
	return loadCatalogue(catalogueFS, "catalogue")
}

func loadCatalogue(fsys fs.FS, dir string) (Catalogue, error) {
	files, err := fs.Glob(fsys, dir+"/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	sort.Strings(files)
	cat := Catalogue{}
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("catalogue %s: %w", f, err)
		}
		var entries []Control
		if err := yaml.UnmarshalStrict(data, &entries); err != nil {
			return nil, fmt.Errorf("catalogue %s: %w", f, err)
		}
		for _, c := range entries {
			if err := c.validate(); err != nil {
				return nil, fmt.Errorf("catalogue %s: %w", f, err)
			}
			if _, dup := cat[c.ID]; dup {
				return nil, fmt.Errorf("catalogue %s: control %s defined twice", f, c.ID)
			}
			cat[c.ID] = c
		}
	}
	return cat, nil
}

func (c Control) validate() error {
	var missing []string
	for name, v := range map[string]string{"id": c.ID, "title": c.Title, "area": c.Area, "description": c.Description, "remediation": c.Remediation} {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return fmt.Errorf("control %q: missing %s", c.ID, strings.Join(missing, ", "))
	}
	switch c.Severity {
	case Critical, High, Medium, Low:
	default:
		return fmt.Errorf("control %s: severity %q, want critical, high, medium or low", c.ID, c.Severity)
	}
	if len(c.Mappings.NIST80053) == 0 {
		return fmt.Errorf("control %s: no NIST SP 800-53 mapping", c.ID)
	}
	return nil
}

// IDs returns the catalogue's control IDs, sorted.
func (c Catalogue) IDs() []string {
	ids := make([]string, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
