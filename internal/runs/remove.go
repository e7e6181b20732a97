package runs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

// Removed says what Remove deleted.
type Removed struct {
	// Namespaces are bulkhead's own namespaces; everything in them goes
	// with them.
	Namespaces []string
	// Objects are the objects outside those namespaces: in tenant
	// namespaces, and cluster-scoped.
	Objects []string
}

// deleteConcurrency bounds parallel delete calls.
const deleteConcurrency = 8

// Remove deletes objs: namespaces, and every object that is not inside one
// of those namespaces (which go with them) and not owned by another of
// objs (the garbage collector deletes it with its owner: a Service's
// EndpointSlices, a Deployment's ReplicaSets and pods). With wait > 0 the
// owners are deleted in the foreground (they are gone only once what they
// own is) and Remove waits up to wait until all of it is gone; with 0 it
// returns once every deletion has been started (a second Ctrl-C's fast
// undo).
func Remove(ctx context.Context, c *kube.Clients, objs []Object, wait time.Duration) (Removed, error) {
	var rep Removed
	namespaces, _, _, rest := Parts(objs)
	for _, o := range namespaces {
		rep.Namespaces = append(rep.Namespaces, o.Name)
	}
	for _, o := range rest {
		rep.Objects = append(rep.Objects, o.String())
	}
	todo := append(namespaces, rest...)
	propagation := metav1.DeletePropagationBackground
	if wait > 0 {
		propagation = metav1.DeletePropagationForeground
	}
	del := metav1.DeleteOptions{PropagationPolicy: &propagation}
	dyn, err := quiet(c)
	if err != nil {
		return rep, err
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, deleteConcurrency)
	)
	for _, o := range todo {
		if o.Terminated {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			opts := del
			if o.IsNamespace() {
				opts = metav1.DeleteOptions{} // the namespace controller empties it
			}
			err := dyn.Resource(o.Resource).Namespace(o.Namespace).Delete(ctx, o.Name, opts)
			if err != nil && !apierrors.IsNotFound(err) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("delete %s: %w", o, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wait > 0 {
		if err := WaitGone(ctx, c, todo, wait); err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// WaitGone polls until none of objs exists (by UID: an object recreated
// under the same name is not the one deleted), or timeout.
func WaitGone(ctx context.Context, c *kube.Clients, objs []Object, timeout time.Duration) error {
	dyn, err := quiet(c)
	if err != nil {
		return err
	}
	var left []string
	err = wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		left = left[:0]
		for _, o := range objs {
			got, err := dyn.Resource(o.Resource).Namespace(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				return false, nil // transient: try again
			case got.GetUID() == o.UID:
				left = append(left, o.String())
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("still there after %s: %s", timeout, strings.Join(left, ", "))
	}
	return nil
}
