// Package actors is bulkhead's one identity model: who acts for a tenant
// and what each identity may try. Checks that act against the API server
// as a tenant (quota, pod security, exposure, RBAC, secrets) ask it for
// the identities that hold the right to try a request; an identity that
// RBAC forbids to try gets a "not applicable" observation (it neither
// passes nor fails), and a tenant where nobody may try is not evaluated.
//
// Rights are asked of the API server with SubjectAccessReviews, answered
// once per run and cached.
package actors

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Right is one thing an identity may be allowed to do in a namespace, as a
// SubjectAccessReview asks it.
type Right struct {
	Verb, Group, Resource, Subresource string
}

// Create is the right to create resource (of the core group, or
// "group/resource").
func Create(resource string) Right { return verb("create", resource) }

// Update is the right to update resource.
func Update(resource string) Right { return verb("update", resource) }

// Patch is the right to patch resource.
func Patch(resource string) Right { return verb("patch", resource) }

// Get is the right to get resource.
func Get(resource string) Right { return verb("get", resource) }

// List is the right to list resource.
func List(resource string) Right { return verb("list", resource) }

func verb(v, resource string) Right {
	r := Right{Verb: v, Resource: resource}
	if g, res, ok := strings.Cut(resource, "/"); ok {
		r.Group, r.Resource = g, res
	}
	return r
}

func (r Right) String() string {
	s := r.Verb + " " + r.Resource
	if r.Subresource != "" {
		s += "/" + r.Subresource
	}
	if r.Group != "" {
		s += "." + r.Group
	}
	return s
}

// Actor is one identity of a tenant, ready to act in one namespace.
type Actor struct {
	Tenant    string
	Namespace string
	Identity  checks.Identity
	// Clients impersonate the identity; the API server's warnings to them
	// (PodSecurity warns about workloads) are kept in Warnings.
	Clients  *kube.Clients
	Warnings *Warnings
}

// Name is how evidence names the actor: its username.
func (a Actor) Name() string { return a.Identity.User }

// ReportActor is the actor as evidence records it.
func (a Actor) ReportActor() reports.Actor {
	return reports.Actor{Tenant: a.Tenant, Namespace: a.Namespace, Identity: a.Identity.User}
}

// Decision is the API server's answer to "may this identity ...".
type Decision struct {
	Allowed bool
	// Denied is set when an authorizer denied outright (not just "no
	// opinion").
	Denied bool
	// Reason is the authorizer's reason, when it gave one.
	Reason string
	// EvaluationError is set when an authorizer could not decide.
	EvaluationError string
	// Err is set when the review itself failed: nothing is known.
	Err error
}

// Model answers, for one run, who may try what, and acts as the tenant's
// identities. Decisions and clients are cached.
type Model struct {
	env *checks.Env

	mu      sync.Mutex
	reviews map[string]*review
	http    map[string]*httpEntry

	fastOnce sync.Once
	fast     kubernetes.Interface
}

type review struct {
	once sync.Once
	d    Decision
}

// Of returns the run's model (one per env).
func Of(env *checks.Env) *Model {
	m, _ := checks.Memo(env, "actors/model", func() (*Model, error) {
		return &Model{env: env, reviews: map[string]*review{}, http: map[string]*httpEntry{}}, nil
	})
	return m
}

// May asks whether id may exercise r in namespace ns.
func (m *Model) May(ctx context.Context, id checks.Identity, ns string, r Right) Decision {
	return m.ask(ctx, InNamespace(id, ns, r))
}

// Able returns the actors of tenant t in namespace ns that hold every one
// of rights, and, for each identity that does not, a not-applicable
// observation naming the right it lacks. An access review that fails is
// an error: nothing may be concluded from it.
func (m *Model) Able(ctx context.Context, t checks.Tenant, ns string, rights ...Right) ([]Actor, []reports.Observation, error) {
	var able []Actor
	var na []reports.Observation
	for _, id := range t.Identities {
		var lacks *Right
		var why string
		for _, r := range rights {
			d := m.May(ctx, id, ns, r)
			if d.Err != nil {
				return nil, nil, d.Err
			}
			if !d.Allowed {
				lacks, why = &r, d.Reason
				break
			}
		}
		if lacks != nil {
			na = append(na, NotApplicable(t.Name, ns, id, *lacks, why))
			continue
		}
		a, err := m.Actor(t.Name, ns, id)
		if err != nil {
			return nil, nil, err
		}
		able = append(able, a)
	}
	return able, na, nil
}

// NotApplicable is the observation for an identity that may not try: it
// neither passes nor fails.
func NotApplicable(tenant, ns string, id checks.Identity, r Right, reason string) reports.Observation {
	why := fmt.Sprintf("%s may not %s in %s (RBAC)", id, r, ns)
	if reason != "" {
		why += ": " + reason
	}
	return reports.Observation{
		Role:     reports.RoleTest,
		Actor:    reports.Actor{Tenant: tenant, Namespace: ns, Identity: id.User},
		Target:   reports.Target{Tenant: tenant, Namespace: ns, Kind: r.Resource},
		Method:   r.String(),
		Expected: "may try",
		Observed: "may not (RBAC)",
		Status:   reports.StatusNotApplicable,
		Why:      why,
		At:       time.Now().UTC(),
	}
}

// Actor returns an actor for id in ns, impersonating it.
func (m *Model) Actor(tenant, ns string, id checks.Identity) (Actor, error) {
	cfg := rest.CopyConfig(m.env.Kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: id.User, Groups: id.Groups}
	w := &Warnings{}
	cfg.WarningHandler = w
	c, err := kube.FromConfig(cfg)
	if err != nil {
		return Actor{}, fmt.Errorf("clients impersonating %s: %w", id, err)
	}
	return Actor{Tenant: tenant, Namespace: ns, Identity: id, Clients: c, Warnings: w}, nil
}

// TokenTTL is the lifetime of the ServiceAccount tokens WithOwnToken mints.
const TokenTTL = 10 * time.Minute

// WithOwnToken returns a copy of a, a ServiceAccount's actor, that acts
// with the ServiceAccount's own token (TokenRequest API) instead of
// impersonation, so a request goes through authentication as the pod's
// would. Tokens are never logged or stored.
func (m *Model) WithOwnToken(ctx context.Context, a Actor) (Actor, error) {
	ns, name, ok := strings.Cut(a.Identity.ServiceAccount, "/")
	if !ok {
		return Actor{}, fmt.Errorf("%s is not a ServiceAccount", a.Identity)
	}
	ttl := int64(TokenTTL / time.Second)
	tr, err := m.env.Kube.Core.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
	if err != nil {
		return Actor{}, fmt.Errorf("request a token for service account %s: %w", a.Identity.ServiceAccount, err)
	}
	if tr.Status.Token == "" {
		return Actor{}, fmt.Errorf("request a token for service account %s: the API server returned no token", a.Identity.ServiceAccount)
	}
	cfg := rest.AnonymousClientConfig(m.env.Kube.Config)
	cfg.BearerToken = tr.Status.Token
	w := &Warnings{}
	cfg.WarningHandler = w
	c, err := kube.FromConfig(cfg)
	if err != nil {
		return Actor{}, fmt.Errorf("clients for service account %s: %w", a.Identity.ServiceAccount, err)
	}
	out := a
	out.Clients, out.Warnings = c, w
	return out, nil
}

// Warnings is a rest.WarningHandler that keeps what the server said.
type Warnings struct {
	mu   sync.Mutex
	msgs []string
}

// HandleWarningHeader implements rest.WarningHandler.
func (w *Warnings) HandleWarningHeader(code int, agent, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// Matching returns the warnings that contain s.
func (w *Warnings) Matching(s string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.msgs {
		if strings.Contains(m, s) {
			out = append(out, m)
		}
	}
	return out
}
