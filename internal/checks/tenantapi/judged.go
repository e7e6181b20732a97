package tenantapi

import (
	"fmt"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

// Judged is an answer judged against what a request expected.
type Judged struct {
	Observed string
	OK       bool
	// Inconclusive, when set, says why the answer proves nothing either way
	// (no API answer, a refusal for another reason): the observation is
	// unproven, neither a pass nor a leak.
	Inconclusive string
}

// Apply records the judgement on o.
func (j Judged) Apply(o *reports.Observation) {
	o.Observed, o.OK = j.Observed, j.OK
	if j.Inconclusive != "" && o.Role == reports.RoleTest {
		o.Status, o.Why = reports.StatusUnproven, j.Inconclusive
	}
}

// JudgeAdmitted is a positive control's judge: the request must be admitted.
func JudgeAdmitted(a Answer) Judged { return Judged{Observed: a.Word(), OK: a.Admitted()} }

// Inconclusive judges an answer that is neither what a test expected nor a
// leak: a leak is an admission; anything else proves nothing.
func Inconclusive(a Answer, why string) Judged {
	if a.Admitted() {
		return Judged{Observed: "admitted"}
	}
	if a.Err != nil {
		return Judged{Observed: "error", Inconclusive: "no API answer"}
	}
	if s := actors.DeniedSubject(a.Message); s != "" {
		return Judged{Observed: fmt.Sprintf("rejected (%d) for %s", a.Status, s), Inconclusive: "RBAC refused " + s + ": " + why}
	}
	return Judged{Observed: fmt.Sprintf("rejected (%d) for another reason", a.Status), Inconclusive: why}
}

// JudgeDenied judges a request id should be refused whoever else may make
// it: a 403 that names id (RBAC), or a refusal by an admission mechanism
// (a policy, a webhook). A 403 naming someone else (bulkhead's runner,
// refused the impersonation of id) says nothing about id; nor does any
// other refusal.
func JudgeDenied(a Answer, id checks.Identity) Judged {
	switch {
	case a.Rejected() && actors.DeniesIdentity(a.Message, id):
		return Judged{Observed: fmt.Sprintf("denied by RBAC (%d)", a.Status), OK: true}
	case a.Rejected():
		if m, name := Classify(a.Message); m == ByPolicy || m == ByWebhook {
			return Judged{Observed: fmt.Sprintf("denied by %s (%d)", MechanismWord(m, name), a.Status), OK: true}
		}
	}
	return Inconclusive(a, "not a denial of "+id.String())
}
