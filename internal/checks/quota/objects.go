package quota

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
)

// Resources the checks create, as the dynamic client addresses them.
var (
	gvrPods        = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	gvrServices    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	gvrSecrets     = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrConfigMaps  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrPVCs        = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	gvrDeployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrQuotas      = schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}
	gvrLimitRanges = schema.GroupVersionResource{Version: "v1", Resource: "limitranges"}
)

// apiPath is the collection path of gvr in ns, for evidence.
func apiPath(gvr schema.GroupVersionResource, ns string) string {
	prefix := "/api/" + gvr.Version
	if gvr.Group != "" {
		prefix = "/apis/" + gvr.Group + "/" + gvr.Version
	}
	return prefix + "/namespaces/" + ns + "/" + gvr.Resource
}

// Labels of what the quota checks create.
const (
	roleQuotaCheck = "quota-check"
	// labelDeployment selects the pods of a check's Deployment.
	labelDeployment = "bulkhead.dev/quota-deployment"
)

// builder makes the objects of one namespace's checks.
type builder struct {
	runID, tenant, ns, image string
}

func (b builder) labels(extra ...string) map[string]string {
	l := fixtures.With(fixtures.CommonLabels(b.runID), fixtures.LabelTenant, b.tenant, fixtures.LabelRole, roleQuotaCheck)
	return fixtures.With(l, extra...)
}

func (b builder) meta(name string, extra ...string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: b.ns, Labels: b.labels(extra...)}
}

// smallResources is what a filler container asks for: enough to be counted,
// far below any per-container bound.
func smallResources() *corev1.ResourceRequirements {
	return &corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("1Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("1Mi")},
	}
}

func (b builder) pod(name string, res ...*corev1.ResourceRequirements) *unstructured.Unstructured {
	return toUnstructured(&corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: b.meta(name),
		Spec:       inertPodSpec(b.image, corev1.RestartPolicyNever, res),
	})
}

// smallPod is one pod with one small container: it counts 1 against pods.
func (b builder) smallPod(name string) *unstructured.Unstructured {
	return b.pod(name, smallResources())
}

func (b builder) deployment(name string, replicas int32) *unstructured.Unstructured {
	sel := map[string]string{labelDeployment: name}
	return toUnstructured(&appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: b.meta(name),
		Spec: appsv1.DeploymentSpec{
			Replicas:             ptrTo(replicas),
			RevisionHistoryLimit: ptrTo[int32](0),
			Selector:             &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: b.labels(labelDeployment, name)},
				Spec:       inertPodSpec(b.image, corev1.RestartPolicyAlways, []*corev1.ResourceRequirements{smallResources()}),
			},
		},
	})
}

// service returns a Service of type typ. ClusterIP Services are headless
// (no cluster IP is allocated for a filler); LoadBalancer Services allocate
// no node ports, so only services.loadbalancers is asked for.
func (b builder) service(name string, typ corev1.ServiceType) *unstructured.Unstructured {
	spec := corev1.ServiceSpec{
		Type:     typ,
		Selector: map[string]string{labelDeployment: "none"},
		Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
	}
	switch typ {
	case corev1.ServiceTypeClusterIP:
		spec.ClusterIP = corev1.ClusterIPNone
	case corev1.ServiceTypeLoadBalancer:
		spec.AllocateLoadBalancerNodePorts = ptrTo(false)
	}
	return toUnstructured(&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: b.meta(name),
		Spec:       spec,
	})
}

func (b builder) secret(name string) *unstructured.Unstructured {
	return toUnstructured(&corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: b.meta(name),
		Type:       corev1.SecretTypeOpaque,
	})
}

func (b builder) configMap(name string) *unstructured.Unstructured {
	return toUnstructured(&corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: b.meta(name),
	})
}

// NeverProvisionedClass is the StorageClass of the claims the checks
// create for real: no such class exists, so the claims stay Pending and no
// volume is ever provisioned (on a cloud, a real disk), yet they count
// against persistentvolumeclaims and requests.storage like any claim.
const NeverProvisionedClass = "bulkhead-never-provisioned"

// pvc asks for size; class "" means the cluster's default StorageClass.
func (b builder) pvc(name string, size resource.Quantity, class string) *unstructured.Unstructured {
	spec := corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
	}
	if class != "" {
		spec.StorageClassName = ptrTo(class)
	}
	return toUnstructured(&corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: b.meta(name),
		Spec:       spec,
	})
}

func (b builder) resourceQuota(name string) *unstructured.Unstructured {
	return toUnstructured(&corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: b.meta(name),
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1000")}},
	})
}

func (b builder) limitRange(name string) *unstructured.Unstructured {
	return toUnstructured(&corev1.LimitRange{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"},
		ObjectMeta: b.meta(name),
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer,
			Max:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64")},
		}}},
	})
}

func toUnstructured(obj runtime.Object) *unstructured.Unstructured {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		panic(fmt.Sprintf("convert %T: %v", obj, err)) // typed API objects always convert
	}
	return &unstructured.Unstructured{Object: m}
}

// split divides total into per-container amounts of at most max each (no
// max: one container). Amounts are in the resource's base unit: millicores
// for cpu, bytes otherwise.
func split(total, max int64) []int64 {
	if total <= 0 {
		return nil
	}
	if max <= 0 || total <= max {
		return []int64{total}
	}
	var out []int64
	for left := total; left > 0; left -= max {
		out = append(out, min(left, max))
	}
	return out
}

// amount returns q in the base unit split uses, and back.
func amount(r corev1.ResourceName, q resource.Quantity) int64 {
	if r == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

func quantity(r corev1.ResourceName, v int64) resource.Quantity {
	if r == corev1.ResourceCPU {
		return *resource.NewMilliQuantity(v, resource.DecimalSI)
	}
	return *resource.NewQuantity(v, resource.BinarySI)
}

// unit is the smallest step over a bound: 1 millicore, 1 MiB of memory or
// storage, 1 object.
func unit(r corev1.ResourceName) int64 {
	switch r {
	case corev1.ResourceCPU:
		return 1
	case corev1.ResourceMemory, corev1.ResourceStorage, corev1.ResourceEphemeralStorage:
		return 1 << 20
	}
	return 1
}

// computeContainers returns containers asking, in total, for v of resource
// r on side (requests or limits), each within max. The other side and the
// other resource get the minimum, so only the dimension under test moves:
// requests are set with limit = request (a limit may not be lower), limits
// with a 1m/1Mi request.
func computeContainers(r corev1.ResourceName, limitsSide bool, v, max int64) []*corev1.ResourceRequirements {
	var out []*corev1.ResourceRequirements
	for _, a := range split(v, max) {
		res := smallResources()
		q := quantity(r, a)
		res.Limits[r] = q
		if !limitsSide {
			res.Requests[r] = q
		} else if small := res.Requests[r]; amount(r, small) > a {
			res.Requests[r] = q
		}
		out = append(out, res)
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

// unstructuredObj shortens builder signatures.
type unstructuredObj = unstructured.Unstructured
