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
// Loading is strict: unknown fields, missing names, duplicate tenants,
// namespaces claimed by two tenants and flows to unknown tenants are errors
// that name the file and, where YAML knows it, the line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind of a tenant config file.
const (
	APIVersion = "bulkhead.dev/v1alpha1"
	Kind       = "TenantConfig"
)

// File is a tenant config file.
type File struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Tenants    []Tenant `json:"tenants"`
	Probes     Probes   `json:"probes,omitempty"`
}

// Tenant is one tenant: its namespaces, who acts for it, where it may go.
type Tenant struct {
	Name string `json:"name"`
	// Namespaces lists the tenant's namespaces by name.
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceSelector selects the tenant's namespaces by label.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	Identities        Identities            `json:"identities,omitempty"`
	// AllowedTo names tenants this tenant's pods are expected to reach.
	AllowedTo []string `json:"allowedTo,omitempty"`
}

// Identities act for a tenant in API checks.
type Identities struct {
	Users []User `json:"users,omitempty"`
	// ServiceAccounts as "namespace/name".
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`
}

// User is an impersonated user and its groups.
type User struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups,omitempty"`
}

// Probes say how bulkhead places its probe pods in tenant namespaces.
type Probes struct {
	// PerNamespace probe pods (default 2, spread over nodes): with one pod
	// in a tenant's only namespace, nothing could show that pod answers, so
	// no blocked path into it would be proven.
	PerNamespace int `json:"perNamespace,omitempty"`
	// NodeSelector and Tolerations are added to probe pods.
	NodeSelector map[string]string   `json:"nodeSelector,omitempty"`
	Tolerations  []corev1.Toleration `json:"tolerations,omitempty"`
	// Services also creates a Service per probe pod in tenant namespaces, so
	// ClusterIP and Service DNS paths are probed too. Off by default:
	// bulkhead then creates only pods in namespaces it does not own.
	Services bool `json:"services,omitempty"`
	// ImagePullSecret names a pull secret that exists in every tenant namespace.
	ImagePullSecret string `json:"imagePullSecret,omitempty"`
}

// DefaultProbesPerNamespace is probes.perNamespace when the file is silent.
const DefaultProbesPerNamespace = 2

// ReservedControl is the tenant name of bulkhead's own unprotected control
// namespace, which every run creates.
const ReservedControl = "control"

// ReservedSentinel is the tenant name of bulkhead's own isolated namespace.
const ReservedSentinel = "sentinel"

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Load reads and validates a tenant config file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenant config: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("tenant config %s: %w", path, err)
	}
	return f, nil
}

// Parse decodes and validates a tenant config document.
func Parse(data []byte) (*File, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the file is empty")
	}
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("not a valid tenant config: %w", err)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	if f.Probes.PerNamespace == 0 {
		f.Probes.PerNamespace = DefaultProbesPerNamespace
	}
	return &f, nil
}

func (f *File) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if f.APIVersion != APIVersion || f.Kind != Kind {
		bad("apiVersion/kind: want %s %s, got %q %q", APIVersion, Kind, f.APIVersion, f.Kind)
	}
	if len(f.Tenants) < 2 {
		bad("tenants: need at least two tenants to test isolation between them, got %d", len(f.Tenants))
	}
	names := map[string]bool{}
	owner := map[string]string{}
	for i, t := range f.Tenants {
		where := fmt.Sprintf("tenants[%d]", i)
		if t.Name != "" {
			where += " (" + t.Name + ")"
		}
		switch {
		case t.Name == "":
			bad("%s: name is required", where)
		case !dnsLabel.MatchString(t.Name) || len(t.Name) > 40:
			bad("%s: name %q must be a lowercase DNS label of at most 40 characters", where, t.Name)
		case names[t.Name]:
			bad("%s: tenant %q is defined twice", where, t.Name)
		case t.Name == ReservedControl || t.Name == ReservedSentinel:
			bad("%s: the name %q is reserved for bulkhead's own namespaces", where, t.Name)
		}
		names[t.Name] = true
		if len(t.Namespaces) == 0 && t.NamespaceSelector == nil {
			bad("%s: give namespaces or namespaceSelector", where)
		}
		if len(t.Namespaces) > 0 && t.NamespaceSelector != nil {
			bad("%s: give namespaces or namespaceSelector, not both", where)
		}
		if t.NamespaceSelector != nil {
			if _, err := metav1.LabelSelectorAsSelector(t.NamespaceSelector); err != nil {
				bad("%s: namespaceSelector: %v", where, err)
			} else if len(t.NamespaceSelector.MatchLabels) == 0 && len(t.NamespaceSelector.MatchExpressions) == 0 {
				bad("%s: an empty namespaceSelector would select every namespace", where)
			}
		}
		for _, ns := range t.Namespaces {
			if !dnsLabel.MatchString(ns) {
				bad("%s: namespace %q is not a valid namespace name", where, ns)
			}
			if other, ok := owner[ns]; ok && other != t.Name {
				bad("%s: namespace %s is also listed under tenant %s", where, ns, other)
			}
			owner[ns] = t.Name
		}
		for j, u := range t.Identities.Users {
			if strings.TrimSpace(u.Name) == "" {
				bad("%s: identities.users[%d]: name is required", where, j)
			}
		}
		for _, sa := range t.Identities.ServiceAccounts {
			ns, name, ok := strings.Cut(sa, "/")
			if !ok || !dnsLabel.MatchString(ns) || name == "" {
				bad("%s: serviceAccount %q: want namespace/name", where, sa)
			}
		}
	}
	for i, t := range f.Tenants {
		for _, to := range t.AllowedTo {
			if !names[to] {
				bad("tenants[%d] (%s): allowedTo names unknown tenant %q", i, t.Name, to)
			}
			if to == t.Name {
				bad("tenants[%d] (%s): allowedTo names the tenant itself (same-tenant traffic is always expected to work)", i, t.Name)
			}
		}
	}
	if f.Probes.PerNamespace < 0 || f.Probes.PerNamespace > 4 {
		bad("probes.perNamespace: %d, want 1 to 4", f.Probes.PerNamespace)
	}
	return errors.Join(errs...)
}
