package secrets

import (
	"net/http"
	"net/url"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// secretTarget is where a tenant's secrets are tried: its canary when it
// has one (reference tenants), else an absent name in each namespace.
type secretTarget struct {
	tenant, ns, name string
	canary           *fixtures.Canary
}

func secretTargets(s apisweep.Scope, o checks.Tenant) []secretTarget {
	if c, ok := s.Canaries[o.Name]; ok {
		return []secretTarget{{tenant: o.Name, ns: c.Namespace, name: c.Name, canary: &c}}
	}
	var out []secretTarget
	for _, ns := range o.Namespaces {
		out = append(out, secretTarget{tenant: o.Name, ns: ns, name: s.Absent()})
	}
	return out
}

// secretReads are the ways to read a tenant's Secret by the API: by name,
// by listing (plain, with field and label selectors, across all
// namespaces) and by watching.
func secretReads(s apisweep.Scope, st secretTarget) []apisweep.Request {
	byName := url.Values{"fieldSelector": {"metadata.name=" + st.name}}.Encode()
	inNS := url.Values{"fieldSelector": {"metadata.namespace=" + st.ns}}.Encode()
	label := url.Values{"labelSelector": {fixtures.LabelRole + "=" + fixtures.RoleCanary + "," + fixtures.LabelRun + "=" + s.RunID}}.Encode()
	get := apisweep.ResourceRequest(apisweep.Secrets, "get", st.ns, st.name, nil)
	list := apisweep.Request{Verb: "list", Res: apisweep.Secrets, Namespace: st.ns, Method: http.MethodGet, Path: apisweep.Secrets.Collection(st.ns)}
	listByName := list
	listByName.Path, listByName.Label = list.Path+"?"+byName, "fieldSelector metadata.name"
	listByLabel := list
	listByLabel.Path, listByLabel.Label = list.Path+"?"+label, "labelSelector"
	watch := apisweep.Request{Verb: "watch", Res: apisweep.Secrets, Namespace: st.ns, Method: http.MethodGet, Watch: true,
		Path: apisweep.Secrets.Collection(st.ns) + "?watch=1&timeoutSeconds=1&" + byName, Label: "fieldSelector metadata.name"}
	all := apisweep.Request{Verb: "list", Res: apisweep.Secrets, Method: http.MethodGet, Path: apisweep.Secrets.Collection("") + "?" + inNS, Label: "all namespaces, fieldSelector metadata.namespace"}
	allByLabel := apisweep.Request{Verb: "list", Res: apisweep.Secrets, Method: http.MethodGet, Path: apisweep.Secrets.Collection("") + "?" + label, Label: "all namespaces, labelSelector"}
	watchAll := apisweep.Request{Verb: "watch", Res: apisweep.Secrets, Method: http.MethodGet, Watch: true,
		Path: apisweep.Secrets.Collection("") + "?watch=1&timeoutSeconds=1&" + inNS, Label: "all namespaces, fieldSelector metadata.namespace"}
	return []apisweep.Request{get, list, listByName, listByLabel, watch, all, allByLabel, watchAll}
}

// ReadPlan (SEC-001): no identity of one tenant reads another tenant's
// Secrets by name, list (with or without selectors, in the namespace or
// across all) or watch. Each denial rests on the identity reading its own
// Secrets the same way where its grant allows it (its own canary, seeing
// its value's fingerprint, in a tenant bulkhead created), else on a
// request its grant allows.
func ReadPlan(s apisweep.Scope) []apisweep.Attempt {
	check := IDRead
	var out []apisweep.Attempt
	for _, t := range s.Actors() {
		for _, id := range t.Identities {
			own := apisweep.OwnNamespace(t, id)
			for _, o := range s.Actors() {
				if o.Name == t.Name {
					continue
				}
				for _, st := range secretTargets(s, o) {
					target := reports.Target{Tenant: st.tenant, Namespace: st.ns, Name: st.name, Kind: "secrets"}
					for _, req := range secretReads(s, st) {
						a := s.Test(check, t, id, req, apisweep.ExpectDenied, target, s.Proof(id, own, apisweep.RightOf(req)))
						if st.canary != nil {
							a.Canary = st.canary.Fingerprint
						}
						out = append(out, a)
					}
				}
			}
			out = append(out, ownReads(s, t, id, own)...)
			if c, ok := s.OwnControl(check, t, id); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

// ownReads are the controls of SEC-001's denials: the identity gets,
// lists and watches its own Secrets in ns, where its grant allows it —
// its canary there (which it must see), else a name that does not exist.
func ownReads(s apisweep.Scope, t checks.Tenant, id checks.Identity, ns string) []apisweep.Attempt {
	st := secretTarget{tenant: t.Name, ns: ns, name: s.Absent()}
	expect := apisweep.ExpectAuthorized
	if c, ok := s.Canaries[t.Name]; ok && c.Namespace == ns {
		st.name, st.canary, expect = c.Name, &c, apisweep.ExpectCanary
	}
	reads := secretReads(s, st)
	list := reads[1]
	if st.canary != nil {
		list = reads[3] // by label: the canary is in the answer however many Secrets there are
	}
	target := reports.Target{Tenant: st.tenant, Namespace: st.ns, Name: st.name, Kind: "secrets"}
	var out []apisweep.Attempt
	for _, req := range []apisweep.Request{reads[0], list, reads[4]} { // get, list, watch
		for _, a := range s.ControlIfHeld(IDRead, t, id, req, expect, target) {
			if st.canary != nil {
				a.Canary = st.canary.Fingerprint
			}
			out = append(out, a)
		}
	}
	return out
}
