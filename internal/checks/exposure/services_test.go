package exposure

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/bulkhead-k8s/bulkhead/internal/actors"
	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/tenantapi/fakeapi"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

var (
	alice, viewer, bob = fakeapi.Alice, fakeapi.Viewer, fakeapi.Bob
	// byo: an admin user and a read-only ServiceAccount in tenant a, an
	// admin user in tenant b (what each may do is each test's table).
	byo = fakeapi.BYO
)

const quotaNodePorts = `services "x" is forbidden: exceeded quota: tenant-quota, requested: services.nodeports=1, used: services.nodeports=0, limited: services.nodeports=0`

func serviceOf(t *testing.T, r fakeapi.Request) corev1.Service {
	t.Helper()
	var s corev1.Service
	require.NoError(t, json.Unmarshal(r.Body, &s))
	return s
}

// EXP-001 on an ordinary tenant set-up: a quota on node ports only. The
// read-only ServiceAccount may not create Services: not applicable, never
// a failure. The admins' NodePort and ordinary LoadBalancer are stopped by
// the quota, but a LoadBalancer without node ports is admitted: that is
// the finding, and nothing else is.
func TestNodePortsOnAnOrdinaryTenant(t *testing.T) {
	api := fakeapi.New(t)
	api.Allowed["alice create services a-web"] = true
	api.Allowed["bob create services b-web"] = true
	api.Answer = func(r fakeapi.Request) (int, string) {
		s := serviceOf(t, r)
		switch {
		case !r.DryRun:
			t.Errorf("EXP-001 sends only dry-runs, got %s %s", r.Method, r.Path)
		case s.Spec.Type == corev1.ServiceTypeNodePort,
			s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.AllocateLoadBalancerNodePorts == nil:
			return 403, quotaNodePorts
		}
		return 201, ""
	}
	env := api.Env(t, byo())
	res := checks.Execute(context.Background(), Checks()[0], env)
	require.Equal(t, reports.Fail, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "allocateLoadBalancerNodePorts=false): admitted")
	var na, leaks, passed int
	for _, o := range res.Observations {
		switch {
		case o.Status == reports.StatusNotApplicable:
			na++
			assert.Equal(t, "serviceaccount a-web/viewer may not create services in a-web (RBAC)", o.Why)
		case o.Leak():
			leaks++
			assert.Contains(t, o.Method, "allocateLoadBalancerNodePorts=false")
		case o.Role == reports.RoleTest:
			assert.True(t, o.Passed(), checks.DescribeOne(o))
			assert.Equal(t, []string{o.Actor.Identity}, []string{map[string]string{"a-web": "alice", "b-web": "bob"}[o.Actor.Namespace]})
			passed++
		}
	}
	assert.Equal(t, 1, na)
	assert.Equal(t, 2*env.Timing.Rounds, leaks, "every round, both admins")
	assert.Equal(t, 2*2*env.Timing.Rounds, passed)
	for _, r := range api.Requests() {
		assert.NotEqual(t, viewer.User, r.User, "an identity that may not try does not try")
	}
}

// A refusal of bulkhead's own impersonation is no refusal of the tenant:
// the test is unproven, never passed, never failed.
func TestRunnerRefusedIsUnproven(t *testing.T) {
	api := fakeapi.New(t)
	api.Allowed["alice create services a-web"] = true
	api.Answer = func(r fakeapi.Request) (int, string) {
		if serviceOf(t, r).Spec.Type == corev1.ServiceTypeClusterIP {
			return 201, ""
		}
		return 403, fakeapi.RunnerRefused("alice")
	}
	top := byo()
	top.Tenants = top.Tenants[:1]
	res := checks.Execute(context.Background(), Checks()[0], api.Env(t, top))
	require.Equal(t, reports.Unproven, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "RBAC refused ci-runner")
}

// Nobody of a tenant may create Services: that tenant is not evaluated,
// which is not a failure; with nobody anywhere the check is not evaluated.
func TestNobodyMayCreateServices(t *testing.T) {
	api := fakeapi.New(t)
	api.Allowed["alice create services a-web"] = true
	api.Answer = func(r fakeapi.Request) (int, string) {
		if serviceOf(t, r).Spec.Type == corev1.ServiceTypeClusterIP {
			return 201, ""
		}
		return 403, `services "x" is forbidden: ValidatingAdmissionPolicy 'no-exposure' with binding 'no-exposure' denied request: no`
	}
	res := checks.Execute(context.Background(), Checks()[0], api.Env(t, byo()))
	require.Equal(t, reports.Unproven, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "not evaluated: tenant b in b-web: no identity may create services")
	assert.NotContains(t, res.Reason, "not as expected")

	nobody := fakeapi.New(t)
	res = checks.Execute(context.Background(), Checks()[0], nobody.Env(t, byo()))
	assert.Equal(t, reports.Skipped, res.Verdict, res.Reason)
	assert.Empty(t, nobody.Requests())
}

// EXP-002 patches a Service only as an identity that may patch it, and the
// patch needs its own control (a label patch of the same Service).
func TestExternalIPsPatchRestsOnItsOwnControl(t *testing.T) {
	api := fakeapi.New(t)
	api.Allowed["alice create services a-web"] = true
	api.Allowed["alice patch services a-web"] = true
	api.Allowed["bob create services b-web"] = true
	api.Answer = func(r fakeapi.Request) (int, string) {
		assert.True(t, r.DryRun, "EXP-002 only dry-runs: %s %s", r.Method, r.Path)
		if strings.Contains(string(r.Body), "externalIPs") {
			return 403, `services "x" is forbidden: ValidatingAdmissionPolicy 'deny-external-ips' with binding 'deny-external-ips' denied request: no`
		}
		if r.Method == http.MethodPatch {
			return 403, `services "probe-0" is forbidden: User "alice" cannot patch resource "services"`
		}
		return 201, ""
	}
	top := byo()
	top.Probes = []checks.ProbePod{{Tenant: "a", Namespace: "a-web", Name: "probe-0", Service: "probe-0"}, {Tenant: "b", Namespace: "b-web", Name: "probe-0", Service: "probe-0"}}
	res := checks.Execute(context.Background(), Checks()[1], api.Env(t, top))
	require.Equal(t, reports.Unproven, res.Verdict, res.Reason)
	assert.Contains(t, res.Reason, "not shown in round 1: user alice may patch Service a-web/probe-0")
	var na []string
	for _, o := range res.Observations {
		if o.Status == reports.StatusNotApplicable {
			na = append(na, o.Why)
		}
		if o.Role == reports.RoleTest && strings.HasPrefix(o.Method, "dry-run create") {
			assert.True(t, o.Passed(), "the creates rest on the ClusterIP control, which held: %s", checks.DescribeOne(o))
		}
	}
	assert.ElementsMatch(t, []string{"user bob may not patch services in b-web (RBAC)", "serviceaccount a-web/viewer may not create services in a-web (RBAC)"}, na,
		"bob's patch is not applicable, and said so")
}

// The rounds: a user's tenant counts from the first round, so an answer
// that flaps is seen; bulkhead's own tenant settles first (its policies
// are minutes old), then every round counts.
func TestAttemptsCountEveryRoundOnceSettled(t *testing.T) {
	env := &checks.Env{Timing: checks.Timing{Rounds: 3, Enforcement: 2 * time.Second, Pause: time.Millisecond}}
	a := actors.Actor{Tenant: "a", Namespace: "a-web", Identity: alice}
	flapping := func(leakOn int32) func(context.Context) tenantapi.Answer {
		var n atomic.Int32
		return func(context.Context) tenantapi.Answer {
			if n.Add(1) == leakOn {
				return tenantapi.Answer{Status: 201}
			}
			return tenantapi.Answer{Status: 403, Message: "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no"}
		}
	}
	admitted := func(context.Context) tenantapi.Answer { return tenantapi.Answer{Status: 201} }
	attempts := func(tn checks.Tenant, leakOn int32) []attempt {
		return []attempt{
			{Tenant: tn, Actor: a, Role: reports.RoleControl, Method: "ctl", Do: admitted, Judge: tenantapi.JudgeAdmitted, Proves: []string{"k"}},
			{Tenant: tn, Actor: a, Role: reports.RoleTest, Method: "t", Do: flapping(leakOn), Judge: judgeAdmissionDenial, Needs: []string{"k"}},
		}
	}

	user := checks.Tenant{Name: "a", Isolated: true}
	obs, _, err := runAttempts(context.Background(), env, attempts(user, 2))
	require.NoError(t, err)
	j := checks.Judge(checks.Check{ID: "X"}, checks.Outcome{Observations: obs})
	assert.Equal(t, reports.Fail, j.Verdict, "a leak in round 2 of 3 is a leak: %s", j.Reason)
	assert.Contains(t, j.Reason, "round 2")
	assert.Len(t, obs, 6, "every round's evidence is kept")

	own := checks.Tenant{Name: "a", Isolated: true, Reference: true}
	obs, notes, err := runAttempts(context.Background(), env, attempts(own, 1))
	require.NoError(t, err)
	j = checks.Judge(checks.Check{ID: "X"}, checks.Outcome{Observations: obs})
	assert.Equal(t, reports.Pass, j.Verdict, "bulkhead's new policy took a round to be in effect: %s", j.Reason)
	assert.Len(t, obs, 6, "three rounds count once settled")
	assert.Equal(t, 2, obs[0].Round, "the settle round is not evidence")
	assert.Contains(t, strings.Join(notes, " "), "took effect after")
}

func TestServiceJudges(t *testing.T) {
	quota := tenantapi.Answer{Status: 403, Message: `services "x" is forbidden: exceeded quota: q, requested: services.loadbalancers=1,services.nodeports=1, used: services.loadbalancers=0,services.nodeports=0, limited: services.loadbalancers=0,services.nodeports=0`}
	other := tenantapi.Answer{Status: 403, Message: `services "x" is forbidden: exceeded quota: q, requested: services=1, used: services=6, limited: services=6`}
	vap := tenantapi.Answer{Status: 403, Message: `services "x" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no`}

	j := judgeQuotaOrPolicy("services.loadbalancers", "services.nodeports")(quota)
	assert.True(t, j.OK)
	assert.Equal(t, "rejected by ResourceQuota q (services.loadbalancers)", j.Observed)
	j = judgeQuotaOrPolicy("services.nodeports")(other)
	assert.False(t, j.OK)
	assert.NotEmpty(t, j.Inconclusive, "a quota on the Service count proves nothing about node ports, and is no leak")
	assert.Contains(t, j.Observed, "not on services.nodeports")
	assert.True(t, judgeQuotaOrPolicy("services.nodeports")(vap).OK)
	j = judgeQuotaOrPolicy("services.nodeports")(tenantapi.Answer{Status: 201})
	assert.False(t, j.OK)
	assert.Empty(t, j.Inconclusive, "an admitted NodePort is a leak")

	assert.True(t, judgeAdmissionDenial(vap).OK)
	j = judgeAdmissionDenial(quota)
	assert.False(t, j.OK)
	assert.NotEmpty(t, j.Inconclusive, "a quota is not an externalIPs policy")
	assert.NotEmpty(t, judgeAdmissionDenial(tenantapi.Answer{Err: context.DeadlineExceeded}).Inconclusive)
}
