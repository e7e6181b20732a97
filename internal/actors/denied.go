package actors

import (
	"regexp"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
)

// subject finds who a 403 is about: the authorizer words it `User "NAME"
// cannot ...`, RBAC's escalation prevention `user "NAME" (groups=[...]) is
// attempting to grant ...`.
var subject = regexp.MustCompile(`User "([^"]*)" cannot|user "([^"]*)" \(groups=`)

// DeniedSubject returns the user a 403 message says was refused, or "".
func DeniedSubject(msg string) string {
	m := subject.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	return m[1] + m[2]
}

// DeniesIdentity reports whether a 403's message refuses id itself. A 403
// that names another user (bulkhead's runner, refused the impersonation of
// id) says nothing about id's rights and must not count as "denied".
func DeniesIdentity(msg string, id checks.Identity) bool {
	return DeniedSubject(msg) == id.User
}
