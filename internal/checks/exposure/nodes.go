package exposure

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Kinds of node port a tenant pod must not reach.
const (
	PortKubelet         = "kubelet"          // 10250, authenticated kubelet API
	PortKubeletReadOnly = "kubelet-readonly" // 10255, unauthenticated; off by default
	PortAPIServer       = "apiserver"        // the API server on its node (kubernetes Service endpoints)
	PortNodePort        = "nodeport"         // a NodePort Service of bulkhead's control namespace
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

// Method names the target's kind for evidence: "tcp/kubelet (node n1)".
func (t NodeTarget) Method() string { return "tcp/" + t.Kind + " (node " + t.Node + ")" }

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

// Match is how one probe result compares with its expectation.
type Match int

const (
	// Matched: as expected.
	Matched Match = iota
	// Mismatched: the opposite (from a tenant pod: a leak).
	Mismatched
	// Inconclusive: the probe proves nothing either way.
	Inconclusive
)

// JudgeNode decides one probe of a node port. From a tenant pod the port
// must not connect (a drop, a refusal or an ICMP error all mean the tenant
// cannot use it); from the unprotected control namespace a listening port
// must connect, and one that may be closed must at least answer. backend,
// for the NodePort, is the pod that must answer it (bulkhead's token-only
// probe): a control connection answered by anyone else is not the path.
func JudgeNode(t NodeTarget, fromTenant bool, r wire.ConnectResult, backend string) (expected string, m Match) {
	if fromTenant {
		if r.Starved() { // noticed long past its deadline: proves nothing
			return "blocked", Inconclusive
		}
		switch r.Outcome {
		case wire.Timeout, wire.Unreachable, wire.Refused:
			return "blocked", Matched
		case wire.Reachable:
			return "blocked", Mismatched
		}
		return "blocked", Inconclusive
	}
	switch {
	case t.Kind == PortNodePort:
		expected = "reachable, answered by " + backend
		if r.Outcome == wire.Reachable && r.Peer != nil && r.Peer.Pod == backend {
			return expected, Matched
		}
	case t.MustAnswer:
		expected = "reachable"
		if r.Outcome == wire.Reachable {
			return expected, Matched
		}
	default:
		expected = "reachable or refused (the node answers)"
		if r.Outcome == wire.Reachable || r.Outcome == wire.Refused {
			return expected, Matched
		}
	}
	return expected, Mismatched
}

// closedPortNotes names node ports nothing listens on (refused from the
// control namespace). Where tenant pods timed out there, the drop is their
// policy (the node itself refuses); where they were refused too, the port
// is not open to them, but their policy is not what that proves.
func closedPortNotes(obs []reports.Observation) []string {
	closed := map[string]bool{}
	for _, o := range obs {
		if o.Role == reports.RoleControl && o.Target.Kind == "node" && o.Observed == string(wire.Refused) {
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
	ctx, cancel := tenantapi.WithTimeout(ctx)
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
	ctx, cancel := tenantapi.WithTimeout(ctx)
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
