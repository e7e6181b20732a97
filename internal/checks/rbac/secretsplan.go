package rbac

import (
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Check IDs. The secrets area's checks (package secrets) are planned here
// too: they run on the same sweep, with the same identities and pods.
const (
	IDCrossNamespace = "RBAC-001"
	IDClusterScope   = "RBAC-002"
	IDEscalation     = "RBAC-003"
	IDAnonymous      = "RBAC-004"
	IDSecretRead     = "SEC-001"
	IDSecretPods     = "SEC-002"
)

// secretTarget is where a tenant's secrets are tried: its canary when it
// has one (reference tenants), else an absent name in each namespace.
type secretTarget struct {
	tenant, ns, name string
	canary           *fixtures.Canary
}

func (s Scope) secretTargets(o checks.Tenant) []secretTarget {
	if c, ok := s.Canaries[o.Name]; ok {
		return []secretTarget{{tenant: o.Name, ns: c.Namespace, name: c.Name, canary: &c}}
	}
	var out []secretTarget
	for _, ns := range o.Namespaces {
		out = append(out, secretTarget{tenant: o.Name, ns: ns, name: s.absent()})
	}
	return out
}

// secretReads are the ways to read a tenant's Secret by the API: by name,
// by listing (plain, with field and label selectors, across all
// namespaces) and by watching.
func secretReads(s Scope, st secretTarget) []Request {
	byName := url.Values{"fieldSelector": {"metadata.name=" + st.name}}.Encode()
	inNS := url.Values{"fieldSelector": {"metadata.namespace=" + st.ns}}.Encode()
	label := url.Values{"labelSelector": {fixtures.LabelRole + "=" + fixtures.RoleCanary + "," + fixtures.LabelRun + "=" + s.RunID}}.Encode()
	get := ResourceRequest(Secrets, "get", st.ns, st.name, nil)
	list := Request{Verb: "list", Res: Secrets, Namespace: st.ns, Method: http.MethodGet, Path: Secrets.collection(st.ns)}
	listByName := list
	listByName.Path, listByName.Label = list.Path+"?"+byName, "fieldSelector metadata.name"
	listByLabel := list
	listByLabel.Path, listByLabel.Label = list.Path+"?"+label, "labelSelector"
	watch := Request{Verb: "watch", Res: Secrets, Namespace: st.ns, Method: http.MethodGet, Watch: true,
		Path: Secrets.collection(st.ns) + "?watch=1&timeoutSeconds=1&" + byName, Label: "fieldSelector metadata.name"}
	all := Request{Verb: "list", Res: Secrets, Method: http.MethodGet, Path: Secrets.collection("") + "?" + inNS, Label: "all namespaces, fieldSelector metadata.namespace"}
	allByLabel := Request{Verb: "list", Res: Secrets, Method: http.MethodGet, Path: Secrets.collection("") + "?" + label, Label: "all namespaces, labelSelector"}
	watchAll := Request{Verb: "watch", Res: Secrets, Method: http.MethodGet, Watch: true,
		Path: Secrets.collection("") + "?watch=1&timeoutSeconds=1&" + inNS, Label: "all namespaces, fieldSelector metadata.namespace"}
	return []Request{get, list, listByName, listByLabel, watch, all, allByLabel, watchAll}
}

// SecretReadPlan (SEC-001): no identity of one tenant reads another
// tenant's Secrets by name, list (with or without selectors, in the
// namespace or across all) or watch; the owner reading its own canary (and
// seeing its value's fingerprint) is the positive control.
func SecretReadPlan(s Scope, check string) []Attempt {
	var out []Attempt
	for _, t := range s.actors() {
		for _, id := range t.Identities {
			for _, o := range s.actors() {
				for _, st := range s.secretTargets(o) {
					target := reports.Target{Tenant: st.tenant, Namespace: st.ns, Name: st.name, Kind: "secrets"}
					if o.Name != t.Name {
						for _, req := range secretReads(s, st) {
							a := s.attempt(check, reports.RoleTest, t, id, req, ExpectDenied, target)
							if st.canary != nil {
								a.Canary = st.canary.Fingerprint
							}
							out = append(out, a)
						}
						continue
					}
					if st.canary == nil {
						a := s.attempt(check, reports.RoleControl, t, id, secretReads(s, st)[1], ExpectAuthorized, target)
						a.IfReviewAllows = true
						out = append(out, a)
						continue
					}
					reads := secretReads(s, st)
					for _, req := range []Request{reads[0], reads[3], reads[4]} { // get, list by label, watch
						a := s.attempt(check, reports.RoleControl, t, id, req, ExpectCanary, target)
						a.Canary = st.canary.Fingerprint
						out = append(out, a)
					}
				}
			}
		}
	}
	return out
}

// canaryFile is where API probe pods mount their tenant's canary value.
var canaryFile = path.Join(fixtures.CanaryDir, fixtures.CanaryKey)

// podsOf are a tenant's pods worth getting into: its probe pods and the
// pod that mounts its canary.
func (s Scope) podsOf(o checks.Tenant) []checks.ProbePod {
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
func (s Scope) entryPod(o checks.Tenant) (checks.ProbePod, bool) {
	pods := s.podsOf(o)
	if len(pods) == 0 {
		return checks.ProbePod{}, false
	}
	return pods[0], true
}

// SecretPodsPlan (SEC-002): no identity of one tenant gets into another
// tenant's pods (exec, attach, port-forward) to read what they mount, nor
// mints a token for its ServiceAccount. Positive controls: the owner's user
// execs into its canary pod and reads the canary's fingerprint (a tenant
// without a canary: into its own probe pod), its identities get through to
// that pod where their grant allows it, and mint their own token.
func SecretPodsPlan(s Scope, check string) []Attempt {
	var out []Attempt
	for _, t := range s.actors() {
		for _, id := range t.Identities {
			for _, o := range s.actors() {
				role, expect := reports.RoleTest, ExpectDenied
				if o.Name == t.Name {
					role, expect = reports.RoleControl, ExpectAuthorized
				}
				canary, hasCanary := s.Canaries[o.Name]
				entry, _ := s.entryPod(o)
				for _, p := range s.podsOf(o) {
					isEntry := p.Namespace == entry.Namespace && p.Name == entry.Name
					if o.Name == t.Name && !isEntry {
						continue // its own entry pod proves the path
					}
					target := reports.Target{Tenant: o.Name, Namespace: p.Namespace, Name: p.Name, Kind: "pods"}
					if id.ServiceAccount == "" && isEntry {
						exec := Request{Verb: "create", Res: Pods, Subresource: "exec", Namespace: p.Namespace, Name: p.Name,
							Exec: &ExecSpec{Namespace: p.Namespace, Pod: p.Name, File: canaryFile}, Label: "stream, reading the mounted canary"}
						if !hasCanary {
							exec.Label = "stream into the probe pod"
						}
						a := s.attempt(check, role, t, id, exec, expect, target)
						switch {
						case hasCanary:
							a.Canary = canary.Fingerprint
							if o.Name == t.Name {
								a.Expect = ExpectCanary
							}
						case o.Name == t.Name:
							// Without a canary the stream shows the way in
							// works, where the tenant's grant allows exec.
							a.IfReviewAllows = true
						}
						out = append(out, a)
					}
					for _, req := range PodStreamRequests(p.Namespace, p.Name) {
						req.Label = "no stream upgrade"
						a := s.attempt(check, role, t, id, req, expect, target)
						a.IfReviewAllows = role == reports.RoleControl
						out = append(out, a)
					}
				}
				for _, oid := range o.Identities {
					if ns, name, ok := strings.Cut(oid.ServiceAccount, "/"); ok {
						a := s.attempt(check, role, t, id, TokenRequest(ns, name), expect,
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
