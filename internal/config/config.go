// Package config reads a bring-your-own-tenants file: the tenants of a
// cluster bulkhead did not set up, as sets of namespaces, the identities
// that act for them, and the flows between them that are expected to work.
//
//	apiVersion: bulkhead.dev/v1alpha1
//	kind: TenantConfig
//	tenants:
//	- name: team-a
//	  namespaces: [team-a-web, team-a-api]      # a list ...
//	  identities:
//	    users: [{name: alice, groups: [team-a]}]
//	    serviceAccounts: [team-a-web/deployer]
//	  allowedTo: [shared]                        # flows expected to work
//	- name: team-b
//	  namespaceSelector:                         # ... or a label selector
//	    matchLabels: {tenant: team-b}
//	probes:
//	  perNamespace: 2
//	  nodeSelector: {kubernetes.io/os: linux}
//
// # What a value means
//
// The file is YAML 1.2, read strictly (internal/strictyaml), so that what
// it says is what bulkhead acts on:
//
//   - y, n, yes, no, on and off are plain strings (a namespace named y is
//     written namespaces: [y]), and so are dates.
//   - Where a string is expected (every name, namespace, label, group and
//     value), a plain true/false, null/~ or number (123, 0123, 1e3, 0x1f,
//     .inf) is an error: quote it (namespaces: ["0123"]). Where a number
//     or true/false is expected, a string (a quoted "2", yes) is an error.
//   - Nothing after the colon is an empty list or mapping where one is
//     expected, and an error where a string, number or boolean is.
//   - Unknown and repeated fields, anchors and aliases, and a second
//     document (---) are errors.
//
// Loading is strict: beyond the above, missing names, invalid names,
// duplicate tenants, namespaces claimed by two tenants and flows to unknown
// tenants are errors, all of them reported at once, each as
// file:line:column: field: problem, e.g.
//
//	tenants.yaml:7:5: tenants[1].namespaces[2]: true is a boolean where a namespace name is expected; quote it ("true")
package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/bulkhead-k8s/bulkhead/internal/strictyaml"
)

// APIVersion and Kind of a tenant config file.
const (
	APIVersion = "bulkhead.dev/v1alpha1"
	Kind       = "TenantConfig"
)

// File is a tenant config file.
type File struct {
	APIVersion string   `json:"apiVersion" want:"an API version"`
	Kind       string   `json:"kind" want:"a kind"`
	Tenants    []Tenant `json:"tenants"`
	Probes     Probes   `json:"probes,omitempty"`
}

// Tenant is one tenant: its namespaces, who acts for it, where it may go.
type Tenant struct {
	Name string `json:"name" want:"a tenant name"`
	// Namespaces lists the tenant's namespaces by name.
	Namespaces []string `json:"namespaces,omitempty" want:"a namespace name"`
	// NamespaceSelector selects the tenant's namespaces by label.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	Identities        Identities            `json:"identities,omitempty"`
	// AllowedTo names tenants this tenant's pods are expected to reach.
	AllowedTo []string `json:"allowedTo,omitempty" want:"a tenant name"`
}

// Identities act for a tenant in API checks.
type Identities struct {
	Users []User `json:"users,omitempty"`
	// ServiceAccounts as "namespace/name".
	ServiceAccounts []string `json:"serviceAccounts,omitempty" want:"a namespace/name"`
}

// User is an impersonated user and its groups.
type User struct {
	Name   string   `json:"name" want:"a user name"`
	Groups []string `json:"groups,omitempty" want:"a group name"`
}

// Probes say how bulkhead places its probe pods in tenant namespaces.
type Probes struct {
	// PerNamespace probe pods (default 2, spread over nodes): with one pod
	// in a tenant's only namespace, nothing could show that pod answers, so
	// no blocked path into it would be proven.
	PerNamespace int `json:"perNamespace,omitempty"`
	// NodeSelector and Tolerations are added to probe pods.
	NodeSelector map[string]string   `json:"nodeSelector,omitempty" want:"a label value"`
	Tolerations  []corev1.Toleration `json:"tolerations,omitempty"`
	// Services also creates a Service per probe pod in tenant namespaces, so
	// ClusterIP and Service DNS paths are probed too. Off by default:
	// bulkhead then creates only pods in namespaces it does not own.
	Services bool `json:"services,omitempty"`
	// ImagePullSecret names a pull secret that exists in every tenant namespace.
	ImagePullSecret string `json:"imagePullSecret,omitempty" want:"a Secret name"`
}

// DefaultProbesPerNamespace is probes.perNamespace when the file is silent.
const DefaultProbesPerNamespace = 2

// ReservedControl is the tenant name of bulkhead's own unprotected control
// namespace, which every run creates.
const ReservedControl = "control"

// ReservedSentinel is the tenant name of bulkhead's own isolated namespace.
const ReservedSentinel = "sentinel"

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Load reads and validates a tenant config file; errors name the file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenant config: %w", err)
	}
	return parse(path, data)
}

// Parse decodes and validates a tenant config document (errors give
// line:column without a file name).
func Parse(data []byte) (*File, error) { return parse("", data) }

// parse returns the file, or strictyaml.Errors: every problem, in file
// order, each naming file:line:column and the field.
func parse(name string, data []byte) (*File, error) {
	var f File
	doc, err := strictyaml.Decode(name, data, &f)
	if err != nil {
		return nil, err
	}
	if err := f.validate(doc); err != nil {
		return nil, err
	}
	if f.Probes.PerNamespace == 0 {
		f.Probes.PerNamespace = DefaultProbesPerNamespace
	}
	return &f, nil
}

func (f *File) validate(doc *strictyaml.Doc) error {
	var errs strictyaml.Errors
	bad := func(path, format string, args ...any) { errs = append(errs, doc.Errorf(path, format, args...)) }
	if f.APIVersion != APIVersion {
		bad("apiVersion", "want %s, got %q", APIVersion, f.APIVersion)
	}
	if f.Kind != Kind {
		bad("kind", "want %s, got %q", Kind, f.Kind)
	}
	if len(f.Tenants) < 2 {
		bad("tenants", "need at least two tenants to test isolation between them, got %d", len(f.Tenants))
	}
	names := map[string]string{} // tenant name -> where it is defined
	owner := map[string]string{} // namespace -> tenant
	for i, t := range f.Tenants {
		at := fmt.Sprintf("tenants[%d]", i)
		switch {
		case t.Name == "":
			bad(at+".name", "name is required")
		case !dnsLabel.MatchString(t.Name) || len(t.Name) > 40:
			bad(at+".name", "name %q must be a lowercase DNS label of at most 40 characters", t.Name)
		case names[t.Name] != "":
			bad(at+".name", "tenant %q is defined twice (first as %s)", t.Name, names[t.Name])
		case t.Name == ReservedControl || t.Name == ReservedSentinel:
			bad(at+".name", "the name %q is reserved for bulkhead's own namespaces", t.Name)
		}
		if t.Name != "" && names[t.Name] == "" {
			names[t.Name] = at
		}
		if len(t.Namespaces) == 0 && t.NamespaceSelector == nil {
			bad(at, "give namespaces or namespaceSelector")
		}
		if len(t.Namespaces) > 0 && t.NamespaceSelector != nil {
			bad(at+".namespaceSelector", "give namespaces or namespaceSelector, not both")
		}
		if sel := t.NamespaceSelector; sel != nil {
			if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
				bad(at+".namespaceSelector", "%v", err)
			} else if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
				bad(at+".namespaceSelector", "an empty namespaceSelector would select every namespace")
			}
		}
		for j, ns := range t.Namespaces {
			nat := fmt.Sprintf("%s.namespaces[%d]", at, j)
			if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
				bad(nat, "namespace %q is not a valid namespace name: %s", ns, strings.Join(msgs, "; "))
			}
			if other, ok := owner[ns]; ok && other != t.Name {
				bad(nat, "namespace %s is also listed under tenant %s", ns, other)
			}
			owner[ns] = t.Name
		}
		for j, u := range t.Identities.Users {
			uat := fmt.Sprintf("%s.identities.users[%d]", at, j)
			if strings.TrimSpace(u.Name) == "" {
				bad(uat+".name", "name is required")
			}
			for k, g := range u.Groups {
				if strings.TrimSpace(g) == "" {
					bad(fmt.Sprintf("%s.groups[%d]", uat, k), "empty group name")
				}
			}
		}
		for j, sa := range t.Identities.ServiceAccounts {
			ns, name, ok := strings.Cut(sa, "/")
			if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
				bad(fmt.Sprintf("%s.identities.serviceAccounts[%d]", at, j), "serviceAccount %q: want namespace/name", sa)
			}
		}
	}
	for i, t := range f.Tenants {
		for j, to := range t.AllowedTo {
			at := fmt.Sprintf("tenants[%d].allowedTo[%d]", i, j)
			if names[to] == "" {
				bad(at, "allowedTo names unknown tenant %q", to)
			}
			if to == t.Name {
				bad(at, "allowedTo names the tenant itself (same-tenant traffic is always expected to work)")
			}
		}
	}
	f.Probes.validate(bad)
	return errs.Err()
}

func (p *Probes) validate(bad func(path, format string, args ...any)) {
	if p.PerNamespace < 0 || p.PerNamespace > 4 {
		bad("probes.perNamespace", "%d, want 1 to 4", p.PerNamespace)
	}
	for k, v := range p.NodeSelector {
		at := fmt.Sprintf("probes.nodeSelector[%q]", k)
		if msgs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(msgs) > 0 {
			bad(at, "%s: %s is not a valid node label: %s", k, v, strings.Join(msgs, "; "))
		}
	}
	for i, t := range p.Tolerations {
		at := fmt.Sprintf("probes.tolerations[%d]", i)
		if t.Key != "" {
			if msgs := validation.IsQualifiedName(t.Key); len(msgs) > 0 {
				bad(at+".key", "%q is not a valid taint key: %s", t.Key, strings.Join(msgs, "; "))
			}
		}
		switch t.Operator {
		case "", corev1.TolerationOpEqual, corev1.TolerationOpExists, corev1.TolerationOpLt, corev1.TolerationOpGt:
		default:
			bad(at+".operator", "operator %q: want Equal, Exists, Lt or Gt", t.Operator)
		}
		switch t.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			bad(at+".effect", "effect %q: want NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
		}
	}
	if p.ImagePullSecret != "" {
		if msgs := validation.IsDNS1123Subdomain(p.ImagePullSecret); len(msgs) > 0 {
			bad("probes.imagePullSecret", "%q is not a valid Secret name: %s", p.ImagePullSecret, strings.Join(msgs, "; "))
		}
	}
}
