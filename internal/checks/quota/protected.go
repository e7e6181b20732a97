package quota

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
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

// runProtected tries, as each of the tenant's identities, every write that
// would loosen its bounds: update, patch and delete of each ResourceQuota
// and LimitRange of the namespace, and creating new ones, all as
// server-side dry-runs (so a leak changes nothing). Each must be refused
// with a 403 that refuses that identity. Whatever RBAC lets an identity do
// decides its positive control: a request of its own that succeeds in the
// namespace (a dry-run write if it may make one, else a read of the quota),
// so a refusal is not "nothing works" nor bulkhead's own request refused.
// An identity that may do none of these is not applicable here.
func runProtected(ctx context.Context, r *nsRun) error {
	dry := []string{metav1.DryRunAll}
	lists := make([][]unstructured.Unstructured, len(protectedKinds))
	for i, pk := range protectedKinds {
		list, err := r.env.Kube.Dynamic.Resource(pk.gvr).Namespace(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list %s in %s: %w", pk.gvr.Resource, r.ns, err)
		}
		lists[i] = list.Items
		var have []string
		for _, it := range list.Items {
			have = append(have, it.GetName())
		}
		for _, want := range pk.expected(r.exp) {
			if !contains(have, want) {
				r.fail(attempt{role: reports.RoleTest, method: "get " + kindOf(pk.gvr), gvr: pk.gvr, name: want, expected: "present"}, "missing",
					fmt.Sprintf("expected %s %s (from %s) is not in the namespace (it has: %s)", kindOf(pk.gvr), want, r.exp.Source, strings.Join(have, ", ")))
			}
		}
	}
	acting := 0
	for _, id := range r.tenant.Identities {
		a, err := r.actorFor(ctx, id)
		if err != nil {
			return err
		}
		key, ok, err := r.showActs(ctx, a, lists)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		acting++
		needs := []string{key}
		for i, pk := range protectedKinds {
			ri := a.clients.Dynamic.Resource(pk.gvr).Namespace(r.ns)
			mayRead := actors.Of(r.env).May(ctx, id, r.ns, actors.Get(pk.gvr.Resource))
			for _, it := range lists[i] {
				obj := it.DeepCopy() // the write is tried with what bulkhead read ...
				if mayRead.Allowed {
					// ... or what the identity reads itself, when it may.
					got, err := ri.Get(ctx, it.GetName(), metav1.GetOptions{})
					ans := judgeAccepted(err)
					if ans.OK {
						ans.Observed, obj = "allowed", got
					}
					r.record(a, attempt{role: reports.RoleControl, method: "get " + kindOf(pk.gvr) + " [the tenant may read it]", gvr: pk.gvr, name: it.GetName(), expected: "allowed"}, ans)
				}
				if err := pk.loosen(obj); err != nil {
					return fmt.Errorf("modify %s %s: %w", kindOf(pk.gvr), it.GetName(), err)
				}
				_, err := ri.Update(ctx, obj, metav1.UpdateOptions{DryRun: dry, FieldManager: fixtures.ManagedBy})
				r.recordWrite(a, "dry-run update", pk, it.GetName(), needs, err)
				_, err = ri.Patch(ctx, it.GetName(), types.MergePatchType, []byte(pk.patch), metav1.PatchOptions{DryRun: dry, FieldManager: fixtures.ManagedBy})
				r.recordWrite(a, "dry-run patch "+pk.patch, pk, it.GetName(), needs, err)
				err = ri.Delete(ctx, it.GetName(), metav1.DeleteOptions{DryRun: dry})
				r.recordWrite(a, "dry-run delete", pk, it.GetName(), needs, err)
			}
			name := r.name("tenant-made")
			_, err := r.create(ctx, a, pk.gvr, pk.fresh(r.build, name), true)
			r.recordWrite(a, "dry-run create", pk, name, needs, err)
		}
	}
	if acting == 0 {
		r.notEvaluated = append(r.notEvaluated, fmt.Sprintf("tenant %s in %s: no identity holds a right there that shows it can act", r.tenant.Name, r.ns))
	}
	return nil
}

// actsVia are the requests, in order of preference, that can show an
// identity acts in a namespace: a write like those it must not make, else
// a read of the very objects it must not change.
type actVia struct {
	right actors.Right
	what  string
}

var actsVia = []actVia{
	{actors.Create("configmaps"), "dry-run create configmap"},
	{actors.Create("secrets"), "dry-run create secret"},
	{actors.Get("resourcequotas"), "get resourcequota"},
	{actors.Get("limitranges"), "get limitrange"},
	{actors.List("resourcequotas"), "list resourcequotas"},
}

// showActs makes the positive control of actor a: the requests of actsVia
// RBAC allows a, made as a until one succeeds (a write can meet a full
// quota). It returns the proof key, or ok false (with a not-applicable
// observation) when a may make none of them.
func (r *nsRun) showActs(ctx context.Context, a actor, lists [][]unstructured.Unstructured) (string, bool, error) {
	key := admittedKey(a, "a request of its own", r.ns)
	vias, tried, err := r.actsVias(ctx, a.id)
	if err != nil {
		return "", false, err
	}
	for _, via := range vias {
		at := attempt{role: reports.RoleControl, method: via.what + " [a request the identity may make]", expected: wantAccepted, proves: []string{key}}
		var err error
		switch via.right.Resource {
		case "configmaps":
			at.gvr, at.name = gvrConfigMaps, r.name("control")
			_, err = r.create(ctx, a, gvrConfigMaps, r.build.configMap(at.name), true)
		case "secrets":
			at.gvr, at.name = gvrSecrets, r.name("control")
			_, err = r.create(ctx, a, gvrSecrets, r.build.secret(at.name), true)
		default:
			at.gvr = gvrQuotas
			if via.right.Resource == "limitranges" {
				at.gvr = gvrLimitRanges
			}
			ri := a.clients.Dynamic.Resource(at.gvr).Namespace(r.ns)
			if items := lists[kindIndex(at.gvr)]; via.right.Verb == "get" && len(items) > 0 {
				at.name = items[0].GetName()
				_, err = ri.Get(ctx, at.name, metav1.GetOptions{})
			} else {
				_, err = ri.List(ctx, metav1.ListOptions{})
			}
		}
		r.record(a, at, judgeAccepted(err))
		if err == nil {
			return key, true, nil
		}
	}
	if len(vias) > 0 {
		return key, true, nil // every allowed request failed: the writes stay unproven
	}
	r.obs = append(r.obs, reports.Observation{
		Role:     reports.RoleTest,
		Actor:    reports.Actor{Tenant: r.tenant.Name, Namespace: r.ns, Identity: a.id.User},
		Target:   reports.Target{Tenant: r.tenant.Name, Namespace: r.ns, Kind: "resourcequota"},
		Method:   "change its quota",
		Expected: "may try",
		Observed: "may not act here (RBAC)",
		Status:   reports.StatusNotApplicable,
		Why:      fmt.Sprintf("%s may do none of %s in %s (RBAC): nothing shows it acts there, so its refused writes would prove nothing", a.id, strings.Join(tried, ", "), r.ns),
		At:       time.Now().UTC(),
	})
	return "", false, nil
}

// actsVias returns the requests of actsVia RBAC allows id in the
// namespace, in order, and the rights asked.
func (r *nsRun) actsVias(ctx context.Context, id checks.Identity) (allowed []actVia, asked []string, err error) {
	m := actors.Of(r.env)
	for _, via := range actsVia {
		d := m.May(ctx, id, r.ns, via.right)
		if d.Err != nil {
			return nil, nil, d.Err
		}
		asked = append(asked, via.right.String())
		if d.Allowed {
			allowed = append(allowed, via)
		}
	}
	return allowed, asked, nil
}

func kindIndex(gvr schema.GroupVersionResource) int {
	for i, pk := range protectedKinds {
		if pk.gvr == gvr {
			return i
		}
	}
	return 0
}

func (r *nsRun) recordWrite(a actor, verb string, pk protectedKind, name string, needs []string, err error) {
	r.record(a, attempt{role: reports.RoleTest, method: verb + " " + kindOf(pk.gvr), gvr: pk.gvr, name: name, expected: wantForbidden, needs: needs},
		judgeForbidden(err, a.id))
}
