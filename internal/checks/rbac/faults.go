package rbac

import (
	"context"
	"errors"
	"fmt"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// NegativeControls are the faults that must make the rbac checks fail,
// injected into the run's reference tenants a and b. RBAC-001's faults
// (tenant a reading Secrets in b's namespace, or everywhere) break the
// secrets checks too and are declared with them (secrets.NegativeControls).
func NegativeControls() []checks.NegativeControl {
	return []checks.NegativeControl{
		{
			Fault: "tenant b may read namespaces cluster-wide",
			Inject: Grant(fixtures.TenantB, "",
				[]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}}},
				authorizationv1.ResourceAttributes{Verb: "list", Resource: "namespaces"}),
			Expect: []checks.Expectation{{Check: IDClusterScope, Names: func(env *checks.Env) []string {
				return []string{"list namespaces", fixtures.TenantUser(env.RunID, fixtures.TenantB)}
			}, Assert: onlyTenantLeaks(fixtures.TenantB)}},
		},
		{
			Fault: "tenant b may impersonate users, groups and ServiceAccounts",
			Inject: Grant(fixtures.TenantB, "",
				[]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"users", "groups", "serviceaccounts"}, Verbs: []string{"impersonate"}}},
				authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: "system:masters"}),
			Expect: []checks.Expectation{{Check: IDEscalation, Names: func(env *checks.Env) []string {
				return []string{"impersonate groups", fixtures.TenantUser(env.RunID, fixtures.TenantB)}
			}, Assert: onlyTenantLeaks(fixtures.TenantB)}},
		},
		{
			// Cluster-wide for the fault's seconds: only e2e runs inject it,
			// on their own cluster.
			Fault:  "anonymous requests may read the API and list namespaces",
			Inject: anonymousAccess,
			Expect: []checks.Expectation{{Check: IDAnonymous, Names: func(*checks.Env) []string {
				return []string{"system:anonymous", "list namespaces"}
			}}},
		},
		{
			Fault:  "tenants may bind roles to subjects outside their tenant (the reference policy is unbound)",
			Inject: unbindForeignSubjects,
			Expect: []checks.Expectation{{Check: IDCrossTenantGrant, Names: func(env *checks.Env) []string {
				return []string{"Group system:authenticated", "admitted"}
			}}},
		},
	}
}

// onlyTenantLeaks: every failing test is by an identity of tenant.
func onlyTenantLeaks(tenant string) func(env *checks.Env, res reports.CheckResult) []string {
	return func(_ *checks.Env, res reports.CheckResult) []string {
		var problems []string
		leaks := 0
		for _, o := range res.Observations {
			if !o.Leak() {
				continue
			}
			leaks++
			if o.Actor.Tenant != tenant {
				problems = append(problems, "a leak by another tenant: "+checks.DescribeOne(o))
			}
		}
		if leaks == 0 {
			problems = append(problems, "no leak observed")
		}
		return problems
	}
}

// Grant injects a grant to tenant's group and probe ServiceAccount: a
// Role with rules in the namespace of tenant in (a RoleBinding there), or,
// with in empty, a ClusterRole bound cluster-wide. It returns once an
// access review shows attrs allowed for each of tenant's identities (in
// in's namespace when attrs names none); the Restore removes the grant and
// returns once it is gone.
func Grant(tenant, in string, rules []rbacv1.PolicyRule, attrs authorizationv1.ResourceAttributes) func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	return func(ctx context.Context, env *checks.Env) (checks.Restore, error) {
		t, ok := env.Topology.Tenant(tenant)
		if !ok || len(t.Namespaces) == 0 {
			return nil, fmt.Errorf("no tenant %s in this run", tenant)
		}
		ns := ""
		if in != "" {
			o, ok := env.Topology.Tenant(in)
			if !ok || len(o.Namespaces) == 0 {
				return nil, fmt.Errorf("no tenant %s in this run", in)
			}
			ns = o.Namespaces[0]
			if attrs.Namespace == "" {
				attrs.Namespace = ns
			}
		}
		objs, err := fixtures.RenderGrant(fixtures.GrantSpec{RunID: env.RunID, Tenant: tenant, Name: "bulkhead-" + env.RunID + "-negative-" + tenant,
			Namespace: ns, Rules: rules, Subjects: fixtures.TenantSubjects(env.RunID, tenant, t.Namespaces[0])})
		if err != nil {
			return nil, err
		}
		return apply(ctx, env, objs, func(ctx context.Context, allowed bool) error {
			return WaitAccess(ctx, env, t.Identities, attrs, allowed)
		})
	}
}

// apply creates objs and waits until effect(true) holds; the Restore
// deletes them and waits until effect(false) holds.
func apply(ctx context.Context, env *checks.Env, objs []*unstructured.Unstructured, effect func(ctx context.Context, inEffect bool) error) (checks.Restore, error) {
	applier := kube.NewApplier(env.Kube)
	restore := func(ctx context.Context) error {
		var errs []error
		for i := len(objs) - 1; i >= 0; i-- {
			errs = append(errs, applier.Delete(ctx, objs[i]))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		return effect(ctx, false)
	}
	if err := applier.Create(ctx, objs...); err != nil {
		return restore, err
	}
	return restore, effect(ctx, true)
}

// anonymousAccess binds system:anonymous to reading the API's discovery
// and listing namespaces, cluster-wide.
func anonymousAccess(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	objs, err := fixtures.RenderGrant(fixtures.GrantSpec{RunID: env.RunID, Tenant: "anonymous", Name: "bulkhead-" + env.RunID + "-negative-anonymous",
		Rules: []rbacv1.PolicyRule{
			{NonResourceURLs: []string{"/api", "/api/*", "/apis", "/apis/*"}, Verbs: []string{"get"}},
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}},
		},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: AnonymousIdentity.User}}})
	if err != nil {
		return nil, err
	}
	return apply(ctx, env, objs, func(ctx context.Context, allowed bool) error {
		return WaitAccess(ctx, env, []checks.Identity{AnonymousIdentity}, authorizationv1.ResourceAttributes{Verb: "list", Resource: "namespaces"}, allowed)
	})
}

// unbindForeignSubjects removes the binding of the run's policy that holds
// tenants to binding roles only to their own subjects; Restore binds it
// again. Each waits until tenant a's user binding a role in its namespace
// to system:authenticated is admitted (dry-run), or refused again.
func unbindForeignSubjects(ctx context.Context, env *checks.Env) (checks.Restore, error) {
	binding, err := fixtures.RunPolicy(env.RunID, fixtures.KindValidatingAdmissionBinding, fixtures.PolicyDenyForeignSubjects)
	if err != nil {
		return nil, err
	}
	a, ok := env.Topology.Tenant(fixtures.TenantA)
	if !ok || len(a.Namespaces) == 0 || len(a.Identities) == 0 {
		return nil, errors.New("no tenant a with identities in this run")
	}
	applier := kube.NewApplier(env.Kube)
	restore := func(ctx context.Context) error {
		if err := applier.Create(ctx, binding); err != nil {
			return err
		}
		return waitGrantAdmitted(ctx, env, a, false)
	}
	if err := applier.Delete(ctx, binding); err != nil {
		return restore, err
	}
	return restore, waitGrantAdmitted(ctx, env, a, true)
}

// waitGrantAdmitted polls a dry-run RoleBinding, as tenant t's first
// identity, of system:basic-user in its namespace to system:authenticated
// until it is admitted (or refused), or a minute passes.
func waitGrantAdmitted(ctx context.Context, env *checks.Env, t checks.Tenant, admitted bool) error {
	as, err := actors.Of(env).Actor(t.Name, t.Namespaces[0], t.Identities[0])
	if err != nil {
		return err
	}
	ns := t.Namespaces[0]
	rb := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": "bulkhead-" + env.RunID + "-grant-probe", "namespace": ns},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": grantedRole},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}},
	}}
	res := as.Clients.Dynamic.Resource(rbacRoleBindings).Namespace(ns)
	var last string
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := res.Create(ctx, rb, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		last = fmt.Sprint(err)
		if err != nil && !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			return false, nil // not an answer about the subject yet
		}
		return (err == nil) == admitted, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for a RoleBinding in %s to system:authenticated to be admitted=%v (last: %s): %w", ns, admitted, last, err)
	}
	return nil
}

var rbacRoleBindings = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}

// WaitAccess polls a fresh SubjectAccessReview (no cache: a fault changes
// the answer) for each identity until attrs are allowed (or not), or a
// minute passes: a fault must be in effect before a check runs, or its
// failure (or pass) proves nothing.
func WaitAccess(ctx context.Context, env *checks.Env, ids []checks.Identity, attrs authorizationv1.ResourceAttributes, allowed bool) error {
	for _, id := range ids {
		var last string
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: id.User, Groups: id.Groups, ResourceAttributes: &attrs}}
			res, err := env.Kube.Core.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			last = res.Status.Reason
			return res.Status.Allowed == allowed, nil
		})
		if err != nil {
			return fmt.Errorf("waiting for %s to be allowed=%v to %s %s in %q (last: %s): %w", id, allowed, attrs.Verb, attrs.Resource, attrs.Namespace, last, err)
		}
	}
	return nil
}
