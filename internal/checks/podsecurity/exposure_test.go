package podsecurity

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

func TestNodeTargets(t *testing.T) {
	nodes := []NodeInfo{
		{Name: "cp", Addresses: []string{"172.18.0.3"}, ControlPlane: true},
		{Name: "w1", Addresses: []string{"172.18.0.2", "fc00::2"}},
	}
	ts := NodeTargets(nodes, []string{"172.18.0.3:6443"}, 31000)
	got := map[string]NodeTarget{}
	for _, tg := range ts {
		_, dup := got[tg.HostPort()]
		assert.False(t, dup, "targets are unique: %s", tg.HostPort())
		got[tg.HostPort()] = tg
	}
	// API server once (endpoint and control-plane node coincide), both
	// kubelet ports and the NodePort on every address.
	assert.Len(t, ts, 1+3*(2+1))
	api := got["172.18.0.3:6443"]
	assert.Equal(t, PortAPIServer, api.Kind)
	assert.Equal(t, "cp", api.Node, "endpoint addresses are named by their node")
	assert.True(t, api.MustAnswer)
	assert.Equal(t, PortKubelet, got["[fc00::2]:10250"].Kind, "IPv6 node addresses are probed too")
	assert.False(t, got["172.18.0.2:10255"].MustAnswer, "the read-only port may be closed")
	assert.True(t, got["172.18.0.2:31000"].MustAnswer)
	_, onWorker := got["172.18.0.2:6443"]
	assert.False(t, onWorker, "the API server port only where it listens")

	noNodePort := NodeTargets(nodes, nil, 0)
	for _, tg := range noNodePort {
		assert.NotEqual(t, PortNodePort, tg.Kind)
	}
	ext := NodeTargets(nodes, []string{"10.0.0.9:443"}, 0)
	assert.Equal(t, "(not a node address)", ext[0].Node)
}

func TestJudgeNode(t *testing.T) {
	kubelet := NodeTarget{Kind: PortKubelet, MustAnswer: true}
	readOnly := NodeTarget{Kind: PortKubeletReadOnly}
	r := func(o wire.Outcome) wire.ConnectResult { return wire.ConnectResult{Outcome: o} }
	cases := []struct {
		t          NodeTarget
		fromTenant bool
		outcome    wire.Outcome
		ok         bool
	}{
		{kubelet, true, wire.Timeout, true},
		{kubelet, true, wire.Refused, true},
		{kubelet, true, wire.Unreachable, true},
		{kubelet, true, wire.Reachable, false},
		{kubelet, true, wire.Failed, false},
		{kubelet, false, wire.Reachable, true},
		{kubelet, false, wire.Refused, false},
		{kubelet, false, wire.Timeout, false},
		{readOnly, false, wire.Refused, true},
		{readOnly, false, wire.Reachable, true},
		{readOnly, false, wire.Timeout, false},
	}
	for _, c := range cases {
		_, observed, ok := JudgeNode(c.t, c.fromTenant, r(c.outcome))
		assert.Equal(t, c.ok, ok, "%s from tenant=%v: %s", c.t.Kind, c.fromTenant, c.outcome)
		assert.Equal(t, string(c.outcome), observed)
	}
}

func TestClosedPortNotes(t *testing.T) {
	o := func(role reports.Role, addr, observed string) reports.Observation {
		return reports.Observation{Role: role, Target: reports.Target{Address: addr}, Method: "tcp/kubelet-readonly", Observed: observed}
	}
	notes := closedPortNotes([]reports.Observation{
		o(reports.RoleControl, "n1:10255", "refused"), o(reports.RoleTest, "n1:10255", "timeout"),
		o(reports.RoleControl, "n2:10255", "refused"), o(reports.RoleTest, "n2:10255", "refused"),
		o(reports.RoleControl, "n3:10250", "reachable"), o(reports.RoleTest, "n3:10250", "timeout"),
	})
	require.Len(t, notes, 2)
	assert.Contains(t, notes[0], "dropped for tenant pods")
	assert.Contains(t, notes[0], "n1:10255")
	assert.NotContains(t, notes[0], "n2:")
	assert.Contains(t, notes[1], "does not show their policy")
	assert.Contains(t, notes[1], "n2:10255")
	assert.Empty(t, closedPortNotes([]reports.Observation{o(reports.RoleControl, "n3:10250", "reachable")}))
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

func TestServiceJudges(t *testing.T) {
	quota := answer{Status: 403, Message: `services "x" is forbidden: exceeded quota: q, requested: services.loadbalancers=1,services.nodeports=1, used: services.loadbalancers=0,services.nodeports=0, limited: services.loadbalancers=0,services.nodeports=0`}
	other := answer{Status: 403, Message: `services "x" is forbidden: exceeded quota: q, requested: services=1, used: services=6, limited: services=6`}
	vap := answer{Status: 403, Message: `services "x" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no`}
	rbac := answer{Status: 403, Message: `services is forbidden: User "u" cannot create resource "services"`}

	word, ok := judgeQuotaOrPolicy("services.loadbalancers", "services.nodeports")(quota)
	assert.True(t, ok)
	assert.Equal(t, "rejected by ResourceQuota q (services.loadbalancers)", word)
	word, ok = judgeQuotaOrPolicy("services.nodeports")(other)
	assert.False(t, ok, "a quota on the Service count proves nothing about node ports")
	assert.Contains(t, word, "not on services.nodeports")
	_, ok = judgeQuotaOrPolicy("services.nodeports")(vap)
	assert.True(t, ok)
	word, ok = judgeQuotaOrPolicy("services.nodeports")(answer{Status: 201})
	assert.False(t, ok)
	assert.Equal(t, "admitted", word)
	_, ok = judgeQuotaOrPolicy("services.nodeports")(rbac)
	assert.False(t, ok, "a tenant that may not create Services at all proves nothing")

	_, ok = judgeAdmissionDenial(vap)
	assert.True(t, ok)
	_, ok = judgeAdmissionDenial(quota)
	assert.False(t, ok, "a quota is not an externalIPs policy")
	_, ok = judgeAdmissionDenial(answer{Err: context.DeadlineExceeded})
	assert.False(t, ok)

	for _, c := range []struct {
		a  answer
		ok bool
	}{{answer{Status: 403}, true}, {answer{Status: 422}, true}, {answer{Status: 200}, false}, {answer{Status: 404}, false}, {answer{Err: context.Canceled}, false}} {
		_, ok := deniedWord(c.a)
		assert.Equal(t, c.ok, ok, "%+v", c.a)
	}
}

func TestAnswerDetailCarriesTheMessage(t *testing.T) {
	a := answer{Status: 403, Message: `pods "x" is forbidden: violates PodSecurity "restricted:latest": privileged`}
	assert.Equal(t, `HTTP 403 Forbidden: pods "x" is forbidden: violates PodSecurity "restricted:latest": privileged`, a.Detail())
	assert.Equal(t, "HTTP 201 Created", answer{Status: 201}.Detail())
}

func TestLabelPatch(t *testing.T) {
	assert.JSONEq(t, `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":null}}}`, string(LabelPatch(map[string]any{LabelEnforce: nil})))
	assert.JSONEq(t, `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`, string(LabelPatch(Relabels[0].Labels)))
}

func TestCreateEvent(t *testing.T) {
	ev := func(kind, name, reason string) corev1.Event {
		return corev1.Event{InvolvedObject: corev1.ObjectReference{Kind: kind, Name: name}, Reason: reason}
	}
	evs := []corev1.Event{
		ev("ReplicaSet", "web-other-6d4f", "FailedCreate"), // another Deployment named web-other
		ev("ReplicaSet", "web-5d8f9", "SuccessfulCreate"),
		ev("ReplicaSet", "web-5d8f9", "FailedCreate"),
		ev("Job", "web", "SuccessfulCreate"),
		ev("ReplicaSet", "web-5d8f9", "ScalingReplicaSet"),
	}
	got, ok := createEvent(evs, "ReplicaSet", "web")
	require.True(t, ok)
	assert.Equal(t, "web-5d8f9", got.InvolvedObject.Name)
	assert.Equal(t, "FailedCreate", got.Reason, "one rejected pod is the finding")
	got, ok = createEvent(evs, "Job", "web")
	require.True(t, ok)
	assert.Equal(t, "SuccessfulCreate", got.Reason)
	_, ok = createEvent(evs, "Job", "we")
	assert.False(t, ok)
	assert.False(t, isReplicaSetOf("web-other-6d4f", "web"))
	assert.True(t, isReplicaSetOf("web-other-6d4f", "web-other"))
}

// settle re-tries what does not yet match (an admission policy coming into
// effect) and stops at the deadline with the last answer.
func TestSettleRetriesUntilEffectiveOrDeadline(t *testing.T) {
	env := &checks.Env{Timing: checks.Timing{Enforcement: 1500 * time.Millisecond}}
	var calls atomic.Int32
	becomes := attempt{Role: reports.RoleTest, Expected: "rejected",
		Do: func(context.Context) answer {
			if calls.Add(1) < 2 {
				return answer{Status: 201}
			}
			return answer{Status: 403, Message: "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no"}
		},
		Judge: judgeAdmissionDenial}
	never := attempt{Role: reports.RoleTest, Expected: "rejected",
		Do: func(context.Context) answer { return answer{Status: 201} }, Judge: judgeAdmissionDenial}

	start := time.Now()
	obs := settle(context.Background(), env, []attempt{becomes})
	require.Len(t, obs, 1)
	assert.True(t, obs[0].OK)
	assert.Equal(t, 2, obs[0].Attempts)
	assert.Less(t, time.Since(start), 1500*time.Millisecond)

	obs = settle(context.Background(), env, []attempt{never})
	assert.False(t, obs[0].OK)
	assert.Equal(t, "admitted", obs[0].Observed)
	assert.GreaterOrEqual(t, obs[0].Attempts, 2)
	assert.True(t, strings.HasPrefix(obs[0].Detail, "HTTP 201"))
}
