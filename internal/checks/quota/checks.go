// Package quota proves that a tenant cannot take more than its allotment:
// acting as the tenant (its impersonated user, and its ServiceAccount with
// its own token), each check fills a ResourceQuota dimension up to its bound,
// shows a request within it is admitted (the positive control) and that the
// next one is refused by the API server with 403 "exceeded quota" naming the
// dimension. A refusal for any other reason is not a pass. It also proves
// the LimitRange (defaults, per-container max) and that the tenant cannot
// change or delete its own quota or limit range.
//
// Over-quota attempts are server-side dry-runs (quota admission evaluates
// them; nothing is persisted). Objects that take a count to its bound are
// real, created as the tenant, and deleted before the check returns, also
// when it fails; the check then waits until the quota's usage is back where
// it was, so other checks see the namespace as they left it.
package quota

import (
	"context"

	corev1 "k8s.io/api/core/v1"

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

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.WithIdentities, Kinds: []string{"Pod"}, What: "Pods that never schedule (node selector matching no node), as the tenant, up to its pod quota (at most 25; one more by bulkhead to make the quota recount)", Lifetime: checks.DuringCheck}},
		},
		{
			ID: IDCompute, Area: checks.Quota,
			Run: run(IDCompute, runCompute),

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDDeployment, Area: checks.Quota,
			Run: run(IDDeployment, runDeployment),

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.WithIdentities, Kinds: []string{"Deployment"}, What: "a Deployment per identity, one at a time, as the tenant, asking for more replicas than the pod quota leaves (its ReplicaSet and never-scheduled Pods up to the quota)", Lifetime: checks.DuringCheck}},
		},
		{
			ID: IDStorage, Area: checks.Quota,
			Run: run(IDStorage, runStorage),

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.WithIdentities, Kinds: []string{"PersistentVolumeClaim"}, What: "PersistentVolumeClaims of 1Mi naming a StorageClass that does not exist (never provisioned), as the tenant, up to its claim quota (at most 25)", Lifetime: checks.DuringCheck}},
		},
		{
			ID: IDObjects, Area: checks.Quota,
			Run: run(IDObjects, runObjects),

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.WithIdentities, Kinds: []string{"Service", "Secret", "ConfigMap"}, What: "Services (ClusterIP, selecting nothing), empty Secrets and empty ConfigMaps, as the tenant, up to their count quotas (at most 25 each)", Lifetime: checks.DuringCheck}},
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

func runPods(ctx context.Context, r *nsRun) error {
	return overrunCount(ctx, r, countDim{res: corev1.ResourcePods, gvr: gvrPods, short: "pod", build: r.build.smallPod})
}

func runObjects(ctx context.Context, r *nsRun) error {
	dims := []countDim{
		{res: corev1.ResourceServices, gvr: gvrServices, short: "svc", build: func(name string) *unstructuredObj {
			return r.build.service(name, corev1.ServiceTypeClusterIP)
		}},
		{res: "count/secrets", gvr: gvrSecrets, short: "secret", build: r.build.secret},
		{res: "count/configmaps", gvr: gvrConfigMaps, short: "cm", build: r.build.configMap},
	}
	for _, d := range dims {
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
	clusterIP := func(name string) *unstructuredObj { return r.build.service(name, corev1.ServiceTypeClusterIP) }
	if err := overrunZero(ctx, r, corev1.ResourceServicesNodePorts, gvrServices, "nodeport", clusterIP,
		func(name string) *unstructuredObj { return r.build.service(name, corev1.ServiceTypeNodePort) }, "type ClusterIP"); err != nil {
		return err
	}
	return overrunZero(ctx, r, corev1.ResourceServicesLoadBalancers, gvrServices, "lb", clusterIP,
		func(name string) *unstructuredObj { return r.build.service(name, corev1.ServiceTypeLoadBalancer) }, "type ClusterIP")
}
