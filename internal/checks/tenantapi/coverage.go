package tenantapi

import (
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// NobodyMayTry is the outcome of a check where no tenant namespace has an
// identity that may try: not evaluated, saying why, with the not-applicable
// observations as evidence. ok is false when somebody may.
func NobodyMayTry(cov actors.Coverage) (checks.Outcome, bool) {
	if len(cov.Scopes) > 0 {
		return checks.Outcome{}, false
	}
	why := "no isolated tenant in this run"
	if len(cov.NotEvaluated) > 0 {
		why = strings.Join(cov.NotEvaluated, "; ")
	}
	return checks.Outcome{Skip: "not evaluated: " + why, Observations: cov.NotApplicable}, true
}
