package target

import (
	"flag"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/target/kindcluster"
)

// RegisterFlags adds the flags both front ends share (the kind cluster,
// Cilium, the probe image, reports, probe timing) to fs, over the values
// already in c and timing (defaults and BULKHEAD_* variables). The suites
// register them on Go's flag.CommandLine next to e2e-framework's own
// (--kubeconfig, --context, --labels, ...); the CLI adds the same FlagSet
// to its cobra command (pflag's AddGoFlagSet), so the two cannot drift.
func (c *Config) RegisterFlags(fs *flag.FlagSet, timing *checks.Timing) {
	fs.StringVar(&c.ClusterName, "cluster-name", c.ClusterName, "name of the disposable kind cluster (env "+EnvClusterName+")")
	fs.BoolVar(&c.KeepCluster, "keep-cluster", c.KeepCluster, "reuse the kind cluster of that name if it exists and keep it afterwards (env "+EnvKeepCluster+")")
	fs.StringVar(&c.NodeImage, "kind-node-image", c.NodeImage, "kind node image (env "+kindcluster.EnvNodeImage+")")
	fs.StringVar(&c.CiliumChart, "cilium-chart", c.CiliumChart, "Cilium chart: directory, .tgz, oci:// or REPO_URL/CHART (env BULKHEAD_CILIUM_CHART)")
	fs.Var(&listFlag{&c.CiliumValues, false}, "cilium-values", "extra Cilium values files, comma- or space-separated (env BULKHEAD_CILIUM_VALUES)")
	fs.Var(&listFlag{&c.PreloadImages, false}, "preload-images", "images to side-load from the local Docker engine into kind, comma- or space-separated (env "+kindcluster.EnvPreloadImages+")")
	fs.StringVar(&c.ProbeImage, "probe-image", c.ProbeImage, "probe image the cluster can pull (env "+EnvProbeImage+"); required unless the cluster is a kind cluster bulkhead created, where one is built and side-loaded")
	c.RegisterReportDir(fs)
	fs.DurationVar(&timing.ConnectTimeout, "connect-timeout", timing.ConnectTimeout, "per-probe connect timeout inside pods")
	fs.DurationVar(&timing.Enforcement, "enforcement-timeout", timing.Enforcement, "how long bulkhead's own setup may take to take effect before probing rounds count (policy enforcement delay)")
	fs.IntVar(&timing.Rounds, "rounds", timing.Rounds, "probe rounds that count once settled; a path that must be blocked and connects in any of them fails")
}

// RegisterReportDir adds --report-dir alone (`bulkhead report` takes it
// without the target flags).
func (c *Config) RegisterReportDir(fs *flag.FlagSet) {
	fs.StringVar(&c.ReportDir, "report-dir", c.ReportDir, "directory for reports; a run writes into <dir>/<run-id>/ (env "+EnvReportDir+"; default _reports)")
}

// listFlag is a list flag: values split on commas and spaces; the first
// use replaces the default (from the environment), later uses add to it.
type listFlag struct {
	list *[]string
	set  bool
}

func (l *listFlag) String() string {
	if l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ",")
}

func (l *listFlag) Set(v string) error {
	if !l.set {
		*l.list, l.set = nil, true
	}
	*l.list = append(*l.list, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })...)
	return nil
}

// Type names the value in pflag's help (the CLI).
func (l *listFlag) Type() string { return "strings" }
