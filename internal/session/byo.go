package session

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/config"
)

// provisionBYO sets up a run against tenants that already exist: it
// resolves their namespaces, creates bulkhead's own namespaces (the
// unprotected control, and the sentinel: an isolated namespace with
// bulkhead's reference policy, which tells "the CNI ignores NetworkPolicy"
// apart from "a tenant's policy is open"), and places probe pods (only pods,
// unless the config asks for Services) in every tenant namespace.
func (s *Session) provisionBYO(ctx context.Context, f *config.File) (checks.Topology, error) {
	resolved, err := s.resolveTenants(ctx, f)
	if err != nil {
		return checks.Topology{}, err
	}
	// Two control probes, as for reference tenants: the control pods must
	// be seen answering each other for "blocked" to mean anything.
	top, err := s.provision(ctx, fixtures.OwnTenants(s.opts.RunID))
	if err != nil {
		return top, err
	}

	nodes, err := schedulableNodes(ctx, s, s.opts.Disposable)
	if err != nil {
		return top, err
	}
	tenants := byoTenants(f, resolved)
	top.Tenants = append(top.Tenants, tenants...)
	probes, err := s.deployProbes(ctx, s.byoProbes(f, tenants, nodes, len(top.Probes)))
	if err != nil {
		return top, err
	}
	top.Probes = append(top.Probes, probes...)
	return top, nil
}

// byoTenants are the tenants of a config, with their resolved namespaces.
func byoTenants(f *config.File, resolved map[string][]string) []checks.Tenant {
	var out []checks.Tenant
	for _, t := range f.Tenants {
		tn := checks.Tenant{Name: t.Name, Namespaces: resolved[t.Name], Isolated: true, AllowedTo: t.AllowedTo}
		for _, u := range t.Identities.Users {
			tn.Identities = append(tn.Identities, checks.Identity{User: u.Name, Groups: append(append([]string(nil), u.Groups...), "system:authenticated")})
		}
		for _, sa := range t.Identities.ServiceAccounts {
			ns, name, _ := strings.Cut(sa, "/")
			tn.Identities = append(tn.Identities, checks.ServiceAccountIdentity(ns, name))
		}
		out = append(out, tn)
	}
	return out
}

// byoProbes are the probe pods in the namespaces of a config's tenants:
// only pods, unless the config asks for Services. n is where to start
// rotating over nodes.
func (s *Session) byoProbes(f *config.File, tenants []checks.Tenant, nodes []string, n int) []fixtures.ProbeSpec {
	var specs []fixtures.ProbeSpec
	for _, t := range tenants {
		for _, ns := range t.Namespaces {
			for i := range f.Probes.PerNamespace {
				specs = append(specs, fixtures.ProbeSpec{
					RunID: s.opts.RunID, Tenant: t.Name, Namespace: ns,
					// The run ID in the name keeps concurrent runs apart in
					// namespaces they share.
					Name:            fmt.Sprintf("bulkhead-probe-%s-%d", s.opts.RunID, i),
					Image:           s.opts.ProbeImage,
					ImagePullSecret: f.Probes.ImagePullSecret,
					ServiceAccount:  "default",
					Node:            nodes[n%len(nodes)],
					// Pinned over the nodes the session may use, as the
					// reference tenants are.
					TolerateControlPlane: s.opts.Disposable,
					NoService:            !f.Probes.Services,
					NodeSelector:         f.Probes.NodeSelector,
					Tolerations:          f.Probes.Tolerations,
				})
				n++
			}
		}
	}
	return specs
}

// resolveTenants maps each tenant to its existing namespaces; a listed
// namespace that does not exist, or a selector that matches nothing, is an
// error: a typo must not turn into a passing run over nothing.
func (s *Session) resolveTenants(ctx context.Context, f *config.File) (map[string][]string, error) {
	out := map[string][]string{}
	owner := map[string]string{}
	for _, t := range f.Tenants {
		var names []string
		if t.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(t.NamespaceSelector)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: namespaceSelector: %w", t.Name, err)
			}
			list, err := s.opts.Clients.Core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
			if err != nil {
				return nil, fmt.Errorf("tenant %s: list namespaces matching %s: %w", t.Name, sel, err)
			}
			for _, ns := range list.Items {
				names = append(names, ns.Name)
			}
			if len(names) == 0 {
				return nil, fmt.Errorf("tenant %s: no namespace matches %s", t.Name, sel)
			}
		} else {
			for _, n := range t.Namespaces {
				_, err := s.opts.Clients.Core.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return nil, fmt.Errorf("tenant %s: namespace %s does not exist", t.Name, n)
				}
				if err != nil {
					return nil, fmt.Errorf("tenant %s: read namespace %s: %w", t.Name, n, err)
				}
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if other, ok := owner[n]; ok {
				return nil, fmt.Errorf("namespace %s belongs to both tenant %s and tenant %s", n, other, t.Name)
			}
			owner[n] = t.Name
		}
		out[t.Name] = names
	}
	return out, nil
}
