package session

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func describeCluster(ctx context.Context, c *kube.Clients) (reports.Cluster, error) {
	var info reports.Cluster
	v, err := c.Core.Discovery().ServerVersion()
	if err != nil {
		return info, fmt.Errorf("read Kubernetes version: %w", err)
	}
	info.KubernetesVersion = v.GitVersion
	nodes, err := c.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return info, fmt.Errorf("list nodes: %w", err)
	}
	info.Nodes = len(nodes.Items)
	ds, err := c.Core.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		// Not fatal: a least-privilege identity may not list DaemonSets.
		info.CNI = "unknown (cannot list DaemonSets: " + err.Error() + ")"
		return info, nil
	}
	info.CNI, info.CNIVersion = DetectCNI(ds.Items)
	return info, nil
}

// knownCNIs maps a DaemonSet name to the CNI it belongs to. kindnet is
// listed so reports can say plainly that it does not enforce NetworkPolicy.
var knownCNIs = []struct{ daemonSet, cni string }{
	{"cilium", "cilium"},
	{"calico-node", "calico"},
	{"canal", "canal"},
	{"antrea-agent", "antrea"},
	{"kube-router", "kube-router"},
	{"weave-net", "weave"},
	{"kube-ovn-cni", "kube-ovn"},
	{"ovnkube-node", "ovn-kubernetes"},
	{"aws-node", "amazon-vpc-cni"},
	{"azure-cns", "azure-cni"},
	{"kube-flannel-ds", "flannel"},
	{"kindnet", "kindnet"},
}

// DetectCNI names the CNI from the cluster's DaemonSets and takes its version
// from the image tag of its first container.
func DetectCNI(dss []appsv1.DaemonSet) (name, version string) {
	for _, k := range knownCNIs {
		for _, d := range dss {
			if d.Name != k.daemonSet || len(d.Spec.Template.Spec.Containers) == 0 {
				continue
			}
			return k.cni, imageTag(d.Spec.Template.Spec.Containers[0].Image)
		}
	}
	return "unknown", ""
}

func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[i+1:]
	}
	return ""
}
