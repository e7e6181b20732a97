package suites

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/bulkhead-k8s/bulkhead"
	"github.com/bulkhead-k8s/bulkhead/fixtures/kindcluster"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/session"
	"github.com/bulkhead-k8s/bulkhead/internal/target"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// harness holds the run's state between TestMain's setup, the tests and
// Finish: the target, the kind cluster (if bulkhead made one) and the session.
type harness struct {
	target target.Config
	log    *slog.Logger
	timing checks.Timing
	kind   *kindcluster.Cluster
	// madeByBulkhead: the cluster carries bulkhead's marker (created now or
	// by an earlier run with --keep-cluster).
	madeByBulkhead bool
	probe          string
	clients        *kube.Clients
	session        *session.Session

	finishOnce sync.Once
	finished   chan struct{}
	// finishErr is what Finish could not do (reports, clean-up); it fails
	// the run even when every test passed.
	finishErr error
}

func newHarness() *harness {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t := target.FromEnv(os.Getenv)
	t.Log = log
	return &harness{target: t, log: log, timing: checks.DefaultTiming(), finished: make(chan struct{})}
}

// registerFlags adds bulkhead's flags next to e2e-framework's (which include
// --kubeconfig, --context, --labels and --skip-labels). Flags win over the
// BULKHEAD_* environment variables, which are already in h.target.
func (h *harness) registerFlags(fs *flag.FlagSet) {
	t := &h.target
	fs.StringVar(&t.ClusterName, "cluster-name", t.ClusterName, "name of the disposable kind cluster (env "+target.EnvClusterName+")")
	fs.BoolVar(&t.KeepCluster, "keep-cluster", t.KeepCluster, "reuse the kind cluster of that name if it exists and keep it afterwards (env "+target.EnvKeepCluster+")")
	fs.StringVar(&t.NodeImage, "kind-node-image", t.NodeImage, "kind node image (env "+kindcluster.EnvNodeImage+")")
	fs.StringVar(&t.CiliumChart, "cilium-chart", t.CiliumChart, "Cilium chart: directory, .tgz, oci:// or REPO_URL/CHART (env BULKHEAD_CILIUM_CHART)")
	fs.Func("cilium-values", "space-separated extra Cilium values files (env BULKHEAD_CILIUM_VALUES)", func(v string) error {
		t.CiliumValues = strings.Fields(v)
		return nil
	})
	fs.Func("preload-images", "space-separated images to side-load from the local Docker engine (env "+kindcluster.EnvPreloadImages+")", func(v string) error {
		t.PreloadImages = strings.Fields(v)
		return nil
	})
	fs.StringVar(&t.ProbeImage, "probe-image", t.ProbeImage, "prebuilt probe image (required on existing clusters; env "+target.EnvProbeImage+")")
	fs.StringVar(&t.ReportDir, "report-dir", t.ReportDir, "directory for run reports (env "+target.EnvReportDir+"; default _reports at the module root)")
	fs.DurationVar(&h.timing.ConnectTimeout, "connect-timeout", h.timing.ConnectTimeout, "per-probe connect timeout inside pods")
	fs.DurationVar(&h.timing.Enforcement, "enforcement-timeout", h.timing.Enforcement, "how long bulkhead's own setup may take to take effect before probing rounds count (policy enforcement delay)")
	fs.IntVar(&h.timing.Rounds, "rounds", h.timing.Rounds, "probe rounds that count once settled")
}

func (h *harness) existingCluster() bool {
	return h.target.Kubeconfig != "" || h.target.Context != ""
}

func (h *harness) newKindCluster() {
	h.kind = kindcluster.New(h.target.KindOptions())
}

// useExistingCluster runs against the kubeconfig's cluster. A kind cluster
// bulkhead created earlier (kept with --keep-cluster) is recognised by its
// marker: then a probe image is built and side-loaded as for a new one, so
// several developers' runs can share one cluster.
func (h *harness) useExistingCluster(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	clients, err := kube.Load(cfg.KubeconfigFile(), cfg.KubeContext())
	if err != nil {
		return ctx, err
	}
	if _, err := clients.Ping(ctx); err != nil {
		return ctx, err
	}
	marker, made := target.ReadMarker(ctx, clients)
	h.madeByBulkhead = made
	h.probe = h.target.ProbeImage
	if h.probe != "" {
		return ctx, nil
	}
	if !made || marker.KindCluster == "" {
		return ctx, errors.New("against an existing cluster, pass --probe-image (a probe image the cluster can pull; `make probe-image` builds one)")
	}
	opts := h.target.KindOptions()
	opts.Name, opts.Reuse = marker.KindCluster, true
	h.probe, err = h.target.ProvideProbeImage(ctx, kindcluster.New(opts))
	return ctx, err
}

// markCluster records that bulkhead made this kind cluster.
func (h *harness) markCluster(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	clients, err := kube.Load(cfg.KubeconfigFile(), cfg.KubeContext())
	if err != nil {
		return ctx, err
	}
	h.madeByBulkhead = true
	return ctx, target.MarkCluster(ctx, clients, h.target.ClusterName)
}

func (h *harness) installCNI(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	if err := h.target.PreloadImagesInto(ctx, h.kind); err != nil {
		return ctx, err
	}
	_, err := h.target.InstallCNI(ctx, cfg.KubeconfigFile(), "")
	return ctx, err
}

func (h *harness) provideProbeImage(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	ref, err := h.target.ProvideProbeImage(ctx, h.kind)
	h.probe = ref
	return ctx, err
}

func (h *harness) startSession(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	clients, err := kube.Load(cfg.KubeconfigFile(), cfg.KubeContext())
	if err != nil {
		return ctx, err
	}
	h.clients = clients
	ver, commit := bulkhead.Version()
	s, err := session.New(session.Options{
		Clients:        clients,
		ProbeImage:     h.probe,
		Disposable:     h.madeByBulkhead,
		CleanLeftovers: h.kind != nil,
		Timing:         h.timing,
		Log:            h.log,
		Frontend:       "go test",
		Build:          reports.Build{Version: ver, Commit: commit},
	})
	if err != nil {
		return ctx, err
	}
	h.session = s
	h.log.Info("run", "id", s.RunID())
	return ctx, s.Start(ctx)
}

// finish writes the reports (when checks ran), removes the run's objects and
// deletes the disposable cluster unless asked to keep it.
func (h *harness) finish(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	var errs []error
	h.finishOnce.Do(func() {
		defer close(h.finished)
		ctx := context.WithoutCancel(ctx)
		if h.session != nil {
			if res := h.session.Results(); len(res.Checks) > 0 {
				if err := h.writeReports(res); err != nil {
					errs = append(errs, err)
				}
			}
			if err := h.session.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := h.destroyCluster(ctx); err != nil {
			errs = append(errs, err)
		}
	})
	err := errors.Join(errs...)
	if err != nil {
		h.log.Error("finish", "error", err)
		h.finishErr = err
	}
	return ctx, err
}

func (h *harness) destroyCluster(ctx context.Context) error {
	if h.kind == nil || !h.kind.Created() || h.target.KeepCluster {
		if h.kind != nil && h.target.KeepCluster {
			h.log.Info("keeping kind cluster (--keep-cluster)", "name", h.target.ClusterName)
		}
		return nil
	}
	h.log.Info("deleting kind cluster", "name", h.target.ClusterName)
	return h.kind.Destroy(ctx)
}

func (h *harness) writeReports(res *reports.Results) error {
	dir := filepath.Join(h.target.ReportRoot(), res.Run.ID)
	written, err := reports.WriteAll(dir, res)
	if err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	sum := res.Summarize()
	h.log.Info("reports written", "dir", dir, "files", written, "pass", sum.Pass, "fail", sum.Fail, "error", sum.Error, "skipped", sum.Skipped)
	// The run's own reports must be valid for their consumers; a broken
	// report fails the run like a failed check.
	if err := verifyReportDir(context.Background(), dir); err != nil {
		return fmt.Errorf("the reports of run %s are not valid: %w", res.Run.ID, err)
	}
	h.log.Info("reports verified: digests, JUnit, OSCAL schema, HTML in headless chromium", "screenshot", filepath.Join(dir, "report.png"))
	return nil
}

// cleanupOnSignal makes Ctrl-C (SIGINT) and SIGTERM leave nothing behind:
// the run's context is cancelled so in-flight work stops, Finish runs
// (reports, namespaces, cluster), and the process exits. If Finish has not
// completed within a minute, or a second signal arrives, the clean-up runs
// here directly.
func (h *harness) cleanupOnSignal(cancel context.CancelFunc) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		h.log.Warn("interrupted: cleaning up before exit", "signal", s.String())
		cancel()
		select {
		case <-h.finished:
		case <-sig:
		case <-time.After(time.Minute):
		}
		_, _ = h.finish(context.Background(), nil)
		os.Exit(130)
	}()
}
