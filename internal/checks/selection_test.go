package checks

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

func sampleChecks() ([]Check, reports.Catalogue) {
	run := func(context.Context, *Env) Outcome { return Outcome{} }
	cs := []Check{
		{ID: "NET-001", Area: Network, Run: run},
		{ID: "RBAC-001", Area: RBAC, Run: run, Slow: true},
		{ID: "QUOTA-001", Area: Quota, Run: run},
	}
	cat := reports.Catalogue{
		"NET-001":  {Mappings: reports.Mappings{MTB: []string{"MTB-PL1-BC-NI-1"}, NIST80053: []string{"AC-4", "SC-7"}, CIS: map[string][]string{"1.10": {"5.3.2"}}}},
		"RBAC-001": {Mappings: reports.Mappings{NIST80053: []string{"AC-3"}}},
	}
	return cs, cat
}

func ids(cs []Check) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestSelect(t *testing.T) {
	cs, cat := sampleChecks()
	lbl := func(s string) map[string][]string { m, err := ParseLabels(s); require.NoError(t, err); return m }
	cases := []struct {
		name string
		sel  Selection
		want []string
	}{
		{"everything", Selection{}, []string{"NET-001", "RBAC-001", "QUOTA-001"}},
		{"areas", Selection{Areas: []string{"network", "quota"}}, []string{"NET-001", "QUOTA-001"}},
		{"quick leaves slow checks out", Selection{Profile: ProfileQuick}, []string{"NET-001", "QUOTA-001"}},
		{"by framework label", Selection{Labels: lbl("mtb=MTB-PL1-BC-NI-1")}, []string{"NET-001"}},
		{"either value of a key", Selection{Labels: lbl("nist80053=AC-3,nist80053=SC-7")}, []string{"NET-001", "RBAC-001"}},
		{"all keys must match", Selection{Labels: lbl("area=network,nist80053=AC-3")}, nil},
		{"skip labels", Selection{SkipLabels: lbl("area=rbac")}, []string{"NET-001", "QUOTA-001"}},
		{"cis", Selection{Labels: lbl("cis=5.3.2")}, []string{"NET-001"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Select(cs, cat, c.sel)
			if c.want == nil {
				require.ErrorContains(t, err, "matches no check")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, ids(got))
		})
	}
}

func TestSelectRejectsTypos(t *testing.T) {
	cs, cat := sampleChecks()
	_, err := Select(cs, cat, Selection{Areas: []string{"netwrok"}})
	require.ErrorContains(t, err, `unknown area "netwrok" (areas: network, quota, rbac)`)
	_, err = Select(cs, cat, Selection{Profile: "fast"})
	require.ErrorContains(t, err, "unknown profile")
	_, err = ParseLabels("area")
	require.ErrorContains(t, err, "want key=value")
}
