package quota

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
)

func TestACopyCarriesTheTenantsPolicyAndNothingElse(t *testing.T) {
	q := rq("tenant-quota", list("pods", "8", "count/secrets", "6"), list("pods", "4", "count/secrets", "1"))
	q.Namespace, q.ResourceVersion, q.UID = "team-a", "42", "u-1"
	q.Labels = map[string]string{"owner": "platform"}
	q.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
		{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"low"}}}}
	labels := fixtures.With(fixtures.CommonLabels("k3x9q"), fixtures.LabelRole, roleQuotaCopy)

	cp := copyQuota(q, "bh-k3x9q-quota-x1y2z", labels)
	assert.Equal(t, "tenant-quota", cp.Name, "the same name: admission names the quota that refuses")
	assert.Equal(t, "bh-k3x9q-quota-x1y2z", cp.Namespace)
	assert.Equal(t, q.Spec, cp.Spec, "the same hard limits and scopes")
	assert.Empty(t, cp.Status, "usage starts from what is in the copy")
	assert.Empty(t, cp.ResourceVersion)
	assert.Empty(t, cp.UID)
	assert.Equal(t, labels, cp.Labels, "labelled with the run, so clean-up removes it")
	cp.Spec.Hard[corev1.ResourcePods] = resource.MustParse("1")
	assert.Equal(t, "8", q.Spec.Hard.Pods().String(), "the tenant's quota is never changed")

	lr := corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "tenant-limits", Namespace: "team-a", ResourceVersion: "7"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: list("cpu", "500m")}}}}
	cl := copyLimitRange(lr, "bh-k3x9q-quota-x1y2z", labels)
	assert.Equal(t, lr.Spec, cl.Spec)
	assert.Equal(t, "tenant-limits", cl.Name)
	assert.Empty(t, cl.ResourceVersion)
}

func TestCountObjectsAreBuiltForTheNamespaceTheyGoTo(t *testing.T) {
	own := builder{runID: "k3x9q", tenant: "a", ns: "bh-k3x9q-quota-x1y2z", image: "img"}
	for _, d := range append([]countDim{podsDim, claimsDim}, objectDims...) {
		obj := d.build(own, "x")
		assert.Equal(t, own.ns, obj.GetNamespace(), "%s: a copy's objects go to the copy, not the tenant", d.res)
		assert.Equal(t, "k3x9q", obj.GetLabels()[fixtures.LabelRun], "%s carries the run label", d.res)
	}
}
