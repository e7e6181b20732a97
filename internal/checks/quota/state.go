package quota

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// expectation is what a tenant namespace should enforce. For reference
// tenants it is the fixture (fixtures/manifests/isolated-30-quota.yaml):
// the checks try to exceed these values, so a quota raised above them, or
// removed, fails the check. For other tenants it is empty and the checks
// take the namespace's own quota as the bound.
type expectation struct {
	// Source says where the expectation comes from, for evidence.
	Source string
	// Hard is the quota's expected hard limits.
	Hard corev1.ResourceList
	// Quotas and LimitRanges name the objects that should exist.
	Quotas      []string
	LimitRanges []string
	// Per container: max, default limits and default requests.
	Max            corev1.ResourceList
	Default        corev1.ResourceList
	DefaultRequest corev1.ResourceList
}

// tenantPolicy are bounds every tenant is held to, whatever its quota says:
// tenants get no node ports and no cloud load balancers.
var tenantPolicy = corev1.ResourceList{
	corev1.ResourceServicesNodePorts:     resource.MustParse("0"),
	corev1.ResourceServicesLoadBalancers: resource.MustParse("0"),
}

// expectationFor returns the expectation of one tenant namespace.
func expectationFor(env *checks.Env, t checks.Tenant, ns string) (expectation, error) {
	exp := expectation{Hard: tenantPolicy.DeepCopy()}
	if !t.Reference || !t.Isolated {
		exp.Source = "the namespace's own ResourceQuota and LimitRange (not a reference tenant)"
		return exp, nil
	}
	objs, err := fixtures.RenderTenant(env.RunID, fixtures.TenantSpec{Name: t.Name, Namespace: ns, Isolated: true})
	if err != nil {
		return exp, fmt.Errorf("render the reference quota of tenant %s: %w", t.Name, err)
	}
	ref, err := expectationFrom(objs)
	if err != nil {
		return exp, fmt.Errorf("tenant %s: %w", t.Name, err)
	}
	for r, q := range tenantPolicy {
		if _, set := ref.Hard[r]; !set {
			ref.Hard[r] = q.DeepCopy()
		}
	}
	return ref, nil
}

// expectationFrom collects the ResourceQuotas and Container LimitRanges of
// rendered tenant objects. Several quotas give the tightest hard value;
// several LimitRanges the tightest max.
func expectationFrom(objs []*unstructured.Unstructured) (expectation, error) {
	exp := expectation{Source: "the reference tenant fixture", Hard: corev1.ResourceList{},
		Max: corev1.ResourceList{}, Default: corev1.ResourceList{}, DefaultRequest: corev1.ResourceList{}}
	for _, o := range objs {
		switch o.GetKind() {
		case "ResourceQuota":
			var rq corev1.ResourceQuota
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &rq); err != nil {
				return exp, fmt.Errorf("fixture %s: %w", fixtures.Describe(o), err)
			}
			exp.Quotas = append(exp.Quotas, rq.Name)
			for r, q := range rq.Spec.Hard {
				if cur, ok := exp.Hard[r]; !ok || q.Cmp(cur) < 0 {
					exp.Hard[r] = q.DeepCopy()
				}
			}
		case "LimitRange":
			var lr corev1.LimitRange
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &lr); err != nil {
				return exp, fmt.Errorf("fixture %s: %w", fixtures.Describe(o), err)
			}
			exp.LimitRanges = append(exp.LimitRanges, lr.Name)
			mergeContainerLimits(&exp, lr)
		}
	}
	return exp, nil
}

func mergeContainerLimits(exp *expectation, lr corev1.LimitRange) {
	for _, item := range lr.Spec.Limits {
		if item.Type != corev1.LimitTypeContainer {
			continue
		}
		for r, q := range item.Max {
			if cur, ok := exp.Max[r]; !ok || q.Cmp(cur) < 0 {
				exp.Max[r] = q.DeepCopy()
			}
		}
		for r, q := range item.Default {
			if _, ok := exp.Default[r]; !ok {
				exp.Default[r] = q.DeepCopy()
			}
		}
		for r, q := range item.DefaultRequest {
			if _, ok := exp.DefaultRequest[r]; !ok {
				exp.DefaultRequest[r] = q.DeepCopy()
			}
		}
	}
}

// containerLimits are the namespace's effective per-container limits, from
// its LimitRanges as they are.
func containerLimits(lrs []corev1.LimitRange) expectation {
	exp := expectation{Max: corev1.ResourceList{}, Default: corev1.ResourceList{}, DefaultRequest: corev1.ResourceList{}}
	for _, lr := range lrs {
		exp.LimitRanges = append(exp.LimitRanges, lr.Name)
		mergeContainerLimits(&exp, lr)
	}
	return exp
}

// limit is a namespace's quota for one resource, and the bound the check
// tries to exceed.
type limit struct {
	Resource corev1.ResourceName
	// Limited: an unscoped ResourceQuota of the namespace sets Resource.
	Limited bool
	// Quota is the quota with the lowest hard value; Hard and Used are its
	// status (what admission enforces).
	Quota string
	Hard  resource.Quantity
	Used  resource.Quantity
	// Expected is the tenant's expected hard value, when known.
	Expected *resource.Quantity
	// Bound is what the tenant must not exceed: the lower of Hard and
	// Expected (Expected alone when the resource is not limited).
	Bound resource.Quantity
}

// limitOf computes the limit on r from the namespace's quotas (scoped quotas
// apply to some objects only and are not used as bounds) and the expectation.
func limitOf(r corev1.ResourceName, quotas []corev1.ResourceQuota, expected corev1.ResourceList) limit {
	l := limit{Resource: r}
	if q, ok := expected[r]; ok {
		q := q.DeepCopy()
		l.Expected = &q
	}
	for _, rq := range quotas {
		if len(rq.Spec.Scopes) > 0 || rq.Spec.ScopeSelector != nil {
			continue
		}
		hard, ok := rq.Status.Hard[r]
		if !ok {
			continue
		}
		if !l.Limited || hard.Cmp(l.Hard) < 0 {
			l.Limited, l.Quota, l.Hard = true, rq.Name, hard.DeepCopy()
			used := rq.Status.Used[r]
			l.Used = used.DeepCopy()
		}
	}
	switch {
	case l.Limited && l.Expected != nil && l.Expected.Cmp(l.Hard) < 0:
		l.Bound = l.Expected.DeepCopy()
	case l.Limited:
		l.Bound = l.Hard.DeepCopy()
	case l.Expected != nil:
		l.Bound = l.Expected.DeepCopy()
	}
	return l
}

// Remaining is how much of the bound is left (negative when usage is
// already over it).
func (l limit) Remaining() resource.Quantity {
	q := l.Bound.DeepCopy()
	q.Sub(l.Used)
	return q
}

// RemainingCount is Remaining as a whole number (for object counts).
func (l limit) RemainingCount() int64 {
	q := l.Remaining()
	return q.Value()
}

// Raised reports whether the quota allows more than expected.
func (l limit) Raised() bool {
	return l.Limited && l.Expected != nil && l.Hard.Cmp(*l.Expected) > 0
}

// String is the evidence: "pods: quota tenant-quota used 2, hard 6; expected at most 6".
func (l limit) String() string {
	var b strings.Builder
	b.WriteString(string(l.Resource) + ": ")
	if l.Limited {
		fmt.Fprintf(&b, "quota %s used %s, hard %s", l.Quota, l.Used.String(), l.Hard.String())
	} else {
		b.WriteString("no ResourceQuota of the namespace sets it")
	}
	if l.Expected != nil {
		fmt.Fprintf(&b, "; expected at most %s", l.Expected.String())
	}
	return b.String()
}

// quotaNames lists the namespace's ResourceQuotas, sorted.
func quotaNames(quotas []corev1.ResourceQuota) []string {
	out := make([]string, 0, len(quotas))
	for _, q := range quotas {
		out = append(out, q.Name)
	}
	sort.Strings(out)
	return out
}

// statusCurrent reports whether the quota controller has computed a quota's
// status for its current spec: admission refuses every request it matches
// until then ("status unknown for quota").
func statusCurrent(rq corev1.ResourceQuota) bool {
	if len(rq.Status.Hard) != len(rq.Spec.Hard) {
		return false
	}
	for r, q := range rq.Spec.Hard {
		h, ok := rq.Status.Hard[r]
		if !ok || h.Cmp(q) != 0 {
			return false
		}
		if _, ok := rq.Status.Used[r]; !ok {
			return false
		}
	}
	return true
}

// usageChanges lists the quotas whose used values are above what they were
// before: "tenant-quota pods 3 (was 2)". Quotas present only now are
// ignored. Usage at or below the baseline is back: a baseline read just
// after an earlier check can still count that check's objects (the quota
// controller recounts late), and waiting for usage to climb back to it
// would wait for nothing.
func usageChanges(before, now []corev1.ResourceQuota) []string {
	return compareUsage(before, now, func(cur, was resource.Quantity, ok bool) bool { return !ok || cur.Cmp(was) > 0 })
}

// usageDiff names every used value that differs between two reads of the
// namespace's quotas: "tenant-quota pods 5 (was 4)".
func usageDiff(before, after []corev1.ResourceQuota) string {
	out := compareUsage(before, after, func(cur, was resource.Quantity, ok bool) bool { return !ok || cur.Cmp(was) != 0 })
	if len(out) == 0 {
		return "no used value differs; the quotas were rewritten"
	}
	return strings.Join(out, ", ")
}

// compareUsage lists, for each quota of before, its used values for which
// differs(now, was, present now) holds, and the quotas that are gone.
func compareUsage(before, now []corev1.ResourceQuota, differs func(cur, was resource.Quantity, ok bool) bool) []string {
	byName := map[string]corev1.ResourceQuota{}
	for _, q := range now {
		byName[q.Name] = q
	}
	var out []string
	for _, b := range before {
		n, ok := byName[b.Name]
		if !ok {
			out = append(out, b.Name+" is gone")
			continue
		}
		for _, r := range sortedNames(b.Status.Used) {
			was := b.Status.Used[r]
			cur, ok := n.Status.Used[r]
			if differs(cur, was, ok) {
				out = append(out, fmt.Sprintf("%s %s %s (was %s)", b.Name, r, cur.String(), was.String()))
			}
		}
	}
	return out
}
