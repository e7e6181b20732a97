package apisweep

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// A "denied" counts only for an identity shown, in the same sweep, to be
// allowed something comparable in its own tenant: a misspelled user, or
// one whose groups are missing, is denied everything. So every test needs
// a fact a passing control of its check proves:
//
//   - MayKey: the identity may make the same kind of request (verb and
//     resource) in its own namespace. Its control is the same request
//     there, planned only where the identity model says its grant holds
//     the right; a request the grant does not hold is no control to drop.
//   - ActsKey, where the grant holds no such right: the identity is
//     authorized for some request its grant allows in its own tenant
//     (every passing control of the identity proves it; OwnControl makes
//     one for checks whose tests have no same-request control).
//   - AdminKey, for requests no tenant may make: the request gets past
//     authorization as PositiveControl, so the path exists.

// MayKey is the fact that id may exercise r in namespace ns.
func MayKey(id checks.Identity, ns string, r actors.Right) string {
	return fmt.Sprintf("%s may %s in %s", id, r, ns)
}

// ActsKey is the fact that id is authorized for a request its grant
// allows in its own tenant.
func ActsKey(id checks.Identity) string {
	return fmt.Sprintf("%s is authorized for a request its grant allows in its own tenant", id)
}

// AdminKey is the fact that a request exercising r gets past
// authorization as PositiveControl (at cluster scope).
func AdminKey(r actors.Right) string {
	return fmt.Sprintf("%s gets past authorization as %s", r, PositiveControl.User)
}

// RightOf is the right a request exercises.
func RightOf(r Request) actors.Right {
	return actors.Right{Verb: r.Verb, Group: r.Res.Group, Resource: r.Res.Resource, Subresource: r.Subresource}
}

// Grants says which rights identities hold (the identity model).
type Grants interface {
	May(id checks.Identity, ns string, r actors.Right) bool
}

// modelGrants are the identity model's answers. A review that fails
// says nothing: the control is planned, and if the grant does not hold
// it, the control fails and the tests resting on it are unproven.
type modelGrants struct {
	ctx context.Context
	m   *actors.Model
}

func (g modelGrants) May(id checks.Identity, ns string, r actors.Right) bool {
	d := g.m.May(g.ctx, id, ns, r)
	return d.Allowed || d.Err != nil
}

// May reports whether id holds r in ns; without Grants (a scope built by
// hand) every right is held.
func (s Scope) May(id checks.Identity, ns string, r actors.Right) bool {
	return s.Grants == nil || s.Grants.May(id, ns, r)
}

// Proof is the fact a test of id exercising r rests on, given that the
// check controls r in ns where the grant holds it: MayKey there, else
// ActsKey.
func (s Scope) Proof(id checks.Identity, ns string, r actors.Right) string {
	if s.May(id, ns, r) {
		return MayKey(id, ns, r)
	}
	return ActsKey(id)
}

// Test is a test of tenant t's identity id that rests on needs.
func (s Scope) Test(check string, t checks.Tenant, id checks.Identity, req Request, expect Expect, target reports.Target, needs ...string) Attempt {
	a := s.Try(check, reports.RoleTest, t, id, req, expect, target)
	a.Needs = needs
	return a
}

// Control is a positive control of tenant t's identity id: req, in one of
// t's namespaces, which the identity's grant allows. It proves MayKey for
// its right there, and ActsKey.
func (s Scope) Control(check string, t checks.Tenant, id checks.Identity, req Request, expect Expect, target reports.Target) Attempt {
	a := s.Try(check, reports.RoleControl, t, id, req, expect, target)
	a.Proves = []string{MayKey(id, req.Namespace, RightOf(req)), ActsKey(id)}
	return a
}

// ControlIfHeld is Control where the identity model says id holds the
// request's right, else nothing.
func (s Scope) ControlIfHeld(check string, t checks.Tenant, id checks.Identity, req Request, expect Expect, target reports.Target) []Attempt {
	if !s.May(id, req.Namespace, RightOf(req)) {
		return nil
	}
	return []Attempt{s.Control(check, t, id, req, expect, target)}
}

// OwnTokenControl is the control of minting a token: id minting one for
// its own tenant's first ServiceAccount, where its grant holds that. It
// returns the control (if any) and the fact a denial of minting another
// tenant's token rests on: MayKey when the control exists, else ActsKey.
func (s Scope) OwnTokenControl(check string, t checks.Tenant, id checks.Identity) ([]Attempt, string) {
	for _, oid := range t.Identities {
		ns, name, ok := strings.Cut(oid.ServiceAccount, "/")
		if !ok {
			continue
		}
		req := TokenRequest(ns, name)
		if !s.May(id, ns, RightOf(req)) {
			break
		}
		c := s.Control(check, t, id, req, ExpectAuthorized, reports.Target{Tenant: t.Name, Namespace: ns, Name: name, Kind: "serviceaccounts/token"})
		return []Attempt{c}, MayKey(id, ns, RightOf(req))
	}
	return nil, ActsKey(id)
}

// everyday are the rights OwnControl tries first: reads most grants hold.
var everyday = []struct{ verb, resource string }{
	{"list", "pods"}, {"list", "configmaps"}, {"list", "services"}, {"list", "serviceaccounts"}, {"list", "secrets"},
}

// OwnControl is a control of a request id's grant allows in its own
// namespace, proving ActsKey for the checks whose tests have no
// same-request control: an everyday read if the grant holds one, else the
// first discovered resource and verb it holds. ok is false when it holds
// none of them.
func (s Scope) OwnControl(check string, t checks.Tenant, id checks.Identity) (Attempt, bool) {
	own := OwnNamespace(t, id)
	var candidates []Request
	for _, e := range everyday {
		if i := slices.IndexFunc(s.Resources, func(r Resource) bool { return r.Group == "" && r.Resource == e.resource }); i >= 0 {
			candidates = append(candidates, ResourceRequest(s.Resources[i], e.verb, own, s.Absent(), s.Labels()))
		}
	}
	for _, res := range s.Resources {
		for _, verb := range MatrixVerbs {
			candidates = append(candidates, ResourceRequest(res, verb, own, s.Absent(), s.Labels()))
		}
	}
	for _, req := range candidates {
		if s.May(id, own, RightOf(req)) {
			a := s.Control(check, t, id, req, ExpectAuthorized, reports.Target{Tenant: t.Name, Namespace: own, Kind: req.Res.GroupResource()})
			a.Note = "the identity acts in its own namespace: its denials elsewhere are its own, not a misspelled or rights-less identity's"
			return a, true
		}
	}
	return Attempt{}, false
}

// OwnRights are the rights in their own namespace that plans ask about
// for every identity beyond the discovered resources' verbs; the sweep
// asks them all in one batch before planning.
var OwnRights = []actors.Right{
	{Verb: "create", Resource: "pods", Subresource: "exec"}, {Verb: "get", Resource: "pods", Subresource: "exec"},
	{Verb: "create", Resource: "pods", Subresource: "attach"}, {Verb: "get", Resource: "pods", Subresource: "attach"},
	{Verb: "create", Resource: "pods", Subresource: "portforward"}, {Verb: "get", Resource: "pods", Subresource: "portforward"},
	{Verb: "create", Resource: "serviceaccounts", Subresource: "token"},
}

// prefetch asks the identity model, in one concurrent batch, every right
// plans ask about in the identities' own namespaces, so planning answers
// from the cache. It returns how many were asked and how many the grants
// do not hold.
func prefetch(ctx context.Context, m *actors.Model, s Scope) (asked, notHeld int) {
	var qs []actors.Question
	for _, t := range s.Actors() {
		for _, id := range t.Identities {
			for _, ns := range t.Namespaces {
				for _, res := range s.Resources {
					for _, verb := range MatrixVerbs {
						qs = append(qs, actors.InNamespace(id, ns, RightOf(Request{Verb: verb, Res: res})))
					}
				}
				for _, r := range OwnRights {
					qs = append(qs, actors.InNamespace(id, ns, r))
				}
			}
		}
	}
	for _, d := range m.Ask(ctx, qs) {
		if !d.Allowed {
			notHeld++
		}
	}
	return len(qs), notHeld
}

// AdminControl is a positive control as PositiveControl, proving AdminKey
// for its right.
func (s Scope) AdminControl(check string, req Request, target reports.Target) Attempt {
	a := s.AsPositiveControl(check, req, target)
	a.Proves = []string{AdminKey(RightOf(req))}
	return a
}
