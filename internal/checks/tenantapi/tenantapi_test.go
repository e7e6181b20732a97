package tenantapi

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func TestOfCarriesStatusAndMessage(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", assert.AnError)
	a := Of(forbidden, 201)
	assert.Equal(t, 403, a.Status)
	assert.True(t, a.Rejected())
	assert.Contains(t, a.Detail(), "HTTP 403 Forbidden: pods \"x\" is forbidden")
	assert.Equal(t, "rejected (403)", a.Word())
	assert.Equal(t, Answer{Status: 201}, Of(nil, 201))
	assert.Equal(t, "HTTP 201 Created", Of(nil, 201).Detail())
	none := Of(context.DeadlineExceeded, 201)
	assert.False(t, none.Admitted() || none.Rejected(), "no API answer is neither")
	assert.Equal(t, "error", none.Word())
	assert.Contains(t, none.Detail(), "no API answer")
}

func TestClassify(t *testing.T) {
	cases := []struct {
		msg  string
		m    Mechanism
		name string
	}{
		{`services "x" is forbidden: exceeded quota: tenant-quota, requested: services.nodeports=1, used: services.nodeports=0, limited: services.nodeports=0`, ByQuota, "tenant-quota"},
		{`services "x" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no`, ByPolicy, "p (binding b)"},
		{`admission webhook "validate.kyverno.svc-fail" denied the request: externalIPs`, ByWebhook, "validate.kyverno.svc-fail"},
		{`services "x" is forbidden: use of external IPs is denied by admission control`, ByExternalIPsPlug, ""},
		{`services is forbidden: User "u" cannot create resource "services" in API group "" in the namespace "n"`, ByRBAC, ""},
		{`Service "x" is invalid: spec.ports: Required value`, ByOther, ""},
	}
	for _, c := range cases {
		m, name := Classify(c.msg)
		assert.Equal(t, c.m, m, c.msg)
		assert.Equal(t, c.name, name, c.msg)
	}
}

var alice = checks.Identity{User: "alice", Groups: []string{"team-a"}}

// A denial counts only when it is about the identity that asked (RBAC's
// 403 names it) or comes from an admission mechanism; the runner's refused
// impersonation, a quota or a transport error prove nothing, and only an
// admission is a leak.
func TestJudgeDenied(t *testing.T) {
	own := Answer{Status: 403, Message: `namespaces "a-web" is forbidden: User "alice" cannot patch resource "namespaces" in API group "" in the namespace "a-web"`}
	runner := Answer{Status: 403, Message: `users "alice" is forbidden: User "system:serviceaccount:ops:bulkhead" cannot impersonate resource "users" in API group "" at the cluster scope`}
	vap := Answer{Status: 422, Message: `namespaces "a-web" is invalid: ValidatingAdmissionPolicy 'pin-psa' with binding 'pin-psa' denied request: no`}
	webhook := Answer{Status: 403, Message: `admission webhook "ns.example.com" denied the request: no`}

	j := JudgeDenied(own, alice)
	assert.True(t, j.OK)
	assert.Equal(t, "denied by RBAC (403)", j.Observed)
	assert.True(t, JudgeDenied(vap, alice).OK)
	assert.Contains(t, JudgeDenied(vap, alice).Observed, "ValidatingAdmissionPolicy pin-psa (binding pin-psa)")
	assert.True(t, JudgeDenied(webhook, alice).OK)

	j = JudgeDenied(runner, alice)
	assert.False(t, j.OK)
	assert.Contains(t, j.Inconclusive, "system:serviceaccount:ops:bulkhead", "the runner's refusal is nobody's denial")
	var o reports.Observation
	o.Role = reports.RoleTest
	j.Apply(&o)
	assert.Equal(t, reports.StatusUnproven, o.Status)

	j = JudgeDenied(Answer{Status: 200}, alice)
	assert.False(t, j.OK)
	assert.Empty(t, j.Inconclusive, "an admission is a leak")
	assert.Equal(t, "admitted", j.Observed)
	assert.NotEmpty(t, JudgeDenied(Answer{Status: 404}, alice).Inconclusive)
	assert.NotEmpty(t, JudgeDenied(Answer{Err: context.Canceled}, alice).Inconclusive)

	// a control is never marked unproven: it passes or fails
	var c reports.Observation
	c.Role = reports.RoleControl
	JudgeDenied(runner, alice).Apply(&c)
	assert.Empty(t, c.Status)
}

func TestLabelPatch(t *testing.T) {
	assert.JSONEq(t, `{"metadata":{"labels":{"a":null,"b":"x"}}}`, string(LabelPatch(map[string]any{"a": nil, "b": "x"})))
}

func TestNobodyMayTryIsNotEvaluated(t *testing.T) {
	na := actors.NotApplicable("b", "b-web", alice, actors.Create("services"), "")
	out, nobody := NobodyMayTry(actors.Coverage{NotApplicable: []reports.Observation{na}, NotEvaluated: []string{"tenant b in b-web: no identity may create services"}})
	require.True(t, nobody)
	assert.Equal(t, "not evaluated: tenant b in b-web: no identity may create services", out.Skip)
	assert.Len(t, out.Observations, 1, "the not-applicable evidence is kept")
	assert.Equal(t, reports.Skipped, checks.Judge(checks.Check{ID: "X"}, out).Verdict)
	_, nobody = NobodyMayTry(actors.Coverage{Scopes: []actors.Scope{{Namespace: "a-web"}}})
	assert.False(t, nobody)
}
