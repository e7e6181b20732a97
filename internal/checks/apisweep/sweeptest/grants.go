package sweeptest

import (
	"slices"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/apisweep"
)

// GrantFunc answers what identities hold (apisweep.Grants) with a function.
type GrantFunc func(id checks.Identity, ns string, r actors.Right) bool

// May implements apisweep.Grants.
func (f GrantFunc) May(id checks.Identity, ns string, r actors.Right) bool { return f(id, ns, r) }

// ReadOnlyServiceAccounts are the grants of tenants set up the ordinary
// way: users hold every right in their own tenant's namespaces,
// ServiceAccounts only get, list and watch there (ClusterRole view), and
// nobody holds anything in another tenant's namespaces.
func ReadOnlyServiceAccounts(s apisweep.Scope) GrantFunc {
	return func(id checks.Identity, ns string, r actors.Right) bool {
		if !ownsNamespace(s, id, ns) {
			return false
		}
		if id.ServiceAccount == "" {
			return true
		}
		return r.Subresource == "" && slices.Contains([]string{"get", "list", "watch"}, r.Verb)
	}
}

// Only is a grant of one right to every identity in its own tenant's
// namespaces, and nothing else.
func Only(s apisweep.Scope, held actors.Right) GrantFunc {
	return func(id checks.Identity, ns string, r actors.Right) bool {
		return ownsNamespace(s, id, ns) && r == held
	}
}

func ownsNamespace(s apisweep.Scope, id checks.Identity, ns string) bool {
	for _, t := range s.Top.Tenants {
		if slices.ContainsFunc(t.Identities, func(i checks.Identity) bool { return i.User == id.User }) {
			return slices.Contains(t.Namespaces, ns)
		}
	}
	return false
}
