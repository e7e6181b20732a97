package exposure

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/kube"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
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

	for _, tg := range NodeTargets(nodes, nil, 0) {
		assert.NotEqual(t, PortNodePort, tg.Kind)
	}
	ext := NodeTargets(nodes, []string{"10.0.0.9:443"}, 0)
	assert.Equal(t, "(not a node address)", ext[0].Node)
}

func TestJudgeNode(t *testing.T) {
	kubelet := NodeTarget{Kind: PortKubelet, MustAnswer: true}
	readOnly := NodeTarget{Kind: PortKubeletReadOnly}
	np := NodeTarget{Kind: PortNodePort, MustAnswer: true}
	r := func(o wire.Outcome) wire.ConnectResult { return wire.ConnectResult{Outcome: o} }
	answered := func(pod string) wire.ConnectResult {
		return wire.ConnectResult{Outcome: wire.Reachable, Peer: &wire.Identity{Pod: pod}}
	}
	cases := []struct {
		t          NodeTarget
		fromTenant bool
		r          wire.ConnectResult
		m          Match
	}{
		{kubelet, true, r(wire.Timeout), Matched},
		{kubelet, true, r(wire.Refused), Matched},
		{kubelet, true, r(wire.Unreachable), Matched},
		{kubelet, true, r(wire.Reachable), Mismatched},
		{kubelet, true, r(wire.Failed), Inconclusive},
		{kubelet, true, wire.ConnectResult{Outcome: wire.Timeout, OverrunMS: 2800}, Inconclusive},
		{kubelet, true, wire.ConnectResult{Outcome: wire.Timeout, OverrunMS: 300}, Matched},
		{kubelet, false, r(wire.Reachable), Matched},
		{kubelet, false, r(wire.Refused), Mismatched},
		{kubelet, false, r(wire.Timeout), Mismatched},
		{readOnly, false, r(wire.Refused), Matched},
		{readOnly, false, r(wire.Reachable), Matched},
		{readOnly, false, r(wire.Timeout), Mismatched},
		{np, false, answered("backend"), Matched},
		{np, false, r(wire.Reachable), Mismatched},
		{np, false, answered("someone-else"), Mismatched},
		{np, true, r(wire.Reachable), Mismatched},
	}
	for _, c := range cases {
		_, m := JudgeNode(c.t, c.fromTenant, c.r, "backend")
		assert.Equal(t, c.m, m, "%s from tenant=%v: %+v", c.t.Kind, c.fromTenant, c.r)
	}
}

func TestClosedPortNotes(t *testing.T) {
	o := func(role reports.Role, addr, observed string) reports.Observation {
		return reports.Observation{Role: role, Target: reports.Target{Kind: "node", Address: addr}, Method: "tcp/kubelet-readonly", Observed: observed}
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

// cluster is a fake cluster for EXP-004: two nodes, the API server on the
// control-plane node, a control probe pod; created pods become Ready at
// once and NodePort Services get port 31234.
type cluster struct {
	cs      *fake.Clientset
	mu      sync.Mutex
	actions []string // "create pods", "create services", "delete services", ...
}

const testNodePort = 31234

func newCluster(t *testing.T) *cluster {
	control := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe-0", Namespace: "bh-control", Labels: map[string]string{"bulkhead.dev/tenant": "control"}},
		Spec: corev1.PodSpec{
			Priority: ptr.To[int32](0),
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "probe", Image: "probe:test", Args: []string{"serve"},
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 8081, Protocol: corev1.ProtocolUDP}},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), RunAsNonRoot: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
			NodeName: "w1",
		}}
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp", Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "172.18.0.3"}}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "172.18.0.2"}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{"kubernetes.io/service-name": "kubernetes"}},
			Ports:     []discoveryv1.EndpointPort{{Port: ptr.To[int32](6443)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"172.18.0.3"}}}},
		control,
	)
	c := &cluster{cs: cs}
	record := func(a k8stesting.Action) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.actions = append(c.actions, a.GetVerb()+" "+a.GetResource().Resource)
	}
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetVerb() == "create" || a.GetVerb() == "delete" {
			record(a)
		}
		return false, nil, nil
	})
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		p.Status.Phase, p.Status.PodIP = corev1.PodRunning, "10.0.9.2"
		return false, nil, nil
	})
	cs.PrependReactor("create", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s := a.(k8stesting.CreateAction).GetObject().(*corev1.Service)
		s.Spec.Ports[0].NodePort = testNodePort
		return false, nil, nil
	})
	return c
}

func (c *cluster) did() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.actions...)
}

// nodesTopology: tenant a with two probe pods (one namespace), tenant b
// with one, the control namespace with one.
func nodesTopology(reference bool) checks.Topology {
	return checks.Topology{
		Tenants: []checks.Tenant{
			{Name: "a", Namespaces: []string{"a-web"}, Isolated: true, Reference: reference},
			{Name: "b", Namespaces: []string{"b-web"}, Isolated: true, Reference: reference},
			{Name: "control", Namespaces: []string{"bh-control"}},
		},
		Probes: []checks.ProbePod{
			{Tenant: "a", Namespace: "a-web", Name: "p0", IP: "10.0.0.1"},
			{Tenant: "a", Namespace: "a-web", Name: "p1", IP: "10.0.0.2"},
			{Tenant: "b", Namespace: "b-web", Name: "p0", IP: "10.0.1.1"},
			{Tenant: "control", Namespace: "bh-control", Name: "probe-0", IP: "10.0.9.1"},
		},
	}
}

// world answers probes as an isolated cluster would: the control pod
// reaches every node port (the NodePort answered by its backend only with
// the token), tenant pods reach each other and resolve names, and nothing
// else. Hooks change one answer.
type world struct {
	mu      sync.Mutex
	backend string            // the NodePort's backend pod, once created
	tokens  map[string]string // source and host -> token sent, for NodePort targets
	hook    func(src probing.Pod, t wire.ConnectTarget, call int) (wire.ConnectResult, bool)
}

func (w *world) answer(src probing.Pod, t wire.ConnectTarget, call int) wire.ConnectResult {
	if w.hook != nil {
		if r, ok := w.hook(src, t, call); ok {
			return r
		}
	}
	w.mu.Lock()
	if t.Port == testNodePort {
		w.tokens[src.String()+" "+t.Host] = t.Token
	} else if t.Token != "" {
		w.tokens["unexpected "+src.String()+" "+t.Host] = t.Token
	}
	backend := w.backend
	w.mu.Unlock()
	switch {
	case src.Namespace == "bh-control" && t.Port == testNodePort && t.Token != "":
		return wire.ConnectResult{Outcome: wire.Reachable, Peer: &wire.Identity{Pod: backend}}
	case src.Namespace == "bh-control" && t.Port == KubeletReadOnlyPort:
		return wire.ConnectResult{Outcome: wire.Refused}
	case src.Namespace == "bh-control":
		return wire.ConnectResult{Outcome: wire.Reachable}
	case t.Protocol == wire.DNS:
		return wire.ConnectResult{Outcome: wire.Reachable}
	case strings.HasPrefix(t.Host, "10.0.0."):
		return wire.ConnectResult{Outcome: wire.Reachable, Peer: &wire.Identity{Pod: map[string]string{"10.0.0.1": "p0", "10.0.0.2": "p1"}[t.Host]}}
	}
	return wire.ConnectResult{Outcome: wire.Timeout}
}

func nodesEnv(t *testing.T, reference bool, w *world) (*checks.Env, *cluster) {
	c := newCluster(t)
	c.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		w.mu.Lock()
		w.backend = a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name
		w.mu.Unlock()
		return false, nil, nil
	})
	w.tokens = map[string]string{}
	return &checks.Env{Kube: &kube.Clients{Core: c.cs}, RunID: "t3st", Topology: nodesTopology(reference),
		Timing: checks.Timing{ConnectTimeout: time.Second, Enforcement: 2 * time.Second, Rounds: 3, Pause: time.Millisecond},
		Probes: &probing.Simulated{ConnectFunc: w.answer}}, c
}

func runEXP004(env *checks.Env) reports.CheckResult {
	return checks.Execute(context.Background(), Checks()[3], env)
}

// On an isolated cluster every node port is blocked and proven: the
// NodePort is published after its backend is Ready, only while probed,
// and only the NodePort targets carry the token.
func TestNodesPassWithTheNodePortOpenOnlyWhileProbed(t *testing.T) {
	w := &world{}
	env, c := nodesEnv(t, false, w)
	res := runEXP004(env)
	require.Equal(t, reports.Pass, res.Verdict, res.Reason)
	notes := strings.Join(res.Notes, "\n")
	assert.Contains(t, notes, "NodePort: port 31234 published by Service bh-control/bulkhead-exp-nodeport-")
	assert.Contains(t, notes, "answers only this run's token; deleted afterwards")
	assert.Contains(t, notes, "closed on the node (refused from the control namespace) and dropped for tenant pods")

	assert.Equal(t, []string{"create pods", "create services", "delete services", "delete pods"}, c.did(),
		"the backend is up before the node port opens, and the node port closes first")
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, tok := range w.tokens {
		assert.False(t, strings.HasPrefix(k, "unexpected"), "a token went to a target that is no NodePort: %s", k)
		assert.Len(t, tok, 32, "every NodePort probe carries the run's token: %s", k)
	}
	assert.Len(t, w.tokens, 4*2, "every pod (3 tenant, 1 control) probed the NodePort on both nodes")

	tests, reach := 0, 0
	for _, o := range res.Observations {
		if o.Role == reports.RoleTest {
			tests++
			assert.Len(t, o.Needs, 2, checks.DescribeOne(o))
		}
		if o.Method == "dns/resolve" {
			reach++
			assert.Equal(t, "b-web", o.Actor.Namespace, "b-web/p0 has no peer in its namespace: it resolves a name instead")
		}
	}
	// 2 nodes x (kubelet, read-only kubelet, NodePort) + the API server, 3 tenant pods, 3 rounds
	assert.Equal(t, (2*3+1)*3*3, tests)
	assert.Equal(t, 3, reach)
}

// controlMissesW1Kubelet is a world where the control namespace's probes
// of w1's kubelet time out in the exec calls when picks.
func controlMissesW1Kubelet(when func(call int) bool) *world {
	return &world{hook: func(src probing.Pod, t wire.ConnectTarget, call int) (wire.ConnectResult, bool) {
		if src.Namespace == "bh-control" && t.Host == "172.18.0.2" && t.Port == KubeletPort && when(call) {
			return wire.ConnectResult{Outcome: wire.Timeout}, true
		}
		return wire.ConnectResult{}, false
	}}
}

// A blocked node port counts only where, in the same round, the control
// reached that address:port: without it the round proves nothing.
func TestBlockedRestsOnTheSameRoundsControl(t *testing.T) {
	// The control namespace never reaches w1's kubelet: no round proves
	// the tenants' blocks there.
	env, _ := nodesEnv(t, false, controlMissesW1Kubelet(func(int) bool { return true }))
	res := runEXP004(env)
	require.Equal(t, reports.Unproven, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "172.18.0.2:10250 (kubelet, node w1) answers the control namespace")
	unproven := 0
	for _, o := range res.Observations {
		if o.Status == reports.StatusUnproven {
			unproven++
			assert.Equal(t, "172.18.0.2:10250", o.Target.Address)
		}
	}
	assert.Positive(t, unproven)
}

// A control that fails in one round leaves that round's blocks unproven;
// the other rounds prove the same paths, so the check passes and names the
// gap.
func TestOneRoundWithoutItsControlIsNamed(t *testing.T) {
	env, _ := nodesEnv(t, false, controlMissesW1Kubelet(func(call int) bool { return call == 3 }))
	res := runEXP004(env)
	require.Equal(t, reports.Pass, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "not shown in round 3: 172.18.0.2:10250 (kubelet, node w1) answers the control namespace")
	for _, o := range res.Observations {
		if o.Status == reports.StatusUnproven {
			assert.Equal(t, 3, o.Round)
			assert.Equal(t, "172.18.0.2:10250", o.Target.Address)
		}
	}
}

// A tenant pod that reaches nothing proves nothing by being blocked.
func TestBlockedRestsOnTheTenantPodReachingSomething(t *testing.T) {
	w := &world{hook: func(src probing.Pod, t wire.ConnectTarget, call int) (wire.ConnectResult, bool) {
		if src.String() == "b-web/p0" && t.Protocol == wire.DNS {
			return wire.ConnectResult{Outcome: wire.DNSFailure}, true
		}
		return wire.ConnectResult{}, false
	}}
	env, _ := nodesEnv(t, false, w)
	res := runEXP004(env)
	require.Equal(t, reports.Unproven, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "b-web/p0 reaches something")
	assert.NotContains(t, res.Reason, "a-web/")
}

// A user's tenant counts from round 1, settle rounds included: a leak
// while bulkhead's own NodePort is still being programmed is a leak.
// Bulkhead's own tenants settle first.
func TestLeakDuringSettleCountsForUsersTenants(t *testing.T) {
	hook := func(src probing.Pod, t wire.ConnectTarget, call int) (wire.ConnectResult, bool) {
		switch {
		case src.Namespace == "bh-control" && t.Port == testNodePort && call == 1:
			return wire.ConnectResult{Outcome: wire.Refused}, true // not programmed yet
		case src.String() == "a-web/p1" && t.Port == KubeletPort && call == 1:
			return wire.ConnectResult{Outcome: wire.Reachable}, true
		}
		return wire.ConnectResult{}, false
	}
	env, _ := nodesEnv(t, false, &world{hook: hook})
	res := runEXP004(env)
	require.Equal(t, reports.Fail, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "a-web/p1 -> 172.18.0.")
	assert.Contains(t, res.Reason, "reachable (want blocked, round 1)")
	assert.Contains(t, strings.Join(res.Notes, "\n"), "took effect after")

	env, _ = nodesEnv(t, true, &world{hook: hook})
	res = runEXP004(env)
	assert.Equal(t, reports.Pass, res.Verdict, "bulkhead's own tenant's policies were just made: %s", res.Reason)
}

// A pod that cannot be asked in a round leaves its paths unproven in that
// round only.
func TestExecFailureLeavesThatRoundUnproven(t *testing.T) {
	w := &world{}
	env, _ := nodesEnv(t, false, w)
	env.Probes = &probing.Simulated{ConnectFunc: w.answer, ExecErr: func(src probing.Pod, _ string, call int) error {
		if src.String() == "a-web/p0" && call == 2 {
			return errors.New("stream reset")
		}
		return nil
	}}
	res := runEXP004(env)
	// Every path of a-web/p0 was proven in its other rounds and failed in
	// none: the check passes, and names the round it could not probe.
	require.Equal(t, reports.Pass, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "round results unproven whose paths another round proved")
	unproven := 0
	for _, o := range res.Observations {
		if o.Status == reports.StatusUnproven {
			unproven++
			assert.Equal(t, "a-web", o.Actor.Namespace)
			assert.Equal(t, "p0", o.Actor.Pod)
			assert.Equal(t, 2, o.Round)
			assert.Equal(t, "not probed", o.Observed)
		}
	}
	assert.Positive(t, unproven, "the round that failed stays unproven in the evidence")
}

// --no-node-ports: nothing is published, nothing probes a node port, and
// the check says what it did not evaluate.
func TestNoNodePorts(t *testing.T) {
	w := &world{}
	env, c := nodesEnv(t, false, w)
	env.Allow.NoNodePorts = true
	res := runEXP004(env)
	require.Equal(t, reports.Unproven, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "not evaluated: NodePorts: none published (--no-node-ports)")
	assert.Contains(t, res.Notes, "NodePort: not published (--no-node-ports)")
	assert.Empty(t, c.did(), "nothing created")
	for _, o := range res.Observations {
		assert.NotContains(t, o.Method, PortNodePort)
		if o.Role == reports.RoleTest {
			assert.True(t, o.Passed(), checks.DescribeOne(o))
		}
	}
}

// The NodePort's backend is the control probe pod's twin, restricted and
// serving TCP only, to the token only. (It is the one object EXP-004
// creates that runs: in bulkhead's own namespace, never a tenant's.)
func TestBackendPodServesOnlyTheToken(t *testing.T) {
	c := newCluster(t)
	like, err := c.cs.CoreV1().Pods("bh-control").Get(context.Background(), "probe-0", metav1.GetOptions{})
	require.NoError(t, err)
	env := &checks.Env{RunID: "t3st"}
	p := BackendPod(env, like, "bulkhead-exp-nodeport-ab12", "tok")
	assert.Equal(t, []string{"serve", "--tcp", ":8080", "--udp", "", "--sctp", "", "--token", "tok"}, p.Spec.Containers[0].Args)
	assert.Len(t, p.Spec.Containers[0].Ports, 1)
	assert.Empty(t, p.Spec.NodeName)
	assert.Nil(t, p.Spec.Priority)
	assert.Equal(t, "bulkhead-exp-nodeport-ab12", p.Labels[labelBackend])
	assert.Equal(t, "serve", like.Spec.Containers[0].Args[0], "the control pod is left as it was")
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	require.NoError(t, err)
	res := policy.AggregateCheckResults(eval.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, &p.ObjectMeta, &p.Spec))
	assert.True(t, res.Allowed, "%s: %s", res.ForbiddenReason(), res.ForbiddenDetail())
}
