// Package target prepares what bulkhead runs against: a disposable kind
// cluster with Cilium (created, or reused when asked), or an existing cluster
// from a kubeconfig; and the probe image (built without Docker and
// side-loaded into kind, or a pullable image the user names).
//
// Both front ends (the CLI and the e2e suites) go through one lifecycle:
// Prepare returns a Target, Release deletes what Prepare made. The
// configuration comes from Config, filled from BULKHEAD_* environment
// variables and then the flags RegisterFlags adds (once, for both).
package target

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bulkhead-k8s/bulkhead"
	"github.com/bulkhead-k8s/bulkhead/internal/probebin"
	"github.com/bulkhead-k8s/bulkhead/internal/target/cni"
	"github.com/bulkhead-k8s/bulkhead/internal/target/kindcluster"
	"github.com/bulkhead-k8s/bulkhead/probes/image"
)

// Environment variables (flags of the same meaning win over them).
const (
	EnvClusterName  = "BULKHEAD_CLUSTER_NAME"
	EnvKeepCluster  = "BULKHEAD_KEEP_CLUSTER"
	EnvProbeImage   = "BULKHEAD_PROBE_IMAGE"
	EnvReportDir    = "BULKHEAD_REPORT_DIR"
	DefaultCluster  = "bulkhead"
	DefaultReportTo = "_reports"
)

// Config is everything that decides the target of a run.
type Config struct {
	// Kubeconfig and Context name an existing cluster. When Kind is false
	// they are what bulkhead runs against.
	Kubeconfig, Context string

	// Kind asks for a disposable kind cluster named ClusterName.
	Kind        bool
	ClusterName string
	// KeepCluster reuses a kind cluster of the same name if it exists and
	// does not delete it at the end (the fast developer loop).
	KeepCluster bool
	NodeImage   string
	// KindConfig is the kind cluster config; bulkhead's kind-config.yaml when empty.
	KindConfig    []byte
	CiliumChart   string
	CiliumValues  []string
	PreloadImages []string

	// ProbeImage is a pullable (or already side-loaded) probe image; when
	// empty bulkhead builds one from its source and side-loads it (kind only).
	ProbeImage string
	// WorkDir holds build artifacts (the probe binary and image tarball).
	WorkDir string
	// ReportDir is where run reports go (a directory per run inside it).
	ReportDir string

	// Confirm, when set, is asked before Prepare goes on with a cluster
	// that is not proven disposable; an error stops Prepare.
	Confirm func(ctx context.Context, t *Target) error

	Log *slog.Logger
}

// FromEnv returns a Config with defaults and the BULKHEAD_* variables
// applied, read through getenv (os.Getenv).
func FromEnv(getenv func(string) string) Config {
	k := kindcluster.OptionsFromEnv(getenv)
	c := cni.OptionsFromEnv(getenv)
	cfg := Config{
		ClusterName:   DefaultCluster,
		NodeImage:     k.NodeImage,
		PreloadImages: k.PreloadImages,
		CiliumChart:   c.Chart,
		CiliumValues:  c.ValuesFiles,
		ProbeImage:    strings.TrimSpace(getenv(EnvProbeImage)),
		ReportDir:     strings.TrimSpace(getenv(EnvReportDir)),
	}
	if v := strings.TrimSpace(getenv(EnvClusterName)); v != "" {
		cfg.ClusterName = v
	}
	if v, err := strconv.ParseBool(strings.TrimSpace(getenv(EnvKeepCluster))); err == nil {
		cfg.KeepCluster = v
	}
	return cfg
}

// Logger returns the configured logger or a discarding one.
func (c *Config) Logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// KindOptions are the kindcluster options for this config.
func (c *Config) KindOptions() kindcluster.Options {
	raw := c.KindConfig
	if len(raw) == 0 {
		raw = bulkhead.KindConfig
	}
	return kindcluster.Options{
		Name:      c.ClusterName,
		NodeImage: c.NodeImage,
		RawConfig: raw,
		Reuse:     c.KeepCluster,
		Logger:    c.Logger(),
	}
}

// PreloadImages side-loads the configured images that exist in the local
// Docker engine; missing ones are reported, not fatal (the node may pull them).
func (c *Config) PreloadImagesInto(ctx context.Context, kc *kindcluster.Cluster) error {
	if len(c.PreloadImages) == 0 {
		return nil
	}
	loaded, missing, err := kc.PreloadImages(ctx, c.PreloadImages)
	if err != nil {
		return fmt.Errorf("preload images into kind cluster %s: %w", kc.Name(), err)
	}
	c.Logger().Info("preloaded images", "loaded", loaded, "missing locally", missing)
	return nil
}

// InstallCNI installs Cilium into the cluster behind kubeconfig and waits for it.
func (c *Config) InstallCNI(ctx context.Context, kubeconfig, kubeContext string) (*cni.Result, error) {
	res, err := cni.Install(ctx, cni.Options{
		Chart:       c.CiliumChart,
		ValuesFiles: c.CiliumValues,
		Kubeconfig:  kubeconfig,
		Context:     kubeContext,
		Logger:      c.Logger(),
	})
	if err != nil {
		return nil, fmt.Errorf("install Cilium: %w", err)
	}
	c.Logger().Info("Cilium ready", "chart", res.Chart, "version", res.Version, "action", res.Action, "took", res.Took.Round(time.Second))
	return res, nil
}

// BuildProbeImage builds the probe image into WorkDir: from the probe binary
// embedded in this bulkhead (a `make build` CLI), or else from bulkhead's
// source (the module holding the current directory).
func (c *Config) BuildProbeImage(ctx context.Context) (image.Image, error) {
	ver, _ := bulkhead.Version()
	opts := image.Options{OutDir: c.WorkDir, Version: ver}
	if probebin.Binary != nil {
		if opts.OutDir == "" {
			opts.OutDir = filepath.Join(os.TempDir(), "bulkhead-probe")
		}
		if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
			return image.Image{}, fmt.Errorf("build probe image: %w", err)
		}
		opts.Binary = filepath.Join(opts.OutDir, "probe-embedded")
		if err := os.WriteFile(opts.Binary, probebin.Binary, 0o755); err != nil {
			return image.Image{}, fmt.Errorf("build probe image: write embedded probe: %w", err)
		}
		opts.GOARCH = probebin.GOARCH
	} else {
		wd, err := os.Getwd()
		if err != nil {
			return image.Image{}, fmt.Errorf("build probe image: %w", err)
		}
		root, err := image.FindModuleRoot(wd)
		if err != nil {
			return image.Image{}, fmt.Errorf("build probe image: run from a bulkhead checkout, use a `make build` bulkhead, or pass a prebuilt image with --probe-image: %w", err)
		}
		opts.ModuleRoot = root
		if opts.OutDir == "" {
			opts.OutDir = filepath.Join(root, "_output", "probe")
		}
	}
	img, err := image.Build(ctx, opts)
	if err != nil {
		return image.Image{}, err
	}
	c.Logger().Info("probe image built", "ref", img.Ref, "tarball", img.Tarball)
	return img, nil
}

// ProvideProbeImage makes a probe image available to the kind cluster: the
// configured one (side-loaded if the local Docker engine has it) or a fresh
// build side-loaded from its tarball. It returns the image reference.
func (c *Config) ProvideProbeImage(ctx context.Context, kc *kindcluster.Cluster) (string, error) {
	if c.ProbeImage != "" {
		_, missing, err := kc.PreloadImages(ctx, []string{c.ProbeImage})
		if err != nil {
			return "", fmt.Errorf("side-load probe image %s: %w", c.ProbeImage, err)
		}
		if len(missing) > 0 {
			c.Logger().Info("probe image not in the local Docker engine; the nodes will pull it", "image", c.ProbeImage)
		}
		return c.ProbeImage, nil
	}
	img, err := c.BuildProbeImage(ctx)
	if err != nil {
		return "", err
	}
	if err := kc.LoadImageArchive(ctx, img.Tarball); err != nil {
		return "", fmt.Errorf("side-load probe image %s: %w", img.Ref, err)
	}
	return img.Ref, nil
}

// ReportRoot returns the directory reports go to: ReportDir, or _reports
// at the module root when run from a checkout, or ./_reports.
func (c *Config) ReportRoot() string {
	if c.ReportDir != "" {
		return c.ReportDir
	}
	if wd, err := os.Getwd(); err == nil {
		if root, err := image.FindModuleRoot(wd); err == nil {
			return filepath.Join(root, DefaultReportTo)
		}
	}
	return DefaultReportTo
}

// ErrNoTarget says neither a kubeconfig nor --kind was given.
var ErrNoTarget = errors.New("no cluster: pass --kubeconfig/--context for an existing cluster, or --kind for a disposable one")
