package quota

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// countDim is an object-count quota dimension and how to make one object
// that counts 1 against it, with the builder of the namespace it goes to
// (the tenant's, or bulkhead's copy of its quota).
type countDim struct {
	res   corev1.ResourceName
	gvr   schema.GroupVersionResource
	short string
	build func(b builder, name string) *unstructured.Unstructured
}

// right is what an identity must hold to try the dimension.
func (d countDim) right() actors.Right { return actors.Create(d.gvr.Resource) }

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

// withinKey proves that a could create one more object counting against res
// in ns: what its over-quota refusal rests on.
func withinKey(a actor, res corev1.ResourceName, ns string) string {
	return admittedKey(a, fmt.Sprintf("a request within the %s quota", res), ns)
}

// overrunCount proves a count quota: acting as the tenant (or, on a user's
// tenant by default, as bulkhead in its copy of the tenant's quota, see
// fillMode), it creates objects up to one below the bound (actors taking
// turns), shows that one more is admitted (dry-run, every actor: the
// positive control), creates the last one, and shows that the next one is
// refused with "exceeded quota" (dry-run, every actor). The bound is the
// lower of the quota's hard value and the tenant's expected value, so a
// raised quota lets the last request through.
func overrunCount(ctx context.Context, r *nsRun, d countDim) error {
	space, acts, ok, err := r.countSpace(ctx, d.res, d.right())
	if err != nil || !ok {
		return err
	}
	fctx, cancel := space.fillContext(ctx)
	defer cancel()
	err = space.fillAndOverrun(fctx, acts, d)
	if err != nil && space.outOfBudget(ctx, fctx) {
		space.unproven(attempt{role: reports.RoleTest, method: overMethod(kindOf(d.gvr), d.res), gvr: d.gvr, name: space.name(d.short, "over"), expected: wantExceeded},
			"not tried in time", fmt.Sprintf("filling %s up to its bound and trying one more took longer than %s; bulkhead released the tenant's quota: %v", d.res, fillBudget, err))
		err = nil
	}
	if space.mode == fillBounded {
		// Give the tenant its headroom back at once.
		if cerr := space.cleanup(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

func (r *nsRun) fillAndOverrun(ctx context.Context, acts []actor, d countDim) error {
	l, quotas, err := r.limit(ctx, d.res)
	if err != nil {
		return err
	}
	kind := kindOf(d.gvr)
	overName := r.name(d.short, "over")
	remaining := l.RemainingCount()
	most := int64(maxFill)
	if r.ns != r.tenantNS {
		most = maxFillOwn
	}
	switch {
	case !l.Limited:
		// Nothing to fill up to: show the API admits the request anyway.
		r.dryRunWithin(ctx, acts, d, l)
		return tryOverrun(ctx, r, acts, d.res, d.gvr, d.build(r.build, overName), l, quotas)
	case remaining > most:
		r.unproven(attempt{role: reports.RoleTest, method: overMethod(kind, d.res), gvr: d.gvr, name: overName, expected: wantExceeded}, "bound too high to overrun",
			fmt.Sprintf("%s: %d more objects would be needed to reach it; bulkhead creates at most %d here", l, remaining, most))
		return nil
	case remaining < 1:
		r.record(reader, attempt{role: reports.RoleControl, method: withinMethod(kind, d.res, true), gvr: d.gvr, name: r.name(d.short, "within"), expected: wantAccepted},
			answer{Observed: "no room under the bound", Detail: l.String() + ": usage is already at or over the bound, so no request within the quota can show the path works"})
	default:
		notTried := attempt{role: reports.RoleTest, method: overMethod(kind, d.res), gvr: d.gvr, name: overName, expected: wantExceeded}
		if !fillCount(ctx, r, acts, d, int(remaining)) {
			if err := ctx.Err(); err != nil {
				return err
			}
			r.unproven(notTried, "not tried", fmt.Sprintf("%s: a create within the quota was refused while filling it (see the failed control), so the bound was never reached", l))
			return nil
		}
		settled, err := settleCount(ctx, r, d, l.Bound.Value())
		if err != nil {
			return err
		}
		if !settled {
			r.unproven(notTried, "not tried", fmt.Sprintf("%s: the quota never counted the objects that fill it (see the failed control)", l))
			return nil
		}
	}
	l, quotas, err = r.limit(ctx, d.res)
	if err != nil {
		return err
	}
	return tryOverrun(ctx, r, acts, d.res, d.gvr, d.build(r.build, overName), l, quotas)
}

// dryRunWithin asks, as every actor, for one object within the quota: the
// positive control of the over-quota request.
func (r *nsRun) dryRunWithin(ctx context.Context, acts []actor, d countDim, l limit) {
	for _, a := range acts {
		name := r.name(d.short, "within")
		_, err := r.create(ctx, a, d.gvr, d.build(r.build, name), true)
		ans := judgeAccepted(err)
		ans.Detail = join(l.String(), ans.Detail)
		r.record(a, attempt{role: reports.RoleControl, method: withinMethod(kindOf(d.gvr), d.res, true), gvr: d.gvr, name: name, expected: wantAccepted,
			proves: []string{withinKey(a, d.res, r.ns)}}, ans)
	}
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
	name := r.name(d.short, "recount")
	if _, err := r.create(ctx, runnerActor(ctx, r.env), d.gvr, d.build(r.build, name), false); err == nil {
		if err := r.deleteNow(ctx, d.gvr, name); err != nil {
			return false, err
		}
	}
	if poll(settleLong) {
		r.notes = append(r.notes, fmt.Sprintf("%s: quota %s counted %s %s after the check created objects up to %d (the quota controller recounted from a stale cache); a create and delete made it recount before the overrun was tried",
			r.ns, last.Quota, d.res, stale, want))
		return true, nil
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	r.record(reader, attempt{role: reports.RoleControl, method: withinMethod(kindOf(d.gvr), d.res, false), gvr: d.gvr, name: name, expected: "quota counts what exists"},
		answer{Observed: "quota count lags", Detail: fmt.Sprintf("%s after creating objects up to %d, also %s after a forced recount", last, want, settleLong)})
	return false, nil
}

// fillWorkers is how many creates fillCount has in flight.
const fillWorkers = 4

// fillCount creates n objects, actors taking turns, with a dry-run control
// per actor before the last one. It returns false (with a failed control
// recorded) when a create within the quota was refused.
func fillCount(ctx context.Context, r *nsRun, acts []actor, d countDim, n int) bool {
	kind := kindOf(d.gvr)
	var (
		mu     sync.Mutex
		made   = make([][]string, len(acts))
		failed bool
	)
	createOne := func(i int) bool {
		ai := i % len(acts)
		a := acts[ai]
		name := r.name(d.short, strconv.Itoa(i))
		_, err := r.create(ctx, a, d.gvr, d.build(r.build, name), false)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			ans := judgeAccepted(err)
			ans.Detail = fmt.Sprintf("object %d of %d up to the bound: %s", i+1, n, ans.Detail)
			r.record(a, attempt{role: reports.RoleControl, method: withinMethod(kind, d.res, false), gvr: d.gvr, name: name, expected: wantAccepted}, ans)
			failed = true
			return false
		}
		made[ai] = append(made[ai], name)
		return true
	}
	// All but the last, a few at a time: seconds, not minutes, even at
	// maxFillOwn.
	sem := make(chan struct{}, fillWorkers)
	var wg sync.WaitGroup
	for i := range n - 1 {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			mu.Lock()
			stop := failed || ctx.Err() != nil
			mu.Unlock()
			if !stop {
				createOne(i)
			}
		}()
	}
	wg.Wait()
	if failed || ctx.Err() != nil {
		return false
	}
	// One below the bound: the same request as the overrun, admitted.
	if l, _, err := r.limit(ctx, d.res); err == nil {
		r.dryRunWithin(ctx, acts, d, l)
	}
	if !createOne(n - 1) {
		return false
	}
	for ai, names := range made {
		if len(names) == 0 {
			continue
		}
		r.record(acts[ai], attempt{role: reports.RoleControl, method: withinMethod(kind, d.res, false), gvr: d.gvr, name: names[0], expected: wantAccepted},
			answer{Observed: wantAccepted, OK: true, Detail: fmt.Sprintf("created %d of the %d objects that take %s to its bound: %v", len(names), n, d.res, names)})
	}
	return true
}

// tryOverrun makes every actor ask for obj (dry-run) and expects the quota
// on res to refuse it; each refusal counts only next to the same actor's
// admitted request within the quota.
func tryOverrun(ctx context.Context, r *nsRun, acts []actor, res corev1.ResourceName, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, l limit, quotas []string) error {
	for _, a := range acts {
		_, err := r.create(ctx, a, gvr, obj.DeepCopy(), true)
		ans := judgeOverrun(err, string(res), quotas)
		ans.Detail = join(ans.Detail, "before: "+l.String())
		r.record(a, attempt{role: reports.RoleTest, method: overMethod(kindOf(gvr), res), gvr: gvr, name: obj.GetName(), expected: wantExceeded,
			needs: []string{withinKey(a, res, r.ns)}}, ans)
	}
	return nil
}

// overrunZero proves a dimension the tenant must not use at all (bound 0):
// a sibling request that does not use it is admitted (the positive
// control), the one that does is refused by the quota.
func overrunZero(ctx context.Context, r *nsRun, acts []actor, res corev1.ResourceName, gvr schema.GroupVersionResource, short string,
	sibling, build func(name string) *unstructured.Unstructured, siblingWhat string) error {
	l, quotas, err := r.limit(ctx, res)
	if err != nil {
		return err
	}
	for _, a := range acts {
		name := r.name(short, "control")
		_, err := r.create(ctx, a, gvr, sibling(name), true)
		r.record(a, attempt{role: reports.RoleControl, method: fmt.Sprintf("dry-run create %s [%s, no %s]", kindOf(gvr), siblingWhat, res), gvr: gvr, name: name, expected: wantAccepted,
			proves: []string{withinKey(a, res, r.ns)}}, judgeAccepted(err))
	}
	if l.Used.Cmp(l.Bound) > 0 {
		r.fail(attempt{role: reports.RoleTest, method: overMethod(kindOf(gvr), res), gvr: gvr, name: r.name(short, "over"), expected: wantExceeded},
			"already in use", l.String()+": the tenant already uses more than it may")
	}
	return tryOverrun(ctx, r, acts, res, gvr, build(r.name(short, "over")), l, quotas)
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

// edgeAttempts bounds how often overrunAmount asks again when the tenant's
// usage moved while it asked.
const edgeAttempts = 4

// overrunAmount proves a quantity quota with dry-runs only, in the tenant
// namespace: a request for exactly what is left under the bound is admitted
// (positive control), one unit more is refused with "exceeded quota" naming
// the dimension. A live tenant's usage may change between bulkhead reading
// it and asking (a rollout, a scale-up); when the answers contradict the
// bound and the quota's status moved meanwhile, bulkhead asks again, and
// if it moved every time, the contradicting answers are unproven.
func overrunAmount(ctx context.Context, r *nsRun, acts []actor, d amountDim) error {
	for n := 1; ; n++ {
		before, err := r.currentQuotas(ctx)
		if err != nil {
			return err
		}
		mark := len(r.obs)
		clean := r.edgeProbe(ctx, acts, d, limitOf(d.res, before, r.exp.Hard), quotaNames(before))
		if clean {
			return nil
		}
		after, err := r.currentQuotas(ctx)
		if err != nil {
			return err
		}
		if !statusMoved(before, after) {
			return nil // usage held still: the answers stand
		}
		if n == edgeAttempts {
			why := fmt.Sprintf("the quota status of %s changed while bulkhead asked, %d times in a row (the tenant's own workloads are changing its usage): %s", r.ns, n, usageDiff(before, after))
			for i := mark; i < len(r.obs); i++ {
				if o := &r.obs[i]; o.Role == reports.RoleTest && !o.OK && o.Status == "" {
					o.Status, o.Why = reports.StatusUnproven, why
				}
			}
			return nil
		}
		r.obs = r.obs[:mark]
		r.notes = append(r.notes, fmt.Sprintf("%s: %s asked again: the quota status changed while bulkhead asked (%s)", r.ns, d.res, usageDiff(before, after)))
	}
}

// edgeProbe asks, as every actor, for what is left under the bound and one
// unit more; it returns whether every answer agreed with the bound.
func (r *nsRun) edgeProbe(ctx context.Context, acts []actor, d amountDim, l limit, quotas []string) bool {
	kind := kindOf(d.gvr)
	left := amount(d.base, l.Remaining())
	clean := true
	what := fmt.Sprintf("a request for what is left of %s", d.res)
	if left > 0 {
		name := r.name(d.short, "within")
		obj, why := d.build(name, left)
		method := fmt.Sprintf("dry-run create %s [%s=%s within quota]", kind, d.res, fmtAmount(d.base, left))
		if obj == nil {
			r.record(reader, attempt{role: reports.RoleControl, method: method, gvr: d.gvr, name: name, expected: wantAccepted}, answer{Observed: "not tried", Detail: why})
		} else {
			for _, a := range acts {
				_, err := r.create(ctx, a, d.gvr, obj.DeepCopy(), true)
				ans := judgeAccepted(err)
				clean = clean && ans.OK
				ans.Detail = join(l.String(), ans.Detail)
				r.record(a, attempt{role: reports.RoleControl, method: method, gvr: d.gvr, name: name, expected: wantAccepted,
					proves: []string{admittedKey(a, what, r.ns)}}, ans)
			}
		}
	} else {
		r.record(reader, attempt{role: reports.RoleControl, method: fmt.Sprintf("dry-run create %s [%s within quota]", kind, d.res), gvr: d.gvr, name: r.name(d.short, "within"), expected: wantAccepted},
			answer{Observed: "no room under the bound", Detail: l.String() + ": usage is already at or over the bound, so no request within the quota can show the path works"})
		left = 0
	}
	over := left + unit(d.base)
	name := r.name(d.short, "over")
	method := fmt.Sprintf("dry-run create %s [%s=%s over quota]", kind, d.res, fmtAmount(d.base, over))
	obj, why := d.build(name, over)
	if obj == nil {
		r.unproven(attempt{role: reports.RoleTest, method: method, gvr: d.gvr, name: name, expected: wantExceeded}, "not tried", why)
		return true
	}
	for _, a := range acts {
		_, err := r.create(ctx, a, d.gvr, obj.DeepCopy(), true)
		ans := judgeOverrun(err, string(d.res), quotas)
		clean = clean && (ans.OK || ans.Inconclusive != "")
		ans.Detail = join(ans.Detail, "before: "+l.String())
		r.record(a, attempt{role: reports.RoleTest, method: method, gvr: d.gvr, name: name, expected: wantExceeded,
			needs: []string{admittedKey(a, what, r.ns)}}, ans)
	}
	return clean
}

// statusMoved reports whether any quota changed between two reads.
func statusMoved(before, after []corev1.ResourceQuota) bool {
	if len(before) != len(after) {
		return true
	}
	rv := map[string]string{}
	for _, q := range before {
		rv[q.Name] = q.ResourceVersion
	}
	for _, q := range after {
		if rv[q.Name] != q.ResourceVersion {
			return true
		}
	}
	return false
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
