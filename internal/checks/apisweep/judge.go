package apisweep

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Class is what an API answer means for authorization.
type Class string

const (
	// ClassAuthzDenied: 403 from the authorizer for the identity tried
	// ("... is forbidden: User "x" cannot list resource ...").
	ClassAuthzDenied Class = "denied by authorization"
	// ClassEscalation: 403 from RBAC's escalation prevention for the
	// identity tried ("user "x" ... is attempting to grant RBAC
	// permissions not currently held").
	ClassEscalation Class = "denied by escalation prevention"
	// ClassOtherSubject: an authorization 403 that names someone else (the
	// runner, refused the impersonation of the identity): it says nothing
	// about the identity's rights.
	ClassOtherSubject Class = "refused as another user"
	// ClassAdmission: any other 403 (Pod Security, quota, a webhook): the
	// request got past authorization.
	ClassAdmission Class = "forbidden by admission, after authorization"
	// ClassUnauthenticated: 401.
	ClassUnauthenticated Class = "unauthenticated"
	// ClassAllowed: 2xx.
	ClassAllowed Class = "allowed"
	// ClassNotFound: 404 — authorization allowed the request; the object
	// just does not exist.
	ClassNotFound Class = "authorized, not found"
	// ClassUpgradeRequired: 400 "Upgrade request required" to exec, attach
	// or port-forward without a stream: authorization allowed it.
	ClassUpgradeRequired Class = "authorized, upgrade required"
	// ClassRejected: another 4xx (400, 405, 409, 422): authorization allowed
	// the request and a later stage refused it.
	ClassRejected Class = "authorized, then rejected"
	// ClassServerError: 5xx.
	ClassServerError Class = "server error"
	// ClassNoAnswer: no HTTP answer (transport, TLS, timeout).
	ClassNoAnswer Class = "no answer"
)

var (
	authzDenied = regexp.MustCompile(`(?s)forbidden: User "[^"]*" cannot `)
	escalation  = regexp.MustCompile(`(?s)is attempting to grant RBAC permissions not currently held`)
)

// Classify says what an answer to a request made as id means for
// authorization. A 403 counts as the authorizer's (or escalation
// prevention's) refusal only when it names id: a 403 naming another user
// is bulkhead's runner refused the impersonation of id.
func Classify(r wire.APIResult, id checks.Identity) Class {
	switch {
	case r.Code == 0:
		return ClassNoAnswer
	case r.Code >= 200 && r.Code < 300:
		return ClassAllowed
	case r.Code == 401:
		return ClassUnauthenticated
	case r.Code == 403 && (escalation.MatchString(r.Message) || authzDenied.MatchString(r.Message)):
		if !actors.DeniesIdentity(r.Message, id) {
			return ClassOtherSubject
		}
		if escalation.MatchString(r.Message) {
			return ClassEscalation
		}
		return ClassAuthzDenied
	case r.Code == 403:
		return ClassAdmission
	case r.Code == 404:
		return ClassNotFound
	case r.Code == 400 && strings.Contains(r.Message, "Upgrade request required"):
		return ClassUpgradeRequired
	case r.Code >= 500:
		return ClassServerError
	}
	return ClassRejected
}

// denied reports whether c is a denial by authorization (RBAC or its
// escalation prevention) of the identity tried.
func (c Class) denied() bool { return c == ClassAuthzDenied || c == ClassEscalation }

// authorized reports whether c proves the request got past authorization.
func (c Class) authorized() bool {
	switch c {
	case ClassAllowed, ClassNotFound, ClassUpgradeRequired, ClassRejected, ClassAdmission:
		return true
	}
	return false
}

// inconclusive reports whether c says nothing about the identity's rights:
// no answer, a server error, a refusal of someone else.
func (c Class) inconclusive() bool {
	return c == ClassNoAnswer || c == ClassServerError || c == ClassOtherSubject
}

// Expect is what an attempt must show.
type Expect string

const (
	// ExpectDenied: the access review denies and the request is refused
	// by authorization (403 with the authorizer's or escalation
	// prevention's message). A 404, 400 or 422 means authorization let it
	// through; a 401 or 5xx proves nothing.
	ExpectDenied Expect = "denied"
	// ExpectAuthorized: the access review allows and the request gets past
	// authorization (any answer but 401, an authorization 403, 5xx).
	ExpectAuthorized Expect = "authorized"
	// ExpectRejected: a request without valid credentials is refused (401,
	// or 403 for system:anonymous).
	ExpectRejected Expect = "rejected"
	// ExpectUnauthenticated: a request with an invalid token is refused
	// as unauthenticated (401).
	ExpectUnauthenticated Expect = "unauthenticated"
	// ExpectAnswered: the API server answered at all (reachability).
	ExpectAnswered Expect = "answered"
	// ExpectCanary: the request is allowed and the answer holds the canary
	// (its value's fingerprint).
	ExpectCanary Expect = "reads canary"
	// ExpectNoEscalation: binding or creating a role is no escalation. The
	// access review of the escalation verb (bind, escalate) denies, and the
	// real request is refused by authorization or escalation prevention,
	// or gets through it only because the identity already holds every
	// right the role grants there (Kubernetes' escalation check let it:
	// nothing is gained).
	ExpectNoEscalation Expect = "no escalation"
	// ExpectAdmitted: the request is admitted (2xx: authorization and
	// admission let it through; a dry-run write stores nothing).
	ExpectAdmitted Expect = "admitted"
	// ExpectRefused: a write is refused, by authorization (the identity may
	// not make it) or by admission (a policy refuses what it writes): a
	// 403, 400 or 422. Admitted (2xx) is the leak; a refusal by escalation
	// prevention is about the role, not what is tested, and proves nothing.
	ExpectRefused Expect = "refused"
)

// Review is a SubjectAccessReview's answer.
type Review struct {
	Allowed bool
	Denied  bool
	Reason  string
	// EvaluationError is set when the authorizer could not decide.
	EvaluationError string
	// Err is set when the review itself could not be created.
	Err string
}

func (r Review) String() string {
	var s string
	switch {
	case r.Err != "":
		return "access review failed: " + r.Err
	case r.Allowed:
		s = "allowed"
	default:
		s = "denied"
	}
	if r.Reason != "" {
		s += " (" + wire.Truncate(r.Reason, 160) + ")"
	}
	if r.EvaluationError != "" {
		s += "; evaluation error: " + wire.Truncate(r.EvaluationError, 160)
	}
	return s
}

// Verdict is the judgement of one attempt.
type Verdict struct {
	OK bool
	// Unproven says why an attempt that did not match its expectation
	// shows no leak either (no answer, a server error, a refusal of
	// someone else): the test is unproven, not failed.
	Unproven string
	Observed string
	Detail   string
}

// outcome is what one part of the evidence (the access review, the real
// request) shows.
type outcome int

const (
	matched outcome = iota
	inconclusive
	contradicted
)

// Judge decides whether an attempt's access review and real answer match
// its expectation. Both parts must match. A part that contradicts it (the
// review allows, the request got past authorization) outweighs one that
// proves nothing (no answer, a server error, a 403 naming someone else):
// the first is a leak, the second leaves the attempt unproven. Observed
// names what the real request showed when it does not match (what came
// back is the stronger evidence), else what the access review said, or the
// expectation when all match; Detail has both.
func Judge(a Attempt, rev *Review, ans *wire.APIResult) Verdict {
	var details []string
	review, real := matched, matched
	var reviewWord, realWord string
	if a.Review {
		switch {
		case rev == nil:
			review, reviewWord = inconclusive, "not reviewed"
		case rev.Err != "":
			review, reviewWord = inconclusive, "access review failed"
		case a.Expect == ExpectAuthorized || a.Expect == ExpectCanary || a.Expect == ExpectAdmitted:
			if !rev.Allowed {
				review, reviewWord = contradicted, "denied by access review"
			}
		case a.Expect == ExpectRefused:
			// admission may refuse what authorization allows: the review
			// neither proves nor contradicts the refusal
		default:
			if rev.Allowed {
				review, reviewWord = contradicted, "allowed by access review"
			}
		}
		if rev != nil {
			details = append(details, "access review: "+rev.String())
		}
	}
	if a.Via != ViaNone {
		if ans == nil {
			real, realWord = inconclusive, "not tried"
		} else {
			realWord, real = judgeAnswer(a, *ans)
			details = append(details, "request "+a.Via.describe()+": "+describeAnswer(*ans))
			if a.Canary != "" && slices.Contains(ans.SecretValues, a.Canary) {
				details = append(details, "the answer holds the canary (value fingerprint "+a.Canary+")")
			}
		}
	}
	if a.Note != "" {
		details = append(details, a.Note)
	}
	v := Verdict{OK: review == matched && real == matched, Detail: strings.Join(details, "; ")}
	switch {
	case real == contradicted:
		v.Observed = realWord
	case review == contradicted:
		v.Observed = reviewWord
	case real == inconclusive:
		v.Observed, v.Unproven = realWord, "the request proves nothing: "+realWord
	case review == inconclusive:
		v.Observed, v.Unproven = reviewWord, reviewWord
	case ans != nil:
		v.Observed = realWord
	default:
		v.Observed = string(a.Expect)
	}
	return v
}

// judgeAnswer judges the real request's answer alone.
func judgeAnswer(a Attempt, ans wire.APIResult) (string, outcome) {
	c := Classify(ans, a.Identity)
	word := fmt.Sprintf("%s (HTTP %d)", c, ans.Code)
	switch c {
	case ClassNoAnswer:
		word = "no answer"
	case ClassOtherSubject:
		word = fmt.Sprintf("%s (HTTP 403 names %q, not %q)", c, actors.DeniedSubject(ans.Message), a.Identity.User)
	}
	// matchedWord is how a matching answer reads in evidence.
	matchedWord := string(a.Expect)
	if c == ClassEscalation {
		matchedWord = "denied (escalation prevention)"
	}
	// when decides: ok matches, leak contradicts, anything else proves
	// nothing.
	when := func(ok, leak bool) (string, outcome) {
		switch {
		case ok:
			return matchedWord, matched
		case leak:
			return word, contradicted
		}
		return word, inconclusive
	}
	switch a.Expect {
	case ExpectDenied:
		if c == ClassAllowed && a.Canary != "" && slices.Contains(ans.SecretValues, a.Canary) {
			return fmt.Sprintf("allowed (HTTP %d): canary value returned", ans.Code), contradicted
		}
		// A 401 to an identity that authenticates elsewhere in the run is
		// no deny either; it proves nothing about authorization.
		return when(c.denied(), c.authorized())
	case ExpectNoEscalation:
		switch {
		case c.denied():
			return matchedWord, matched
		case c.authorized():
			return fmt.Sprintf("within its grant (%s, HTTP %d): it already holds every right the role grants, so binding it gains nothing", c, ans.Code), matched
		}
		return word, inconclusive
	case ExpectAdmitted:
		return when(c == ClassAllowed, c != ClassNoAnswer && c != ClassServerError)
	case ExpectRefused:
		switch {
		case c == ClassAuthzDenied:
			return "denied by authorization", matched
		case c == ClassAdmission || c == ClassRejected && (ans.Code == 400 || ans.Code == 422):
			return fmt.Sprintf("refused by admission (HTTP %d)", ans.Code), matched
		case c == ClassAllowed:
			return fmt.Sprintf("admitted (HTTP %d)", ans.Code), contradicted
		}
		return word, inconclusive
	case ExpectRejected:
		return when(c == ClassUnauthenticated || c == ClassAuthzDenied, c.authorized())
	case ExpectUnauthenticated:
		return when(c == ClassUnauthenticated, c.authorized() || c.denied())
	case ExpectAuthorized:
		return when(c.authorized(), c.denied() || c == ClassUnauthenticated)
	case ExpectAnswered:
		return when(ans.Code != 0, false)
	case ExpectCanary:
		if c != ClassAllowed {
			return word, contradicted
		}
		if !slices.Contains(ans.SecretValues, a.Canary) {
			return fmt.Sprintf("allowed (HTTP %d), canary not in the answer", ans.Code), contradicted
		}
		return "reads canary", matched
	}
	return "unknown expectation " + string(a.Expect), contradicted
}

// describeAnswer is an answer in evidence words; never a body.
func describeAnswer(r wire.APIResult) string {
	if r.Code == 0 {
		return "no answer: " + wire.Truncate(r.Error, 200)
	}
	s := fmt.Sprintf("HTTP %d", r.Code)
	if r.Reason != "" {
		s += " " + r.Reason
	}
	if r.Message != "" {
		s += ": " + wire.Truncate(r.Message, 200)
	}
	if r.Kind != "" {
		s += " kind " + r.Kind
	}
	if r.Fingerprint != "" {
		s += fmt.Sprintf(" (%d bytes, fingerprint %s)", r.Bytes, r.Fingerprint)
	}
	if r.Events > 0 {
		s += fmt.Sprintf(" (%d watch events)", r.Events)
	}
	if n := len(r.SecretValues); n > 0 {
		s += fmt.Sprintf(", %d Secret value(s)", n)
	}
	return s
}
