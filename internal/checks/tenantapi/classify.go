package tenantapi

import (
	"regexp"
	"strings"
)

// Mechanism names what rejected a request, from the API server's message.
type Mechanism string

// Mechanisms the checks tell apart.
const (
	ByQuota           Mechanism = "ResourceQuota"
	ByPolicy          Mechanism = "ValidatingAdmissionPolicy"
	ByWebhook         Mechanism = "admission webhook"
	ByExternalIPsPlug Mechanism = "DenyServiceExternalIPs admission plugin"
	ByRBAC            Mechanism = "RBAC"
	ByOther           Mechanism = ""
)

var policyRE = regexp.MustCompile(`ValidatingAdmissionPolicy '([^']+)' with binding '([^']+)'`)

// Classify says which mechanism rejected a request, and names the policy,
// webhook or quota when the message does.
func Classify(msg string) (Mechanism, string) {
	switch {
	case strings.Contains(msg, "exceeded quota"):
		name := ""
		if _, rest, ok := strings.Cut(msg, "exceeded quota: "); ok {
			name, _, _ = strings.Cut(rest, ",")
		}
		return ByQuota, name
	case policyRE.MatchString(msg):
		m := policyRE.FindStringSubmatch(msg)
		return ByPolicy, m[1] + " (binding " + m[2] + ")"
	case strings.Contains(msg, "ValidatingAdmissionPolicy"):
		return ByPolicy, ""
	case strings.Contains(msg, "admission webhook"):
		name := ""
		if _, rest, ok := strings.Cut(msg, `admission webhook "`); ok {
			name, _, _ = strings.Cut(rest, `"`)
		}
		return ByWebhook, name
	case strings.Contains(msg, "external IPs is denied by admission control"):
		return ByExternalIPsPlug, ""
	case strings.Contains(msg, "cannot create resource") || strings.Contains(msg, "cannot patch resource"):
		return ByRBAC, ""
	}
	return ByOther, ""
}

// MechanismWord names a mechanism for evidence: "ResourceQuota tenant-quota".
func MechanismWord(m Mechanism, name string) string {
	if name != "" {
		return string(m) + " " + name
	}
	return string(m)
}
