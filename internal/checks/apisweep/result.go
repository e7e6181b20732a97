package apisweep

import (
	"strings"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Result is one attempt, what came back and the verdict.
type Result struct {
	Attempt
	Review *Review
	Answer *wire.APIResult
	// Pod the real request came from ("ns/name"), for in-pod requests.
	Pod string
	Verdict
	At time.Time
}

// Observation is the evidence for one result.
func (r Result) Observation() reports.Observation {
	actor := reports.Actor{Tenant: r.Tenant, Identity: r.Identity.User}
	if ns, pod, ok := strings.Cut(r.Pod, "/"); ok {
		actor.Namespace, actor.Pod = ns, pod
	}
	o := reports.Observation{
		Role: r.Role, Actor: actor, Target: r.Target, Method: r.Req.Describe(),
		Expected: string(r.Expect), Observed: r.Observed, OK: r.OK, Detail: r.Detail, Attempts: 1, At: r.At,
		Needs: r.Needs, Proves: r.Proves,
	}
	if r.Answer != nil {
		o.LatencyMS = r.Answer.LatencyMS
	}
	if r.Role == reports.RoleTest && !r.OK && r.Unproven != "" {
		o.Status, o.Why = reports.StatusUnproven, r.Unproven
	}
	return o
}
