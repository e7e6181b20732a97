package reports

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gojunit "github.com/joshdk/go-junit"
	"github.com/jstemmer/go-junit-report/v2/junit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const net1Title = "NET-001 Cross-tenant traffic is blocked in both directions"

func writeJUnit(t *testing.T, r *Results) (string, []byte) {
	t.Helper()
	data, err := JUnitWith(r, testCatalogue(t))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), JUnitFile)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path, data
}

// A real JUnit consumer (joshdk/go-junit, as used by CI result tools) reads
// the report back: suites, per-pair test cases with their status, message
// and evidence.
func TestJUnitReadBackByGoJUnit(t *testing.T) {
	r := brokenRun(t)
	path, _ := writeJUnit(t, r)
	suites, err := gojunit.IngestFile(path)
	require.NoError(t, err)
	require.Len(t, suites, 1)
	net := suites[0]
	assert.Equal(t, "bulkhead/network", net.Name)
	assert.Equal(t, r.Run.ID, net.Properties["bulkhead.run"])

	byName := map[string]gojunit.Test{}
	for _, tc := range net.Tests {
		_, dup := byName[tc.Name]
		require.False(t, dup, "test case names are unique: %s", tc.Name)
		byName[tc.Name] = tc
		assert.Equal(t, "bulkhead.network", tc.Classname)
	}
	// NET-001 (tenants on both sides) is split per tenant pair ...
	for _, pair := range []string{"a -> a", "a -> b", "b -> a", "b -> b"} {
		assert.Contains(t, byName, net1Title+" ["+pair+"]")
	}
	assert.NotContains(t, byName, net1Title)
	leak := byName[net1Title+" [a -> b]"]
	assert.Equal(t, gojunit.StatusFailed, leak.Status)
	assert.Contains(t, leak.Message, "2 of 24 paths a -> b not as expected")
	assert.Contains(t, leak.Message, "reachable (want blocked)")
	require.Error(t, leak.Error)
	assert.Contains(t, leak.Error.Error(), "check: "+findCheck(t, r, "NET-001").Reason)
	// ... and its evidence is only that pair's observations.
	assert.Contains(t, leak.SystemOut, "[a -> b]; check verdict: FAIL")
	assert.Contains(t, leak.SystemOut, "observations (24; ")
	assert.NotContains(t, leak.SystemOut, "bh-xd1m0-b/probe-0 -> bh-xd1m0-a")
	assert.Equal(t, gojunit.StatusPassed, byName[net1Title+" [b -> a]"].Status, "the other direction did not leak")
	// NET-005 (DNS: targets are not tenants) stays one test case, skipped.
	dns := byName["NET-005 DNS resolution works from tenant pods"]
	assert.Equal(t, gojunit.StatusSkipped, dns.Status)
	assert.Equal(t, "not evaluated: no DNS service found in kube-system", dns.Message)
	assert.Equal(t, gojunit.StatusError, byName["NET-003 Tenant egress to other namespaces is blocked"].Status)

	net.Aggregate()
	assert.Equal(t, 1, net.Totals.Failed)
	assert.Equal(t, 1, net.Totals.Error)
	assert.Equal(t, 1, net.Totals.Skipped)
	assert.Equal(t, len(net.Tests), net.Totals.Passed+3)
}

// go-junit-report's JUnit types (the schema GitLab and Jenkins read): a
// <testsuites> root with totals, suites with name/tests/failures/errors/
// skipped/time/timestamp, cases with name and classname, failure message
// and system-out.
func TestJUnitStructureForGitLab(t *testing.T) {
	_, data := writeJUnit(t, brokenRun(t))
	var root junit.Testsuites
	require.NoError(t, xml.Unmarshal(data, &root))
	assert.Equal(t, "testsuites", root.XMLName.Local)
	require.Len(t, root.Suites, 1)
	s := root.Suites[0]
	assert.Equal(t, "bulkhead/network", s.Name)
	assert.Equal(t, len(s.Testcases), s.Tests)
	assert.Equal(t, 1, s.Failures)
	assert.Equal(t, 1, s.Errors)
	assert.Equal(t, 1, s.Skipped)
	assert.Equal(t, s.Tests, root.Tests)
	assert.NotEmpty(t, s.Time)
	assert.NotEmpty(t, s.Timestamp)
	failures := 0
	for _, tc := range s.Testcases {
		assert.NotEmpty(t, tc.Name)
		assert.NotEmpty(t, tc.Classname)
		assert.NotEmpty(t, tc.Time)
		require.NotNil(t, tc.SystemOut, tc.Name)
		assert.Contains(t, tc.SystemOut.Data, "observations (")
		if tc.Failure != nil {
			failures++
			assert.NotEmpty(t, tc.Failure.Message)
			assert.Equal(t, "isolation", tc.Failure.Type)
		}
	}
	assert.Equal(t, 1, failures)

	// Every suite states its counts as attributes, zero included (some
	// consumers do not default missing counts).
	dec := xml.NewDecoder(bytes.NewReader(data))
	suites := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "testsuite" {
			suites++
			attrs := map[string]bool{}
			for _, a := range se.Attr {
				attrs[a.Name.Local] = true
			}
			for _, want := range []string{"name", "tests", "failures", "errors", "skipped", "time", "timestamp"} {
				assert.True(t, attrs[want], "testsuite attribute %s", want)
			}
		}
	}
	assert.Equal(t, 1, suites)
}

type caseProps struct {
	Cases []struct {
		Name  string `xml:"name,attr"`
		Props []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
	} `xml:"testsuite>testcase"`
}

func TestJUnitControlIDsAsProperties(t *testing.T) {
	_, data := writeJUnit(t, realRun(t))
	var got caseProps
	require.NoError(t, xml.Unmarshal(data, &got))
	found := false
	for _, c := range got.Cases {
		if c.Name != net1Title+" [a -> b]" {
			continue
		}
		found = true
		props := map[string][]string{}
		for _, p := range c.Props {
			props[p.Name] = append(props[p.Name], p.Value)
		}
		assert.Equal(t, []string{"NET-001"}, props["check.id"])
		assert.Equal(t, []string{"pass"}, props["verdict"])
		assert.Equal(t, []string{"critical"}, props["severity"])
		assert.Equal(t, []string{"5.3.1", "5.3.2"}, props["cis.1.10"])
		assert.Equal(t, []string{"MTB-PL1-BC-NI-1"}, props["mtb"])
		assert.Contains(t, props["nist80053"], "AC-4")
		assert.Contains(t, props["nist800190"], "4.3.3")
		assert.Contains(t, props["pciDss"], "11.4.5")
		assert.NotEmpty(t, props["nsaCisa"])
		assert.Equal(t, []string{"a"}, props["tenant.actor"])
		assert.Equal(t, []string{"b"}, props["tenant.target"])
	}
	assert.True(t, found)
}

func TestJUnitWaivedPairsAreSkipped(t *testing.T) {
	path, _ := writeJUnit(t, waivedRun(t))
	suites, err := gojunit.IngestFile(path)
	require.NoError(t, err)
	var leak *gojunit.Test
	for i, tc := range suites[0].Tests {
		if tc.Name == net1Title+" [a -> b]" {
			leak = &suites[0].Tests[i]
		}
		assert.NotEqual(t, gojunit.StatusFailed, tc.Status, "%s: a waived failure does not fail the pipeline", tc.Name)
	}
	require.NotNil(t, leak)
	assert.Equal(t, gojunit.StatusSkipped, leak.Status)
	assert.True(t, strings.HasPrefix(leak.Message, "waived until 2027-01-31: shared cache, ticket SEC-1"), leak.Message)
}

func TestTenantPairs(t *testing.T) {
	obs := []Observation{
		{Actor: Actor{Tenant: "b"}, Target: Target{Tenant: "a"}},
		{Actor: Actor{Tenant: "a"}, Target: Target{Tenant: "b"}},
		{Actor: Actor{Tenant: "a"}, Target: Target{Tenant: "b"}},
	}
	pairs, by := TenantPairs(obs)
	assert.Equal(t, []TenantPair{{"a", "b"}, {"b", "a"}}, pairs)
	assert.Len(t, by[TenantPair{"a", "b"}], 2)
	pairs, _ = TenantPairs(append(obs, Observation{Actor: Actor{Tenant: "a"}, Target: Target{Namespace: "kube-system"}}))
	assert.Nil(t, pairs, "an observation without a target tenant keeps the check in one test case")
}

func ingest(t *testing.T, r *Results) (map[string]gojunit.Test, []gojunit.Suite) {
	t.Helper()
	path, _ := writeJUnit(t, r)
	suites, err := gojunit.IngestFile(path)
	require.NoError(t, err)
	byName := map[string]gojunit.Test{}
	for _, s := range suites {
		for _, tc := range s.Tests {
			byName[tc.Name] = tc
		}
	}
	return byName, suites
}

// On the engine's run a pair is green only when every tested path of it
// was proven; an unproven check is one skipped case, never green pairs.
func TestJUnitPairsAreGreenOnlyWhenProven(t *testing.T) {
	r := roundsRun(t)
	byName, suites := ingest(t, r)
	const net1 = "NET-001 Cross-tenant traffic is blocked in both directions"
	const net2 = "NET-002 Tenant ingress is isolated from unprotected namespaces"
	// NET-001 failed by one leak: its pair fails, the rest was proven.
	assert.Equal(t, gojunit.StatusFailed, byName[net1+" [a -> b]"].Status)
	assert.Contains(t, byName[net1+" [a -> b]"].Message, "1 of 72 paths a -> b not as expected: bh-rnd3x-a/probe-0 -> bh-rnd3x-b/probe-1 tcp/cluster-ip: reachable (want blocked, round 3)")
	assert.Equal(t, gojunit.StatusPassed, byName[net1+" [b -> a]"].Status)
	// NET-002: the leaking pair fails; the pair whose round-2 paths were
	// unproven (control/probe-1's exec failed) is green, as rounds 1 and 3
	// proved those paths, and its output still shows round 2's gap; the pair
	// whose positive control failed says so.
	assert.Equal(t, gojunit.StatusFailed, byName[net2+" [control -> b]"].Status)
	assert.NotContains(t, byName[net2+" [control -> b]"].Message, "unproven")
	covered := byName[net2+" [control -> a]"]
	assert.Equal(t, gojunit.StatusPassed, covered.Status, covered.Message)
	assert.Contains(t, covered.SystemOut, "UNPR [test] bh-rnd3x-control/probe-1 -> bh-rnd3x-a/probe-0 (10.244.0.90:8080) tcp/pod-ip: expected blocked, observed not probed in round 2")
	ctl := byName[net2+" [control -> control]"]
	assert.Equal(t, gojunit.StatusSkipped, ctl.Status)
	assert.Contains(t, ctl.Message, "positive controls control -> control failed")
	// Unproven checks stay one case, skipped with the reason.
	for _, id := range []string{"RBAC-002"} {
		c := findCheck(t, r, id)
		tc, ok := byName[c.ID+" "+c.Title]
		require.True(t, ok, "%s is one test case", id)
		assert.Equal(t, gojunit.StatusSkipped, tc.Status)
		assert.Equal(t, "unproven: "+c.Reason, tc.Message)
		for name := range byName {
			assert.False(t, strings.HasPrefix(name, c.ID+" "+c.Title+" ["), "no pair cases of unproven %s: %s", id, name)
		}
	}
	// RBAC-001 passed; its pairs where the only test is not applicable are
	// not green either.
	const rbac1 = "RBAC-001 Tenants cannot read or change resources in other tenants' namespaces"
	assert.Equal(t, gojunit.StatusPassed, byName[rbac1+" [a -> b]"].Status)
	assert.Equal(t, gojunit.StatusSkipped, byName[rbac1+" [a -> a]"].Status)
	assert.Contains(t, byName[rbac1+" [a -> a]"].Message, "not evaluated: no identity may try a -> a: system:serviceaccount:bh-rnd3x-a:bulkhead-probe")

	// Whatever the check: no green case holds a test that did not pass,
	// but for a round whose path another round proved.
	for _, c := range r.Checks {
		pairs, by := TenantPairs(c.Observations)
		for _, p := range pairs {
			tc, ok := byName[fmt.Sprintf("%s %s [%s]", c.ID, c.Title, p)]
			if !ok || tc.Status != gojunit.StatusPassed {
				continue
			}
			covered := CoveredByOtherRounds(by[p])
			for i, o := range by[p] {
				assert.True(t, o.Passed() || covered[i], "green %s holds %s", tc.Name, describeObservation(o))
			}
		}
	}
	for _, s := range suites {
		assert.Equal(t, "FAIL", s.Properties["bulkhead.verdict"], s.Name)
	}
}

// The run verdict is on the <testsuites> root too, so CI can tell an
// INCOMPLETE run (nothing failed, not everything proven) from a PASS.
func TestJUnitCarriesTheRunVerdict(t *testing.T) {
	r, waived := roundsRun(t), incompleteRun(t)
	for _, c := range []struct {
		r    *Results
		want RunVerdict
	}{{realRun(t), RunPass}, {r, RunFail}, {waived, RunIncomplete}, {interruptedRun(t), RunError}} {
		_, data := writeJUnit(t, c.r)
		var root struct {
			Props []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
		}
		require.NoError(t, xml.Unmarshal(data, &root))
		props := map[string]string{}
		for _, p := range root.Props {
			props[p.Name] = p.Value
		}
		assert.Equal(t, string(c.want), props["bulkhead.verdict"])
		assert.Equal(t, Counts(c.r), props["bulkhead.summary"])
	}
	// Waived, NET-002's leaking pair is skipped as waived (its round-2
	// gaps are covered by rounds 1 and 3); RBAC-002, unproven, is one
	// skipped case, not green pairs.
	byName, _ := ingest(t, waived)
	n2 := findCheck(t, waived, "NET-002")
	assert.Equal(t, Waived, n2.Verdict)
	assert.Equal(t, gojunit.StatusSkipped, byName[n2.ID+" "+n2.Title+" [control -> b]"].Status)
	assert.True(t, strings.HasPrefix(byName[n2.ID+" "+n2.Title+" [control -> b]"].Message, "waived until 2027-01-31"), byName[n2.ID+" "+n2.Title+" [control -> b]"].Message)
	r2 := findCheck(t, waived, "RBAC-002")
	assert.Equal(t, gojunit.StatusSkipped, byName[r2.ID+" "+r2.Title].Status)
	assert.True(t, strings.HasPrefix(byName[r2.ID+" "+r2.Title].Message, "unproven: "))
	assert.Equal(t, gojunit.StatusSkipped, byName["NET-001 Cross-tenant traffic is blocked in both directions [a -> b]"].Status)
}
