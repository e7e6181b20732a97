package quota

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Messages as the API server words them (kube-apiserver 1.36, verified on
// the dev cluster).
const (
	msgPods     = `pods "p2" is forbidden: exceeded quota: tenant-quota, requested: pods=1, used: pods=6, limited: pods=6`
	msgTwo      = `services "s1" is forbidden: exceeded quota: q, requested: services.loadbalancers=1,services.nodeports=1, used: services.loadbalancers=0,services.nodeports=0, limited: services.loadbalancers=0,services.nodeports=0`
	msgEvent    = `Error creating: pods "bhq-d-7c9f-x2" is forbidden: exceeded quota: tenant-quota, requested: pods=1, used: pods=6, limited: pods=6`
	msgMax      = `pods "p2" is forbidden: maximum cpu usage per Container is 500m, but limit is 600m`
	msgUnknown  = `pods "p2" is forbidden: status unknown for quota: tenant-quota, resources: pods`
	msgFailedQ  = `pods "p2" is forbidden: failed quota: tenant-quota: must specify limits.cpu for: c0`
	msgRBAC     = `resourcequotas "tenant-quota" is forbidden: User "bulkhead:x:a:admin" cannot update resource "resourcequotas" in API group "" in the namespace "bh-x-a"`
	msgStorageQ = `persistentvolumeclaims "c1" is forbidden: exceeded quota: q, requested: requests.storage=11Mi, used: requests.storage=0, limited: requests.storage=10Mi`
)

func TestParseExceeded(t *testing.T) {
	e, ok := ParseExceeded(msgPods)
	require.True(t, ok)
	assert.Equal(t, "tenant-quota", e.Quota)
	assert.Equal(t, map[string]string{"pods": "1"}, e.Requested)
	assert.Equal(t, map[string]string{"pods": "6"}, e.Used)
	assert.Equal(t, map[string]string{"pods": "6"}, e.Limited)
	assert.Equal(t, "quota tenant-quota refused pods used 6, hard 6, requested 1", e.Summary())

	e, ok = ParseExceeded(msgTwo)
	require.True(t, ok)
	assert.Equal(t, "q", e.Quota)
	assert.Equal(t, []string{"services.loadbalancers", "services.nodeports"}, e.Resources())
	assert.True(t, e.Names("services.nodeports"))
	assert.False(t, e.Names("services"))

	e, ok = ParseExceeded(msgEvent)
	require.True(t, ok, "FailedCreate events carry the same wording")
	assert.Equal(t, "6", e.Limited["pods"])

	e, ok = ParseExceeded(msgStorageQ)
	require.True(t, ok)
	assert.Equal(t, "11Mi", e.Requested["requests.storage"])

	for _, m := range []string{msgMax, msgUnknown, msgFailedQ, msgRBAC, "", "exceeded quota: ", "exceeded quota: q, requested: pods=1"} {
		_, ok := ParseExceeded(m)
		assert.False(t, ok, "not an exceeded-quota message: %q", m)
	}
}

func forbidden(resource, msg string) error {
	err := apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "x", errors.New("x"))
	err.ErrStatus.Message = msg
	return err
}

func TestJudgeOverrunAcceptsOnlyTheQuotasRefusalOfTheDimension(t *testing.T) {
	quotas := []string{"tenant-quota"}
	cases := []struct {
		name string
		err  error
		res  string
		ok   bool
		obs  string
		// inconclusive: neither a pass nor a leak (unproven).
		inconclusive bool
	}{
		{"exceeded quota on pods", forbidden("pods", msgPods), "pods", true, wantExceeded, false},
		{"admitted is a leak", nil, "pods", false, wantAccepted, false},
		{"refused by the LimitRange", forbidden("pods", msgMax), "pods", false, "rejected: 403 (not by quota)", true},
		{"status unknown is not an overrun", forbidden("pods", msgUnknown), "pods", false, "rejected: 403 (not by quota)", true},
		{"another dimension", forbidden("pods", msgPods), "requests.cpu", false, "rejected: exceeded quota (other resource)", true},
		{"a quota the namespace does not have", forbidden("services", msgTwo), "services.nodeports", false, "rejected: exceeded unknown quota", true},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "x", nil), "pods", false, "rejected: 422 Invalid", true},
		{"not found", apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "x"), "pods", false, "rejected: 404 NotFound", true},
		{"no API answer", errors.New("connection refused"), "pods", false, "error (no API answer)", true},
	}
	for _, c := range cases {
		ans := judgeOverrun(c.err, c.res, quotas)
		assert.Equal(t, c.ok, ans.OK, c.name)
		assert.Equal(t, c.obs, ans.Observed, c.name)
		assert.Equal(t, c.inconclusive, ans.Inconclusive != "", "%s: %s", c.name, ans.Inconclusive)
		assert.NotEmpty(t, ans.Detail, c.name)
		if c.err != nil && c.ok {
			assert.Contains(t, ans.Detail, "403 Forbidden: "+msgPods, "evidence carries the API message")
			assert.Contains(t, ans.Detail, "used 6, hard 6")
		}
	}
}

func TestJudgeForbiddenCountsOnlyARefusalOfTheIdentityTried(t *testing.T) {
	admin := checks.Identity{User: "bulkhead:x:a:admin", Groups: []string{"g"}}
	ans := judgeForbidden(forbidden("resourcequotas", msgRBAC), admin)
	assert.True(t, ans.OK, "RBAC refuses the identity itself")
	assert.Empty(t, ans.Inconclusive)

	other := checks.Identity{User: "alice"}
	ans = judgeForbidden(forbidden("resourcequotas", msgRBAC), other)
	assert.False(t, ans.OK)
	assert.Contains(t, ans.Inconclusive, `refuses bulkhead:x:a:admin, not alice`, "a 403 naming someone else proves nothing about alice")

	impersonation := `users "alice" is forbidden: User "system:serviceaccount:ops:bulkhead" cannot impersonate resource "users" in API group "" at the cluster scope`
	ans = judgeForbidden(forbidden("users", impersonation), other)
	assert.False(t, ans.OK)
	assert.NotEmpty(t, ans.Inconclusive, "bulkhead's own refused impersonation is not alice denied")

	vap := `resourcequotas "tenant-quota" is forbidden: ValidatingAdmissionPolicy 'protect-quota' with binding 'b' denied request: tenants may not edit quotas`
	ans = judgeForbidden(forbidden("resourcequotas", vap), other)
	assert.True(t, ans.OK, "an admission refusal comes after RBAC let alice's request through: alice was refused")
	assert.Contains(t, ans.Detail, "refused by admission")

	ans = judgeForbidden(forbidden("resourcequotas", `resourcequotas "q" is forbidden: something`), other)
	assert.False(t, ans.OK)
	assert.NotEmpty(t, ans.Inconclusive, "an unattributed 403 is not a denial")

	ans = judgeForbidden(nil, admin)
	assert.False(t, ans.OK)
	assert.Empty(t, ans.Inconclusive, "an accepted write is a leak")
	assert.Equal(t, "allowed", ans.Observed)

	ans = judgeForbidden(forbidden("resourcequotas", msgPods), admin)
	assert.False(t, ans.OK, "a quota refusal means RBAC let the write through")
	assert.Empty(t, ans.Inconclusive)

	ans = judgeForbidden(apierrors.NewConflict(schema.GroupResource{Resource: "resourcequotas"}, "x", errors.New("changed")), admin)
	assert.False(t, ans.OK, "a conflict means RBAC let the write through")
	assert.Empty(t, ans.Inconclusive)

	ans = judgeForbidden(errors.New("connection reset"), admin)
	assert.False(t, ans.OK)
	assert.NotEmpty(t, ans.Inconclusive, "no answer is neither")
}

func TestJudgeOverMax(t *testing.T) {
	assert.True(t, judgeOverMax(forbidden("pods", msgMax), "cpu").OK)
	ans := judgeOverMax(forbidden("pods", msgMax), "memory")
	assert.False(t, ans.OK, "the refusal must be for the resource under test")
	assert.NotEmpty(t, ans.Inconclusive)
	ans = judgeOverMax(forbidden("pods", msgPods), "cpu")
	assert.False(t, ans.OK, "a quota refusal is not the LimitRange's")
	assert.NotEmpty(t, ans.Inconclusive)
	ans = judgeOverMax(nil, "cpu")
	assert.False(t, ans.OK)
	assert.Empty(t, ans.Inconclusive, "a container over max admitted is a leak")
}

func rq(name string, hard, used corev1.ResourceList) corev1.ResourceQuota {
	return corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ResourceQuotaSpec{Hard: hard}, Status: corev1.ResourceQuotaStatus{Hard: hard, Used: used}}
}

func list(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func TestLimitOfTakesTheTighterOfQuotaAndExpectation(t *testing.T) {
	quotas := []corev1.ResourceQuota{
		rq("loose", list("pods", "20"), list("pods", "2")),
		rq("tight", list("pods", "6", "requests.cpu", "1"), list("pods", "2", "requests.cpu", "10m")),
	}
	scoped := rq("scoped", list("pods", "1"), list("pods", "0"))
	scoped.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}
	quotas = append(quotas, scoped)

	l := limitOf(corev1.ResourcePods, quotas, nil)
	require.True(t, l.Limited)
	assert.Equal(t, "tight", l.Quota, "lowest hard of the unscoped quotas")
	assert.Equal(t, int64(4), l.RemainingCount())
	assert.False(t, l.Raised())

	l = limitOf(corev1.ResourcePods, quotas, list("pods", "4"))
	assert.Equal(t, int64(2), l.RemainingCount(), "expectation below the quota bounds the check")

	raised := []corev1.ResourceQuota{rq("tenant-quota", list("pods", "12"), list("pods", "2"))}
	l = limitOf(corev1.ResourcePods, raised, list("pods", "6"))
	assert.True(t, l.Raised())
	assert.Equal(t, int64(4), l.RemainingCount(), "a raised quota is still overrun at the expected bound")
	assert.Equal(t, "pods: quota tenant-quota used 2, hard 12; expected at most 6", l.String())

	l = limitOf(corev1.ResourceRequestsCPU, quotas, nil)
	rem := l.Remaining()
	assert.Equal(t, int64(990), rem.MilliValue())

	l = limitOf(corev1.ResourceServicesNodePorts, nil, tenantPolicy)
	assert.False(t, l.Limited)
	assert.True(t, l.Bound.IsZero())
	assert.Contains(t, l.String(), "no ResourceQuota of the namespace sets it")
}

func TestStatusCurrentAndUsageChanges(t *testing.T) {
	q := rq("q", list("pods", "6"), list("pods", "2"))
	assert.True(t, statusCurrent(q))
	raised := q.DeepCopy()
	raised.Spec.Hard = list("pods", "12")
	assert.False(t, statusCurrent(*raised), "status.hard not yet updated for the new spec")
	fresh := rq("q", list("pods", "6"), nil)
	fresh.Status = corev1.ResourceQuotaStatus{}
	assert.False(t, statusCurrent(fresh))

	before := []corev1.ResourceQuota{q}
	assert.Empty(t, usageChanges(before, []corev1.ResourceQuota{q}))
	more := rq("q", list("pods", "6"), list("pods", "3"))
	assert.Equal(t, []string{"q pods 3 (was 2)"}, usageChanges(before, []corev1.ResourceQuota{more}))
	assert.Equal(t, []string{"q is gone"}, usageChanges(before, nil))
	less := rq("q", list("pods", "6"), list("pods", "1"))
	assert.Empty(t, usageChanges(before, []corev1.ResourceQuota{less}), "a baseline that still counted an earlier check's pods is met from below")
}

func TestSplitAndComputeContainers(t *testing.T) {
	assert.Equal(t, []int64{990}, split(990, 0))
	assert.Equal(t, []int64{500, 490}, split(990, 500))
	assert.Equal(t, []int64{500, 500, 500, 100}, split(1600, 500))
	assert.Nil(t, split(0, 500))

	cs := computeContainers(corev1.ResourceCPU, false, 991, 500)
	require.Len(t, cs, 2)
	for _, c := range cs {
		assert.Equal(t, c.Requests.Cpu().MilliValue(), c.Limits.Cpu().MilliValue(), "requests: limit = request")
		assert.LessOrEqual(t, c.Limits.Cpu().MilliValue(), int64(500), "within the LimitRange max")
	}
	assert.Equal(t, int64(491), cs[1].Requests.Cpu().MilliValue())

	cs = computeContainers(corev1.ResourceMemory, true, 1921<<20, 512<<20)
	require.Len(t, cs, 4)
	var lim, req int64
	for _, c := range cs {
		lim += c.Limits.Memory().Value()
		req += c.Requests.Memory().Value()
	}
	assert.Equal(t, int64(1921<<20), lim)
	assert.Equal(t, int64(4<<20), req, "limits: requests stay at the minimum")
}

func TestReferenceQuotaFitsTheRunAndCanBeOverrunCheaply(t *testing.T) {
	run := "k3x9q"
	tn := fixtures.TenantSpec{Name: "a", Namespace: "bh-k3x9q-a", Isolated: true}
	objs, err := fixtures.RenderTenant(run, tn)
	require.NoError(t, err)
	exp, err := expectationFrom(objs)
	require.NoError(t, err)
	assert.Equal(t, []string{"tenant-quota"}, exp.Quotas)
	assert.Equal(t, []string{"tenant-limits"}, exp.LimitRanges)
	for _, r := range []corev1.ResourceName{"pods", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory",
		"requests.storage", "persistentvolumeclaims", "services", "services.nodeports", "services.loadbalancers",
		"count/secrets", "count/configmaps"} {
		assert.Contains(t, exp.Hard, r, "the reference quota sets %s", r)
	}
	assert.True(t, exp.Hard.Name(corev1.ResourceServicesNodePorts, resource.DecimalSI).IsZero())
	assert.True(t, exp.Hard.Name(corev1.ResourceServicesLoadBalancers, resource.DecimalSI).IsZero())

	// What every run puts in the namespace: 2 probe pods and their Services,
	// and kube-root-ca.crt.
	probeObjs, err := fixtures.RenderProbe(fixtures.ProbeSpec{RunID: run, Tenant: "a", Namespace: tn.Namespace, Name: "probe-0", Image: "img"})
	require.NoError(t, err)
	var probe corev1.Pod
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(probeObjs[0].Object, &probe))
	pr := probe.Spec.Containers[0].Resources
	used := corev1.ResourceList{}
	add := func(r corev1.ResourceName, q resource.Quantity, n int64) {
		cur := used[r]
		for range n {
			cur.Add(q)
		}
		used[r] = cur
	}
	add(corev1.ResourcePods, resource.MustParse("1"), 2)
	add(corev1.ResourceServices, resource.MustParse("1"), 2)
	add("count/configmaps", resource.MustParse("1"), 1)
	add(corev1.ResourceRequestsCPU, pr.Requests[corev1.ResourceCPU], 2)
	add(corev1.ResourceRequestsMemory, pr.Requests[corev1.ResourceMemory], 2)
	add(corev1.ResourceLimitsCPU, pr.Limits[corev1.ResourceCPU], 2)
	add(corev1.ResourceLimitsMemory, pr.Limits[corev1.ResourceMemory], 2)
	for r, u := range used {
		h := exp.Hard[r]
		assert.Less(t, u.Cmp(h), 0, "%s: the run's own objects (%s) must leave room under hard %s", r, u.String(), h.String())
	}
	for r, q := range pr.Limits {
		m := exp.Max[r]
		assert.LessOrEqual(t, q.Cmp(m), 0, "probe container %s limit within the LimitRange max", r)
	}

	quotas := []corev1.ResourceQuota{rq("tenant-quota", exp.Hard, used)}
	// Count overruns stay cheap.
	for _, r := range []corev1.ResourceName{"pods", "services", "persistentvolumeclaims", "count/secrets", "count/configmaps"} {
		l := limitOf(r, quotas, exp.Hard)
		assert.LessOrEqual(t, l.RemainingCount(), int64(maxFill), r)
		assert.GreaterOrEqual(t, l.RemainingCount(), int64(1), "%s: room for a positive control", r)
	}
	// A requests overrun (limit = request) must not also exceed the limits
	// quota, so the API names only the dimension under test; and it fits in
	// a bounded number of containers within the LimitRange max.
	for _, d := range computeDims {
		l := limitOf(d.res, quotas, exp.Hard)
		rem := l.Remaining()
		over := amount(d.base, rem) + unit(d.base)
		cs := computeContainers(d.base, d.limits, over, amount(d.base, exp.Max[d.base]))
		assert.LessOrEqual(t, len(cs), maxContainers, d.res)
		if !d.limits {
			lim := limitOf(corev1.ResourceName("limits."+string(d.base)), quotas, exp.Hard)
			limRem := lim.Remaining()
			assert.Greater(t, amount(d.base, limRem), over, "%s overrun stays within limits.%s", d.res, d.base)
		}
	}
	assert.NotEmpty(t, exp.Default)
	assert.NotEmpty(t, exp.DefaultRequest)
}

func TestQuotaCheckPodsPassPodSecurityRestricted(t *testing.T) {
	b := builder{runID: "k3x9q", tenant: "a", ns: "bh-k3x9q-a", image: "img"}
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	require.NoError(t, err)
	lv := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}
	pods := map[string]*corev1.Pod{}
	for name, u := range map[string]*unstructuredObj{
		"small":    b.smallPod("p"),
		"defaults": b.pod("p", nil),
		"compute":  b.pod("p", computeContainers(corev1.ResourceCPU, false, 991, 500)...),
	} {
		var p corev1.Pod
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p))
		pods[name] = &p
	}
	var d struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(b.deployment("d", 3).Object, &d))
	pods["deployment"] = &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}

	for name, p := range pods {
		res := policy.AggregateCheckResults(eval.EvaluatePod(lv, &p.ObjectMeta, &p.Spec))
		assert.True(t, res.Allowed, "%s: %s", name, res.ForbiddenDetail())
		assert.Empty(t, whyRunnable(p.Spec), "%s never runs", name)
		assert.Equal(t, fixtures.ManagedBy, p.Labels[fixtures.LabelManagedBy], name)
		assert.Equal(t, "k3x9q", p.Labels[fixtures.LabelRun], name)
	}
	assert.Empty(t, pods["defaults"].Spec.Containers[0].Resources.Requests, "left to the LimitRange defaults")
}

func TestChecksAreComplete(t *testing.T) {
	ids := map[string]bool{}
	for _, c := range Checks() {
		assert.Equal(t, checks.Quota, c.Area)
		assert.NotEmpty(t, c.Title())
		assert.NotEmpty(t, c.Proves())
		assert.Empty(t, c.NoControl, "%s: every quota check has positive controls", c.ID)
		assert.Empty(t, c.NoNegativeControl, "%s: every quota check has a negative control", c.ID)
		assert.False(t, ids[c.ID], "duplicate %s", c.ID)
		ids[c.ID] = true
	}
	assert.Len(t, ids, 8)
}

func TestEveryQuotaCheckHasANegativeControl(t *testing.T) {
	covered := map[string]bool{}
	for _, nc := range NegativeControls() {
		require.NotNil(t, nc.Inject, nc.Fault)
		require.NotEmpty(t, nc.Expect, nc.Fault)
		for _, e := range nc.Expect {
			assert.Equal(t, reports.Fail, e.Want(), "%s under %q: every quota fault is a leak the check must fail on", e.Check, nc.Fault)
			assert.NotNil(t, e.Names, "%s under %q names what leaked", e.Check, nc.Fault)
			assert.NotNil(t, e.Assert, "%s under %q asserts only the faulty tenant leaks", e.Check, nc.Fault)
			covered[e.Check] = true
		}
	}
	for _, c := range Checks() {
		assert.True(t, covered[c.ID], "%s has no negative control", c.ID)
	}
}
