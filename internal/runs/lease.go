package runs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

// A live run renews a Lease named LeaseName in its control namespace
// every LeaseDuration/4. `bulkhead cleanup` and a run's start-up treat a
// run as left behind only when its Lease expired (renewed longer than
// LeaseDuration plus ClockSkew ago) or, without a Lease, when its newest
// object is older than LeaseDuration (younger: the run may be starting).
const (
	LeaseName = "bulkhead-run"
	// ClockSkew is allowed between the machine that renews a Lease and the
	// one that judges it.
	ClockSkew = 10 * time.Second
)

// LeaseDuration is how long a Lease holds without renewal. A variable so
// tests can shorten it; the CLI and suites use the default.
var LeaseDuration = 60 * time.Second

// ControlNamespace is the namespace holding run's Lease.
func ControlNamespace(run string) string { return fixtures.NamespaceFor(run, fixtures.TenantControl) }

// Holder keeps a run's Lease renewed until Stop.
type Holder struct {
	c      *kube.Clients
	ns     string
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Hold creates run's Lease in namespace (which must exist) and renews it in
// the background until Stop. holder names who holds it, for people
// reading `bulkhead cleanup`'s output.
func Hold(ctx context.Context, c *kube.Clients, run, holder string, log *slog.Logger) (*Holder, error) {
	ns := ControlNamespace(run)
	now := metav1.NewMicroTime(time.Now())
	if holder == "" {
		holder = "bulkhead"
	}
	if host, err := os.Hostname(); err == nil {
		holder = fmt.Sprintf("%s on %s (pid %d)", holder, host, os.Getpid())
	}
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: LeaseName, Namespace: ns, Labels: fixtures.With(fixtures.CommonLabels(run), fixtures.LabelRole, "lease")},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(holder),
			LeaseDurationSeconds: ptr.To(int32(LeaseDuration / time.Second)),
			AcquireTime:          &now,
			RenewTime:            &now,
		},
	}
	if _, err := c.Core.CoordinationV1().Leases(ns).Create(ctx, l, metav1.CreateOptions{FieldManager: fixtures.ManagedBy}); err != nil {
		return nil, fmt.Errorf("create the Lease of run %s in %s: %w", run, ns, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &Holder{c: c, ns: ns, log: log, cancel: cancel, done: make(chan struct{})}
	go h.renew(rctx)
	return h, nil
}

func (h *Holder) renew(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(LeaseDuration / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := h.renewOnce(ctx)
		switch {
		case err == nil || ctx.Err() != nil:
		case apierrors.IsNotFound(err):
			// Gone with the control namespace (the run is cleaning up).
			h.log.Debug("the run's Lease is gone", "namespace", h.ns)
		default:
			h.log.Warn("could not renew the run's Lease; `bulkhead cleanup` may take the run for left behind if this lasts", "namespace", h.ns, "err", err)
		}
	}
}

func (h *Holder) renewOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, LeaseDuration/4)
	defer cancel()
	leases := h.c.Core.CoordinationV1().Leases(h.ns)
	l, err := leases.Get(ctx, LeaseName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: fixtures.ManagedBy})
	if apierrors.IsConflict(err) {
		return nil // renewed concurrently; the next tick tries again
	}
	return err
}

// Stop stops renewing (the Lease goes with the control namespace, or
// expires). Safe to call more than once and on a nil Holder.
func (h *Holder) Stop() {
	if h == nil {
		return
	}
	h.once.Do(func() {
		h.cancel()
		<-h.done
	})
}

// State says whether a run is live.
type State string

const (
	Live State = "live"
	// Left means left behind: no live process owns the run.
	Left State = "left behind"
)

// Run is one run's objects and its state.
type Run struct {
	ID      string
	Objects []Object
	State   State
	// Why says how the state was decided.
	Why string
}

// Judge decides the state of run (its objects objs) from its Lease, read
// from the cluster, at time now.
func Judge(ctx context.Context, c *kube.Clients, run string, objs []Object, now time.Time) (Run, error) {
	r := Run{ID: run, Objects: objs}
	l, err := c.Core.CoordinationV1().Leases(ControlNamespace(run)).Get(ctx, LeaseName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		l = nil
	case err != nil:
		return r, fmt.Errorf("read the Lease of run %s: %w", run, err)
	}
	r.State, r.Why = judge(l, objs, now)
	return r, nil
}

func judge(l *coordinationv1.Lease, objs []Object, now time.Time) (State, string) {
	if l == nil {
		var newest time.Time
		for _, o := range objs {
			if o.Created.After(newest) {
				newest = o.Created
			}
		}
		if age := now.Sub(newest); age < LeaseDuration {
			return Live, fmt.Sprintf("no Lease, but its newest object is %s old: it may be starting", age.Round(time.Second))
		}
		return Left, "no Lease"
	}
	holder := "unknown holder"
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	renewed := l.CreationTimestamp.Time
	if l.Spec.RenewTime != nil {
		renewed = l.Spec.RenewTime.Time
	}
	d := LeaseDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	ago := max(now.Sub(renewed), 0).Round(time.Second) // renewed while the survey ran
	if now.After(renewed.Add(d + ClockSkew)) {
		return Left, fmt.Sprintf("Lease of %s expired (renewed %s ago, holds %s)", holder, ago, d)
	}
	return Live, fmt.Sprintf("Lease held by %s, renewed %s ago", holder, ago)
}
