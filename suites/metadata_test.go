package suites

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata"
	"github.com/bulkhead-k8s/bulkhead/internal/target/decoy"
)

func TestMetadata(t *testing.T) {
	installMetadataDecoy(t)
	feats := checkFeatures(metadata.Checks())
	feats = append(feats, negativeFeatures(checks.Metadata, metadata.NegativeControls())...)
	testenv.Test(t, feats...)
}

// installMetadataDecoy installs the run's decoy once for every metadata
// feature (the checks and the negative control reuse it), and removes it
// at the end, also when a feature fails or the run is interrupted (the
// test's context is cancelled, its clean-ups still run). It then asserts
// nothing is left: no container of the run, no route via the decoy.
func installMetadataDecoy(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	env := h.session.Env()
	live, d, err := metadata.PrepareLive(ctx, env)
	require.NoError(t, err, "install the metadata decoy")
	if d == nil {
		t.Logf("no metadata decoy: %s", live.NoDecoy)
		return
	}
	t.Logf("metadata decoy %s at %s serves %v; owned by this test: %v", d.Container, d.IP, d.Addresses, d.Owned())
	t.Cleanup(func() {
		ctx := context.Background()
		assert.NoError(t, d.Cleanup(ctx), "remove the metadata decoy")
		// Belt and braces: whatever of this run's decoy a crash left.
		if removed, err := decoy.CleanupLeftovers(ctx, decoy.LeftoverOptions{RunID: env.RunID, KindCluster: d.Cluster.Name}); assert.NoError(t, err) && len(removed) > 0 {
			t.Errorf("the decoy's own clean-up left %v behind", removed)
		}
		left, err := d.Remaining(ctx)
		if assert.NoError(t, err) {
			assert.Empty(t, left, "nothing of the decoy may remain on the nodes or in Docker")
			t.Logf("metadata decoy removed: no container of run %s, no route via %s on %d nodes", env.RunID, d.IP, len(d.Cluster.Nodes))
		}
	})
}
