// Package metadata holds the cloud instance metadata checks. A pod that
// reaches the metadata service inherits the node's cloud identity; these
// checks try every endpoint of the catalogue (package endpoints) from every
// tenant probe pod, TCP connect and HTTP request alike, and prove the path
// works where it should: from the unprotected control namespace to a live
// endpoint. On kind clusters bulkhead created, the live endpoint is a decoy
// (internal/target/decoy) placed off the nodes, where real metadata lives; on other
// clusters it is the cloud's own service when the control namespace reaches
// it, and otherwise the result is "blocked from tenant pods, not proven".
package metadata

import (
	"context"
	"fmt"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// Check IDs of the metadata area.
const (
	IDEndpoints   = "META-001"
	IDCredentials = "META-002"
)

// decoyFootprint is what the metadata probes (shared by both checks) add.
var decoyFootprint = []checks.Footprint{{Where: checks.OutsideCluster, DisposableOnly: true,
	What:     "a decoy metadata container on the kind network and routes to it on the kind nodes",
	Lifetime: "while the metadata probes run; removed before the check ends"}}

// Checks returns the metadata checks.
func Checks() []checks.Check {
	return []checks.Check{
		{
			ID: IDEndpoints, Area: checks.Metadata,
			Run: func(ctx context.Context, env *checks.Env) checks.Outcome {
				r, err := Shared(ctx, env)
				if err != nil {
					return checks.Outcome{Err: fmt.Errorf("probe metadata endpoints: %w", err)}
				}
				return r.Endpoints
			},
			Creates: decoyFootprint,
			Lane:    checks.LaneMetadata,
		},
		{
			ID: IDCredentials, Area: checks.Metadata,
			Run: func(ctx context.Context, env *checks.Env) checks.Outcome {
				r, err := Shared(ctx, env)
				if err != nil {
					return checks.Outcome{Err: fmt.Errorf("probe metadata endpoints: %w", err)}
				}
				return r.Credentials
			},
			Creates: decoyFootprint,
			Lane:    checks.LaneMetadata,
		},
	}
}
