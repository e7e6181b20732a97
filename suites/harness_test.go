package suites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/bulkhead-k8s/bulkhead"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/all"
	"github.com/bulkhead-k8s/bulkhead/internal/interrupt"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/session"
	"github.com/bulkhead-k8s/bulkhead/internal/target"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// harness holds the run's state between TestMain's setup, the tests and
// Finish: the target (the cluster, made by target.Prepare like the CLI's)
// and the session.
type harness struct {
	target  target.Config
	log     *slog.Logger
	timing  checks.Timing
	tgt     *target.Target
	probe   string
	clients *kube.Clients
	session *session.Session

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

func (h *harness) existingCluster() bool {
	return h.target.Kubeconfig != "" || h.target.Context != ""
}

// prepare makes the target ready, as `bulkhead run` does: without
// --kubeconfig/--context a disposable kind cluster with Cilium; otherwise
// the kubeconfig's cluster (disposable only if proven; go test does not
// ask before touching it).
func (h *harness) prepare(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	h.target.Kind = !h.existingCluster()
	tgt, err := target.Prepare(ctx, &h.target)
	h.tgt = tgt
	if tgt == nil {
		return ctx, err
	}
	if tgt.Created() && !h.target.KeepCluster {
		interrupt.FromContext(ctx).OnForce("kind cluster "+tgt.KindCluster, tgt.Release)
	}
	if err != nil {
		return ctx, err
	}
	if h.target.Kind {
		cfg.WithKubeconfigFile(tgt.Kubeconfig)
	}
	h.probe, h.clients = tgt.ProbeImage, tgt.Clients
	h.log.Info("target", "server", tgt.Clients.Server, "disposable", tgt.Disposable(), "why", tgt.Proof.Reason)
	return ctx, nil
}

func (h *harness) startSession(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	ver, commit := bulkhead.Version()
	s, err := session.New(session.Options{
		Clients:        h.clients,
		ProbeImage:     h.probe,
		Disposable:     h.tgt.Disposable(),
		CleanLeftovers: h.tgt.Owned(),
		Timing:         h.timing,
		Log:            h.log,
		Frontend:       "go test",
		Build:          reports.Build{Version: ver, Commit: commit},
		Cluster:        reports.Cluster{Context: h.tgt.Context},
		// Every check's real creates are compared with its declared
		// footprint; finish fails the run on any it does not declare.
		Audit: true,
	})
	if err != nil {
		return ctx, err
	}
	h.session = s
	interrupt.FromContext(ctx).OnForce("run "+s.RunID(), s.Abort)
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
			if err := h.auditResult(); err != nil {
				errs = append(errs, err)
			}
			if res := h.session.Results(); len(res.Checks) > 0 {
				if err := h.writeReports(res); err != nil {
					errs = append(errs, err)
				}
			}
			if err := h.session.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := h.tgt.Release(ctx); err != nil {
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

// auditResult fails the run when a check created what its footprint does
// not declare, or when checks that declare creates ran and the audit saw
// none (it would be blind, proving nothing).
func (h *harness) auditResult() error {
	if u := h.session.Undeclared(); len(u) > 0 {
		return fmt.Errorf("checks created objects their footprint does not declare:\n  %s", strings.Join(u, "\n  "))
	}
	var creating []string
	for _, r := range h.session.Results().Checks {
		if c, ok := all.Registry().Get(r.ID); ok && c.InTenantNamespaces() && r.Verdict != reports.Skipped {
			creating = append(creating, c.ID)
		}
	}
	n := h.session.Audited()
	if len(creating) > 0 && n == 0 {
		return fmt.Errorf("footprint audit saw no create while %v, which create objects in tenant namespaces, ran", creating)
	}
	h.log.Info("footprint audit: every create of a check was declared", "creates", n, "checks creating in tenant namespaces", creating)
	return nil
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

// afterInterrupt runs after the first signal (interrupt.Notify cancelled
// the run's context, so in-flight work stops and Finish runs): if Finish
// has not completed within a minute, the clean-up runs here directly, and
// the process exits. A second signal meanwhile does the fast undo and
// exits; a third exits at once.
func (h *harness) afterInterrupt() {
	select {
	case <-h.finished:
	case <-time.After(time.Minute):
	}
	_, _ = h.finish(context.Background(), nil)
	os.Exit(130)
}
