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
// mints a token for its ServiceAccount. Each denial rests on the identity
// getting into its own tenant's entry pod the same way (its user reading
// the canary's fingerprint there, in a tenant bulkhead created) or minting
// its own tenant's ServiceAccount token, where its grant allows it, else
// on a request its grant allows.
func PodsPlan(s apisweep.Scope) []apisweep.Attempt {
	check := IDThroughPods
	var out []apisweep.Attempt
	for _, t := range s.Actors() {
		for _, id := range t.Identities {
			acts := apisweep.ActsKey(id)
			entry, hasEntry := entryPod(s, t)
			proof := func(r apisweep.Request) string {
				if !hasEntry {
					return acts
				}
				return s.Proof(id, entry.Namespace, apisweep.RightOf(r))
			}
			if hasEntry {
				out = append(out, ownEntry(s, t, id, entry)...)
			}
			ownToken, tokenProof := s.OwnTokenControl(check, t, id)
			out = append(out, ownToken...)
			if c, ok := s.OwnControl(check, t, id); ok {
				out = append(out, c)
			}

			for _, o := range s.Actors() {
				if o.Name == t.Name {
					continue
				}
				canary, hasCanary := s.Canaries[o.Name]
				theirs, _ := entryPod(s, o)
				for _, p := range podsOf(s, o) {
					target := reports.Target{Tenant: o.Name, Namespace: p.Namespace, Name: p.Name, Kind: "pods"}
					if id.ServiceAccount == "" && p == theirs {
						exec := execStream(p, hasCanary)
						a := s.Test(check, t, id, exec, apisweep.ExpectDenied, target, proof(exec))
						if hasCanary {
							a.Canary = canary.Fingerprint
						}
						out = append(out, a)
					}
					for _, req := range podStreamRequests(p.Namespace, p.Name) {
						out = append(out, s.Test(check, t, id, req, apisweep.ExpectDenied, target, proof(req)))
					}
				}
				for _, oid := range o.Identities {
					if ns, name, ok := strings.Cut(oid.ServiceAccount, "/"); ok {
						out = append(out, s.Test(check, t, id, apisweep.TokenRequest(ns, name), apisweep.ExpectDenied,
							reports.Target{Tenant: o.Name, Namespace: ns, Name: name, Kind: "serviceaccounts/token"}, tokenProof))
					}
				}
			}
		}
	}
	return out
}

// ownEntry are the controls in the identity's own tenant's entry pod: a
// user's exec stream (reading the canary's fingerprint where one is
// mounted) and the ways in without a stream, where its grant allows them.
func ownEntry(s apisweep.Scope, t checks.Tenant, id checks.Identity, p checks.ProbePod) []apisweep.Attempt {
	target := reports.Target{Tenant: t.Name, Namespace: p.Namespace, Name: p.Name, Kind: "pods"}
	canary, hasCanary := s.Canaries[t.Name]
	var out []apisweep.Attempt
	if id.ServiceAccount == "" {
		expect := apisweep.ExpectAuthorized
		if hasCanary {
			expect = apisweep.ExpectCanary
		}
		for _, a := range s.ControlIfHeld(IDThroughPods, t, id, execStream(p, hasCanary), expect, target) {
			if hasCanary {
				a.Canary = canary.Fingerprint
			}
			out = append(out, a)
		}
	}
	for _, req := range podStreamRequests(p.Namespace, p.Name) {
		out = append(out, s.ControlIfHeld(IDThroughPods, t, id, req, apisweep.ExpectAuthorized, target)...)
	}
	return out
}

// execStream is a real exec stream into pod p (from bulkhead's process;
// a pod sends it without the upgrade): the probe there fingerprints the
// canary file, if one is mounted.
func execStream(p checks.ProbePod, canary bool) apisweep.Request {
	exec := apisweep.Request{Verb: "create", Res: apisweep.Pods, Subresource: "exec", Namespace: p.Namespace, Name: p.Name,
		Exec: &apisweep.ExecSpec{Namespace: p.Namespace, Pod: p.Name, File: canaryFile}, Label: "stream, reading the mounted canary"}
	if !canary {
		exec.Label = "stream into the probe pod"
	}
	return exec
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
				Method: m.method, Path: apisweep.Pods.Object(ns, pod, sub) + "?" + q[sub].Encode(), Label: "no stream upgrade"})
		}
	}
	return out
}
