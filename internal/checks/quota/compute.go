package quota

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
)

// computeDims are the compute quota dimensions, each with the resource it
// counts and whether it counts limits (else requests).
var computeDims = []struct {
	res    corev1.ResourceName
	base   corev1.ResourceName
	limits bool
}{
	{corev1.ResourceRequestsCPU, corev1.ResourceCPU, false},
	{corev1.ResourceRequestsMemory, corev1.ResourceMemory, false},
	{corev1.ResourceLimitsCPU, corev1.ResourceCPU, true},
	{corev1.ResourceLimitsMemory, corev1.ResourceMemory, true},
}

// runCompute asks, for each compute dimension, for exactly what is left
// and one unit more, in one pod whose containers each stay within the
// namespace's LimitRange max (so the LimitRange is never the reason).
func runCompute(ctx context.Context, r *nsRun) error {
	acts, err := r.able(ctx, actors.Create("pods"))
	if err != nil || len(acts) == 0 {
		return err
	}
	lrs, err := r.limitRanges(ctx)
	if err != nil {
		return err
	}
	max := containerLimits(lrs).Max
	for _, d := range computeDims {
		perContainer := int64(0)
		if q, ok := max[d.base]; ok {
			perContainer = amount(d.base, q)
		}
		err := overrunAmount(ctx, r, acts, amountDim{res: d.res, base: d.base, gvr: gvrPods, short: shortName(d.res),
			build: func(name string, total int64) (*unstructuredObj, string) {
				cs := computeContainers(d.base, d.limits, total, perContainer)
				if len(cs) > maxContainers {
					return nil, fmt.Sprintf("%s of %s in containers of at most %s (LimitRange max) would take %d containers; bulkhead builds at most %d",
						fmtAmount(d.base, total), d.res, fmtAmount(d.base, perContainer), len(cs), maxContainers)
				}
				return r.build.pod(name, cs...), ""
			}})
		if err != nil {
			return err
		}
	}
	return nil
}

// runStorage asks for exactly the storage left and one MiB more (dry-run),
// then fills the claim count and tries one more claim (see fillMode). The
// claims that fill the count are real, so they name a StorageClass that
// does not exist: they are counted but never provisioned.
func runStorage(ctx context.Context, r *nsRun) error {
	acts, err := r.able(ctx, actors.Create("persistentvolumeclaims"))
	if err != nil || len(acts) == 0 {
		return err
	}
	err = overrunAmount(ctx, r, acts, amountDim{res: corev1.ResourceRequestsStorage, base: corev1.ResourceStorage, gvr: gvrPVCs, short: "storage",
		build: func(name string, total int64) (*unstructuredObj, string) {
			// Dry-run only: the claim a tenant would make, default class.
			return r.build.pvc(name, quantity(corev1.ResourceStorage, total), ""), ""
		}})
	if err != nil {
		return err
	}
	return overrunCount(ctx, r, claimsDim)
}

// shortName turns "requests.cpu" into "requests-cpu" for object names.
func shortName(r corev1.ResourceName) string {
	out := []byte(r)
	for i, c := range out {
		if c == '.' || c == '/' {
			out[i] = '-'
		}
	}
	return string(out)
}
