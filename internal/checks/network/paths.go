// Package network holds the network isolation checks. They share one probe
// matrix: every probe pod tries every other probe pod by pod IP, ClusterIP
// and Service DNS name, over TCP and UDP (and SCTP where the kernel has it),
// one `exec` per source pod per round. Each check reads the slice of the
// matrix it is about, with the slice that proves the path works as its
// positive control.
package network

import (
	"fmt"
	"net"
	"strconv"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Via is how a path addresses its destination.
type Via string

const (
	ViaPodIP      Via = "pod-ip"
	ViaClusterIP  Via = "cluster-ip"
	ViaServiceDNS Via = "service-dns"
	// ViaDNS paths only resolve a name (protocol wire.DNS).
	ViaDNS Via = "resolve"
)

// Service ports of a probe pod's Service (the pod listens on wire.Port*).
const (
	ServicePortTCP  = 80
	ServicePortUDP  = 81
	ServicePortSCTP = 82
)

// Path is one probe of the matrix and what it is expected to do.
type Path struct {
	Src      checks.ProbePod
	Dst      checks.ProbePod
	Protocol wire.Protocol
	Via      Via
	// Name is the DNS name a ViaDNS path resolves.
	Name string
	// Allowed is the expectation: the path works (true) or is blocked.
	Allowed bool
}

// Method names the path's kind, e.g. "tcp/pod-ip".
func (p Path) Method() string {
	if p.Via == ViaDNS {
		return "dns/resolve"
	}
	return string(p.Protocol) + "/" + string(p.Via)
}

// Target is the probe program's view of the path.
func (p Path) Target(id string) wire.ConnectTarget {
	t := wire.ConnectTarget{ID: id, Protocol: p.Protocol}
	switch p.Via {
	case ViaDNS:
		t.Host = p.Name
	case ViaPodIP:
		t.Host, t.Port = p.Dst.IP, podPort(p.Protocol)
	case ViaClusterIP:
		t.Host, t.Port = p.Dst.ClusterIP, servicePort(p.Protocol)
	case ViaServiceDNS:
		t.Host, t.Port = p.Dst.DNSName, servicePort(p.Protocol)
	}
	return t
}

// Address is the target as a user would type it.
func (p Path) Address() string {
	t := p.Target("")
	if t.Port == 0 {
		return t.Host
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
}

func (p Path) String() string {
	return fmt.Sprintf("%s/%s -> %s/%s %s", p.Src.Namespace, p.Src.Name, p.Dst.Namespace, p.Dst.Name, p.Method())
}

func podPort(p wire.Protocol) int {
	switch p {
	case wire.UDP:
		return wire.PortUDP
	case wire.SCTP:
		return wire.PortSCTP
	}
	return wire.PortTCP
}

func servicePort(p wire.Protocol) int {
	switch p {
	case wire.UDP:
		return ServicePortUDP
	case wire.SCTP:
		return ServicePortSCTP
	}
	return ServicePortTCP
}

// Vias are the address kinds every pair is probed over.
var Vias = []Via{ViaPodIP, ViaClusterIP, ViaServiceDNS}

// MatrixPaths returns every probe pod to every other probe pod, over every
// address kind and protocol, with the expectation the topology implies.
func MatrixPaths(top checks.Topology, protocols []wire.Protocol) []Path {
	var out []Path
	for _, src := range top.Probes {
		for _, dst := range top.Probes {
			if src.Name == dst.Name && src.Namespace == dst.Namespace {
				continue
			}
			allowed := top.FlowAllowed(src.Tenant, dst.Tenant)
			for _, proto := range protocols {
				for _, via := range Vias {
					if via != ViaPodIP && dst.Service == "" {
						continue // no Service for this pod (bring-your-own tenants by default)
					}
					out = append(out, Path{Src: src, Dst: dst, Protocol: proto, Via: via, Allowed: allowed})
				}
			}
		}
	}
	return out
}

// KubernetesServiceName is resolved from every pod: the API server's Service
// exists in every cluster, so a failure to resolve it is DNS being blocked.
const KubernetesServiceName = "kubernetes.default.svc"

// DNSPaths returns, for every probe pod, name resolutions that must work:
// the kubernetes Service and the Service of every other pod of its tenant.
func DNSPaths(top checks.Topology, clusterDomain string) []Path {
	kubernetes := KubernetesServiceName
	if clusterDomain != "" {
		kubernetes += "." + clusterDomain
	}
	var out []Path
	for _, src := range top.Probes {
		out = append(out, Path{Src: src, Protocol: wire.DNS, Via: ViaDNS, Name: kubernetes, Allowed: true,
			Dst: checks.ProbePod{Namespace: "default", Name: "kubernetes"}})
		for _, dst := range top.ProbesOf(src.Tenant) {
			if (dst.Name == src.Name && dst.Namespace == src.Namespace) || dst.DNSName == "" {
				continue
			}
			out = append(out, Path{Src: src, Dst: dst, Protocol: wire.DNS, Via: ViaDNS, Name: dst.DNSName, Allowed: true})
		}
	}
	return out
}
