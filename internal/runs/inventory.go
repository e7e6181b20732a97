// Package runs knows the bulkhead runs a cluster holds: every object that
// carries bulkhead's labels, found by discovery over every resource the
// API server serves (so nothing a check creates is missed because a list
// of kinds forgot it), grouped by run; whether each run is live (it renews
// a Lease in its control namespace) or left behind; and how to remove a
// run's objects, thoroughly (wait until its namespaces are gone) or fast
// (start every deletion and return, for a second Ctrl-C).
package runs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/bulkhead-k8s/bulkhead/fixtures"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

// Object is one labelled object.
type Object struct {
	Resource   schema.GroupVersionResource
	Kind       string
	Namespace  string
	Name       string
	UID        types.UID
	Run        string
	Created    time.Time
	Terminated bool // deletion already started
	// Owners are the UIDs of the objects that own it (a Service its
	// EndpointSlices, a Deployment its ReplicaSets, a Pod its
	// CiliumEndpoint): the garbage collector deletes it with them.
	Owners []types.UID
}

// String names the object: "Pod team-a/bulkhead-probe-k3x9q-0".
func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// IsNamespace reports whether o is a Namespace.
func (o Object) IsNamespace() bool {
	return o.Resource.Group == "" && o.Resource.Resource == "namespaces"
}

// Inventory is what a selector matched, cluster-wide.
type Inventory struct {
	Objects []Object
	// Unlisted are resources the identity may not list. Bulkhead creates
	// only what its identity may list, so a run made with this identity
	// left nothing there.
	Unlisted []string
	// Partial says which API groups discovery could not read.
	Partial string
}

// listConcurrency bounds parallel list calls.
const listConcurrency = 8

// Find lists every object matching selector in every resource the API
// server serves that can be listed and deleted.
func Find(ctx context.Context, c *kube.Clients, selector string) (*Inventory, error) {
	inv := &Inventory{}
	lists, err := discovery.ServerPreferredResources(c.Core.Discovery())
	if err != nil {
		var partial *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &partial) || len(lists) == 0 {
			return nil, fmt.Errorf("discover the API server's resources: %w", err)
		}
		inv.Partial = err.Error()
	}
	type res struct {
		gvr  schema.GroupVersionResource
		kind string
	}
	var all []res
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !hasVerbs(r.Verbs, "list", "delete") {
				continue
			}
			all = append(all, res{gv.WithResource(r.Name), r.Kind})
		}
	}
	dyn, err := quiet(c)
	if err != nil {
		return nil, err
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		seen = map[types.UID]bool{}
		sem  = make(chan struct{}, listConcurrency)
	)
	for _, r := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			items, err := dyn.Resource(r.gvr).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: selector})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case apierrors.IsForbidden(err):
				inv.Unlisted = append(inv.Unlisted, r.gvr.GroupResource().String())
				return
			case apierrors.IsNotFound(err), apierrors.IsMethodNotSupported(err):
				return
			case err != nil:
				errs = append(errs, fmt.Errorf("list %s (%s): %w", r.gvr.GroupResource(), selector, err))
				return
			}
			for _, it := range items.Items {
				// The same object can be served by two groups (events).
				if seen[it.GetUID()] {
					continue
				}
				seen[it.GetUID()] = true
				o := Object{
					Resource: r.gvr, Kind: r.kind, Namespace: it.GetNamespace(), Name: it.GetName(), UID: it.GetUID(),
					Run: it.GetLabels()[fixtures.LabelRun], Created: it.GetCreationTimestamp().Time,
					Terminated: it.GetDeletionTimestamp() != nil,
				}
				for _, ref := range it.GetOwnerReferences() {
					o.Owners = append(o.Owners, ref.UID)
				}
				inv.Objects = append(inv.Objects, o)
			}
		}()
	}
	wg.Wait()
	sort.Slice(inv.Objects, func(i, j int) bool { return inv.Objects[i].String() < inv.Objects[j].String() })
	sort.Strings(inv.Unlisted)
	return inv, errors.Join(errs...)
}

// quiet is a dynamic client that drops the API server's deprecation
// warnings: listing every kind lists deprecated ones too (v1 Endpoints),
// and the warnings would fill the output of every clean-up.
func quiet(c *kube.Clients) (dynamic.Interface, error) {
	if c.Config == nil {
		return c.Dynamic, nil // fake clients in tests
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandler = rest.NoWarnings{}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build dynamic client for %s: %w", cfg.Host, err)
	}
	return d, nil
}

func hasVerbs(have metav1.Verbs, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Parts splits a run's objects by how they are removed: its namespaces;
// the objects inside them (they go with their namespace); dependents,
// owned by another of objs (they go with their owner); and the rest
// (deleted one by one: in tenant namespaces, and cluster-scoped).
func Parts(objs []Object) (namespaces, inside, dependents, rest []Object) {
	owned := map[string]bool{}
	uids := map[types.UID]bool{}
	for _, o := range objs {
		uids[o.UID] = true
		if o.IsNamespace() {
			owned[o.Name] = true
		}
	}
	for _, o := range objs {
		switch {
		case o.IsNamespace():
			namespaces = append(namespaces, o)
		case owned[o.Namespace]:
			inside = append(inside, o)
		case slices.ContainsFunc(o.Owners, func(u types.UID) bool { return uids[u] }):
			dependents = append(dependents, o)
		default:
			rest = append(rest, o)
		}
	}
	return namespaces, inside, dependents, rest
}

// ByRun groups objects by their run label ("" for objects without one).
func ByRun(objs []Object) map[string][]Object {
	out := map[string][]Object{}
	for _, o := range objs {
		out[o.Run] = append(out[o.Run], o)
	}
	return out
}

// KindCounts says how many objects of each kind objs holds, as
// "Namespace ×3, Pod ×7", kinds sorted.
func KindCounts(objs []Object) string {
	n := map[string]int{}
	for _, o := range objs {
		n[o.Kind]++
	}
	kinds := make([]string, 0, len(n))
	for k := range n {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s ×%d", k, n[k])
	}
	return strings.Join(parts, ", ")
}
