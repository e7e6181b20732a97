package session

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// quotaStatusWait bounds the wait for the quota controller to compute the
// status of tenants' ResourceQuotas.
const quotaStatusWait = time.Minute

// waitQuotasComputed waits until every ResourceQuota in namespaces has its
// status computed for its spec. Until then the API server refuses every
// object the quota covers ("status unknown for quota"), so probe pods
// created right after a tenant's quota would be refused.
func (s *Session) waitQuotasComputed(ctx context.Context, namespaces []string) error {
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, quotaStatusWait, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		for _, ns := range namespaces {
			list, err := s.opts.Clients.Core.CoreV1().ResourceQuotas(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				pending = append(pending, ns+": "+err.Error())
				continue
			}
			for _, q := range list.Items {
				if !quotaStatusComputed(q) {
					pending = append(pending, ns+"/"+q.Name)
				}
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("ResourceQuota status not computed after %s: %s", quotaStatusWait, strings.Join(pending, ", "))
	}
	return nil
}

func quotaStatusComputed(q corev1.ResourceQuota) bool {
	for r, hard := range q.Spec.Hard {
		h, ok := q.Status.Hard[r]
		if !ok || h.Cmp(hard) != 0 {
			return false
		}
		if _, ok := q.Status.Used[r]; !ok {
			return false
		}
	}
	return true
}
