package runs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

func obj(apiVersion, kind, ns, name string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetUID(types.UID(kind + "/" + ns + "/" + name))
	u.SetLabels(labels)
	u.SetCreationTimestamp(metav1.NewTime(time.Now().Add(-time.Hour)))
	return u
}

// owned is an object whose controller has UID owner.
func owned(apiVersion, kind, ns, name string, labels map[string]string, owner string) *unstructured.Unstructured {
	u := obj(apiVersion, kind, ns, name, labels)
	u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: types.UID(owner)}})
	return u
}

var (
	gvrNamespaces = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrPods       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	gvrConfigMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrVAPs       = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
)

// cluster holds two runs' objects (one of them partly in a user's tenant
// namespace), a user's own pod, and the discovery that serves them.
func cluster(t *testing.T, leases ...runtime.Object) *kube.Clients {
	t.Helper()
	r1, r2 := fixtures.CommonLabels("run1"), fixtures.CommonLabels("run2")
	objs := []runtime.Object{
		obj("v1", "Namespace", "", "bh-run1-control", r1),
		obj("v1", "Pod", "bh-run1-control", "probe-0", r1),
		obj("v1", "Pod", "team-a", "bulkhead-probe-run1-0", r1),
		obj("v1", "ConfigMap", "team-a", "bhq-quota-005-x-cm-0", r1),
		obj("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", "", "bulkhead-run1-deny-external-ips", r1),
		owned("v1", "Pod", "team-a", "bhq-quota-005-x-cm-0-pod", r1, "ConfigMap/team-a/bhq-quota-005-x-cm-0"),
		obj("v1", "Pod", "team-a", "bulkhead-probe-run2-0", r2),
		obj("v1", "Pod", "team-a", "web", map[string]string{"app": "web"}),
	}
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
		gvrNamespaces: "NamespaceList", gvrPods: "PodList", gvrConfigMaps: "ConfigMapList", gvrVAPs: "ValidatingAdmissionPolicyList",
	}, objs...)
	core := fake.NewClientset(leases...)
	core.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "namespaces", Kind: "Namespace", Verbs: metav1.Verbs{"get", "list", "delete"}},
			{Name: "pods", Kind: "Pod", Namespaced: true, Verbs: metav1.Verbs{"get", "list", "delete"}},
			{Name: "pods/exec", Kind: "PodExecOptions", Namespaced: true, Verbs: metav1.Verbs{"create"}},
			{Name: "configmaps", Kind: "ConfigMap", Namespaced: true, Verbs: metav1.Verbs{"get", "list", "delete"}},
			{Name: "bindings", Kind: "Binding", Namespaced: true, Verbs: metav1.Verbs{"create"}},
		}},
		{GroupVersion: "admissionregistration.k8s.io/v1", APIResources: []metav1.APIResource{
			{Name: "validatingadmissionpolicies", Kind: "ValidatingAdmissionPolicy", Verbs: metav1.Verbs{"get", "list", "delete"}},
		}},
	}
	return &kube.Clients{Core: core, Dynamic: dyn}
}

func names(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.String())
	}
	return out
}

// Find sees every labelled object of every kind discovery serves, not a
// fixed list of kinds; Remove deletes a run's namespaces and its objects
// elsewhere, and nothing of another run or of the user.
func TestFindAndRemove(t *testing.T) {
	ctx := context.Background()
	c := cluster(t)
	inv, err := Find(ctx, c, fixtures.ManagedSelector())
	require.NoError(t, err)
	assert.Equal(t, []string{
		"ConfigMap team-a/bhq-quota-005-x-cm-0",
		"Namespace bh-run1-control",
		"Pod bh-run1-control/probe-0",
		"Pod team-a/bhq-quota-005-x-cm-0-pod",
		"Pod team-a/bulkhead-probe-run1-0",
		"Pod team-a/bulkhead-probe-run2-0",
		"ValidatingAdmissionPolicy bulkhead-run1-deny-external-ips",
	}, names(inv.Objects))
	byRun := ByRun(inv.Objects)
	assert.Equal(t, "ConfigMap ×1, Namespace ×1, Pod ×3, ValidatingAdmissionPolicy ×1", KindCounts(byRun["run1"]))

	rep, err := Remove(ctx, c, byRun["run1"], 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"bh-run1-control"}, rep.Namespaces)
	assert.ElementsMatch(t, []string{"ConfigMap team-a/bhq-quota-005-x-cm-0", "Pod team-a/bulkhead-probe-run1-0",
		"ValidatingAdmissionPolicy bulkhead-run1-deny-external-ips"}, rep.Objects)

	left, err := Find(ctx, c, "")
	require.NoError(t, err)
	assert.Equal(t, []string{
		"Pod bh-run1-control/probe-0",         // the API server deletes it with its namespace; the fake does not
		"Pod team-a/bhq-quota-005-x-cm-0-pod", // the garbage collector deletes it with its owner; the fake does not
		"Pod team-a/bulkhead-probe-run2-0",
		"Pod team-a/web",
	}, names(left.Objects))
}

func lease(run string, renewed time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: LeaseName, Namespace: ControlNamespace(run)},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("bulkhead run on ci-7 (pid 42)"),
			LeaseDurationSeconds: ptr.To(int32(60)), RenewTime: ptr.To(metav1.NewMicroTime(renewed))},
	}
}

// A run is left behind only when its Lease expired, or when it has none
// and nothing of it is recent (a run that is starting has no Lease yet).
func TestJudge(t *testing.T) {
	now := time.Now()
	old := []Object{{Created: now.Add(-time.Hour)}}
	young := []Object{{Created: now.Add(-time.Hour)}, {Created: now.Add(-5 * time.Second)}}

	st, why := judge(lease("r", now.Add(-20*time.Second)), old, now)
	assert.Equal(t, Live, st, why)
	assert.Contains(t, why, "ci-7")
	st, why = judge(lease("r", now.Add(-65*time.Second)), old, now)
	assert.Equal(t, Live, st, "within the clock-skew allowance: %s", why)
	st, why = judge(lease("r", now.Add(-2*time.Minute)), old, now)
	assert.Equal(t, Left, st, why)
	assert.Contains(t, why, "expired")
	st, why = judge(nil, young, now)
	assert.Equal(t, Live, st, why)
	assert.Contains(t, why, "starting")
	st, _ = judge(nil, old, now)
	assert.Equal(t, Left, st)
}

func TestTake(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	c := cluster(t, lease("run1", now.Add(-5*time.Minute)), lease("run2", now))
	s, err := Take(ctx, c, fixtures.ManagedSelector(), now)
	require.NoError(t, err)
	require.Len(t, s.Runs, 2)
	assert.Equal(t, "run1", s.InState(Left)[0].ID)
	assert.Equal(t, "run2", s.InState(Live)[0].ID)
}
