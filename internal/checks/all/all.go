// Package all is the registry of every bulkhead check. Adding an area is
// one line here (plus its catalogue entries and negative-control tests).
package all

import (
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/exposure"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/network"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/podsecurity"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/quota"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/rbac"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/secrets"
)

// Registry returns every check.
func Registry() *checks.Registry {
	var r checks.Registry
	r.Register(network.Checks()...)
	r.Register(metadata.Checks()...)
	r.Register(podsecurity.Checks()...)
	r.Register(exposure.Checks()...)
	r.Register(quota.Checks()...)
	r.Register(rbac.Checks()...)
	r.Register(secrets.Checks()...)
	return &r
}

// NegativeControls returns every area's negative controls.
func NegativeControls() []checks.NegativeControl {
	var out []checks.NegativeControl
	for _, area := range [][]checks.NegativeControl{network.NegativeControls(), metadata.NegativeControls(), quota.NegativeControls(), rbac.NegativeControls(), secrets.NegativeControls(), podsecurity.NegativeControls(), exposure.NegativeControls()} {
		out = append(out, area...)
	}
	return out
}
