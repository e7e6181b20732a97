// Package metadata holds the cloud instance metadata checks. A pod that
// reaches the metadata service inherits the node's cloud identity; these
// checks try every endpoint of the catalogue (package endpoints) from every
// tenant probe pod, TCP connect and HTTP request alike, and prove the path
// works where it should: from the unprotected control namespace to a live
// endpoint. On kind clusters bulkhead created, the live endpoint is a decoy
// (fixtures/decoy) placed off the nodes, where real metadata lives; on other
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
			Title: "Tenant pods cannot reach cloud instance metadata endpoints",
			Proves: "No tenant pod can open a TCP connection to, or get an HTTP answer from, any cloud instance metadata endpoint " +
				"(AWS IMDSv1/v2 over IPv4 and IPv6, GCP, Azure, Alibaba, OpenStack, Oracle, DigitalOcean), even a tenant allowed general internet egress, " +
				"while the unprotected control namespace reaches a live endpoint at the same addresses (positive control: a decoy on clusters bulkhead created).",
			Run: func(ctx context.Context, env *checks.Env) checks.Outcome {
				r, err := Shared(ctx, env)
				if err != nil {
					return checks.Outcome{Err: fmt.Errorf("probe metadata endpoints: %w", err)}
				}
				return r.Endpoints
			},

			Creates: decoyFootprint,
		},
		{
			ID: IDCredentials, Area: checks.Metadata,
			Title: "Tenant pods obtain no cloud credentials from instance metadata",
			Proves: "No tenant pod receives credential-shaped data (instance role keys, service account or managed identity tokens) from a metadata credential endpoint, " +
				"while the same requests from the unprotected control namespace do return (fake, marked) credentials from the decoy, proving both the path and the detector.",
			Run: func(ctx context.Context, env *checks.Env) checks.Outcome {
				r, err := Shared(ctx, env)
				if err != nil {
					return checks.Outcome{Err: fmt.Errorf("probe metadata endpoints: %w", err)}
				}
				return r.Credentials
			},

			Creates: decoyFootprint,
		},
	}
}
