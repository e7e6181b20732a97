package exposure

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// BackendReadyTimeout bounds the wait for the NodePort's backend pod.
var BackendReadyTimeout = time.Minute

// labelBackend selects the NodePort's backend pod.
const labelBackend = "bulkhead.dev/exposure-backend"

// nodePort is the NodePort EXP-004 publishes for the seconds its probe
// rounds take, in bulkhead's own control namespace, served by a probe that
// answers nothing but this run's token.
type nodePort struct {
	Service   *corev1.Service
	Backend   *corev1.Pod
	Token     string
	Port      int
	Published time.Time
	Withdrawn time.Time
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// BackendPod is the NodePort's backend: a copy of a running control probe
// pod (its node, image, pull secrets, tolerations and Pod Security
// compliant settings) that serves TCP only, and only to the token.
func BackendPod(env *checks.Env, like *corev1.Pod, name, token string) *corev1.Pod {
	spec := *like.Spec.DeepCopy()
	// Scheduled by the copied affinity, not bound by hand; what admission
	// computed for the original (priority) it computes again.
	spec.NodeName, spec.Priority, spec.PreemptionPolicy = "", nil, nil
	c := &spec.Containers[0]
	c.Args = []string{"serve", "--tcp", fmt.Sprintf(":%d", wire.PortTCP), "--udp", "", "--sctp", "", "--token", token}
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: wire.PortTCP, Protocol: corev1.ProtocolTCP}}
	spec.Containers = spec.Containers[:1]
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: like.Namespace,
			Labels: fixtures.With(fixtures.CommonLabels(env.RunID), fixtures.LabelTenant, like.Labels[fixtures.LabelTenant],
				fixtures.LabelRole, "exposure-nodeport", labelBackend, name)},
		Spec: spec,
	}
}

// publishNodePort starts the backend next to control probe pod like, waits
// until it is Ready, and only then publishes the NodePort Service: the node
// port is open only while the check needs it. withdraw removes both (the
// Service first) whatever happened; calling it again does nothing.
func publishNodePort(ctx context.Context, env *checks.Env, like checks.ProbePod) (*nodePort, func(), error) {
	core := env.Kube.Core.CoreV1()
	name := "bulkhead-exp-nodeport-" + tenantapi.Suffix()
	np := &nodePort{Token: newToken()}
	var once sync.Once
	withdraw := func() {
		once.Do(func() {
			ctx, cancel := tenantapi.WithTimeout(context.WithoutCancel(ctx))
			defer cancel()
			if np.Service != nil {
				if err := core.Services(like.Namespace).Delete(ctx, np.Service.Name, metav1.DeleteOptions{}); err != nil {
					env.Logger().Warn("delete the NodePort Service of EXP-004", "namespace", like.Namespace, "name", np.Service.Name, "error", err)
				}
				np.Withdrawn = time.Now()
			}
			if np.Backend != nil {
				if err := core.Pods(like.Namespace).Delete(ctx, np.Backend.Name, metav1.DeleteOptions{}); err != nil {
					env.Logger().Warn("delete the NodePort backend of EXP-004", "namespace", like.Namespace, "name", np.Backend.Name, "error", err)
				}
			}
		})
	}
	gctx, cancel := tenantapi.WithTimeout(ctx)
	src, gerr := core.Pods(like.Namespace).Get(gctx, like.Name, metav1.GetOptions{})
	cancel()
	if gerr != nil {
		return nil, withdraw, fmt.Errorf("read control probe pod %s/%s: %w", like.Namespace, like.Name, gerr)
	}
	cctx, cancel := tenantapi.WithTimeout(ctx)
	backend, err := core.Pods(like.Namespace).Create(cctx, BackendPod(env, src, name, np.Token), metav1.CreateOptions{FieldManager: fixtures.ManagedBy})
	cancel()
	if err != nil {
		return nil, withdraw, fmt.Errorf("create the NodePort backend %s/%s: %w", like.Namespace, name, err)
	}
	np.Backend = backend
	if _, err := env.Kube.WaitPodsReady(ctx, []kube.PodRef{{Namespace: like.Namespace, Name: name}}, BackendReadyTimeout); err != nil {
		return nil, withdraw, fmt.Errorf("the NodePort backend: %w", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: like.Namespace, Labels: np.Backend.Labels},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{labelBackend: name},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(wire.PortTCP)}},
		},
	}
	cctx, cancel = tenantapi.WithTimeout(ctx)
	created, err := core.Services(like.Namespace).Create(cctx, svc, metav1.CreateOptions{FieldManager: fixtures.ManagedBy})
	cancel()
	if err != nil {
		return nil, withdraw, fmt.Errorf("create NodePort Service %s/%s: %w", like.Namespace, name, err)
	}
	np.Service, np.Published = created, time.Now()
	if len(np.Service.Spec.Ports) == 0 || np.Service.Spec.Ports[0].NodePort == 0 {
		return nil, withdraw, fmt.Errorf("NodePort Service %s/%s got no node port", like.Namespace, name)
	}
	np.Port = int(np.Service.Spec.Ports[0].NodePort)
	return np, withdraw, nil
}
