package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(bytes.NewReader(nil))
	err := root.ExecuteContext(context.Background())
	code := exitPass
	if err != nil {
		code = exitCannot
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		out.WriteString(err.Error())
	}
	return code, out.String()
}

func TestRunRejectsBadInputBeforeTouchingACluster(t *testing.T) {
	dir := t.TempDir()
	badConfig := filepath.Join(dir, "tenants.yaml")
	require.NoError(t, os.WriteFile(badConfig, []byte("apiVersion: bulkhead.dev/v1alpha1\nkind: TenantConfig\ntenants:\n- name: a\n  namespaces: [x]\n"), 0o644))
	badWaivers := filepath.Join(dir, "waivers.yaml")
	require.NoError(t, os.WriteFile(badWaivers, []byte("waivers: [{check: NET-001}]\n"), 0o644))
	// A kubeconfig that points nowhere reachable: if validation failed to
	// stop the run, it would try (and fail differently).
	unreachable := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"run"}, "no cluster"},
		{"kind and context", []string{"run", "--kind", "--context", "x"}, "cannot be combined"},
		{"unknown area", []string{"run", "--kubeconfig", unreachable, "--areas", "netwrok"}, `unknown area "netwrok"`},
		{"unknown profile", []string{"run", "--kubeconfig", unreachable, "--profile", "fast"}, "unknown profile"},
		{"bad label filter", []string{"run", "--kubeconfig", unreachable, "--labels", "area"}, "want key=value"},
		{"broken tenant config", []string{"run", "--kubeconfig", unreachable, "--config", badConfig}, "at least two tenants"},
		{"missing tenant config", []string{"run", "--kubeconfig", unreachable, "--config", filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"broken waivers", []string{"run", "--kubeconfig", unreachable, "--waivers", badWaivers}, "waiver"},
		{"fail-on new without baseline", []string{"run", "--kubeconfig", unreachable, "--fail-on", "new"}, "needs --baseline"},
		{"unknown format", []string{"run", "--kubeconfig", unreachable, "--format", "pdf"}, `--format "pdf"`},
		{"unknown flag", []string{"run", "--colour"}, "unknown flag"},
		{"unreachable cluster", []string{"run", "--kubeconfig", unreachable, "--yes"}, "127.0.0.1:1"},
		{"bad kubeconfig path", []string{"run", "--kubeconfig", filepath.Join(dir, "missing"), "--yes"}, "missing"},
		{"unknown context", []string{"run", "--kubeconfig", unreachable, "--context", "prod", "--yes"}, `no context "prod"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := runCLI(t, c.args...)
			assert.Equal(t, exitCannot, code, out)
			assert.Contains(t, out, c.want)
		})
	}
}

func TestVersion(t *testing.T) {
	code, out := runCLI(t, "version")
	assert.Equal(t, exitPass, code)
	assert.Contains(t, out, "bulkhead ")
	assert.Contains(t, out, "probe contract: v1")
}

func TestReportRejectsBadResults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "results.json")
	require.NoError(t, os.WriteFile(p, []byte("{nope"), 0o644))
	code, out := runCLI(t, "report", p)
	assert.Equal(t, exitCannot, code)
	assert.Contains(t, out, "parse results")
	code, _ = runCLI(t, "report")
	assert.Equal(t, exitCannot, code, "missing argument")
}

func TestCleanupNeedsACluster(t *testing.T) {
	code, out := runCLI(t, "cleanup")
	assert.Equal(t, exitCannot, code)
	assert.Contains(t, out, "--kubeconfig")
	code, out = runCLI(t, "cleanup", "--context", "x", "--run", "BAD")
	assert.Equal(t, exitCannot, code)
	assert.Contains(t, out, "run ID")
}
