package target

import (
	"flag"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// The shared flags parse the same way through Go's flag package (suites)
// and through pflag (CLI), and win over the environment.
func TestRegisterFlags(t *testing.T) {
	args := []string{"--cluster-name", "x", "--keep-cluster", "--cilium-values", "a.yaml,b.yaml", "--cilium-values", "c.yaml",
		"--preload-images", "img:1 img:2", "--probe-image", "reg/probe:1", "--report-dir", "/tmp/r", "--connect-timeout", "3s", "--enforcement-timeout", "5s"}
	check := func(c Config, timing checks.Timing) {
		assert.Equal(t, "x", c.ClusterName)
		assert.True(t, c.KeepCluster)
		assert.Equal(t, []string{"a.yaml", "b.yaml", "c.yaml"}, c.CiliumValues, "the flag replaces the environment's list, then adds")
		assert.Equal(t, []string{"img:1", "img:2"}, c.PreloadImages)
		assert.Equal(t, "reg/probe:1", c.ProbeImage)
		assert.Equal(t, "/tmp/r", c.ReportDir)
		assert.Equal(t, 3*time.Second, timing.ConnectTimeout)
		assert.Equal(t, 5*time.Second, timing.Enforcement)
	}
	env := func(k string) string {
		return map[string]string{"BULKHEAD_CILIUM_VALUES": "env.yaml", EnvClusterName: "from-env"}[k]
	}

	c, timing := FromEnv(env), checks.DefaultTiming()
	assert.Equal(t, []string{"env.yaml"}, c.CiliumValues)
	gfs := flag.NewFlagSet("suites", flag.ContinueOnError)
	c.RegisterFlags(gfs, &timing)
	require.NoError(t, gfs.Parse(args))
	check(c, timing)

	c, timing = FromEnv(env), checks.DefaultTiming()
	gfs = flag.NewFlagSet("cli", flag.ContinueOnError)
	c.RegisterFlags(gfs, &timing)
	pfs := pflag.NewFlagSet("cli", pflag.ContinueOnError)
	pfs.AddGoFlagSet(gfs)
	require.NoError(t, pfs.Parse(args))
	check(c, timing)
	assert.Equal(t, "strings", pfs.Lookup("cilium-values").Value.Type())

	c = FromEnv(env)
	gfs = flag.NewFlagSet("defaults", flag.ContinueOnError)
	c.RegisterFlags(gfs, &timing)
	require.NoError(t, gfs.Parse(nil))
	assert.Equal(t, "from-env", c.ClusterName, "without flags the environment stays")
	assert.Equal(t, []string{"env.yaml"}, c.CiliumValues)
}
