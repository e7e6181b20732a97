package secrets

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// canaryFile is where API probe pods mount their tenant's canary value.
var canaryFile = path.Join(fixtures.CanaryDir, fixtures.CanaryKey)

// podsOf are a tenant's pods worth getting into: its probe pods and the
// pod that mounts its canary.
func podsOf(s apisweep.Scope, o checks.Tenant) []checks.ProbePod {
	var out []checks.ProbePod
	if pod, ok := s.CanaryPods[o.Name]; ok {
		c := s.Canaries[o.Name]
		out = append(out, checks.ProbePod{Tenant: o.Name, Namespace: c.Namespace, Name: pod})
	}
	for _, p := range s.Top.ProbesOf(o.Name) {
		if !slices.ContainsFunc(out, func(q checks.ProbePod) bool { return q.Namespace == p.Namespace && q.Name == p.Name }) {
			out = append(out, p)
		}
	}
	return out
}

// entryPod is the pod of tenant o that exec streams go into: the pod that
// mounts its canary, or, for a tenant without one (bulkhead did not create
// it, so it plants nothing there), its first probe pod (bulkhead's own,
// labelled, in the tenant's namespace).
func entryPod(s apisweep.Scope, o checks.Tenant) (checks.ProbePod, bool) {
	pods := podsOf(s, o)
	if len(pods) == 0 {
		return checks.ProbePod{}, false
	}
	return pods[0], true
}

// PodsPlan (SEC-002): no identity of one tenant gets into another
// tenant's pods (exec, attach, port-forward) to read what they mount, nor
// mints a token for its ServiceAccount. Positive controls: the owner's user
// execs into its canary pod and reads the canary's fingerprint (a tenant
// without a canary: into its own probe pod), its identities get through to
// that pod where their grant allows it, and mint their own token.
func PodsPlan(s apisweep.Scope) []apisweep.Attempt {
	check := IDThroughPods
	var out []apisweep.Attempt
	for _, t := range s.Actors() {
		for _, id := range t.Identities {
			for _, o := range s.Actors() {
				role, expect := reports.RoleTest, apisweep.ExpectDenied
				if o.Name == t.Name {
					role, expect = reports.RoleControl, apisweep.ExpectAuthorized
				}
				canary, hasCanary := s.Canaries[o.Name]
				entry, _ := entryPod(s, o)
				for _, p := range podsOf(s, o) {
					isEntry := p.Namespace == entry.Namespace && p.Name == entry.Name
					if o.Name == t.Name && !isEntry {
						continue // its own entry pod proves the path
					}
					target := reports.Target{Tenant: o.Name, Namespace: p.Namespace, Name: p.Name, Kind: "pods"}
					if id.ServiceAccount == "" && isEntry {
						exec := apisweep.Request{Verb: "create", Res: apisweep.Pods, Subresource: "exec", Namespace: p.Namespace, Name: p.Name,
							Exec: &apisweep.ExecSpec{Namespace: p.Namespace, Pod: p.Name, File: canaryFile}, Label: "stream, reading the mounted canary"}
						if !hasCanary {
							exec.Label = "stream into the probe pod"
						}
						a := s.Try(check, role, t, id, exec, expect, target)
						switch {
						case hasCanary:
							a.Canary = canary.Fingerprint
							if o.Name == t.Name {
								a.Expect = apisweep.ExpectCanary
							}
						case o.Name == t.Name:
							// Without a canary the stream shows the way in
							// works, where the tenant's grant allows exec.
							a.IfReviewAllows = true
						}
						out = append(out, a)
					}
					for _, req := range podStreamRequests(p.Namespace, p.Name) {
						req.Label = "no stream upgrade"
						a := s.Try(check, role, t, id, req, expect, target)
						a.IfReviewAllows = role == reports.RoleControl
						out = append(out, a)
					}
				}
				for _, oid := range o.Identities {
					if ns, name, ok := strings.Cut(oid.ServiceAccount, "/"); ok {
						a := s.Try(check, role, t, id, apisweep.TokenRequest(ns, name), expect,
							reports.Target{Tenant: o.Name, Namespace: ns, Name: name, Kind: "serviceaccounts/token"})
						a.IfReviewAllows = role == reports.RoleControl
						out = append(out, a)
					}
				}
			}
		}
	}
	return out
}

// podStreamRequests are the ways into a pod's container other than exec
// streams: exec, attach and port-forward without the stream upgrade, with
// POST (create) and GET (get, what WebSocket clients send).
func podStreamRequests(ns, pod string) []apisweep.Request {
	q := map[string]url.Values{
		"exec":        {"container": {checks.ProbeContainer}, "command": {"/probe", "version"}, "stdout": {"true"}},
		"attach":      {"container": {checks.ProbeContainer}, "stdout": {"true"}},
		"portforward": {"ports": {fmt.Sprint(wire.PortTCP)}},
	}
	var out []apisweep.Request
	for _, sub := range []string{"exec", "attach", "portforward"} {
		for _, m := range []struct{ method, verb string }{{http.MethodPost, "create"}, {http.MethodGet, "get"}} {
			out = append(out, apisweep.Request{Verb: m.verb, Res: apisweep.Pods, Subresource: sub, Namespace: ns, Name: pod,
				Method: m.method, Path: apisweep.Pods.Object(ns, pod, sub) + "?" + q[sub].Encode()})
		}
	}
	return out
}
