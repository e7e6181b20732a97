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
			Title:  "Pods beyond the tenant's pod quota are rejected",
			Proves: "Acting as the tenant, pods can be created up to the pod quota (positive control) and the next pod is refused by the API server with 403 \"exceeded quota\" naming pods.",
			Run:    run(IDPods, runPods),

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.WithIdentities, Kinds: []string{"Pod"}, What: "Pods that never schedule (node selector matching no node), as the tenant, up to its pod quota (at most 25; one more by bulkhead to make the quota recount)", Lifetime: checks.DuringCheck}},
		},
		{
			ID: IDCompute, Area: checks.Quota,
			Title:  "CPU and memory beyond the tenant's quota are rejected",
			Proves: "Acting as the tenant, a pod asking for exactly the CPU or memory (requests and limits) left under the quota is admitted (positive control) and one asking for one unit more is refused with 403 \"exceeded quota\" naming that dimension.",
			Run:    run(IDCompute, runCompute),

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDDeployment, Area: checks.Quota,
			Title:  "A Deployment cannot scale a tenant beyond its pod quota",
			Proves: "A Deployment the tenant creates with more replicas than the pod quota leaves gets pods up to the quota (positive control) and no more: its ReplicaSet's further pods are refused, as its FailedCreate event with \"exceeded quota\" shows.",
			Run:    run(IDDeployment, runDeployment),

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.WithIdentities, Kinds: []string{"Deployment"}, What: "a Deployment per identity, one at a time, as the tenant, asking for more replicas than the pod quota leaves (its ReplicaSet and never-scheduled Pods up to the quota)", Lifetime: checks.DuringCheck}},
		},
		{
			ID: IDStorage, Area: checks.Quota,
			Title:  "Storage claims beyond the tenant's quota are rejected",
			Proves: "Acting as the tenant, a PersistentVolumeClaim for exactly the storage left is admitted and one for more is refused (requests.storage); claims can be created up to the claim count and the next one is refused (persistentvolumeclaims); both with 403 \"exceeded quota\".",
			Run:    run(IDStorage, runStorage),

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.WithIdentities, Kinds: []string{"PersistentVolumeClaim"}, What: "PersistentVolumeClaims of 1Mi naming a StorageClass that does not exist (never provisioned), as the tenant, up to its claim quota (at most 25)", Lifetime: checks.DuringCheck}},
		},
		{
			ID: IDObjects, Area: checks.Quota,
			Title:  "Services, Secrets and ConfigMaps beyond the tenant's object quota are rejected",
			Proves: "Acting as the tenant, Services, Secrets and ConfigMaps can be created up to their count quota (positive control) and the next one of each is refused with 403 \"exceeded quota\" naming the count.",
			Run:    run(IDObjects, runObjects),

			Creates: []checks.Footprint{{Where: checks.TenantNamespaces, Scope: checks.WithIdentities, Kinds: []string{"Service", "Secret", "ConfigMap"}, What: "Services (ClusterIP, selecting nothing), empty Secrets and empty ConfigMaps, as the tenant, up to their count quotas (at most 25 each)", Lifetime: checks.DuringCheck}},
		},
		{
			ID: IDExposure, Area: checks.Quota,
			Title:  "Tenants cannot create NodePort or LoadBalancer Services",
			Proves: "Acting as the tenant, a ClusterIP Service is admitted (positive control) while a NodePort and a LoadBalancer Service are refused with 403 \"exceeded quota\" naming services.nodeports and services.loadbalancers.",
			Run:    run(IDExposure, runExposure),

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDLimitRange, Area: checks.Quota,
			Title:  "Containers get default resources and cannot exceed the per-container maximum",
			Proves: "Acting as the tenant, a container without resources is given the LimitRange's default requests and limits, a container at the per-container maximum is admitted (positive control) and one over it is refused with 403 by the LimitRange.",
			Run:    run(IDLimitRange, runLimitRange),

			Creates: checks.CreatesNothing("server-side dry-run requests as the tenant"),
		},
		{
			ID: IDProtected, Area: checks.Quota,
			Title:  "Tenants cannot change or delete their own ResourceQuota or LimitRange",
			Proves: "Acting as the tenant, which can read its ResourceQuota and LimitRange and make other writes in its namespace (positive controls), server-side dry-run updates, patches, deletes and creates of ResourceQuotas and LimitRanges are all refused with 403.",
			Run:    run(IDProtected, runProtected),

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
