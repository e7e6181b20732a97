package reports

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jstemmer/go-junit-report/v2/junit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sample() *Results {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	o := func(role Role, from, to, method, exp, got string, ok bool) Observation {
		return Observation{Role: role, Actor: Actor{Namespace: "ns-" + from, Pod: from}, Target: Target{Namespace: "ns-" + to, Name: to, Kind: "pod", Address: "10.0.0.1:8080"},
			Method: method, Expected: exp, Observed: got, OK: ok, At: t0}
	}
	return &Results{Schema: Schema, Run: RunInfo{ID: "k3x9q", Bulkhead: Build{Version: "dev"}, Started: t0, Finished: t0.Add(time.Minute),
		Cluster: Cluster{Context: "kind-bulkhead", KubernetesVersion: "v1.36.3", CNI: "cilium", CNIVersion: "v1.20.2", Nodes: 2, Disposable: true}},
		Checks: []CheckResult{
			{ID: "NET-001", Title: "Cross-tenant traffic is blocked", Area: "network", Verdict: Pass, Started: t0, Finished: t0.Add(3 * time.Second),
				Observations: []Observation{o(RoleTest, "a0", "b0", "tcp/pod-ip", "blocked", "timeout", true), o(RoleControl, "a0", "a1", "tcp/pod-ip", "reachable", "reachable", true)}},
			{ID: "NET-002", Title: "Ingress", Area: "network", Verdict: Fail, Reason: "leak: c0 -> b0", Started: t0, Finished: t0.Add(time.Second),
				Observations: []Observation{o(RoleTest, "c0", "b0", "tcp/pod-ip", "blocked", "reachable", false)}},
			{ID: "RBAC-001", Title: "RBAC", Area: "rbac", Verdict: Error, Reason: "forbidden to list", Started: t0, Finished: t0},
			{ID: "NET-009", Title: "SCTP", Area: "network", Verdict: Skipped, Reason: "no SCTP", Started: t0, Finished: t0},
		}}
}

func TestJSONRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := sample()
	path, err := WriteJSON(dir, r)
	require.NoError(t, err)
	back, err := ReadJSON(path)
	require.NoError(t, err)
	assert.Equal(t, r.Run.ID, back.Run.ID)
	require.Len(t, back.Checks, 4)
	assert.Equal(t, r.Checks[1].Observations, back.Checks[1].Observations)
	s := back.Summarize()
	assert.Equal(t, Summary{Total: 4, Pass: 1, Fail: 1, Error: 1, Skipped: 1}, s)
	assert.NotEqual(t, RunPass, s.Verdict())
}

func TestReadJSONRejectsOtherSchemas(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "results.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"schema":"something/else"}`), 0o644))
	_, err := ReadJSON(p)
	require.ErrorContains(t, err, `schema "something/else"`)
	require.NoError(t, os.WriteFile(p, []byte(`{not json`), 0o644))
	_, err = ReadJSON(p)
	require.ErrorContains(t, err, "parse results")
}

func TestJUnitStructure(t *testing.T) {
	data, err := JUnit(sample())
	require.NoError(t, err)
	var suites junit.Testsuites
	require.NoError(t, xml.Unmarshal(data, &suites))
	assert.Equal(t, 4, suites.Tests)
	assert.Equal(t, 1, suites.Failures)
	assert.Equal(t, 1, suites.Errors)
	assert.Equal(t, 1, suites.Skipped)
	require.Len(t, suites.Suites, 2)
	net := suites.Suites[0]
	assert.Equal(t, "bulkhead/network", net.Name)
	names := map[string]bool{}
	for _, tc := range net.Testcases {
		assert.False(t, names[tc.Name], "test case names are unique")
		names[tc.Name] = true
	}
	var failed *junit.Testcase
	for i := range net.Testcases {
		if net.Testcases[i].Failure != nil {
			failed = &net.Testcases[i]
		}
	}
	require.NotNil(t, failed)
	assert.Equal(t, "leak: c0 -> b0", failed.Failure.Message)
	require.NotNil(t, net.Testcases[0].SystemOut)
	assert.Contains(t, net.Testcases[0].SystemOut.Data, "truth tables")
}

func TestTruthTableText(t *testing.T) {
	tables := TruthTables(sample().Checks[0].Observations)
	require.Len(t, tables, 1)
	txt := tables[0].Text()
	assert.Contains(t, txt, "ns-a0/a0")
	assert.Contains(t, txt, "timeout")
	leak := TruthTables(sample().Checks[1].Observations)[0].Text()
	assert.Contains(t, leak, "!reachable")
}

func TestDescribeObservationSaysRoundAndWhy(t *testing.T) {
	r := roundsRun(t)
	var leak, unproven, na string
	for _, c := range r.Checks {
		for _, o := range c.Observations {
			switch {
			case leak == "" && o.Leak():
				leak = describeObservation(o)
			case unproven == "" && o.Status == StatusUnproven:
				unproven = describeObservation(o)
			case na == "" && o.Status == StatusNotApplicable:
				na = describeObservation(o)
			}
		}
	}
	assert.Equal(t, "bh-rnd3x-a/probe-0 -> bh-rnd3x-b/probe-1 tcp/cluster-ip: reachable (want blocked, round 3)", leak)
	assert.Equal(t, "bh-rnd3x-control/probe-1 -> bh-rnd3x-a/probe-0 tcp/pod-ip: not probed (want blocked, round 2) [unproven: inconclusive: not probed]", unproven)
	assert.Equal(t, "system:serviceaccount:bh-rnd3x-a:bulkhead-probe -> bh-rnd3x-a list secrets: may not (RBAC) (want may try) [not-applicable: serviceaccount bh-rnd3x-a/bulkhead-probe may not list secrets in bh-rnd3x-a (RBAC): no RoleBinding grants it]", na)
}
