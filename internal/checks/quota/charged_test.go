package quota

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestChargedPodFollowsTheQuotaEvaluator(t *testing.T) {
	now := time.Now()
	pod := func(phase corev1.PodPhase, deleted time.Duration, grace int64) corev1.Pod {
		p := corev1.Pod{Status: corev1.PodStatus{Phase: phase}}
		if deleted != 0 {
			p.DeletionTimestamp = &metav1.Time{Time: now.Add(-deleted)}
			p.DeletionGracePeriodSeconds = ptr.To(grace)
		}
		return p
	}
	assert.True(t, chargedPod(pod(corev1.PodPending, 0, 0), now), "a pending pod is charged")
	assert.True(t, chargedPod(pod(corev1.PodRunning, 0, 0), now))
	assert.False(t, chargedPod(pod(corev1.PodSucceeded, 0, 0), now), "finished pods are not charged")
	assert.False(t, chargedPod(pod(corev1.PodFailed, 0, 0), now))
	assert.True(t, chargedPod(pod(corev1.PodRunning, time.Second, 30), now), "terminating within its grace period: still charged")
	assert.False(t, chargedPod(pod(corev1.PodRunning, time.Minute, 30), now), "terminating past its grace period: no longer charged")
}
