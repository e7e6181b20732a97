package quota

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// fillMode is how a check proves a count bound (pods, services, secrets,
// ...) for one tenant namespace. A count can only be reached by creating
// objects (a dry-run adds one to what exists, never more), and objects that
// take a tenant to its bound refuse the tenant's own rollouts and
// scale-ups while they exist.
type fillMode int

const (
	// fillReference: bulkhead's own reference tenant, which runs nothing
	// else; its quota is filled for as long as the check takes.
	fillReference fillMode = iota
	// fillBounded: a user's tenant, with --allow-quota-fill: its real
	// quota is filled, created, probed and deleted within fillBudget.
	fillBounded
	// fillCopy: a user's tenant, by default: the bound is proven in
	// bulkhead's own namespace carrying a copy of the tenant's
	// ResourceQuotas and LimitRanges (copy.go). That proves the policy,
	// not the tenant's live headroom, which is never consumed.
	fillCopy
)

// fillBudget bounds how long a check may hold a user's tenant quota at its
// bound (--allow-quota-fill): fill, settle and overrun; the objects are
// deleted right after, also when the budget runs out.
const fillBudget = 15 * time.Second

func modeFor(env *checks.Env, t checks.Tenant) fillMode {
	switch {
	case t.Reference:
		return fillReference
	case env.Allow.QuotaFill:
		return fillBounded
	}
	return fillCopy
}

// fillContext bounds the filling stage of a check in mode fillBounded.
func (r *nsRun) fillContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.mode == fillBounded {
		return context.WithTimeout(ctx, fillBudget)
	}
	return context.WithCancel(ctx)
}

// outOfBudget reports whether err came from the fill budget running out
// (and not from the run being interrupted).
func (r *nsRun) outOfBudget(ctx, fctx context.Context) bool {
	return r.mode == fillBounded && ctx.Err() == nil && fctx.Err() != nil
}

// noteHeld records, once the objects are gone, how long a user's tenant
// quota was held by the check's objects.
func (r *nsRun) noteHeld() {
	if r.filledSince.IsZero() || r.mode != fillBounded {
		r.filledSince = time.Time{}
		return
	}
	r.notes = append(r.notes, fmt.Sprintf("%s: --allow-quota-fill: the check's objects held tenant %s's quota for %s (created from %s, all deleted by %s)",
		r.tenantNS, r.tenant.Name, time.Since(r.filledSince).Round(100*time.Millisecond), r.filledSince.UTC().Format("15:04:05.0"), time.Now().UTC().Format("15:04:05.0")))
	r.filledSince = time.Time{}
}

// countSpace returns where and as whom a count bound on res is proven: the
// tenant namespace, as the tenant's identities that may create what counts
// against res, or (mode fillCopy, and the namespace has a quota on res)
// bulkhead's copy of the quota, as bulkhead. ok is false when no tenant
// identity may create such objects (the namespace is then not evaluated).
func (r *nsRun) countSpace(ctx context.Context, res corev1.ResourceName, right actors.Right) (space *nsRun, as []actor, ok bool, err error) {
	acts, err := r.able(ctx, right)
	if err != nil || len(acts) == 0 {
		return nil, nil, false, err
	}
	if r.mode != fillCopy {
		return r, acts, true, nil
	}
	l, _, err := r.limit(ctx, res)
	if err != nil {
		return nil, nil, false, err
	}
	if !l.Limited {
		// Nothing to fill: a dry-run as the tenant, in its own namespace,
		// shows whether anything stops it.
		return r, acts, true, nil
	}
	c, err := r.copyRun(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	c.where = fmt.Sprintf("in bulkhead's namespace %s, carrying a copy of the ResourceQuotas and LimitRanges of %s: this proves the quota policy, not %s's live headroom, which was not consumed (there %s)",
		c.ns, r.tenantNS, r.tenantNS, l)
	return c, []actor{runnerActor(ctx, r.env)}, true, nil
}
