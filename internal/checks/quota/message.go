package quota

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// judgeOverrun decides whether err is the quota's refusal of a request over
// resource r: 403 Forbidden AND "exceeded quota: <a quota of the namespace>"
// naming r. Anything else, including a refusal for another reason (a
// LimitRange, Pod Security, a webhook, another resource), is not.
func judgeOverrun(err error, r string, quotas []string) (observed string, ok bool, detail string) {
	if err == nil {
		return wantAccepted, false, "the API server admitted a request over the bound"
	}
	msg := err.Error()
	if !apierrors.IsForbidden(err) {
		return rejectedAs(err), false, describeErr(err)
	}
	e, parsed := ParseExceeded(msg)
	switch {
	case !parsed:
		return "rejected: 403 (not by quota)", false, describeErr(err)
	case !e.Names(r):
		return "rejected: exceeded quota (other resource)", false, fmt.Sprintf("refused for %s, not %s: %s", strings.Join(e.Resources(), ","), r, describeErr(err))
	case !slices.Contains(quotas, e.Quota):
		return "rejected: exceeded unknown quota", false, fmt.Sprintf("quota %q is not a ResourceQuota of the namespace (%s): %s", e.Quota, strings.Join(quotas, ", "), describeErr(err))
	}
	return wantExceeded, true, e.Summary() + "; API: " + describeErr(err)
}

// judgeAccepted decides a positive control: the request must be admitted.
func judgeAccepted(err error) (observed string, ok bool, detail string) {
	if err == nil {
		return wantAccepted, true, ""
	}
	return rejectedAs(err), false, describeErr(err)
}

// judgeForbidden decides a write the tenant must not make: 403 Forbidden
// that is not a quota refusal (an RBAC or admission denial).
func judgeForbidden(err error) (observed string, ok bool, detail string) {
	if err == nil {
		return "allowed", false, "the API server accepted the write (dry-run, nothing was changed)"
	}
	if apierrors.IsForbidden(err) {
		if _, isQuota := ParseExceeded(err.Error()); !isQuota {
			return wantForbidden, true, describeErr(err)
		}
	}
	return rejectedAs(err), false, describeErr(err)
}

// limitRangeMaxMessage is how the LimitRanger admission plugin refuses a
// container over max: "maximum cpu usage per Container is 500m, but limit is 501m".
func limitRangeMaxMessage(resource string) string {
	return "maximum " + resource + " usage per Container is "
}

// judgeOverMax decides a container over the LimitRange max: 403 Forbidden
// with the LimitRanger's "maximum <r> usage per Container" message.
func judgeOverMax(err error, resource string) (observed string, ok bool, detail string) {
	if err == nil {
		return wantAccepted, false, "the API server admitted a container over the per-container maximum"
	}
	if apierrors.IsForbidden(err) && strings.Contains(err.Error(), limitRangeMaxMessage(resource)) {
		return wantLimitRangeMax, true, describeErr(err)
	}
	return rejectedAs(err), false, describeErr(err)
}
