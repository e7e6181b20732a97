package podsecurity

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

func evaluate(t *testing.T, level psapi.Level, p *corev1.Pod) policy.AggregateCheckResult {
	t.Helper()
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	require.NoError(t, err)
	return policy.AggregateCheckResults(eval.EvaluatePod(
		psapi.LevelVersion{Level: level, Version: psapi.LatestVersion()}, &p.ObjectMeta, &p.Spec))
}

// The positive control of PSA-001 must really be compliant, or its
// admission proves nothing but a misconfigured cluster.
func TestCompliantPodPassesRestricted(t *testing.T) {
	p := Compliant("ns", "bulkhead-psa-compliant", "img", nil)
	res := evaluate(t, psapi.LevelRestricted, p)
	assert.True(t, res.Allowed, "%s: %s", res.ForbiddenReason(), res.ForbiddenDetail())
}

// Every variant is rejected by the real PodSecurity evaluator at
// "restricted", for the reason it is about (its keyword appears in the
// violation exactly as the API server would word it), and the mutation does
// not leak into the compliant pod.
func TestEveryVariantViolatesRestrictedForItsOwnReason(t *testing.T) {
	names := map[string]bool{}
	for _, v := range Variants {
		t.Run(v.Name, func(t *testing.T) {
			require.False(t, names[v.Name], "duplicate variant name")
			names[v.Name] = true
			p := Forbidden(v, "ns", PodName(v.Name), "img", nil)
			res := evaluate(t, psapi.LevelRestricted, p)
			require.False(t, res.Allowed, "variant %s is allowed by restricted", v.Name)
			msg := fmt.Sprintf(`pods %q is forbidden: violates PodSecurity "restricted:latest": %s`, p.Name, res.ForbiddenDetail())
			observed, ok := JudgeRejection(403, msg, v.Keyword)
			assert.True(t, ok, "%s: %s (violation: %s)", v.Name, observed, res.ForbiddenDetail())

			// The other variants' keywords must not all be in here: a
			// variant that violates everything would pass for the wrong
			// reason. Count how many other variants' keywords it trips.
			others := 0
			for _, o := range Variants {
				if o.Name != v.Name && strings.Contains(res.ForbiddenDetail(), o.Keyword) {
					others++
				}
			}
			assert.LessOrEqual(t, others, 2, "variant %s trips too many other reasons: %s", v.Name, res.ForbiddenDetail())
		})
	}
	again := evaluate(t, psapi.LevelRestricted, Compliant("ns", "c", "img", nil))
	assert.True(t, again.Allowed, "mutations must not alias the compliant pod: %s", again.ForbiddenDetail())
}

// Against "privileged" (what the negative control relabels a tenant to),
// every variant is allowed: that is what makes PSA-001 fail then.
func TestVariantsAreAllowedAtPrivileged(t *testing.T) {
	for _, v := range Variants {
		res := evaluate(t, psapi.LevelPrivileged, Forbidden(v, "ns", "x", "img", nil))
		assert.True(t, res.Allowed, v.Name)
	}
}

// The host-access variants CIS 5.2 and MTB BC-HI are about are covered.
func TestVariantTableCoversTheIssue(t *testing.T) {
	for _, name := range []string{"privileged", "host-path", "host-network", "host-pid", "host-ipc", "host-port",
		"cap-net-admin", "cap-sys-admin", "privilege-escalation", "run-as-root", "run-as-non-root-false",
		"seccomp-unconfined", "apparmor-unconfined"} {
		_, ok := VariantNamed(name)
		assert.True(t, ok, name)
	}
	for _, v := range Variants {
		assert.LessOrEqual(t, len(PodName(v.Name)), 63, "pod names are DNS labels")
	}
}

func TestParseViolation(t *testing.T) {
	msg := `pods "bulkhead-psa-privileged" is forbidden: violates PodSecurity "restricted:latest": privileged (container "probe" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "probe" must set securityContext.allowPrivilegeEscalation=false)`
	v, ok := ParseViolation(msg)
	require.True(t, ok)
	assert.Equal(t, "restricted:latest", v.Policy)
	assert.Equal(t, "restricted", v.Level)
	assert.True(t, v.Mentions("privileged=true"))

	ev := `Error creating: pods "d-5d8f9-x" is forbidden: violates PodSecurity "baseline:v1.30": host namespaces (hostNetwork=true)`
	v, ok = ParseViolation(ev)
	require.True(t, ok, "a FailedCreate event quotes the rejection")
	assert.Equal(t, "baseline:v1.30", v.Policy)

	_, ok = ParseViolation(`pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=10, limited: pods=10`)
	assert.False(t, ok)
}

func TestJudgeRejection(t *testing.T) {
	psa := `pods "x" is forbidden: violates PodSecurity "restricted:latest": hostPort (container "probe" uses hostPort 8080)`
	cases := []struct {
		name    string
		status  int
		msg     string
		keyword string
		ok      bool
		word    string
	}{
		{"admitted", 201, "", "hostPort", false, "admitted"},
		{"psa for this reason", 403, psa, "hostPort", true, `rejected by PodSecurity "restricted:latest"`},
		{"psa for another reason", 403, psa, "privileged", false, "not for privileged"},
		{"quota, not psa", 403, `pods "x" is forbidden: exceeded quota: q`, "hostPort", false, "not by PodSecurity"},
		{"invalid", 422, `Pod "x" is invalid: spec.containers[0].securityContext.allowPrivilegeEscalation: Invalid value`, "privileged", false, "not by PodSecurity"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			word, ok := JudgeRejection(c.status, c.msg, c.keyword)
			assert.Equal(t, c.ok, ok)
			assert.Contains(t, word, c.word)
		})
	}
}
