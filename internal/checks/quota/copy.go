package quota

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
)

// A copy is bulkhead's own namespace (bh-<run>-quota-<id>, labelled with
// the run, removed with it) carrying a copy of a user's tenant namespace's
// ResourceQuotas and LimitRanges. Count bounds are proven there, acting as
// bulkhead itself (the tenant's identities hold no rights there, and quota
// admission treats every identity alike): the tenant's live headroom is
// never consumed. What it shows is the tenant's policy as this API server
// enforces it; whether the tenant's identities may create such objects at
// all is asked of the API server in the tenant namespace (actors).
const (
	roleQuotaCopy = "quota-copy"
	// annotationCopyOf names the tenant namespace a copy was made from.
	annotationCopyOf = "bulkhead.dev/quota-copy-of"
	// copyReadyWait bounds the wait for a new namespace's default
	// ServiceAccount (pods are refused without it) and root CA ConfigMap.
	copyReadyWait = 30 * time.Second
)

// copyRun returns the run in the copy of this run's tenant namespace,
// making the copy on first use.
func (r *nsRun) copyRun(ctx context.Context) (*nsRun, error) {
	if r.copy != nil {
		return r.copy, nil
	}
	quotas, err := r.currentQuotas(ctx)
	if err != nil {
		return nil, err
	}
	lrs, err := r.limitRanges(ctx)
	if err != nil {
		return nil, err
	}
	name := fixtures.NamespaceFor(r.env.RunID, "quota-"+fixtures.NewRunID())
	labels := fixtures.With(fixtures.CommonLabels(r.env.RunID), fixtures.LabelRole, roleQuotaCopy)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:        name,
		Labels:      fixtures.With(labels, "pod-security.kubernetes.io/enforce", "restricted", "pod-security.kubernetes.io/enforce-version", "latest"),
		Annotations: map[string]string{annotationCopyOf: r.tenantNS},
	}}
	if _, err := r.env.Kube.Core.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: fixtures.ManagedBy}); err != nil {
		return nil, fmt.Errorf("create namespace %s for a copy of %s's quota: %w", name, r.tenantNS, err)
	}
	c := &nsRun{env: r.env, tenant: r.tenant, ns: name, tenantNS: r.tenantNS, mode: fillCopy, exp: r.exp,
		build: builder{runID: r.env.RunID, tenant: r.tenant.Name, ns: name, image: r.env.ProbeImage}, prefix: r.prefix}
	r.copy = c // from here on dropCopy removes the namespace, whatever follows
	for _, q := range quotas {
		cp := copyQuota(q, name, labels)
		if _, err := r.env.Kube.Core.CoreV1().ResourceQuotas(name).Create(ctx, cp, metav1.CreateOptions{FieldManager: fixtures.ManagedBy}); err != nil {
			return nil, fmt.Errorf("copy ResourceQuota %s/%s to %s: %w", r.tenantNS, q.Name, name, err)
		}
	}
	for _, lr := range lrs {
		cp := copyLimitRange(lr, name, labels)
		if _, err := r.env.Kube.Core.CoreV1().LimitRanges(name).Create(ctx, cp, metav1.CreateOptions{FieldManager: fixtures.ManagedBy}); err != nil {
			return nil, fmt.Errorf("copy LimitRange %s/%s to %s: %w", r.tenantNS, lr.Name, name, err)
		}
	}
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	if c.baseline, err = c.currentQuotas(ctx); err != nil {
		return nil, err
	}
	lrNames := make([]string, 0, len(lrs))
	for _, lr := range lrs {
		lrNames = append(lrNames, lr.Name)
	}
	r.notes = append(r.notes, fmt.Sprintf("%s: count bounds were proven in bulkhead's own namespace %s, which carries copies of its ResourceQuotas (%s) and LimitRanges (%s), acting as bulkhead: this proves the quota policy; the tenant's live headroom was not consumed (--allow-quota-fill fills the real quota for a few seconds instead)",
		r.tenantNS, name, strings.Join(quotaNames(quotas), ", "), strings.Join(lrNames, ", ")))
	return c, nil
}

// copyQuota is q's spec in namespace ns: the same hard limits and scopes,
// under the same name (admission names the quota that refuses).
func copyQuota(q corev1.ResourceQuota, ns string, labels map[string]string) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: q.Name, Namespace: ns, Labels: labels},
		Spec:       *q.Spec.DeepCopy(),
	}
}

// copyLimitRange is lr's spec in namespace ns.
func copyLimitRange(lr corev1.LimitRange, ns string, labels map[string]string) *corev1.LimitRange {
	return &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: lr.Name, Namespace: ns, Labels: labels},
		Spec:       *lr.Spec.DeepCopy(),
	}
}

// waitReady waits until the new namespace can take pods (its default
// ServiceAccount exists) and holds the root CA ConfigMap every namespace
// gets (count/configmaps counts it: filling before it arrives would race
// its publisher).
func (c *nsRun) waitReady(ctx context.Context) error {
	var sa, cm bool
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, copyReadyWait, true, func(ctx context.Context) (bool, error) {
		if !sa {
			_, err := c.env.Kube.Core.CoreV1().ServiceAccounts(c.ns).Get(ctx, "default", metav1.GetOptions{})
			sa = err == nil
		}
		if !cm {
			_, err := c.env.Kube.Core.CoreV1().ConfigMaps(c.ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
			cm = err == nil
		}
		return sa && cm, nil
	})
	switch {
	case err == nil:
		return nil
	case !sa:
		return fmt.Errorf("namespace %s: no default ServiceAccount after %s", c.ns, copyReadyWait)
	}
	c.notes = append(c.notes, fmt.Sprintf("%s: no kube-root-ca.crt ConfigMap after %s (its publisher may be off); went on without it", c.ns, copyReadyWait))
	return nil
}

// dropCopy deletes the copy's namespace, and everything in it; the run's
// clean-up waits for it to be gone.
func (r *nsRun) dropCopy(ctx context.Context) error {
	if r.copy == nil {
		return nil
	}
	bg := metav1.DeletePropagationBackground
	err := r.env.Kube.Core.CoreV1().Namespaces().Delete(ctx, r.copy.ns, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s (a copy of %s's quota): %w", r.copy.ns, r.tenantNS, err)
	}
	return nil
}
