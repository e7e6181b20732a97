// Package preflight checks, before a run touches a cluster, that the
// identity in use holds every permission bulkhead needs, and names what is
// missing. The permissions are the rules of the ClusterRole bulkhead ships
// (fixtures/rbac/bulkhead-runner.yaml), so the documentation and the check
// cannot drift apart.
package preflight

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

// Permission is one verb on one resource, cluster-wide.
type Permission struct {
	Group, Resource, Subresource, Verb string
}

func (p Permission) String() string {
	r := p.Resource
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	if p.Group != "" {
		r += "." + p.Group
	}
	return p.Verb + " " + r
}

// ForRun returns the permissions a run needs: every rule of the shipped
// ClusterRole.
func ForRun() ([]Permission, error) {
	return FromClusterRole(fixtures.RunnerClusterRole)
}

// FromClusterRole expands a ClusterRole manifest into permissions.
func FromClusterRole(manifest []byte) ([]Permission, error) {
	var cr rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(manifest, &cr); err != nil {
		return nil, fmt.Errorf("runner ClusterRole: %w", err)
	}
	var out []Permission
	for _, r := range cr.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				resource, sub, _ := strings.Cut(res, "/")
				for _, v := range r.Verbs {
					out = append(out, Permission{Group: g, Resource: resource, Subresource: sub, Verb: v})
				}
			}
		}
	}
	return out, nil
}

// Check asks the API server, for each permission, whether the identity of c
// holds it, and returns the missing ones (sorted, as "verb resource.group").
func Check(ctx context.Context, c *kube.Clients, perms []Permission) ([]string, error) {
	type answer struct {
		p       Permission
		allowed bool
		err     error
	}
	answers := make([]answer, len(perms))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, p := range perms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ssar := &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authzv1.ResourceAttributes{Group: p.Group, Resource: p.Resource, Subresource: p.Subresource, Verb: p.Verb},
			}}
			res, err := c.Core.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, ssar, metav1.CreateOptions{})
			if err != nil {
				answers[i] = answer{p: p, err: err}
				return
			}
			answers[i] = answer{p: p, allowed: res.Status.Allowed}
		}()
	}
	wg.Wait()
	var missing []string
	for _, a := range answers {
		if a.err != nil {
			return nil, fmt.Errorf("check permission %s: %w", a.p, a.err)
		}
		if !a.allowed {
			missing = append(missing, a.p.String())
		}
	}
	sort.Strings(missing)
	return missing, nil
}
