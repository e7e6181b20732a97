package checks

import (
	"fmt"
	"strings"
)

// Where says where a footprint's objects are.
type Where string

const (
	// TenantNamespaces are the namespaces of the tenants under test: with
	// a tenant config (--config) they are the user's own namespaces.
	TenantNamespaces Where = "tenant namespaces"
	// OwnNamespaces are the namespaces bulkhead creates for a run
	// (bh-<run>-*): everything in them goes with them.
	OwnNamespaces Where = "bulkhead's namespaces"
	// ClusterScoped objects carry the run ID in their names.
	ClusterScoped Where = "cluster-scoped"
	// OutsideCluster is outside Kubernetes: containers in the local Docker
	// engine, routes on kind nodes.
	OutsideCluster Where = "outside the cluster"
	// Nowhere: the check creates nothing (reads, probes from the run's
	// probe pods, server-side dry-runs).
	Nowhere Where = "nothing"
)

// Scope says which tenant namespaces a TenantNamespaces footprint is in.
type Scope string

const (
	// EveryNamespace: every namespace of every tenant under test.
	EveryNamespace Scope = ""
	// WithIdentities: every namespace of each isolated tenant that has
	// identities (checks that act as the tenant).
	WithIdentities Scope = "each namespace of each tenant with identities"
	// FirstNamespace: the first namespace of each isolated tenant that has
	// identities.
	FirstNamespace Scope = "the first namespace of each tenant with identities"
)

// Lifetimes most footprints have.
const (
	DuringCheck = "while the check runs; deleted before it ends"
	WholeRun    = "the whole run; deleted at its end"
)

// Footprint is one kind of object a check (or a run's set-up) creates: the
// declaration a platform team reads before pointing bulkhead at a cluster
// whose tenants serve traffic. Every check declares its footprints next to
// its declaration; `bulkhead run --help`, README and `bulkhead run
// --dry-run` are made from them.
type Footprint struct {
	Where Where
	// Kinds are the Kubernetes kinds bulkhead creates (not those a
	// controller makes from them), for footprints inside the cluster.
	Kinds []string
	// What names the objects and who creates them.
	What string
	// Lifetime says how long they exist.
	Lifetime string
	// Scope narrows TenantNamespaces footprints.
	Scope Scope
	// DisposableOnly: only on clusters proven to be kind clusters bulkhead
	// created.
	DisposableOnly bool
	// OffWith names what turns this off other than leaving the check out
	// (every check can be left out with --skip-labels check=<ID>).
	OffWith string
}

// CreatesNothing is the footprint of a check that creates no object: why
// says what it does instead.
func CreatesNothing(why string) []Footprint {
	return []Footprint{{Where: Nowhere, What: why}}
}

// SkipFlag is the flag that leaves check id out of a run.
func SkipFlag(id string) string { return "--skip-labels check=" + id }

// ValidateFootprints says what is wrong with a check's declaration: none,
// a "nothing" mixed with objects, or a footprint without what it is or how
// long it lives.
func ValidateFootprints(c Check) error {
	if len(c.Creates) == 0 {
		return fmt.Errorf("check %s declares no footprint: list what it creates (checks.Footprint) or say checks.CreatesNothing(why)", c.ID)
	}
	for _, f := range c.Creates {
		switch f.Where {
		case Nowhere:
			if len(c.Creates) > 1 {
				return fmt.Errorf("check %s declares both that it creates nothing and that it creates something", c.ID)
			}
			if strings.TrimSpace(f.What) == "" {
				return fmt.Errorf("check %s creates nothing: say what it does instead", c.ID)
			}
			continue
		case TenantNamespaces, OwnNamespaces, ClusterScoped, OutsideCluster:
		default:
			return fmt.Errorf("check %s: footprint %q: unknown place %q", c.ID, f.What, f.Where)
		}
		if strings.TrimSpace(f.What) == "" || strings.TrimSpace(f.Lifetime) == "" {
			return fmt.Errorf("check %s: a footprint in %s must say what it is and how long it lives", c.ID, f.Where)
		}
		if f.Where != OutsideCluster && len(f.Kinds) == 0 {
			return fmt.Errorf("check %s: footprint %q: name the kinds it creates", c.ID, f.What)
		}
		if f.Scope != EveryNamespace && f.Where != TenantNamespaces {
			return fmt.Errorf("check %s: footprint %q: a scope applies to tenant namespaces only", c.ID, f.What)
		}
	}
	return nil
}

// InTenantNamespaces reports whether c creates anything in tenant namespaces.
func (c Check) InTenantNamespaces() bool {
	for _, f := range c.Creates {
		if f.Where == TenantNamespaces {
			return true
		}
	}
	return false
}

// Describe is the footprint in one line: "Pods as the tenant (each
// namespace of each tenant with identities; while the check runs; deleted
// before it ends; off: --allow-quota-fill=false)".
func (f Footprint) Describe() string {
	if f.Where == Nowhere {
		return "creates nothing: " + f.What
	}
	var extra []string
	if f.Scope != EveryNamespace {
		extra = append(extra, string(f.Scope))
	}
	if f.DisposableOnly {
		extra = append(extra, "only on kind clusters bulkhead created")
	}
	extra = append(extra, f.Lifetime)
	if f.OffWith != "" {
		extra = append(extra, "off: "+f.OffWith)
	}
	return f.What + " (" + strings.Join(extra, "; ") + ")"
}
