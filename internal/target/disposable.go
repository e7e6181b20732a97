package target

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/target/kindcluster"
)

// Proof says whether a cluster reached through a kubeconfig is a kind
// cluster bulkhead created, and why. Only a disposable cluster lets a run
// schedule probes on control-plane nodes, install a metadata decoy, and
// skip the confirmation prompt.
//
// The marker ConfigMap alone proves nothing: anyone who may create
// ConfigMaps in kube-system can write one. A cluster counts as disposable
// only when the marker names a kind cluster that exists in the local
// Docker engine, the kubeconfig's server is that cluster's endpoint, and
// the kubeconfig trusts that cluster's CA (so TLS proves the server that
// answers holds the kind cluster's key).
type Proof struct {
	Disposable bool
	// KindCluster is the kind cluster the marker names ("" without one).
	KindCluster string
	// Reason says what was shown, or what is missing.
	Reason string
}

// kindEngine finds kind clusters in the local Docker engine.
type kindEngine func(name string) (kindcluster.Endpoint, bool, error)

// ProveDisposable decides whether the cluster of c is a kind cluster
// bulkhead created, asking the local Docker engine through kindcluster.Lookup.
func ProveDisposable(ctx context.Context, c *kube.Clients) Proof {
	return proveDisposable(ctx, c, kindcluster.Lookup)
}

func proveDisposable(ctx context.Context, c *kube.Clients, engine kindEngine) Proof {
	marker, ok := ReadMarker(ctx, c)
	if !ok {
		return Proof{Reason: "the cluster carries no bulkhead marker (" + markerNamespace + "/" + markerName + ")"}
	}
	p := Proof{KindCluster: marker.KindCluster}
	if marker.KindCluster == "" {
		p.Reason = "the bulkhead marker names no kind cluster"
		return p
	}
	ep, found, err := engine(marker.KindCluster)
	switch {
	case err != nil:
		p.Reason = fmt.Sprintf("the marker names kind cluster %q, but the local Docker engine cannot be asked about it: %v", marker.KindCluster, err)
		return p
	case !found:
		p.Reason = fmt.Sprintf("the marker names kind cluster %q, which the local Docker engine does not have", marker.KindCluster)
		return p
	}
	server := normalServer(c.Server)
	if server == "" || (server != normalServer(ep.Server) && server != normalServer(ep.InternalServer)) {
		p.Reason = fmt.Sprintf("the marker names kind cluster %q, but the kubeconfig's server %s is not its endpoint (%s)", marker.KindCluster, c.Server, ep.Server)
		return p
	}
	ca, err := clientCA(c)
	switch {
	case err != nil:
		p.Reason = fmt.Sprintf("kind cluster %q: %v", marker.KindCluster, err)
		return p
	case c.Config.Insecure || len(ca) == 0:
		p.Reason = fmt.Sprintf("kind cluster %q: the kubeconfig does not verify the server's certificate, so the server cannot be shown to be that cluster", marker.KindCluster)
		return p
	case !bytes.Equal(bytes.TrimSpace(ca), bytes.TrimSpace(ep.CAData)):
		p.Reason = fmt.Sprintf("kind cluster %q: the kubeconfig trusts a different CA than that cluster's", marker.KindCluster)
		return p
	}
	p.Disposable = true
	p.Reason = fmt.Sprintf("kind cluster %q in the local Docker engine, served at %s with its CA, carries bulkhead's marker", marker.KindCluster, c.Server)
	return p
}

// clientCA is the CA the clients verify the server against.
func clientCA(c *kube.Clients) ([]byte, error) {
	if len(c.Config.CAData) > 0 {
		return c.Config.CAData, nil
	}
	if c.Config.CAFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.Config.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read the kubeconfig's CA file: %w", err)
	}
	return b, nil
}

// normalServer makes API server URLs comparable: scheme and host in lower
// case, the default port spelled out, no trailing slash; localhost and
// 127.0.0.1 alike (kind publishes its API server on the loopback address).
func normalServer(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return ""
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	host = strings.ToLower(host)
	if host == "localhost" {
		host = "127.0.0.1"
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(host, port) + strings.TrimRight(u.Path, "/")
}
