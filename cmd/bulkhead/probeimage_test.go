package main

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The probe image is built without Docker and pushed to a real registry
// implementation (go-containerregistry's, in memory), then pulled back.
func TestProbeImagePush(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the probe binary")
	}
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	dest := u.Host + "/platform/bulkhead-probe:test"

	code, out := runCLI(t, "probe-image", "--out", t.TempDir(), "--push", dest)
	require.Equal(t, exitPass, code, out)
	var pushed string
	for _, line := range strings.Split(out, "\n") {
		if after, ok := strings.CutPrefix(line, "pushed "); ok {
			pushed = after
		}
	}
	require.NotEmpty(t, pushed, out)
	assert.Contains(t, pushed, "@sha256:", "clusters should pull the pushed image by digest")

	ref, err := name.ParseReference(pushed)
	require.NoError(t, err)
	img, err := remote.Image(ref)
	require.NoError(t, err)
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "65532:65532", cfg.Config.User)
	assert.Equal(t, []string{"/probe"}, cfg.Config.Entrypoint)
}
