// Package all is the registry of every bulkhead check. Adding an area is
// one line here (plus its catalogue entries and negative-control tests).
package all

import (
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/network"
)

// Registry returns every check.
func Registry() *checks.Registry {
	var r checks.Registry
	r.Register(network.Checks()...)
	return &r
}
