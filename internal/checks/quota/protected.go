package quota

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/reports"
)

// protectedKind is a kind of object that bounds the tenant, and how a
// tenant would loosen one.
type protectedKind struct {
	gvr      schema.GroupVersionResource
	expected func(e expectation) []string
	// loosen changes obj the way a tenant would like to (for an update).
	loosen func(obj *unstructured.Unstructured) error
	// patch is the JSON merge patch that does the same.
	patch string
	// fresh is a new object of the kind the tenant might create.
	fresh func(b builder, name string) *unstructured.Unstructured
}

var protectedKinds = []protectedKind{
	{
		gvr:      gvrQuotas,
		expected: func(e expectation) []string { return e.Quotas },
		loosen: func(obj *unstructured.Unstructured) error {
			return unstructured.SetNestedField(obj.Object, "1000", "spec", "hard", "pods")
		},
		patch: `{"spec":{"hard":{"pods":"1000"}}}`,
		fresh: builder.resourceQuota,
	},
	{
		gvr:      gvrLimitRanges,
		expected: func(e expectation) []string { return e.LimitRanges },
		loosen: func(obj *unstructured.Unstructured) error {
			return unstructured.SetNestedSlice(obj.Object, []any{}, "spec", "limits")
		},
		patch: `{"spec":{"limits":[]}}`,
		fresh: builder.limitRange,
	},
}

// runProtected tries, as the tenant, every write that would loosen its
// bounds: update, patch and delete of each ResourceQuota and LimitRange of
// the namespace, and creating new ones, all as server-side dry-runs (so a
// leak changes nothing). Each must be refused with 403. The positive
// controls: the same identity reads each object, and a dry-run write it is
// allowed (a ConfigMap) is admitted, so a refusal is not "nothing works".
func runProtected(ctx context.Context, r *nsRun) error {
	dry := []string{metav1.DryRunAll}
	for _, a := range r.actors {
		name := r.name("control")
		_, err := r.create(ctx, a, gvrConfigMaps, r.build.configMap(name), true)
		obs, ok, detail := judgeAccepted(err)
		r.observe(a, reports.RoleControl, "dry-run create configmap [a write the tenant may make]", gvrConfigMaps, name, wantAccepted, obs, ok, detail)
	}
	for _, pk := range protectedKinds {
		list, err := r.env.Kube.Dynamic.Resource(pk.gvr).Namespace(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list %s in %s: %w", pk.gvr.Resource, r.ns, err)
		}
		var have []string
		for _, it := range list.Items {
			have = append(have, it.GetName())
		}
		for _, want := range pk.expected(r.exp) {
			if !contains(have, want) {
				r.fail(reports.RoleTest, "get "+kindOf(pk.gvr), pk.gvr, want, "present", "missing",
					fmt.Sprintf("expected %s %s (from %s) is not in the namespace (it has: %s)", kindOf(pk.gvr), want, r.exp.Source, strings.Join(have, ", ")))
			}
		}
		for _, a := range r.actors {
			ri := a.clients.Dynamic.Resource(pk.gvr).Namespace(r.ns)
			for _, it := range list.Items {
				obj, err := ri.Get(ctx, it.GetName(), metav1.GetOptions{})
				obs, ok, detail := judgeAccepted(err)
				if obs == wantAccepted {
					obs = "allowed"
				}
				r.observe(a, reports.RoleControl, "get "+kindOf(pk.gvr)+" [the tenant may read it]", pk.gvr, it.GetName(), "allowed", obs, ok, detail)
				if err != nil {
					obj = it.DeepCopy() // still try the write with what bulkhead read
				}
				if err := pk.loosen(obj); err != nil {
					return fmt.Errorf("modify %s %s: %w", kindOf(pk.gvr), it.GetName(), err)
				}
				_, err = ri.Update(ctx, obj, metav1.UpdateOptions{DryRun: dry, FieldManager: "bulkhead"})
				r.recordWrite(a, "dry-run update", pk, it.GetName(), err)
				_, err = ri.Patch(ctx, it.GetName(), types.MergePatchType, []byte(pk.patch), metav1.PatchOptions{DryRun: dry, FieldManager: "bulkhead"})
				r.recordWrite(a, "dry-run patch "+pk.patch, pk, it.GetName(), err)
				err = ri.Delete(ctx, it.GetName(), metav1.DeleteOptions{DryRun: dry})
				r.recordWrite(a, "dry-run delete", pk, it.GetName(), err)
			}
			name := r.name("tenant-made")
			_, err := r.create(ctx, a, pk.gvr, pk.fresh(r.build, name), true)
			r.recordWrite(a, "dry-run create", pk, name, err)
		}
	}
	return nil
}

func (r *nsRun) recordWrite(a actor, verb string, pk protectedKind, name string, err error) {
	obs, ok, detail := judgeForbidden(err)
	r.observe(a, reports.RoleTest, verb+" "+kindOf(pk.gvr), pk.gvr, name, wantForbidden, obs, ok, detail)
}
