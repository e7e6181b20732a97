package checks

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidateFootprints(t *testing.T) {
	ok := Footprint{Where: TenantNamespaces, Kinds: []string{"Pod"}, What: "Pods", Lifetime: DuringCheck, Scope: WithIdentities}
	cases := []struct {
		name    string
		creates []Footprint
		want    string
	}{
		{"none declared", nil, "declares no footprint"},
		{"nothing and something", append(CreatesNothing("dry-run"), ok), "both"},
		{"nothing without why", CreatesNothing(" "), "say what it does instead"},
		{"no lifetime", []Footprint{{Where: TenantNamespaces, Kinds: []string{"Pod"}, What: "Pods"}}, "how long"},
		{"no kinds", []Footprint{{Where: TenantNamespaces, What: "Pods", Lifetime: DuringCheck}}, "name the kinds"},
		{"unknown place", []Footprint{{Where: "somewhere", Kinds: []string{"Pod"}, What: "Pods", Lifetime: WholeRun}}, "unknown place"},
		{"scope outside tenants", []Footprint{{Where: OwnNamespaces, Kinds: []string{"Pod"}, What: "Pods", Lifetime: WholeRun, Scope: FirstNamespace}}, "tenant namespaces only"},
	}
	for _, tc := range cases {
		err := ValidateFootprints(Check{ID: "X-001", Creates: tc.creates})
		if assert.Error(t, err, tc.name) {
			assert.Contains(t, err.Error(), tc.want, tc.name)
		}
	}
	assert.NoError(t, ValidateFootprints(Check{ID: "X-001", Creates: []Footprint{ok}}))
	assert.NoError(t, ValidateFootprints(Check{ID: "X-001", Creates: CreatesNothing("dry-run requests")}))
	assert.True(t, Check{Creates: []Footprint{ok}}.InTenantNamespaces())
	assert.Equal(t, "Pods (each namespace of each tenant with identities; while the check runs; deleted before it ends)", ok.Describe())
}
