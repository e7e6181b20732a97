package quota

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestJudgeDeployment(t *testing.T) {
	l := limitOf(corev1.ResourcePods, []corev1.ResourceQuota{rq("tenant-quota", list("pods", "12"), list("pods", "2"))}, list("pods", "6"))
	quotas := []string{"tenant-quota"}
	event := &corev1.Event{Reason: "FailedCreate", Message: msgEvent, InvolvedObject: corev1.ObjectReference{Name: "d-7c9f"}}

	ans := judgeDeployment(nil, quotas, l, 4, 6, 8, nil, nil, "ctl")
	assert.False(t, ans.OK)
	assert.Empty(t, ans.Inconclusive, "more pods charged than the bound is a leak, whatever the events say")
	assert.Equal(t, "8 pods charged to the quota, more than its bound 6", ans.Observed)

	ans = judgeDeployment(event, quotas, l, 4, 4, 6, nil, nil, "ctl")
	assert.True(t, ans.OK, ans.Detail)

	ans = judgeDeployment(nil, quotas, l, 4, 4, 6, nil, nil, "ctl")
	assert.False(t, ans.OK)
	assert.Equal(t, "no FailedCreate event", ans.Observed)

	other := &corev1.Event{Reason: "FailedCreate", Message: `Error creating: pods "x" is forbidden: violates PodSecurity "restricted:latest": exceeded quota: `}
	ans = judgeDeployment(other, quotas, l, 4, 4, 6, nil, nil, "ctl")
	assert.NotEmpty(t, ans.Inconclusive, "a refusal for another reason is not the quota's")
}
