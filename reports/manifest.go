package reports

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Manifest files: SHA-256 digests of every report file, so a report filed
// as evidence can be shown to be the one bulkhead wrote.
// manifest.sha256 is in `sha256sum` format (check it with
// `sha256sum -c manifest.sha256` in the report directory).
const (
	ManifestFile     = "manifest.sha256"
	ManifestJSONFile = "manifest.json"
	ManifestSchema   = "bulkhead.dev/manifest/v1"
)

// Manifest is manifest.json.
type Manifest struct {
	Schema string              `json:"schema"`
	Run    string              `json:"run"`
	Files  []ManifestFileEntry `json:"files"`
}

// ManifestFileEntry is one file's digest.
type ManifestFileEntry struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// WriteManifest digests files (paths inside dir) and writes
// dir/manifest.sha256 and dir/manifest.json; it returns their paths.
func WriteManifest(dir, runID string, files []string) ([]string, error) {
	m := Manifest{Schema: ManifestSchema, Run: runID}
	for _, f := range files {
		name := filepath.Base(f)
		if name == ManifestFile || name == ManifestJSONFile {
			continue
		}
		sum, n, err := digestFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, ManifestFileEntry{Name: name, SHA256: sum, Bytes: n})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Name < m.Files[j].Name })
	var b strings.Builder
	for _, e := range m.Files {
		fmt.Fprintf(&b, "%s  %s\n", e.SHA256, e.Name)
	}
	sums := filepath.Join(dir, ManifestFile)
	if err := os.WriteFile(sums, []byte(b.String()), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", sums, err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	js := filepath.Join(dir, ManifestJSONFile)
	if err := os.WriteFile(js, append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", js, err)
	}
	return []string{sums, js}, nil
}

func digestFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("digest %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("digest %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// VerifyManifest checks every file listed in dir/manifest.sha256 against
// its digest.
func VerifyManifest(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var bad []string
	n := 0
	for line := 1; sc.Scan(); line++ {
		want, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(want) != 64 || name == "" || strings.ContainsAny(name, `/\`) {
			return fmt.Errorf("%s:%d: want \"<sha256>  <file>\"", ManifestFile, line)
		}
		got, _, err := digestFile(filepath.Join(dir, name))
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if got != want {
			bad = append(bad, fmt.Sprintf("%s: sha256 %s, manifest says %s", name, got, want))
		}
		n++
	}
	if len(bad) > 0 {
		return fmt.Errorf("manifest %s: %s", dir, strings.Join(bad, "; "))
	}
	if n == 0 {
		return fmt.Errorf("manifest %s lists no files", dir)
	}
	return nil
}
