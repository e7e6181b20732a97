package apisweep

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// execStream opens a real exec stream into a probe container as the
// impersonated identity (a tenant's user trying to get into a pod; not
// the probe runner, which execs as bulkhead): the probe fingerprints the
// file the attempt names. A refusal comes back as the API server's Status,
// which becomes a 403 answer. It returns the answer and the raw output
// (tests assert no secret value is in it). The caller stamps the time.
func execStream(ctx context.Context, m *actors.Model, a Attempt) (wire.APIResult, []byte) {
	var res wire.APIResult
	as, err := m.Actor(a.Tenant, a.Req.Exec.Namespace, a.Identity)
	if err != nil {
		res.Error = err.Error()
		return res, nil
	}
	in, _ := json.Marshal(wire.APIRequest{Calls: []wire.APICall{}, Files: []string{a.Req.Exec.File}})
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	out, err := as.Clients.Exec(ctx, a.Req.Exec.Namespace, a.Req.Exec.Pod, checks.ProbeContainer, []string{"/probe", "api"}, in)
	if err != nil {
		return execError(res, err), out
	}
	var resp wire.APIResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		res.Code, res.Error = 200, "exec ran, but its output is not an API response"
		return res, out
	}
	res.Code, res.Kind = 200, "ExecStream"
	for _, f := range resp.Files {
		if f.Present && f.Fingerprint != "" {
			res.SecretValues = append(res.SecretValues, f.Fingerprint)
		}
	}
	return res, out
}

// execError turns an exec stream's failure into an answer: the API
// server's refusal (its Status message travels in the error) or no answer.
func execError(res wire.APIResult, err error) wire.APIResult {
	msg := err.Error()
	switch {
	case authzDenied.MatchString(msg):
		res.Code, res.Reason, res.Message = http.StatusForbidden, "Forbidden", wire.Truncate(msg, wire.MaxMessage)
	case strings.Contains(msg, "Unauthorized"):
		res.Code, res.Reason, res.Message = http.StatusUnauthorized, "Unauthorized", wire.Truncate(msg, wire.MaxMessage)
	default:
		res.Error = wire.Truncate(msg, wire.MaxMessage)
	}
	return res
}
