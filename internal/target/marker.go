package target

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

// A cluster bulkhead created carries a marker ConfigMap naming its kind
// cluster, so a later run against it through a kubeconfig (the developer
// loop with --keep-cluster, or several runs sharing one dev cluster) can
// find the kind cluster and prove it is that one (ProveDisposable) before
// doing what only disposable clusters allow: schedule probes on the control
// plane, install a metadata decoy, side-load a freshly built probe image.
// The marker is a claim, never a proof: anyone who may create ConfigMaps in
// kube-system can write one.
//
// The marker deliberately lacks the managed-by label: `bulkhead cleanup`
// removes runs' objects, not the cluster's identity.
const (
	markerNamespace = "kube-system"
	markerName      = "bulkhead-cluster"
	markerLabel     = "bulkhead.dev/cluster"
	markerKindKey   = "kindCluster"
)

// Marker is what the marker says.
type Marker struct {
	// KindCluster is the kind cluster's name.
	KindCluster string
}

// MarkCluster records that bulkhead created this kind cluster.
func MarkCluster(ctx context.Context, c *kube.Clients, kindName string) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: markerName, Namespace: markerNamespace, Labels: map[string]string{markerLabel: "true"}},
		Data:       map[string]string{markerKindKey: kindName, "created": time.Now().UTC().Format(time.RFC3339)},
	}
	_, err := c.Core.CoreV1().ConfigMaps(markerNamespace).Create(ctx, cm, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("mark cluster as created by bulkhead: %w", err)
	}
	return nil
}

// ReadMarker returns the marker, and false when the cluster has none (it
// was not created by bulkhead, or the identity may not read kube-system).
func ReadMarker(ctx context.Context, c *kube.Clients) (Marker, bool) {
	cm, err := c.Core.CoreV1().ConfigMaps(markerNamespace).Get(ctx, markerName, metav1.GetOptions{})
	if err != nil || cm.Labels[markerLabel] != "true" {
		return Marker{}, false
	}
	return Marker{KindCluster: cm.Data[markerKindKey]}, true
}
