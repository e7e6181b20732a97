package quota

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

// runLimitRange proves the namespace's Container LimitRange as the tenant:
// a container without resources gets the defaults; for cpu and memory a
// container whose limit is at the maximum is admitted and one a unit over
// it is refused by the LimitRange. The expected values are the reference
// fixture's (the namespace's own for other tenants): a raised maximum lets
// the over-max container through.
func runLimitRange(ctx context.Context, r *nsRun) error {
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
			r.fail(reports.RoleTest, "get limitrange", gvrLimitRanges, name, "present", "missing",
				fmt.Sprintf("expected LimitRange %s (from %s) is not in the namespace (it has: %s)", name, want.Source, strings.Join(have.LimitRanges, ", ")))
		}
	}
	limitRangeDefaults(ctx, r, want)
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		limitRangeMax(ctx, r, res, have, want)
	}
	return nil
}

func limitRangeDefaults(ctx context.Context, r *nsRun, want expectation) {
	name := r.name("defaults")
	method := "dry-run create pod [container without resources]"
	if len(want.Default) == 0 && len(want.DefaultRequest) == 0 {
		r.fail(reports.RoleTest, method, gvrPods, name, wantDefaults, "no defaults",
			"no Container LimitRange of the namespace sets default requests or limits: a container without resources gets none")
		return
	}
	for _, a := range r.actors {
		got, err := r.create(ctx, a, gvrPods, r.build.pod(name, nil), true)
		if err != nil {
			obs, _, detail := judgeAccepted(err)
			r.observe(a, reports.RoleTest, method, gvrPods, name, wantDefaults, obs, false, detail)
			continue
		}
		var pod corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(got.Object, &pod); err != nil || len(pod.Spec.Containers) == 0 {
			r.observe(a, reports.RoleTest, method, gvrPods, name, wantDefaults, "unreadable answer", false, fmt.Sprintf("decode the admitted pod: %v", err))
			continue
		}
		res := pod.Spec.Containers[0].Resources
		diffs := append(listDiff("requests", want.DefaultRequest, res.Requests), listDiff("limits", want.Default, res.Limits)...)
		got1 := fmt.Sprintf("requests %s; limits %s", fmtList(res.Requests), fmtList(res.Limits))
		if len(diffs) > 0 {
			r.observe(a, reports.RoleTest, method, gvrPods, name, wantDefaults, "other resources", false,
				fmt.Sprintf("admitted with %s; differs from %s: %s", got1, want.Source, strings.Join(diffs, "; ")))
			continue
		}
		r.observe(a, reports.RoleTest, method, gvrPods, name, wantDefaults, wantDefaults, true,
			fmt.Sprintf("admitted (dry-run) with %s, the defaults of %s", got1, want.Source))
	}
}

// limitRangeMax tries a container at and one unit over the maximum for res.
// The bound is the lower of the namespace's max and the expected one.
func limitRangeMax(ctx context.Context, r *nsRun, res corev1.ResourceName, have, want expectation) {
	hq, hok := have.Max[res]
	wq, wok := want.Max[res]
	overMethod := fmt.Sprintf("dry-run create pod [container %s limit over max]", res)
	if !hok {
		r.fail(reports.RoleTest, overMethod, gvrPods, r.name("max", string(res), "over"), wantLimitRangeMax, "no maximum",
			fmt.Sprintf("no Container LimitRange of the namespace sets a maximum %s", res))
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
		for _, a := range r.actors {
			_, err := r.create(ctx, a, gvrPods, obj.DeepCopy(), true)
			var obs, detail, expected string
			var ok bool
			if step.role == reports.RoleControl {
				expected = wantAccepted
				obs, ok, detail = judgeAccepted(err)
			} else {
				expected = wantLimitRangeMax
				obs, ok, detail = judgeOverMax(err, string(res))
			}
			r.observe(a, step.role, method, gvrPods, name, expected, obs, ok,
				join(fmt.Sprintf("container limit %s=%s", res, fmtAmount(res, step.v)), evidence, detail))
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
