package apisweep

import (
	"context"
	"fmt"
	"sort"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// discovered is what the API server says it serves.
type discovered struct {
	lists []*metav1.APIResourceList
	// partial is set when some API groups could not be read.
	partial error
}

// discover reads the API server's preferred resources. Partial discovery
// is kept (the groups that failed are named in the evidence); none at all
// is an error.
func discover(env *checks.Env) (discovered, error) {
	disc := memory.NewMemCacheClient(env.Kube.Core.Discovery())
	lists, err := discovery.ServerPreferredResources(disc)
	if err != nil && len(lists) == 0 {
		return discovered{}, fmt.Errorf("discover the API server's resources: %w", err)
	}
	return discovered{lists: lists, partial: err}, nil
}

// NamespacedResources are the namespaced resources of discovery lists
// (preferred versions), without subresources, one per group and resource,
// sorted.
func NamespacedResources(lists []*metav1.APIResourceList) []Resource {
	return resources(lists, true)
}

// ClusterScopedResources are the cluster-scoped resources of discovery
// lists (preferred versions), without subresources, sorted.
func ClusterScopedResources(lists []*metav1.APIResourceList) []Resource {
	return resources(lists, false)
}

func resources(lists []*metav1.APIResourceList, namespaced bool) []Resource {
	seen := map[string]bool{}
	var out []Resource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if r.Namespaced != namespaced || strings.Contains(r.Name, "/") {
				continue
			}
			res := Resource{Group: gv.Group, Version: gv.Version, Resource: r.Name, Kind: r.Kind, Namespaced: namespaced}
			if seen[res.GroupResource()] {
				continue
			}
			seen[res.GroupResource()] = true
			out = append(out, res)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Resource < out[j].Resource
	})
	return out
}

// ResourceNames lists resources as RBAC names them, comma-separated.
func ResourceNames(rs []Resource) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.GroupResource()
	}
	return strings.Join(names, ", ")
}

func serves(lists []*metav1.APIResourceList, groupVersion, resource string) bool {
	for _, l := range lists {
		if l.GroupVersion != groupVersion {
			continue
		}
		for _, r := range l.APIResources {
			if r.Name == resource {
				return true
			}
		}
	}
	return false
}

// whoAmI is bulkhead's own user name, for evidence.
func whoAmI(ctx context.Context, env *checks.Env) string {
	ssr, err := env.Kube.Core.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || ssr.Status.UserInfo.Username == "" {
		return "bulkhead"
	}
	return ssr.Status.UserInfo.Username
}

// someNode is a node name for nodes/proxy: a probe pod's, else the first
// node listed.
func someNode(ctx context.Context, env *checks.Env) (string, error) {
	for _, p := range env.Topology.Probes {
		if p.Node != "" {
			return p.Node, nil
		}
	}
	nodes, err := env.Kube.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return "", fmt.Errorf("list nodes (for nodes/proxy): %w", err)
	}
	if len(nodes.Items) == 0 {
		return "", nil
	}
	return nodes.Items[0].Name, nil
}
