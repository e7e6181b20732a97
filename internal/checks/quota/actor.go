package quota

import (
	"context"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

// actor is one identity acting in a namespace, and how it acts.
type actor struct {
	id checks.Identity
	// how names the way of acting, for evidence: "impersonated", "own
	// token", "bulkhead's own identity".
	how     string
	clients *kube.Clients
}

// name is the actor as evidence names it: "alice (impersonated)".
func (a actor) name() string { return a.id.User + " (" + a.how + ")" }

// able returns the tenant's identities that may exercise every one of
// rights in the tenant namespace (asked of the API server, see
// internal/actors), as actors: users impersonated, ServiceAccounts with
// their own token (a request then goes through authentication as a pod's
// would). Each identity that may not gets a not-applicable observation;
// when none may, the namespace is not evaluated for what rights allow.
func (r *nsRun) able(ctx context.Context, rights ...actors.Right) ([]actor, error) {
	ids, na, err := actors.Of(r.env).Able(ctx, r.tenant, r.tenantNS, rights...)
	if err != nil {
		return nil, err
	}
	r.obs = append(r.obs, na...)
	out := make([]actor, 0, len(ids))
	for _, a := range ids {
		act, err := r.actorOf(ctx, a)
		if err != nil {
			return nil, err
		}
		out = append(out, act)
	}
	if len(out) == 0 {
		r.notEvaluated = append(r.notEvaluated, fmt.Sprintf("tenant %s in %s: no identity may %s", r.tenant.Name, r.tenantNS, rightsWords(rights)))
	}
	return out, nil
}

// actorFor returns identity id as an actor in the tenant namespace,
// whatever it may do there.
func (r *nsRun) actorFor(ctx context.Context, id checks.Identity) (actor, error) {
	a, err := actors.Of(r.env).Actor(r.tenant.Name, r.tenantNS, id)
	if err != nil {
		return actor{}, err
	}
	return r.actorOf(ctx, a)
}

// actorOf turns a model actor into a quota actor; a ServiceAccount's token
// is minted once per run of a check in a namespace.
func (r *nsRun) actorOf(ctx context.Context, a actors.Actor) (actor, error) {
	if a.Identity.ServiceAccount == "" {
		return actor{id: a.Identity, how: "impersonated", clients: a.Clients}, nil
	}
	if c, ok := r.tokens[a.Identity.ServiceAccount]; ok {
		return actor{id: a.Identity, how: "own token", clients: c}, nil
	}
	own, err := actors.Of(r.env).WithOwnToken(ctx, a)
	if err != nil {
		return actor{}, err
	}
	if r.tokens == nil {
		r.tokens = map[string]*kube.Clients{}
	}
	r.tokens[a.Identity.ServiceAccount] = own.Clients
	return actor{id: a.Identity, how: "own token", clients: own.Clients}, nil
}

// runnerActor is bulkhead itself, acting with the identity it runs as: in
// its own namespaces (a copy of a tenant's quota), and for the recount of
// a quota that lags.
func runnerActor(ctx context.Context, env *checks.Env) actor {
	user, _ := checks.Memo(env, "quota/runner-user", func() (string, error) {
		ssr, err := env.Kube.Core.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil || ssr.Status.UserInfo.Username == "" {
			return "bulkhead", nil // evidence only: the name is a courtesy
		}
		return ssr.Status.UserInfo.Username, nil
	})
	return actor{id: checks.Identity{User: user}, how: "bulkhead's own identity", clients: env.Kube}
}

func rightsWords(rs []actors.Right) string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.String())
	}
	return strings.Join(out, " and ")
}

// admittedKey is the proof that actor a had a request of what admitted in
// ns: an over-quota refusal of a counts as "denied" only next to it.
func admittedKey(a actor, what, ns string) string {
	return fmt.Sprintf("%s had %s admitted in %s", a.name(), what, ns)
}
