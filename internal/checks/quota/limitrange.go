package quota

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// runLimitRange proves the namespace's Container LimitRange as the tenant:
// a container without resources gets the defaults; for cpu and memory a
// container whose limit is at the maximum is admitted and one a unit over
// it is refused by the LimitRange. The expected values are the reference
// fixture's (the namespace's own for other tenants): a raised maximum lets
// the over-max container through.
func runLimitRange(ctx context.Context, r *nsRun) error {
	acts, err := r.able(ctx, actors.Create("pods"))
	if err != nil || len(acts) == 0 {
		return err
	}
	lrs, err := r.limitRanges(ctx)
	if err != nil {
		return err
	}
	have := containerLimits(lrs)
	want := r.exp
	if len(want.LimitRanges) == 0 {
		want = have
	}
	for _, name := range want.LimitRanges {
		if !contains(have.LimitRanges, name) {
			r.fail(attempt{role: reports.RoleTest, method: "get limitrange", gvr: gvrLimitRanges, name: name, expected: "present"}, "missing",
				fmt.Sprintf("expected LimitRange %s (from %s) is not in the namespace (it has: %s)", name, want.Source, strings.Join(have.LimitRanges, ", ")))
		}
	}
	limitRangeDefaults(ctx, r, acts, want)
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		limitRangeMax(ctx, r, acts, res, have, want)
	}
	return nil
}

// limitRangeDefaults asks, as every actor, for a pod whose container sets
// no resources: admitted (the control), it must carry the defaults (the
// test).
func limitRangeDefaults(ctx context.Context, r *nsRun, acts []actor, want expectation) {
	name := r.name("defaults")
	method := "dry-run create pod [container without resources]"
	test := attempt{role: reports.RoleTest, method: method, gvr: gvrPods, name: name, expected: wantDefaults}
	if len(want.Default) == 0 && len(want.DefaultRequest) == 0 {
		r.fail(test, "no defaults",
			"no Container LimitRange of the namespace sets default requests or limits: a container without resources gets none")
		return
	}
	for _, a := range acts {
		key := admittedKey(a, "a pod whose container sets no resources", r.ns)
		got, err := r.create(ctx, a, gvrPods, r.build.pod(name, nil), true)
		r.record(a, attempt{role: reports.RoleControl, method: method, gvr: gvrPods, name: name, expected: wantAccepted, proves: []string{key}}, judgeAccepted(err))
		t := test
		t.needs = []string{key}
		if err != nil {
			ans := judgeAccepted(err)
			// Refused for want of limits: the defaults did not apply.
			if !strings.Contains(err.Error(), "must specify") {
				ans.Inconclusive = "the pod was refused, so no defaults could be seen: " + ans.Detail
			}
			r.record(a, t, ans)
			continue
		}
		var pod corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(got.Object, &pod); err != nil || len(pod.Spec.Containers) == 0 {
			r.record(a, t, answer{Observed: "unreadable answer", Detail: fmt.Sprintf("decode the admitted pod: %v", err), Inconclusive: "the admitted pod could not be read"})
			continue
		}
		res := pod.Spec.Containers[0].Resources
		diffs := append(listDiff("requests", want.DefaultRequest, res.Requests), listDiff("limits", want.Default, res.Limits)...)
		got1 := fmt.Sprintf("requests %s; limits %s", fmtList(res.Requests), fmtList(res.Limits))
		if len(diffs) > 0 {
			r.record(a, t, answer{Observed: "other resources", Detail: fmt.Sprintf("admitted with %s; differs from %s: %s", got1, want.Source, strings.Join(diffs, "; "))})
			continue
		}
		r.record(a, t, answer{Observed: wantDefaults, OK: true, Detail: fmt.Sprintf("admitted (dry-run) with %s, the defaults of %s", got1, want.Source)})
	}
}

// limitRangeMax tries a container at and one unit over the maximum for res.
// The bound is the lower of the namespace's max and the expected one; each
// refusal counts next to the same actor's admitted container at the max.
func limitRangeMax(ctx context.Context, r *nsRun, acts []actor, res corev1.ResourceName, have, want expectation) {
	hq, hok := have.Max[res]
	wq, wok := want.Max[res]
	if !hok {
		r.fail(attempt{role: reports.RoleTest, method: fmt.Sprintf("dry-run create pod [container %s limit over max]", res), gvr: gvrPods, name: r.name("max", string(res), "over"), expected: wantLimitRangeMax},
			"no maximum", fmt.Sprintf("no Container LimitRange of the namespace sets a maximum %s", res))
		return
	}
	bound := hq.DeepCopy()
	if wok && wq.Cmp(hq) < 0 {
		bound = wq.DeepCopy()
	}
	evidence := fmt.Sprintf("LimitRange max %s %s", res, hq.String())
	if wok {
		evidence += fmt.Sprintf(", expected at most %s", wq.String())
	}
	at := amount(res, bound)
	for _, step := range []struct {
		role   reports.Role
		v      int64
		suffix string
	}{{reports.RoleControl, at, "at"}, {reports.RoleTest, at + unit(res), "over"}} {
		name := r.name("max", string(res), step.suffix)
		cont := smallResources()
		cont.Limits[res] = quantity(res, step.v)
		obj := r.build.pod(name, cont)
		method := fmt.Sprintf("dry-run create pod [container %s limit %s max]", res, step.suffix)
		for _, a := range acts {
			key := admittedKey(a, fmt.Sprintf("a container with the maximum %s limit", res), r.ns)
			_, err := r.create(ctx, a, gvrPods, obj.DeepCopy(), true)
			at := attempt{role: step.role, method: method, gvr: gvrPods, name: name}
			var ans answer
			if step.role == reports.RoleControl {
				at.expected, at.proves = wantAccepted, []string{key}
				ans = judgeAccepted(err)
			} else {
				at.expected, at.needs = wantLimitRangeMax, []string{key}
				ans = judgeOverMax(err, string(res))
			}
			ans.Detail = join(fmt.Sprintf("container limit %s=%s", res, fmtAmount(res, step.v)), evidence, ans.Detail)
			r.record(a, at, ans)
		}
	}
}

// listDiff names the resources of want that got does not match.
func listDiff(side string, want, got corev1.ResourceList) []string {
	var out []string
	for _, r := range sortedNames(want) {
		w := want[r]
		g, ok := got[r]
		if !ok || g.Cmp(w) != 0 {
			gs := "none"
			if ok {
				gs = g.String()
			}
			out = append(out, fmt.Sprintf("%s %s %s, want %s", side, r, gs, w.String()))
		}
	}
	return out
}

func fmtList(l corev1.ResourceList) string {
	if len(l) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(l))
	for _, r := range sortedNames(l) {
		q := l[r]
		parts = append(parts, string(r)+"="+q.String())
	}
	return strings.Join(parts, ",")
}

func sortedNames(l corev1.ResourceList) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(l))
	for r := range l {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
