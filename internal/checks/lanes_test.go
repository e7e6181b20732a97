package checks

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLanesKeepOrderAndPutTheAPILaneFirst(t *testing.T) {
	cs := []Check{
		{ID: "EXP-001"}, {ID: "EXP-004", Lane: LaneNodes}, {ID: "META-001", Lane: LaneMetadata},
		{ID: "META-002", Lane: LaneMetadata}, {ID: "PSA-001"}, {ID: "NET-001", Lane: LaneNetwork}, {ID: "QUOTA-001"},
	}
	lanes, err := Lanes(cs)
	require.NoError(t, err)
	require.Len(t, lanes, 4)
	assert.Equal(t, []string{"EXP-001", "PSA-001", "QUOTA-001"}, ids(lanes[0]))
	assert.Equal(t, []string{"EXP-004"}, ids(lanes[1]))
	assert.Equal(t, []string{"META-001", "META-002"}, ids(lanes[2]))
	assert.Equal(t, []string{"NET-001"}, ids(lanes[3]))

	only, err := Lanes([]Check{{ID: "NET-001", Lane: LaneNetwork}})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"NET-001"}}, [][]string{ids(only[0])})
}

func TestLanesRefuseAProbeCheckThatCreatesInTenantNamespaces(t *testing.T) {
	_, err := Lanes([]Check{{ID: "X-001", Lane: LaneNetwork, Creates: []Footprint{{Where: TenantNamespaces, Kinds: []string{"Pod"}}}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "X-001")
	assert.Contains(t, err.Error(), "API lane")
}
