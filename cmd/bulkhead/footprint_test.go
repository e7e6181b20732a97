package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/all"
	"github.com/bulkhead-k8s/bulkhead/internal/session"
	"github.com/bulkhead-k8s/bulkhead/internal/target"
)

var update = flag.Bool("update", false, "rewrite README's footprint block from the declarations")

// `bulkhead run --help` lists every footprint the run's set-up and each
// check declare, and names the checks that create nothing.
func TestRunHelpListsEveryFootprint(t *testing.T) {
	code, out := runCLI(t, "run", "--help")
	require.Equal(t, exitPass, code)
	flat := strings.Join(strings.Fields(out), " ")
	for _, f := range session.Footprint {
		assert.Contains(t, flat, strings.Join(strings.Fields(f.Describe()), " "))
	}
	for _, c := range all.Registry().All() {
		assert.Contains(t, flat, c.ID, "check %s is missing from run --help", c.ID)
		for _, f := range c.Creates {
			if f.Where != checks.Nowhere {
				assert.Contains(t, flat, strings.Join(strings.Fields(f.Describe()), " "), "footprint of %s", c.ID)
			}
		}
	}
	assert.Contains(t, flat, "Create nothing")
	for _, name := range []string{"--dry-run", "--cluster-name", "--cilium-values", "--report-dir", "--connect-timeout"} {
		assert.Contains(t, out, name)
	}
}

const (
	readmeBegin = "<!-- footprint: generated from the declarations by `go test ./cmd/bulkhead -run TestREADME -update` -->\n```text\n"
	readmeEnd   = "```\n<!-- footprint end -->"
)

// README carries the same footprint text as `bulkhead run --help`.
func TestREADMECarriesTheFootprint(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	i, j := bytes.Index(raw, []byte(readmeBegin)), bytes.Index(raw, []byte(readmeEnd))
	require.True(t, i >= 0 && j > i, "README.md has no footprint block (%q ... %q)", readmeBegin, readmeEnd)
	want := footprintText(all.Registry().All())
	got := string(raw[i+len(readmeBegin) : j])
	if *update && got != want {
		out := append(append(append([]byte{}, raw[:i+len(readmeBegin)]...), want...), raw[j:]...)
		require.NoError(t, os.WriteFile(path, out, 0o644))
		return
	}
	assert.Equal(t, want, got, "README's footprint block is stale: go test ./cmd/bulkhead -run TestREADME -update")
}

// --kind --dry-run plans without a cluster: nothing is created, not even
// the kind cluster.
func TestDryRunKind(t *testing.T) {
	code, out := runCLI(t, "run", "--kind", "--dry-run", "--run-id", "plan1", "--areas", "quota,podsecurity")
	require.Equal(t, exitPass, code, out)
	out = strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"plan of run plan1 against a new kind cluster bulkhead (nothing was created)",
		"namespace bh-plan1-control (created by bulkhead for this run, deleted with everything in it)",
		"Lease bulkhead-run",
		"namespace bh-plan1-a (reference tenant a, created by bulkhead",
		"ValidatingAdmissionPolicy bulkhead-plan1-deny-external-ips",
		"off: --skip-labels check=QUOTA-001)",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "NET-001", "only the selected checks")

	code, out = runCLI(t, "run", "--kind", "--dry-run", "--config", filepath.Join("..", "..", "suites", "testdata", "byo", "config.yaml"))
	assert.Equal(t, exitCannot, code, out)
}

// In a user's tenants, a check's footprint lands only where its scope says.
func TestPrintPlanScopes(t *testing.T) {
	p := &session.Plan{RunID: "r1", Namespaces: []session.PlannedNamespace{
		{Name: "blue-api", Tenant: "blue", UnderTest: true, Identities: true, First: true, Objects: []string{"Pod bulkhead-probe-r1-0"}},
		{Name: "blue-web", Tenant: "blue", UnderTest: true, Identities: true, Objects: []string{"Pod bulkhead-probe-r1-0"}},
		{Name: "green", Tenant: "green", UnderTest: true, Objects: []string{"Pod bulkhead-probe-r1-0"}},
	}}
	pick := func(ids ...string) []checks.Check {
		var out []checks.Check
		for _, id := range ids {
			c, ok := all.Registry().Get(id)
			require.True(t, ok, id)
			out = append(out, c)
		}
		return out
	}
	var b bytes.Buffer
	printPlan(&b, p, pick("QUOTA-001", "PSA-002", "NET-001", "META-001"), "https://prod:6443", target.Proof{Reason: "the cluster carries no bulkhead marker"})
	sections := map[string]string{}
	perNamespace, _, _ := strings.Cut(b.String(), "\nalso in bulkhead's own namespaces")
	for _, part := range strings.Split(perNamespace, "\nnamespace ")[1:] {
		name, _, _ := strings.Cut(part, " ")
		sections[name] = part
	}
	assert.Contains(t, sections["blue-api"], "QUOTA-001")
	assert.Contains(t, sections["blue-api"], "PSA-002", "the first namespace of a tenant with identities")
	assert.Contains(t, sections["blue-web"], "QUOTA-001")
	assert.NotContains(t, sections["blue-web"], "PSA-002")
	assert.NotContains(t, sections["green"], "QUOTA-001", "a tenant without identities gets nothing from checks acting as it")
	assert.NotContains(t, b.String(), "decoy", "the metadata decoy only on clusters proven disposable")
	assert.Contains(t, b.String(), "not disposable")
}

func TestCleanupForceNeedsRun(t *testing.T) {
	code, out := runCLI(t, "cleanup", "--context", "x", "--force")
	assert.Equal(t, exitCannot, code)
	assert.Contains(t, out, "--force needs --run")
}
