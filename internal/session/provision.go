package session

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

func listBy(selector string) metav1.ListOptions { return metav1.ListOptions{LabelSelector: selector} }

// provision creates tenants and their probe pods and returns their topology.
func (s *Session) provision(ctx context.Context, tenants []fixtures.TenantSpec) (checks.Topology, error) {
	var top checks.Topology
	// The reference tenants' cluster-scoped admission policies, once per
	// run (a repeat, from AddTenants, finds them already there).
	policies, err := fixtures.RenderRunPolicies(s.opts.RunID)
	if err == nil {
		err = s.applier.Create(ctx, policies...)
	}
	if err != nil {
		return top, fmt.Errorf("provision run policies: %w", err)
	}
	for _, t := range tenants {
		t, err := s.withClusterCIDRs(ctx, t)
		if err != nil {
			return top, err
		}
		objs, err := fixtures.RenderTenant(s.opts.RunID, t)
		if err != nil {
			return top, err
		}
		if err := s.applier.Create(ctx, objs...); err != nil {
			return top, fmt.Errorf("provision tenant %s: %w", t.Name, err)
		}
		if err := s.disableDefaultAutomount(ctx, t.Namespace); err != nil {
			return top, fmt.Errorf("provision tenant %s: %w", t.Name, err)
		}
		tn := checks.Tenant{Name: t.Name, Namespaces: []string{t.Namespace}, Isolated: t.Isolated, Reference: true, Sentinel: t.Sentinel}
		if t.Isolated && !t.Sentinel {
			// The identities fixtures bind to the tenant-admin Role
			// (manifests/isolated-20-rbac.yaml).
			tn.Identities = []checks.Identity{
				{User: fixtures.TenantUser(s.opts.RunID, t.Name), Groups: []string{fixtures.TenantGroup(s.opts.RunID, t.Name), "system:authenticated"}},
				checks.ServiceAccountIdentity(t.Namespace, fixtures.ProbeServiceAccount),
			}
		}
		top.Tenants = append(top.Tenants, tn)
	}
	s.opts.Log.Info("tenants provisioned", "tenants", len(top.Tenants))
	var tenantNamespaces []string
	for _, t := range tenants {
		tenantNamespaces = append(tenantNamespaces, t.Namespace)
	}
	if err := s.waitQuotasComputed(ctx, tenantNamespaces); err != nil {
		return top, err
	}

	nodes, err := schedulableNodes(ctx, s, s.opts.Disposable)
	if err != nil {
		return top, err
	}
	probes, err := s.deployProbes(ctx, s.referenceProbes(tenants, nodes))
	if err != nil {
		return top, err
	}
	top.Probes = probes
	return top, nil
}

// referenceProbes are the probe pods of tenants bulkhead creates, spread
// over nodes.
func (s *Session) referenceProbes(tenants []fixtures.TenantSpec, nodes []string) []fixtures.ProbeSpec {
	var specs []fixtures.ProbeSpec
	for ti, t := range tenants {
		n := s.opts.ProbesPerNamespace
		if t.Probes > 0 {
			n = t.Probes
		}
		for i := range n {
			specs = append(specs, fixtures.ProbeSpec{
				RunID: s.opts.RunID, Tenant: t.Name, Namespace: t.Namespace,
				Name:  fmt.Sprintf("probe-%d", i),
				Image: s.opts.ProbeImage, ImagePullSecret: s.opts.ImagePullSecret,
				// Rotate the start node per tenant so pods spread evenly.
				Node:                 nodes[(ti+i)%len(nodes)],
				TolerateControlPlane: s.opts.Disposable,
			})
		}
	}
	return specs
}

// deployProbes creates probe pods and Services and waits until every pod is
// Ready and every Service has its endpoint.
func (s *Session) deployProbes(ctx context.Context, specs []fixtures.ProbeSpec) ([]checks.ProbePod, error) {
	for _, sp := range specs {
		objs, err := fixtures.RenderProbe(sp)
		if err != nil {
			return nil, err
		}
		if err := s.applier.Create(ctx, objs...); err != nil {
			return nil, fmt.Errorf("deploy probe: %w", err)
		}
	}
	pods, err := s.waitProbesReady(ctx, specs)
	if err != nil {
		return nil, err
	}
	if err := s.waitEndpoints(ctx, specs); err != nil {
		return nil, err
	}
	var out []checks.ProbePod
	for _, sp := range specs {
		pod := pods[sp.Namespace+"/"+sp.Name]
		p := checks.ProbePod{Tenant: sp.Tenant, Namespace: sp.Namespace, Name: sp.Name, Node: pod.Spec.NodeName, IP: pod.Status.PodIP}
		if !sp.NoService {
			svc, err := s.opts.Clients.Core.CoreV1().Services(sp.Namespace).Get(ctx, sp.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("read Service %s/%s: %w", sp.Namespace, sp.Name, err)
			}
			p.Service, p.ClusterIP, p.DNSName = svc.Name, svc.Spec.ClusterIP, svc.Name+"."+svc.Namespace+".svc"
		}
		out = append(out, p)
	}
	s.opts.Log.Info("probe pods ready", "pods", len(out))
	return out, nil
}

func (s *Session) waitProbesReady(ctx context.Context, specs []fixtures.ProbeSpec) (map[string]*corev1.Pod, error) {
	refs := make([]kube.PodRef, len(specs))
	for i, sp := range specs {
		refs[i] = kube.PodRef{Namespace: sp.Namespace, Name: sp.Name}
	}
	pods, err := s.opts.Clients.WaitPodsReady(ctx, refs, s.opts.ReadyTimeout)
	if st, ok := kube.IsStuck(err); ok {
		hint := "on kind the probe image must be side-loaded; on other clusters pass a pullable --probe-image"
		if st.Kind == kube.Unschedulable {
			hint = "check the probe node selector and tolerations"
		}
		return nil, fmt.Errorf("probe pod %s %s: %s (%s)", st.Pod, st.Kind, st.Reason, hint)
	}
	if err != nil {
		return nil, fmt.Errorf("probe %w", err)
	}
	out := map[string]*corev1.Pod{}
	for ref, p := range pods {
		out[ref.String()] = p
	}
	return out, nil
}

func (s *Session) waitEndpoints(ctx context.Context, specs []fixtures.ProbeSpec) error {
	var missing []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, s.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		missing = missing[:0]
		for _, sp := range specs {
			if sp.NoService {
				continue
			}
			sel := "kubernetes.io/service-name=" + sp.Name
			eps, err := s.opts.Clients.Core.DiscoveryV1().EndpointSlices(sp.Namespace).List(ctx, listBy(sel))
			if err != nil {
				return false, nil
			}
			ready := false
			for _, es := range eps.Items {
				for _, ep := range es.Endpoints {
					if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
						ready = true
					}
				}
			}
			if !ready {
				missing = append(missing, sp.Namespace+"/"+sp.Name)
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("Services without a ready endpoint after %s: %s", s.opts.ReadyTimeout, strings.Join(missing, ", "))
	}
	return nil
}

// schedulableNodes returns the Ready nodes probe pods may run on, sorted.
// Control-plane nodes count only on clusters bulkhead created.
func schedulableNodes(ctx context.Context, s *Session, allowControlPlane bool) ([]string, error) {
	list, err := s.opts.Clients.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []string
	for _, n := range list.Items {
		if nodeUsable(n, allowControlPlane) {
			out = append(out, n.Name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no Ready, schedulable node for probe pods among %d nodes", len(list.Items))
	}
	sort.Strings(out)
	return out, nil
}

func nodeUsable(n corev1.Node, allowControlPlane bool) bool {
	if n.Spec.Unschedulable {
		return false
	}
	ready := slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	})
	if !ready {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if allowControlPlane && t.Key == "node-role.kubernetes.io/control-plane" {
			continue
		}
		return false
	}
	return true
}

// AddTenants provisions more reference tenants, with probe pods, into a
// started session (benchmarks use it to grow the matrix).
func (s *Session) AddTenants(ctx context.Context, tenants ...fixtures.TenantSpec) error {
	more, err := s.provision(ctx, tenants)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.env.Topology.Tenants = append(s.env.Topology.Tenants, more.Tenants...)
	s.env.Topology.Probes = append(s.env.Topology.Probes, more.Probes...)
	return nil
}

// CreateObjects creates rendered objects for a check or a negative control;
// they carry the run's labels, so Close removes them too.
func (s *Session) CreateObjects(ctx context.Context, objs ...*unstructured.Unstructured) error {
	return s.applier.Create(ctx, objs...)
}
