package podsecurity

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Kinds of node port a tenant pod must not reach.
const (
	PortKubelet         = "kubelet"          // 10250, authenticated kubelet API
	PortKubeletReadOnly = "kubelet-readonly" // 10255, unauthenticated; off by default
	PortAPIServer       = "apiserver"        // the API server on its node (kubernetes Service endpoints)
	PortNodePort        = "nodeport"         // a NodePort Service of another namespace
)

// Kubelet ports.
const (
	KubeletPort         = 10250
	KubeletReadOnlyPort = 10255
)

// NodeInfo is what the check needs to know about a node.
type NodeInfo struct {
	Name         string
	Addresses    []string // InternalIPs
	ControlPlane bool
}

// NodeTarget is one node port to probe.
type NodeTarget struct {
	Node    string
	Kind    string
	Address string
	Port    int
	// MustAnswer: the unprotected control namespace must reach it (a
	// listening port). Ports that may well be closed (the read-only kubelet
	// port) need only answer, with a connection or a refusal.
	MustAnswer bool
}

// HostPort is the target as dialled.
func (t NodeTarget) HostPort() string { return net.JoinHostPort(t.Address, strconv.Itoa(t.Port)) }

// NodeTargets lists what tenant pods probe: both kubelet ports on every node
// address, the API server where the kubernetes Service's endpoints say it
// listens (and on control-plane nodes at the same port), and the NodePort
// on every node address. nodePort 0 leaves NodePorts out.
func NodeTargets(nodes []NodeInfo, apiEndpoints []string, nodePort int) []NodeTarget {
	var out []NodeTarget
	seen := map[string]bool{}
	add := func(t NodeTarget) {
		k := t.HostPort()
		if seen[k] {
			return
		}
		seen[k] = true
		out = append(out, t)
	}
	nodeOf := map[string]string{}
	apiPorts := map[int]bool{}
	for _, n := range nodes {
		for _, ip := range n.Addresses {
			nodeOf[ip] = n.Name
		}
	}
	for _, ep := range apiEndpoints {
		host, p, err := net.SplitHostPort(ep)
		if err != nil {
			continue
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		apiPorts[port] = true
		node := nodeOf[host]
		if node == "" {
			node = "(not a node address)"
		}
		add(NodeTarget{Node: node, Kind: PortAPIServer, Address: host, Port: port, MustAnswer: true})
	}
	ports := slices.Sorted(maps.Keys(apiPorts))
	for _, n := range nodes {
		for _, ip := range n.Addresses {
			add(NodeTarget{Node: n.Name, Kind: PortKubelet, Address: ip, Port: KubeletPort, MustAnswer: true})
			add(NodeTarget{Node: n.Name, Kind: PortKubeletReadOnly, Address: ip, Port: KubeletReadOnlyPort})
			if n.ControlPlane {
				for _, p := range ports {
					add(NodeTarget{Node: n.Name, Kind: PortAPIServer, Address: ip, Port: p, MustAnswer: true})
				}
			}
			if nodePort > 0 {
				add(NodeTarget{Node: n.Name, Kind: PortNodePort, Address: ip, Port: nodePort, MustAnswer: true})
			}
		}
	}
	return out
}

// JudgeNode decides one probe of a node port. From a tenant pod the port
// must not connect (a drop, a refusal or an ICMP error all mean the tenant
// cannot use it); from the unprotected control namespace a listening port
// must connect, and one that may be closed must at least answer.
func JudgeNode(t NodeTarget, fromTenant bool, r wire.ConnectResult) (expected, observed string, ok bool) {
	observed = string(r.Outcome)
	if fromTenant {
		switch r.Outcome {
		case wire.Timeout, wire.Unreachable, wire.Refused:
			return "blocked", observed, true
		}
		return "blocked", observed, false
	}
	if t.MustAnswer {
		return "reachable", observed, r.Outcome == wire.Reachable
	}
	return "reachable or refused (the node answers)", observed, r.Outcome == wire.Reachable || r.Outcome == wire.Refused
}

// runNodes is EXP-004: tenant pods cannot open connections to the nodes'
// kubelet ports, the API server's node port, or NodePort Services of other
// namespaces; the same targets from the unprotected control namespace are
// reachable (positive control: the path exists, the tenant's policy blocks it).
func runNodes(ctx context.Context, env *checks.Env) checks.Outcome {
	top := env.Topology
	var tenantPods, controlPods []checks.ProbePod
	for _, p := range top.Probes {
		tn, ok := top.Tenant(p.Tenant)
		switch {
		case !ok:
		case tn.Isolated:
			tenantPods = append(tenantPods, p)
		default:
			controlPods = append(controlPods, p)
		}
	}
	if len(tenantPods) == 0 {
		return checks.Outcome{Skip: "no probe pod in an isolated tenant in this run"}
	}
	nodes, err := listNodes(ctx, env)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	api, err := apiServerEndpoints(ctx, env)
	if err != nil {
		return checks.Outcome{Err: err}
	}
	var notes []string
	nodePort := 0
	if len(controlPods) > 0 {
		svc, err := createNodePort(ctx, env, controlPods[0])
		if err != nil {
			return checks.Outcome{Err: err}
		}
		defer deleteNodePort(context.WithoutCancel(ctx), env, svc)
		nodePort = int(svc.Spec.Ports[0].NodePort)
		notes = append(notes, fmt.Sprintf("NodePort Service %s/%s (port %d) created by the test process for %s/%s, deleted afterwards",
			svc.Namespace, svc.Name, nodePort, controlPods[0].Namespace, controlPods[0].Name))
	} else {
		notes = append(notes, "no unprotected control namespace with a probe pod: NodePorts not probed, and no positive control")
	}
	targets := NodeTargets(nodes, api, nodePort)
	sources := append(slices.Clone(tenantPods), controlPods...)
	isTenant := func(p checks.ProbePod) bool { return slices.Contains(tenantPods, p) }

	start := time.Now()
	deadline := start.Add(env.Timing.Enforcement)
	var obs []reports.Observation
	rounds := 0
	for {
		rounds++
		results, err := probeNodes(ctx, env, sources, targets)
		if err != nil {
			return checks.Outcome{Err: err}
		}
		obs = obs[:0]
		all := true
		for si, src := range sources {
			for ti, t := range targets {
				obs = append(obs, nodeObservation(src, isTenant(src), t, results[si][ti], rounds))
				all = all && obs[len(obs)-1].OK
			}
		}
		if all || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return checks.Outcome{Err: ctx.Err()}
		case <-time.After(time.Second):
		}
	}
	notes = append(notes, fmt.Sprintf("%d node targets from %d pods, %d round(s), %s", len(targets), len(sources), rounds, time.Since(start).Round(10*time.Millisecond)))
	notes = append(notes, closedPortNotes(obs)...)
	return checks.Outcome{Observations: obs, Notes: notes}
}

func nodeObservation(src checks.ProbePod, fromTenant bool, t NodeTarget, r wire.ConnectResult, attempts int) reports.Observation {
	expected, observed, ok := JudgeNode(t, fromTenant, r)
	role := reports.RoleTest
	if !fromTenant {
		role = reports.RoleControl
	}
	detail := r.Detail
	if r.Peer != nil {
		detail += "; answered by " + r.Peer.Namespace + "/" + r.Peer.Pod
	}
	detail = strings.TrimPrefix(detail+"; node "+t.Node, "; ")
	return reports.Observation{
		Role:      role,
		Actor:     reports.Actor{Tenant: src.Tenant, Namespace: src.Namespace, Pod: src.Name, Node: src.Node},
		Target:    reports.Target{Kind: "node", Address: t.HostPort()},
		Method:    "tcp/" + t.Kind + " (node " + t.Node + ")",
		Expected:  expected,
		Observed:  observed,
		OK:        ok,
		Detail:    detail,
		LatencyMS: r.LatencyMS,
		Attempts:  attempts,
		At:        r.Started,
	}
}

// closedPortNotes names node ports nothing listens on (refused from the
// control namespace). Where tenant pods timed out there, the drop is their
// policy (the node itself refuses); where they were refused too, the port
// is not open to them, but their policy is not what that proves.
func closedPortNotes(obs []reports.Observation) []string {
	closed := map[string]bool{}
	for _, o := range obs {
		if o.Role == reports.RoleControl && o.Observed == string(wire.Refused) {
			closed[o.Target.Address+" "+o.Method] = true
		}
	}
	if len(closed) == 0 {
		return nil
	}
	dropped, refused := map[string]bool{}, map[string]bool{}
	for _, o := range obs {
		k := o.Target.Address + " " + o.Method
		if o.Role != reports.RoleTest || !closed[k] {
			continue
		}
		if o.Observed == string(wire.Refused) {
			refused[k] = true
		} else {
			dropped[k] = true
		}
	}
	var notes []string
	if len(dropped) > 0 {
		notes = append(notes, "closed on the node (refused from the control namespace) and dropped for tenant pods, so their policy blocks it: "+sortedKeys(dropped))
	}
	if len(refused) > 0 {
		notes = append(notes, "closed on the node and refused to tenant pods too: not open to them, but this does not show their policy blocks it: "+sortedKeys(refused))
	}
	return notes
}

func sortedKeys(m map[string]bool) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}

func listNodes(ctx context.Context, env *checks.Env) ([]NodeInfo, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	list, err := env.Kube.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []NodeInfo
	for _, n := range list.Items {
		ni := NodeInfo{Name: n.Name}
		_, ni.ControlPlane = n.Labels["node-role.kubernetes.io/control-plane"]
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ni.Addresses = append(ni.Addresses, a.Address)
			}
		}
		out = append(out, ni)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) == 0 {
		return nil, fmt.Errorf("the cluster lists no nodes")
	}
	return out, nil
}

// apiServerEndpoints are the addresses behind the kubernetes Service, as host:port.
func apiServerEndpoints(ctx context.Context, env *checks.Env) ([]string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	list, err := env.Kube.Core.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx,
		metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubernetes"})
	if err != nil {
		return nil, fmt.Errorf("list endpoints of the kubernetes Service: %w", err)
	}
	var out []string
	for _, es := range list.Items {
		for _, p := range es.Ports {
			if p.Port == nil {
				continue
			}
			for _, ep := range es.Endpoints {
				for _, a := range ep.Addresses {
					out = append(out, net.JoinHostPort(a, strconv.Itoa(int(*p.Port))))
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func createNodePort(ctx context.Context, env *checks.Env, target checks.ProbePod) (*corev1.Service, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: "bulkhead-exp-nodeport-" + randomSuffix(), Namespace: target.Namespace,
			Labels: fixtures.With(fixtures.CommonLabels(env.RunID), fixtures.LabelTenant, target.Tenant, fixtures.LabelRole, "exposure-nodeport"),
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{fixtures.LabelProbe: target.Name},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(wire.PortTCP)}},
		},
	}
	out, err := env.Kube.Core.CoreV1().Services(target.Namespace).Create(ctx, svc, metav1.CreateOptions{FieldManager: fixtures.ManagedBy})
	if err != nil {
		return nil, fmt.Errorf("create NodePort Service in %s for the node reachability check: %w", target.Namespace, err)
	}
	if len(out.Spec.Ports) == 0 || out.Spec.Ports[0].NodePort == 0 {
		deleteNodePort(context.WithoutCancel(ctx), env, out)
		return nil, fmt.Errorf("NodePort Service %s/%s got no node port", out.Namespace, out.Name)
	}
	return out, nil
}

func deleteNodePort(ctx context.Context, env *checks.Env, svc *corev1.Service) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := env.Kube.Core.CoreV1().Services(svc.Namespace).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
		env.Logger().Warn("delete NodePort Service of the node reachability check", "namespace", svc.Namespace, "name", svc.Name, "error", err)
	}
}

// probeNodes probes every target from every source: one exec per source,
// all sources in parallel. results[s][t] is source s's result for target t.
func probeNodes(ctx context.Context, env *checks.Env, sources []checks.ProbePod, targets []NodeTarget) ([][]wire.ConnectResult, error) {
	var ts []probing.Target
	var idx []int
	for i, t := range targets {
		ts = append(ts, probing.Target{Target: wire.ConnectTarget{Protocol: wire.TCP, Host: t.Address, Port: t.Port}})
		idx = append(idx, i)
	}
	out := make([][]wire.ConnectResult, len(sources))
	errs := make([]error, len(sources))
	var wg sync.WaitGroup
	for si, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[si], errs[si] = probing.ConnectOnce(ctx, env.Prober(), src.Pod(), ts, idx, env.Timing.ConnectTimeout)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
