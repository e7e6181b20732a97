package quota

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// Exceeded is what the API server's ResourceQuota admission says when a
// request would take a namespace over a quota:
//
//	pods "x" is forbidden: exceeded quota: tenant-quota, requested: pods=1, used: pods=6, limited: pods=6
//
// Requested, Used and Limited map resource names to quantities as printed.
type Exceeded struct {
	Quota     string
	Requested map[string]string
	Used      map[string]string
	Limited   map[string]string
}

const exceededMarker = "exceeded quota: "

// ParseExceeded extracts the quota name and the requested/used/limited
// values from an "exceeded quota" message (an API error or a controller's
// FailedCreate event). ok is false for any other message, including other
// quota failures ("failed quota: ...", "status unknown for quota: ...").
func ParseExceeded(msg string) (Exceeded, bool) {
	i := strings.Index(msg, exceededMarker)
	if i < 0 {
		return Exceeded{}, false
	}
	rest := strings.TrimSpace(msg[i+len(exceededMarker):])
	name, rest, ok := strings.Cut(rest, ", requested: ")
	if !ok || name == "" || strings.ContainsAny(name, " ,") {
		return Exceeded{}, false
	}
	requested, rest, ok := strings.Cut(rest, ", used: ")
	if !ok {
		return Exceeded{}, false
	}
	used, limited, ok := strings.Cut(rest, ", limited: ")
	if !ok {
		return Exceeded{}, false
	}
	e := Exceeded{Quota: name}
	for _, f := range []struct {
		dst *map[string]string
		src string
	}{{&e.Requested, requested}, {&e.Used, used}, {&e.Limited, limited}} {
		m, ok := parsePairs(f.src)
		if !ok {
			return Exceeded{}, false
		}
		*f.dst = m
	}
	return e, true
}

// parsePairs parses "a=1,b=2Mi" (quantities contain no commas).
func parsePairs(s string) (map[string]string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, false
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" || v == "" {
			return nil, false
		}
		out[k] = v
	}
	return out, true
}

// Resources are the resources the quota refused, sorted.
func (e Exceeded) Resources() []string {
	out := make([]string, 0, len(e.Limited))
	for r := range e.Limited {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Names reports whether the refusal names resource r.
func (e Exceeded) Names(r string) bool {
	_, ok := e.Limited[r]
	return ok
}

// Summary is the evidence line: "quota tenant-quota refused pods: used 6, limit 6, requested 1".
func (e Exceeded) Summary() string {
	parts := make([]string, 0, len(e.Limited))
	for _, r := range e.Resources() {
		parts = append(parts, fmt.Sprintf("%s used %s, hard %s, requested %s", r, e.Used[r], e.Limited[r], e.Requested[r]))
	}
	return "quota " + e.Quota + " refused " + strings.Join(parts, "; ")
}

// apiStatus returns the HTTP status code and reason of an API error, or 0
// for an error that did not come from the API server.
func apiStatus(err error) (int32, metav1.StatusReason) {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		st := s.Status()
		return st.Code, st.Reason
	}
	return 0, ""
}

// describeErr is the evidence for an API answer: "403 Forbidden: <message>".
func describeErr(err error) string {
	if err == nil {
		return "accepted"
	}
	code, reason := apiStatus(err)
	if code == 0 {
		return "no API answer: " + err.Error()
	}
	return fmt.Sprintf("%d %s: %s", code, reason, err.Error())
}

// rejectedAs is the short Observed word for an API error that is not the
// rejection a check wanted: "rejected: 422 Invalid".
func rejectedAs(err error) string {
	code, reason := apiStatus(err)
	if code == 0 {
		return "error (no API answer)"
	}
	return fmt.Sprintf("rejected: %d %s", code, reason)
}

// Outcome words of quota observations.
const (
	wantAccepted      = "accepted"
	wantExceeded      = "rejected: exceeded quota"
	wantForbidden     = "rejected: 403 Forbidden"
	wantLimitRangeMax = "rejected: over LimitRange max"
	wantDefaults      = "LimitRange defaults applied"
)

// answer is one API answer, judged: the short Observed word, whether it
// satisfies the expectation, the evidence, and, when it shows neither a
// pass nor a leak, why (an unproven test: a refusal by something other
// than what the check is about, no answer at all).
type answer struct {
	Observed     string
	OK           bool
	Detail       string
	Inconclusive string
}

// noAnswer is the answer to a request the API server never answered.
func noAnswer(err error) answer {
	return answer{Observed: "error (no API answer)", Detail: describeErr(err), Inconclusive: "no answer from the API server: " + err.Error()}
}

// judgeOverrun decides whether err is the quota's refusal of a request over
// resource r: 403 Forbidden AND "exceeded quota: <a quota of the namespace>"
// naming r. Admitted is a leak. A refusal for another reason (a LimitRange,
// Pod Security, a webhook, another resource) shows neither: it is
// inconclusive, not a pass.
func judgeOverrun(err error, r string, quotas []string) answer {
	if err == nil {
		return answer{Observed: wantAccepted, Detail: "the API server admitted a request over the bound"}
	}
	if code, _ := apiStatus(err); code == 0 {
		return noAnswer(err)
	}
	msg := err.Error()
	if !apierrors.IsForbidden(err) {
		return answer{Observed: rejectedAs(err), Detail: describeErr(err), Inconclusive: "refused, but not by the quota: " + describeErr(err)}
	}
	e, parsed := ParseExceeded(msg)
	switch {
	case !parsed:
		return answer{Observed: "rejected: 403 (not by quota)", Detail: describeErr(err), Inconclusive: "refused by something other than the quota: " + describeErr(err)}
	case !e.Names(r):
		return answer{Observed: "rejected: exceeded quota (other resource)", Detail: fmt.Sprintf("refused for %s, not %s: %s", strings.Join(e.Resources(), ","), r, describeErr(err)),
			Inconclusive: fmt.Sprintf("the quota refused %s, not %s", strings.Join(e.Resources(), ","), r)}
	case !slices.Contains(quotas, e.Quota):
		return answer{Observed: "rejected: exceeded unknown quota", Detail: fmt.Sprintf("quota %q is not a ResourceQuota of the namespace (%s): %s", e.Quota, strings.Join(quotas, ", "), describeErr(err)),
			Inconclusive: fmt.Sprintf("refused by quota %q, which bulkhead did not read in the namespace", e.Quota)}
	}
	return answer{Observed: wantExceeded, OK: true, Detail: e.Summary() + "; API: " + describeErr(err)}
}

// judgeAccepted decides a positive control: the request must be admitted.
func judgeAccepted(err error) answer {
	if err == nil {
		return answer{Observed: wantAccepted, OK: true}
	}
	return answer{Observed: rejectedAs(err), Detail: describeErr(err)}
}

// judgeForbidden decides a write identity id must not make. Denied is a 403
// that refuses id itself: RBAC naming id ("User "<id>" cannot ..."), or an
// admission plugin or webhook refusing the request (admission runs only
// after RBAC let id's request through, so it cannot be the refusal of
// bulkhead's own impersonation). A 403 naming another user says nothing
// about id (bulkhead's runner was refused), and a quota refusal or any other
// answer means RBAC let id's write through: a leak.
func judgeForbidden(err error, id checks.Identity) answer {
	if err == nil {
		return answer{Observed: "allowed", Detail: "the API server accepted the write (dry-run, nothing was changed)"}
	}
	if code, _ := apiStatus(err); code == 0 {
		return noAnswer(err)
	}
	msg := err.Error()
	if !apierrors.IsForbidden(err) {
		return answer{Observed: rejectedAs(err), Detail: "RBAC let the write through: " + describeErr(err)}
	}
	if _, isQuota := ParseExceeded(msg); isQuota {
		return answer{Observed: "rejected: exceeded quota", Detail: "RBAC let the write through; only the quota refused it: " + describeErr(err)}
	}
	switch who := actors.DeniedSubject(msg); {
	case actors.DeniesIdentity(msg, id):
		return answer{Observed: wantForbidden, OK: true, Detail: describeErr(err)}
	case who != "":
		return answer{Observed: "rejected: 403 for " + who, Detail: describeErr(err),
			Inconclusive: fmt.Sprintf("the 403 refuses %s, not %s: bulkhead's request as %s was refused before it was tried", who, id.User, id.User)}
	case admissionDenial(msg):
		return answer{Observed: wantForbidden, OK: true, Detail: "refused by admission (after RBAC let it through): " + describeErr(err)}
	}
	return answer{Observed: "rejected: 403 (unattributed)", Detail: describeErr(err),
		Inconclusive: fmt.Sprintf("the 403 names neither %s nor an admission plugin", id.User)}
}

// admissionDenial reports whether a 403 message is an admission refusal:
// a webhook ("admission webhook \"x\" denied the request") or a
// ValidatingAdmissionPolicy ("ValidatingAdmissionPolicy 'p' with binding
// 'b' denied request").
func admissionDenial(msg string) bool {
	return strings.Contains(msg, "denied the request") || strings.Contains(msg, "denied request")
}

// limitRangeMaxMessage is how the LimitRanger admission plugin refuses a
// container over max: "maximum cpu usage per Container is 500m, but limit is 501m".
func limitRangeMaxMessage(resource string) string {
	return "maximum " + resource + " usage per Container is "
}

// judgeOverMax decides a container over the LimitRange max: 403 Forbidden
// with the LimitRanger's "maximum <r> usage per Container" message.
// Admitted is a leak; any other refusal is inconclusive.
func judgeOverMax(err error, resource string) answer {
	if err == nil {
		return answer{Observed: wantAccepted, Detail: "the API server admitted a container over the per-container maximum"}
	}
	if code, _ := apiStatus(err); code == 0 {
		return noAnswer(err)
	}
	if apierrors.IsForbidden(err) && strings.Contains(err.Error(), limitRangeMaxMessage(resource)) {
		return answer{Observed: wantLimitRangeMax, OK: true, Detail: describeErr(err)}
	}
	return answer{Observed: rejectedAs(err), Detail: describeErr(err), Inconclusive: "refused, but not by the LimitRange's " + resource + " maximum: " + describeErr(err)}
}
