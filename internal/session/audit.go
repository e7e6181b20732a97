package session

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
)

// audit records every object a check really creates through the session's
// clients (POSTs to a collection that are not server-side dry-runs, and
// that the API server accepted) and compares them with what the check
// declares (Check.Creates): the e2e suites fail a run in which a check
// created a kind it does not declare, where it does not declare it.
//
// It sees the requests of the session's clients and of clients derived
// from them (impersonation copies the transport); not those of clients
// built from a ServiceAccount token (rest.AnonymousClientConfig drops the
// transport wrapper), nor what controllers create from a check's objects.
// A create is the check's whose ID its request's context carries
// (auditedAs), so checks running side by side in lanes are told apart.
type audit struct {
	mu      sync.Mutex
	created map[string][]created
}

type auditKey struct{}

// auditedAs marks ctx as check id's: what is created with it is id's.
func auditedAs(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, auditKey{}, id)
}

type created struct {
	resource  schema.GroupVersionResource
	namespace string
}

// virtual resources are created but never stored (reviews).
var virtualGroups = []string{"authorization.k8s.io", "authentication.k8s.io"}

func (a *audit) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && req.Method == http.MethodPost && resp.StatusCode/100 == 2 && req.URL.Query().Get("dryRun") == "" {
			if c, ok := parseCreate(req.URL.Path); ok {
				id, _ := req.Context().Value(auditKey{}).(string)
				a.record(id, c)
			}
		}
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// parseCreate reads a create request's path: /api/v1[/namespaces/NS]/RES
// or /apis/GROUP/VERSION[/namespaces/NS]/RES. Subresources (exec, token)
// and virtual resources are not creates of objects.
func parseCreate(path string) (created, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var c created
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		c.resource.Version, parts = parts[1], parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		c.resource.Group, c.resource.Version, parts = parts[1], parts[2], parts[3:]
	default:
		return c, false
	}
	if len(parts) == 3 && parts[0] == "namespaces" {
		c.namespace, parts = parts[1], parts[2:]
	}
	if len(parts) != 1 || slices.Contains(virtualGroups, c.resource.Group) {
		return c, false
	}
	c.resource.Resource = parts[0]
	return c, true
}

func (a *audit) record(check string, c created) {
	if check == "" {
		return // the session's own set-up, or a test's fixture
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.created == nil {
		a.created = map[string][]created{}
	}
	a.created[check] = append(a.created[check], c)
}

// count is how many creates were attributed to checks.
func (a *audit) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, cs := range a.created {
		n += len(cs)
	}
	return n
}

// undeclared says what check c created that it does not declare: a kind
// in a tenant namespace that is not among its TenantNamespaces kinds (in
// bulkhead's own namespaces its OwnNamespaces kinds count too), a
// cluster-scoped kind not among its ClusterScoped kinds, anything in a
// namespace of no tenant.
func (a *audit) undeclared(c checks.Check, top checks.Topology, kinds func(schema.GroupVersionResource) string) []string {
	a.mu.Lock()
	made := slices.Clone(a.created[c.ID])
	a.mu.Unlock()
	declared := map[checks.Where][]string{}
	for _, f := range c.Creates {
		declared[f.Where] = append(declared[f.Where], f.Kinds...)
	}
	var out []string
	for _, m := range made {
		kind := kinds(m.resource)
		var ok bool
		var where string
		if m.namespace == "" {
			ok, where = slices.Contains(declared[checks.ClusterScoped], kind), "(cluster-scoped)"
		} else if t, found := top.TenantOfNamespace(m.namespace); !found {
			where = "in namespace " + m.namespace + " (no tenant of the run)"
		} else {
			ok = slices.Contains(declared[checks.TenantNamespaces], kind) ||
				(t.Reference && slices.Contains(declared[checks.OwnNamespaces], kind))
			where = "in namespace " + m.namespace + " (tenant " + t.Name + ")"
		}
		if !ok {
			if s := fmt.Sprintf("footprint audit: %s created a %s %s that its declared footprint (Check.Creates) does not cover", c.ID, kind, where); !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// auditing returns clients whose requests a records, and the function that
// names the kind of a resource (from discovery).
func auditing(c *kube.Clients, a *audit) (*kube.Clients, func(schema.GroupVersionResource) string, error) {
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(a.wrap)
	wrapped, err := kube.FromConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	wrapped.Kubeconfig, wrapped.Context = c.Kubeconfig, c.Context
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Core.Discovery()))
	kinds := func(r schema.GroupVersionResource) string {
		if gvk, err := mapper.KindFor(r); err == nil {
			return gvk.Kind
		}
		return r.Resource
	}
	return wrapped, kinds, nil
}
