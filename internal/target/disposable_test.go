package target

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/target/kindcluster"
)

var kindCA = []byte("-----BEGIN CERTIFICATE-----\nkind\n-----END CERTIFICATE-----\n")

func clientsWith(server string, ca []byte, objs ...*corev1.ConfigMap) *kube.Clients {
	cs := fake.NewClientset()
	for _, o := range objs {
		_, _ = cs.CoreV1().ConfigMaps(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
	}
	return &kube.Clients{Core: cs, Server: server, Config: &rest.Config{Host: server, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}}
}

func marker(kind string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: markerName, Namespace: markerNamespace, Labels: map[string]string{markerLabel: "true"}},
		Data: map[string]string{markerKindKey: kind}}
}

func engineWith(name string, ep kindcluster.Endpoint) kindEngine {
	return func(n string) (kindcluster.Endpoint, bool, error) {
		if n != name {
			return kindcluster.Endpoint{}, false, nil
		}
		return ep, true, nil
	}
}

// The marker alone never makes a cluster disposable: the kind cluster it
// names must be in the local Docker engine, at the kubeconfig's server,
// with the CA the kubeconfig trusts.
func TestProveDisposable(t *testing.T) {
	ctx := context.Background()
	ep := kindcluster.Endpoint{Server: "https://127.0.0.1:41234", InternalServer: "https://dev-control-plane:6443", CAData: kindCA}
	engine := engineWith("dev", ep)
	cases := []struct {
		name    string
		clients *kube.Clients
		engine  kindEngine
		want    bool
		reason  string
	}{
		{"no marker", clientsWith(ep.Server, kindCA), engine, false, "no bulkhead marker"},
		{"marker without the right label", clientsWith(ep.Server, kindCA, func() *corev1.ConfigMap { m := marker("dev"); m.Labels = nil; return m }()), engine, false, "no bulkhead marker"},
		{"forged: names a kind cluster the engine does not have", clientsWith(ep.Server, kindCA, marker("prod")), engine, false, "does not have"},
		{"forged: names a local kind cluster, kubeconfig points elsewhere", clientsWith("https://prod.example.com:6443", kindCA, marker("dev")), engine, false, "is not its endpoint"},
		{"same endpoint, different CA", clientsWith(ep.Server, []byte("other"), marker("dev")), engine, false, "different CA"},
		{"no CA: TLS proves nothing", clientsWith(ep.Server, nil, marker("dev")), engine, false, "does not verify"},
		{"no Docker", clientsWith(ep.Server, kindCA, marker("dev")), func(string) (kindcluster.Endpoint, bool, error) {
			return kindcluster.Endpoint{}, false, errors.New("docker: not found")
		}, false, "cannot be asked"},
		{"proven", clientsWith(ep.Server, kindCA, marker("dev")), engine, true, "in the local Docker engine"},
		{"proven, localhost spelling", clientsWith("https://localhost:41234/", kindCA, marker("dev")), engine, true, ""},
		{"proven on the kind network", clientsWith(ep.InternalServer, kindCA, marker("dev")), engine, true, ""},
	}
	for _, tc := range cases {
		p := proveDisposable(ctx, tc.clients, tc.engine)
		assert.Equal(t, tc.want, p.Disposable, "%s: %s", tc.name, p.Reason)
		assert.Contains(t, p.Reason, tc.reason, tc.name)
	}
	insecure := clientsWith(ep.Server, nil, marker("dev"))
	insecure.Config.Insecure = true
	assert.False(t, proveDisposable(ctx, insecure, engine).Disposable, "insecure-skip-tls-verify")
}

func TestNormalServer(t *testing.T) {
	assert.Equal(t, "https://127.0.0.1:443", normalServer("HTTPS://LocalHost"))
	assert.Equal(t, "https://10.0.0.1:6443/base", normalServer("https://10.0.0.1:6443/base/"))
	assert.Empty(t, normalServer("not a url"))
}
