package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// everyone are the resources every authenticated user may create in any
// namespace (system:basic-user): holding only these is holding no right.
var everyone = []string{"selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"}

// Validate shows that every identity of every tenant holds at least one
// right in one of its tenant's namespaces, beyond what every authenticated
// user holds. An identity that holds none is misspelled, or its groups are
// missing from the config: every "denied" it saw would be meaningless, so
// the run must not start.
func (m *Model) Validate(ctx context.Context) error {
	var errs []error
	for _, t := range m.env.Topology.Isolated() {
		for _, id := range t.Identities {
			ok, err := m.holdsSomethingSoon(ctx, t, id)
			if err != nil {
				return err
			}
			if !ok {
				errs = append(errs, fmt.Errorf("%s holds no rights in tenant %s (namespaces %s): misspelled, or groups missing from the config?",
					id, t.Name, strings.Join(t.Namespaces, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

// bindingGrace is how long a new RoleBinding (bulkhead's reference
// tenants are bound moments before) may take to reach the authorizer.
const bindingGrace = 10 * time.Second

func (m *Model) holdsSomethingSoon(ctx context.Context, t checks.Tenant, id checks.Identity) (bool, error) {
	deadline := time.Now().Add(bindingGrace)
	for {
		ok, err := m.holdsSomething(ctx, t, id)
		if ok || err != nil || time.Now().After(deadline) {
			return ok, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (m *Model) holdsSomething(ctx context.Context, t checks.Tenant, id checks.Identity) (bool, error) {
	as, err := m.Actor(t.Name, "", id)
	if err != nil {
		return false, err
	}
	for _, ns := range t.Namespaces {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := as.Clients.Core.AuthorizationV1().SelfSubjectRulesReviews().Create(rctx,
			&authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: ns}}, metav1.CreateOptions{})
		cancel()
		if err != nil {
			return false, fmt.Errorf("ask what %s may do in %s (impersonating it): %w", id, ns, err)
		}
		if holdsRight(res.Status.ResourceRules) {
			return true, nil
		}
		if res.Status.Incomplete {
			// An authorizer that cannot list rules (a webhook): ask it
			// about a few everyday rights instead.
			for _, r := range []Right{List("pods"), List("configmaps"), List("services"), Get("pods"), Create("pods")} {
				d := m.May(ctx, id, ns, r)
				if d.Err != nil {
					return false, d.Err
				}
				if d.Allowed {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

func holdsRight(rules []authorizationv1.ResourceRule) bool {
	for _, r := range rules {
		for _, res := range r.Resources {
			if !slices.Contains(everyone, res) {
				return true
			}
		}
	}
	return false
}
