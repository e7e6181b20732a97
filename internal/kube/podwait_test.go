package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func waiting(reason string, age time.Duration) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(time.Now().Add(-age))},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "probe",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}}},
	}
}

func TestStuck(t *testing.T) {
	now := time.Now()
	kind, _ := Stuck(waiting("ErrImageNeverPull", 0), now)
	assert.Equal(t, CannotStart, kind, "a missing side-loaded image never heals")
	kind, _ = Stuck(waiting("ImagePullBackOff", time.Second), now)
	assert.Empty(t, kind, "a pull may still succeed")
	kind, _ = Stuck(waiting("ImagePullBackOff", time.Minute), now)
	assert.Equal(t, CannotStart, kind, "but not forever")
	kind, _ = Stuck(waiting("ContainerCreating", time.Hour), now)
	assert.Empty(t, kind)

	unsched := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}}}}
	kind, why := Stuck(unsched, now)
	assert.Equal(t, Unschedulable, kind)
	assert.Contains(t, why, "not scheduled")
}
