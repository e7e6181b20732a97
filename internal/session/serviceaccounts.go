package session

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// disableDefaultAutomount turns off token automounting for the default
// ServiceAccount of a namespace bulkhead created, so a reference tenant's
// pods get a token only when they ask for one. The ServiceAccount controller
// creates "default" just after the namespace, so this waits for it.
func (s *Session) disableDefaultAutomount(ctx context.Context, namespace string) error {
	sas := s.opts.Clients.Core.CoreV1().ServiceAccounts(namespace)
	patch := []byte(`{"automountServiceAccountToken":false}`)
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, last = sas.Patch(ctx, "default", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "bulkhead"})
		if apierrors.IsNotFound(last) {
			return false, nil
		}
		return last == nil, last
	})
	if err != nil {
		return fmt.Errorf("turn off token automounting of %s/default: %w (last: %v)", namespace, err, last)
	}
	return nil
}
