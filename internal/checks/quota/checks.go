// Package quota proves that a tenant cannot take more than its allotment:
// acting as the tenant's identities that may make the request (impersonated
// users, ServiceAccounts with their own token; see internal/actors), each
// check shows a request within a ResourceQuota dimension is admitted (the
// positive control) and that one over it is refused by the API server with
// 403 "exceeded quota" naming the dimension. A refusal for any other reason
// is not a pass, and a refusal counts only for an identity that, in the
// same namespace, had the comparable request within the quota admitted. It
// also proves the LimitRange (defaults, per-container max) and that the
// tenant cannot change or delete its own quota or limit range.
//
// Over-quota attempts are server-side dry-runs (quota admission evaluates
// them; nothing is persisted), so quantities (cpu, memory, storage) are
// proven at the edge without touching the tenant's headroom. Counts (pods,
// Services, Secrets, ...) can only be reached with real objects, created up
// to the bound (see fillMode): in bulkhead's own reference tenants; on a
// user's tenants, in bulkhead's own namespace carrying a copy of the
// tenant's quota (the policy, not the live headroom), or, with
// --allow-quota-fill, in the tenant's namespace for seconds. Objects are
// deleted before the check returns, also when it fails; the check then
// waits until the quota's usage is back where it was. Pods created for real
// can never run (inert.go).
package quota

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// Check IDs of the quota area.
const (
	IDPods       = "QUOTA-001"
	IDCompute    = "QUOTA-002"
	IDDeployment = "QUOTA-003"
	IDStorage    = "QUOTA-004"
	IDObjects    = "QUOTA-005"
	IDExposure   = "QUOTA-006"
	IDLimitRange = "QUOTA-007"
	IDProtected  = "QUOTA-008"
)

// Checks returns the quota checks.
func Checks() []checks.Check {
	return []checks.Check{
		{
			ID: IDPods, Area: checks.Quota,
			Run: run(IDPods, runPods),

			Creates: countFootprint([]string{"Pod"}, "Pods that never schedule (node selector matching no node), up to the pod quota (at most 25; one more by bulkhead to make the quota recount)"),
		},
		{
			ID: IDCompute, Area: checks.Quota,
			Run: run(IDCompute, runCompute),

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDDeployment, Area: checks.Quota,
			Run: run(IDDeployment, runDeployment),

			Creates: countFootprint([]string{"Deployment"}, "a Deployment per identity, one at a time, asking for more replicas than the pod quota leaves (its ReplicaSet and never-scheduled Pods up to the quota)"),
		},
		{
			ID: IDStorage, Area: checks.Quota,
			Run: run(IDStorage, runStorage),

			Creates: countFootprint([]string{"PersistentVolumeClaim"}, "PersistentVolumeClaims of 1Mi naming a StorageClass that does not exist (never provisioned), up to the claim quota (at most 25)"),
		},
		{
			ID: IDObjects, Area: checks.Quota,
			Run: run(IDObjects, runObjects),

			Creates: countFootprint([]string{"Service", "Secret", "ConfigMap"}, "Services (ClusterIP, selecting nothing), empty Secrets and empty ConfigMaps, up to their count quotas (at most 25 each)"),
		},
		{
			ID: IDExposure, Area: checks.Quota,
			Run: run(IDExposure, runExposure),

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDLimitRange, Area: checks.Quota,
			Run: run(IDLimitRange, runLimitRange),

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDProtected, Area: checks.Quota,
			Run: run(IDProtected, runProtected),

			Creates: checks.CreatesNothing("reads and server-side dry-run requests as the tenant"),
		},
	}
}

func run(id string, fn func(ctx context.Context, r *nsRun) error) func(context.Context, *checks.Env) checks.Outcome {
	return func(ctx context.Context, env *checks.Env) checks.Outcome {
		return inTenants(ctx, env, id, fn)
	}
}

// The count dimensions of the quota checks.
var (
	podsDim    = countDim{res: corev1.ResourcePods, gvr: gvrPods, short: "pod", build: builder.smallPod}
	objectDims = []countDim{
		{res: corev1.ResourceServices, gvr: gvrServices, short: "svc", build: func(b builder, name string) *unstructuredObj {
			return b.service(name, corev1.ServiceTypeClusterIP)
		}},
		{res: "count/secrets", gvr: gvrSecrets, short: "secret", build: builder.secret},
		{res: "count/configmaps", gvr: gvrConfigMaps, short: "cm", build: builder.configMap},
	}
	// Claims that fill the count are real, so they name a StorageClass that
	// does not exist: counted, never provisioned.
	claimsDim = countDim{res: corev1.ResourcePersistentVolumeClaims, gvr: gvrPVCs, short: "pvc", build: func(b builder, name string) *unstructuredObj {
		return b.pvc(name, resource.MustParse("1Mi"), NeverProvisionedClass)
	}}
)

func runPods(ctx context.Context, r *nsRun) error {
	return overrunCount(ctx, r, podsDim)
}

func runObjects(ctx context.Context, r *nsRun) error {
	for _, d := range objectDims {
		if err := overrunCount(ctx, r, d); err != nil {
			return err
		}
		// Give the namespace its objects back before the next dimension.
		if err := r.cleanup(ctx); err != nil {
			return err
		}
	}
	return nil
}

func runExposure(ctx context.Context, r *nsRun) error {
	acts, err := r.able(ctx, actors.Create("services"))
	if err != nil || len(acts) == 0 {
		return err
	}
	clusterIP := func(name string) *unstructuredObj { return r.build.service(name, corev1.ServiceTypeClusterIP) }
	if err := overrunZero(ctx, r, acts, corev1.ResourceServicesNodePorts, gvrServices, "nodeport", clusterIP,
		func(name string) *unstructuredObj { return r.build.service(name, corev1.ServiceTypeNodePort) }, "type ClusterIP"); err != nil {
		return err
	}
	return overrunZero(ctx, r, acts, corev1.ResourceServicesLoadBalancers, gvrServices, "lb", clusterIP,
		func(name string) *unstructuredObj { return r.build.service(name, corev1.ServiceTypeLoadBalancer) }, "type ClusterIP")
}

// countFootprint is where a count check's objects go: in bulkhead's own
// tenants, and in a user's tenant only with --allow-quota-fill (for
// seconds); otherwise in bulkhead's copy namespace, which carries copies of
// the tenant's ResourceQuotas and LimitRanges.
func countFootprint(kinds []string, what string) []checks.Footprint {
	return []checks.Footprint{
		{Where: checks.TenantNamespaces, Scope: checks.WithIdentities, Kinds: kinds, Lifetime: checks.DuringCheck,
			What:    what + ", as the tenant: always in bulkhead's reference tenants; in your tenants (--config) only with --allow-quota-fill, holding the quota for seconds",
			OffWith: "leave --allow-quota-fill off (the default) on your tenants"},
		{Where: checks.OwnNamespaces, Kinds: append([]string{"Namespace", "ResourceQuota", "LimitRange"}, kinds...), Lifetime: checks.DuringCheck,
			What: "for each of your tenant namespaces (--config, without --allow-quota-fill): a namespace bh-<run>-quota-<id> with copies of its ResourceQuotas and LimitRanges, and there " + what + ", as bulkhead"},
	}
}
