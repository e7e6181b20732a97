package quota

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

// countDim is an object-count quota dimension and how to make one object
// that counts 1 against it.
type countDim struct {
	res   corev1.ResourceName
	gvr   schema.GroupVersionResource
	short string
	build func(name string) *unstructured.Unstructured
}

func withinMethod(kind string, res corev1.ResourceName, dryRun bool) string {
	m := fmt.Sprintf("create %s [%s within quota]", kind, res)
	if dryRun {
		return "dry-run " + m
	}
	return m
}

func overMethod(kind string, res corev1.ResourceName) string {
	return fmt.Sprintf("dry-run create %s [%s over quota]", kind, res)
}

// overrunCount proves a count quota as the tenant: it creates objects up to
// one below the bound (each actor taking turns), shows that one more is
// admitted (dry-run, every actor: the positive control), creates the last
// one, and shows that the next one is refused with "exceeded quota" (dry-run,
// every actor). The bound is the lower of the quota's hard value and the
// tenant's expected value, so a raised quota lets the last request through.
func overrunCount(ctx context.Context, r *nsRun, d countDim) error {
	l, quotas, err := r.limit(ctx, d.res)
	if err != nil {
		return err
	}
	kind := kindOf(d.gvr)
	overName := r.name(d.short, "over")
	remaining := l.RemainingCount()
	switch {
	case !l.Limited:
		// Nothing to fill up to: show the API admits the request anyway.
		return tryOverrun(ctx, r, d.res, d.gvr, d.build(overName), l, quotas)
	case remaining > maxFill:
		r.fail(reports.RoleTest, overMethod(kind, d.res), d.gvr, overName, wantExceeded, "bound too high to overrun",
			fmt.Sprintf("%s: %d more objects would be needed to reach it; bulkhead creates at most %d", l, remaining, maxFill))
		return nil
	case remaining < 1:
		r.fail(reports.RoleControl, withinMethod(kind, d.res, true), d.gvr, r.name(d.short, "within"), wantAccepted, "no room under the bound",
			l.String()+": usage is already at or over the bound, so no request within the quota can show the path works")
	default:
		if !fillCount(ctx, r, d, int(remaining)) {
			return nil
		}
		settled, err := settleCount(ctx, r, d, l.Bound.Value())
		if err != nil || !settled {
			return err
		}
	}
	l, quotas, err = r.limit(ctx, d.res)
	if err != nil {
		return err
	}
	return tryOverrun(ctx, r, d.res, d.gvr, d.build(overName), l, quotas)
}

// Waits of settleCount.
const (
	settleQuick = 3 * time.Second
	settleLong  = time.Minute
)

// settleCount makes sure the quota counts the objects the check created
// before the overrun is tried. Admission adds each admitted object to the
// quota's status.used, but the quota controller recomputes status.used from
// its informer caches whenever something in the namespace is released (a
// pod deleted, say); a recount that runs a moment after a create, before
// the cache has seen it, writes back a lower count, and until the next
// recount admission lets that many more objects in. That is an upstream
// race, not the tenant's configuration, and probing the bound while it
// lasts would fail the check for nothing. So: if status.used is below the
// bound the check filled up to, bulkhead creates and deletes one more object
// of the kind (the deletion makes the controller recount, from a cache that
// has by then seen every create), and waits until status.used is right. If
// it never is, that is recorded as a failed control: the quota does not
// count what exists.
func settleCount(ctx context.Context, r *nsRun, d countDim, want int64) (bool, error) {
	used := func(ctx context.Context) (limit, bool) {
		l, _, err := r.limit(ctx, d.res)
		return l, err == nil && l.Used.Value() >= want
	}
	var last limit
	poll := func(timeout time.Duration) bool {
		var ok bool
		_ = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			last, ok = used(ctx)
			return ok, nil
		})
		return ok
	}
	if poll(settleQuick) {
		return true, nil
	}
	stale := last.Used.String()
	admin := actor{identity: "bulkhead (recount)", clients: r.env.Kube}
	name := r.name(d.short, "recount")
	if _, err := r.create(ctx, admin, d.gvr, d.build(name), false); err == nil {
		if err := r.deleteNow(ctx, d.gvr, name); err != nil {
			return false, err
		}
	}
	if poll(settleLong) {
		r.notes = append(r.notes, fmt.Sprintf("%s: quota %s counted %s %s after the check created objects up to %d (the quota controller recounted from a stale cache); a create and delete made it recount before the overrun was tried",
			r.ns, last.Quota, d.res, stale, want))
		return true, nil
	}
	r.fail(reports.RoleControl, withinMethod(kindOf(d.gvr), d.res, false), d.gvr, name, "quota counts what exists", "quota count lags",
		fmt.Sprintf("%s after creating objects up to %d, also %s after a forced recount", last, want, settleLong))
	return false, nil
}

// fillCount creates n objects, with a dry-run control before the last one.
// It returns false (with a failed control recorded) when a create within the
// quota was refused.
func fillCount(ctx context.Context, r *nsRun, d countDim, n int) bool {
	kind := kindOf(d.gvr)
	made := make([][]string, len(r.actors))
	createOne := func(i int) bool {
		ai := i % len(r.actors)
		a := r.actors[ai]
		name := r.name(d.short, strconv.Itoa(i))
		_, err := r.create(ctx, a, d.gvr, d.build(name), false)
		if err != nil {
			obs, ok, detail := judgeAccepted(err)
			r.observe(a, reports.RoleControl, withinMethod(kind, d.res, false), d.gvr, name, wantAccepted, obs, ok,
				fmt.Sprintf("object %d of %d up to the bound: %s", i+1, n, detail))
			return false
		}
		made[ai] = append(made[ai], name)
		return true
	}
	for i := range n - 1 {
		if !createOne(i) {
			return false
		}
	}
	// One below the bound: the same request as the overrun, admitted.
	l, _, err := r.limit(ctx, d.res)
	if err == nil {
		for _, a := range r.actors {
			name := r.name(d.short, "within")
			_, err := r.create(ctx, a, d.gvr, d.build(name), true)
			obs, ok, detail := judgeAccepted(err)
			r.observe(a, reports.RoleControl, withinMethod(kind, d.res, true), d.gvr, name, wantAccepted, obs, ok, join(l.String(), detail))
		}
	}
	if !createOne(n - 1) {
		return false
	}
	for ai, names := range made {
		if len(names) == 0 {
			continue
		}
		r.observe(r.actors[ai], reports.RoleControl, withinMethod(kind, d.res, false), d.gvr, names[0], wantAccepted, wantAccepted, true,
			fmt.Sprintf("created %d of the %d objects that take %s to its bound: %v", len(names), n, d.res, names))
	}
	return true
}

// tryOverrun makes every actor ask for obj (dry-run) and expects the quota
// on res to refuse it.
func tryOverrun(ctx context.Context, r *nsRun, res corev1.ResourceName, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, l limit, quotas []string) error {
	for _, a := range r.actors {
		_, err := r.create(ctx, a, gvr, obj.DeepCopy(), true)
		obs, ok, detail := judgeOverrun(err, string(res), quotas)
		r.observe(a, reports.RoleTest, overMethod(kindOf(gvr), res), gvr, obj.GetName(), wantExceeded, obs, ok, join(detail, "before: "+l.String()))
	}
	return nil
}

// overrunZero proves a dimension the tenant must not use at all (bound 0):
// a sibling request that does not use it is admitted (the positive control),
// the one that does is refused by the quota.
func overrunZero(ctx context.Context, r *nsRun, res corev1.ResourceName, gvr schema.GroupVersionResource, short string,
	sibling, build func(name string) *unstructured.Unstructured, siblingWhat string) error {
	l, quotas, err := r.limit(ctx, res)
	if err != nil {
		return err
	}
	for _, a := range r.actors {
		name := r.name(short, "control")
		_, err := r.create(ctx, a, gvr, sibling(name), true)
		obs, ok, detail := judgeAccepted(err)
		r.observe(a, reports.RoleControl, fmt.Sprintf("dry-run create %s [%s, no %s]", kindOf(gvr), siblingWhat, res), gvr, name, wantAccepted, obs, ok, detail)
	}
	if l.Used.Cmp(l.Bound) > 0 {
		r.fail(reports.RoleTest, overMethod(kindOf(gvr), res), gvr, r.name(short, "over"), wantExceeded, "already in use", l.String()+": the tenant already uses more than it may")
	}
	return tryOverrun(ctx, r, res, gvr, build(r.name(short, "over")), l, quotas)
}

// amountDim is a quantity quota dimension (requests.cpu, requests.storage)
// and how to make one object asking for a total amount of it.
type amountDim struct {
	res   corev1.ResourceName
	base  corev1.ResourceName
	gvr   schema.GroupVersionResource
	short string
	// build returns the object asking for total (base units), or why it
	// cannot be built.
	build func(name string, total int64) (*unstructured.Unstructured, string)
}

// overrunAmount proves a quantity quota with dry-runs only: a request for
// exactly what is left under the bound is admitted (positive control), one
// unit more is refused with "exceeded quota" naming the dimension.
func overrunAmount(ctx context.Context, r *nsRun, d amountDim) error {
	l, quotas, err := r.limit(ctx, d.res)
	if err != nil {
		return err
	}
	kind := kindOf(d.gvr)
	rem := l.Remaining()
	left := amount(d.base, rem)
	if left > 0 {
		name := r.name(d.short, "within")
		obj, why := d.build(name, left)
		method := fmt.Sprintf("dry-run create %s [%s=%s within quota]", kind, d.res, fmtAmount(d.base, left))
		if obj == nil {
			r.fail(reports.RoleControl, method, d.gvr, name, wantAccepted, "not tried", why)
		} else {
			for _, a := range r.actors {
				_, err := r.create(ctx, a, d.gvr, obj.DeepCopy(), true)
				obs, ok, detail := judgeAccepted(err)
				r.observe(a, reports.RoleControl, method, d.gvr, name, wantAccepted, obs, ok, join(l.String(), detail))
			}
		}
	} else {
		r.fail(reports.RoleControl, fmt.Sprintf("dry-run create %s [%s within quota]", kind, d.res), d.gvr, r.name(d.short, "within"), wantAccepted, "no room under the bound",
			l.String()+": usage is already at or over the bound, so no request within the quota can show the path works")
		left = 0
	}
	over := left + unit(d.base)
	name := r.name(d.short, "over")
	method := fmt.Sprintf("dry-run create %s [%s=%s over quota]", kind, d.res, fmtAmount(d.base, over))
	obj, why := d.build(name, over)
	if obj == nil {
		r.fail(reports.RoleTest, method, d.gvr, name, wantExceeded, "not tried", why)
		return nil
	}
	for _, a := range r.actors {
		_, err := r.create(ctx, a, d.gvr, obj.DeepCopy(), true)
		obs, ok, detail := judgeOverrun(err, string(d.res), quotas)
		r.observe(a, reports.RoleTest, method, d.gvr, name, wantExceeded, obs, ok, join(detail, "before: "+l.String()))
	}
	return nil
}

func fmtAmount(r corev1.ResourceName, v int64) string {
	q := quantity(r, v)
	return q.String()
}

func join(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += "; "
		}
		out += p
	}
	return out
}
