package apisweep

import (
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Via is how the real request of an attempt reaches the API server.
type Via string

const (
	// ViaNone: no real request (the access review is the evidence).
	ViaNone Via = ""
	// ViaImpersonation: from bulkhead's process, impersonating the identity.
	ViaImpersonation Via = "impersonation"
	// ViaPod: from inside a pod, with the ServiceAccount's own token.
	ViaPod Via = "in-pod"
	// ViaAnonymous: from inside a pod without a token (Request.Auth says
	// whether no credentials or an invalid token are sent).
	ViaAnonymous Via = "in-pod-anonymous"
	// ViaAdmin: from bulkhead's process impersonating PositiveControl, a
	// synthetic identity in system:masters (positive controls for requests
	// no tenant may make). Only reads and server-side dry-run writes go
	// this way (processClients refuses anything else).
	ViaAdmin Via = "admin"
)

// PositiveControl is the synthetic identity that makes the positive
// controls of requests no tenant may make (cluster-scoped writes, CSR
// approval, nodes/proxy): bulkhead impersonates it, so those controls show
// the request path works whatever the runner itself may do (the
// least-privilege runner ClusterRole grants impersonation of users and
// groups for exactly this and for acting as tenants). In system:masters
// every request gets past authorization; writes are server-side dry-runs
// and the one request through nodes/proxy is GET /healthz.
var PositiveControl = checks.Identity{User: "bulkhead:positive-control", Groups: []string{"system:masters", "system:authenticated"}}

func (v Via) describe() string {
	switch v {
	case ViaImpersonation:
		return "by bulkhead impersonating the identity"
	case ViaPod:
		return "from inside a pod with the ServiceAccount's own token"
	case ViaAnonymous:
		return "from inside a pod without a token"
	case ViaAdmin:
		return "by bulkhead impersonating " + PositiveControl.User + " (groups " + strings.Join(PositiveControl.Groups, ", ") + ")"
	}
	return "(none)"
}

// Attempt is one thing an identity tries and what it must show.
type Attempt struct {
	// Check is the ID of the check the attempt belongs to.
	Check string
	Role  reports.Role
	// Tenant acting ("" for bulkhead itself).
	Tenant   string
	Identity checks.Identity
	// Review asks a SubjectAccessReview for Identity.
	Review bool
	// Via is how the real request is made (ViaNone: none).
	Via Via
	// Auth is how an anonymous pod authenticates (AuthNone, AuthInvalid).
	Auth wire.APIAuth
	Req  Request
	// Expect is what the attempt must show.
	Expect Expect
	// Target is what is tried, for evidence.
	Target reports.Target
	// Canary is the fingerprint of the canary value the answer must (or
	// must not) hold.
	Canary string
	// Needs (a test) are the facts its "denied" rests on; Proves (a
	// control) the facts it shows when it passes. Judge matches them (see
	// checks.Judge and proof.go).
	Needs, Proves []string
	// Note explains something about the attempt for evidence.
	Note string
}
