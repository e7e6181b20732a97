package session

import (
	"context"
	"fmt"
	"net/netip"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
)

// withClusterCIDRs fills ClusterCIDRs of a tenant whose profile opens
// egress beyond the cluster (fixtures.ProfileInternetEgress), so the policy
// does not open the cluster's own ranges on CNIs where ipBlock matches pod
// IPs. Only profiled tenants pay for the lookup (reference runs: one).
func (s *Session) withClusterCIDRs(ctx context.Context, t fixtures.TenantSpec) (fixtures.TenantSpec, error) {
	if t.Profile == "" || t.ClusterCIDRs != nil {
		return t, nil
	}
	cidrs, err := discoverClusterCIDRs(ctx, s)
	if err != nil {
		return t, fmt.Errorf("tenant %s (profile %s): %w", t.Name, t.Profile, err)
	}
	t.ClusterCIDRs = cidrs
	return t, nil
}

// discoverClusterCIDRs returns the nodes' pod CIDRs and addresses and the
// Service CIDRs (networking.k8s.io/v1 ServiceCIDR, Kubernetes >= 1.33).
// Where the Service CIDR cannot be read, it is logged as a limitation: the
// ClusterIPs then rest on the CNI not matching ipBlock against them.
func discoverClusterCIDRs(ctx context.Context, s *Session) ([]string, error) {
	nodes, err := s.opts.Clients.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes for the cluster's pod CIDRs: %w", err)
	}
	out := []string{}
	for _, n := range nodes.Items {
		out = append(out, n.Spec.PodCIDRs...)
		if len(n.Spec.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
			out = append(out, n.Spec.PodCIDR)
		}
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil && (a.Type == "InternalIP" || a.Type == "ExternalIP") {
				out = append(out, netip.PrefixFrom(ip, ip.BitLen()).String())
			}
		}
	}
	cidrs, err := s.opts.Clients.Core.NetworkingV1().ServiceCIDRs().List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		for _, c := range cidrs.Items {
			out = append(out, c.Spec.CIDRs...)
		}
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err), apierrors.IsMethodNotSupported(err):
		s.opts.Log.Warn("cannot read the Service CIDR; the internet-egress profile excepts pod CIDRs and node addresses only", "err", err)
	default:
		return nil, fmt.Errorf("list ServiceCIDRs: %w", err)
	}
	s.opts.Log.Info("cluster ranges excepted from tenant internet egress", "cidrs", out)
	return out, nil
}
