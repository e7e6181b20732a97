package quota

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestStatusMovedAndUsageDiff(t *testing.T) {
	a := rq("q", list("pods", "8", "requests.cpu", "1"), list("pods", "4", "requests.cpu", "200m"))
	a.ResourceVersion = "1"
	same := *a.DeepCopy()
	assert.False(t, statusMoved([]corev1.ResourceQuota{a}, []corev1.ResourceQuota{same}))

	scaled := rq("q", list("pods", "8", "requests.cpu", "1"), list("pods", "5", "requests.cpu", "205m"))
	scaled.ResourceVersion = "2"
	assert.True(t, statusMoved([]corev1.ResourceQuota{a}, []corev1.ResourceQuota{scaled}))
	assert.Equal(t, "q pods 5 (was 4), q requests.cpu 205m (was 200m)", usageDiff([]corev1.ResourceQuota{a}, []corev1.ResourceQuota{scaled}))
	assert.True(t, statusMoved([]corev1.ResourceQuota{a}, nil), "a quota that went away moved")
}
