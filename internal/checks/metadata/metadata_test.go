package metadata

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata/endpoints"
	"github.com/bulkhead-k8s/bulkhead/internal/probing"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

const marker = "k3x9q"

var podIPs = map[string]int{}

func pod(tenant, name, node string) checks.ProbePod {
	key := tenant + "/" + name
	if _, ok := podIPs[key]; !ok {
		podIPs[key] = len(podIPs) + 10
	}
	return checks.ProbePod{Tenant: tenant, Namespace: "bh-" + marker + "-" + tenant, Name: name, Node: node, IP: "10.244.0." + strconv.Itoa(podIPs[key])}
}

// topology: tenants a and b (a user's tenants unless made Reference), the
// control namespace, and the sentinel, two probe pods each (one sentinel).
func topology() checks.Topology {
	return checks.Topology{
		Tenants: []checks.Tenant{{Name: "a", Isolated: true}, {Name: "b", Isolated: true}, {Name: "control"},
			{Name: "sentinel", Isolated: true, Sentinel: true, Reference: true}},
		Probes: []checks.ProbePod{pod("a", "probe-0", "n1"), pod("a", "probe-1", "n2"), pod("b", "probe-0", "n1"), pod("b", "probe-1", "n2"),
			pod("control", "probe-0", "n1"), pod("control", "probe-1", "n2"), pod("sentinel", "probe-0", "n1")},
	}
}

func reference() checks.Topology {
	top := topology()
	for i := range top.Tenants {
		top.Tenants[i].Reference = true
	}
	return top
}

func withDecoy() Live {
	return Live{Decoy: &DecoyInfo{Marker: marker, Container: "bh-k3x9q-metadata-decoy", IP: "172.18.0.9",
		Addresses: []string{endpoints.LinkLocal, endpoints.Alibaba}, Skipped: []string{"fd00:ec2::254: the decoy serves IPv4 addresses only"}},
		NodeVantage: []string{"n1: 169.254.169.254: answered by the decoy"}}
}

func noDecoy() Live { return Live{NoDecoy: "no decoy on clusters bulkhead did not create"} }

// steps are the step names of an endpoint's exchanges when it is answered.
func steps(e endpoints.Endpoint) []string {
	var s []string
	if e.Wire.Token != nil {
		s = append(s, wire.StepToken)
	}
	s = append(s, wire.StepRequest)
	if e.Wire.FollowFirst {
		s = append(s, wire.StepFollow)
	}
	return s
}

// blocked: the connect and the first request fail the same way.
func blocked(e endpoints.Endpoint, o wire.Outcome) wire.MetadataResult {
	step := wire.StepRequest
	if e.Wire.Token != nil {
		step = wire.StepToken
	}
	return wire.MetadataResult{ID: e.ID, Connect: o, ConnectDetail: "dial: " + string(o),
		Exchanges: []wire.HTTPExchange{{Step: step, Method: "GET", URL: RequestURL(e.Wire), Outcome: o, Detail: string(o)}}}
}

// answered: every step answered with status; from the decoy when decoy is
// set; credential-shaped on the last step of credential endpoints.
func answered(e endpoints.Endpoint, status int, decoy string) wire.MetadataResult {
	r := wire.MetadataResult{ID: e.ID, Address: e.Wire.Host, Connect: wire.Reachable}
	for _, s := range steps(e) {
		r.Exchanges = append(r.Exchanges, wire.HTTPExchange{Step: s, Method: "GET", URL: RequestURL(e.Wire), Outcome: wire.Reachable,
			Status: status, Bytes: 42, Fingerprint: "sha256:0123456789ab", Decoy: decoy})
	}
	if e.Credentials && status == 200 {
		r.Exchanges[len(r.Exchanges)-1].Credential = &wire.CredentialShape{Kinds: []string{"aws-access-key"}, Fields: []string{"SecretAccessKey"}, Fingerprint: "sha256:feedfacecafe"}
	}
	return r
}

// world answers one endpoint (catalogue, the decoy's own address, or a
// peer probe pod) tried from p in a round.
type world func(p checks.ProbePod, e endpoints.Endpoint, round int) wire.MetadataResult

// peersAnswer wraps w: peer probe pods answer, as they do on a working
// cluster.
func peersAnswer(w world) world {
	return func(p checks.ProbePod, e endpoints.Endpoint, round int) wire.MetadataResult {
		if strings.HasPrefix(e.ID, PeerPrefix) {
			return answered(e, 200, "")
		}
		return w(p, e, round)
	}
}

func endpointKey_(e wire.MetadataEndpoint) string {
	return fmt.Sprint(e.Host, e.Port, e.Request.Path, e.Token != nil, e.FollowFirst)
}

// attempts counts the tries of each endpoint from each pod in each round.
type attempts struct {
	mu sync.Mutex // pods are probed in parallel
	n  map[string]int
}

func (a *attempts) next(p checks.ProbePod, e endpoints.Endpoint, round int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[string]int{}
	}
	k := fmt.Sprint(p.Tenant, " ", p.Name, " ", e.ID, " ", round)
	a.n[k]++
	return a.n[k]
}

// controlTimesOut wraps base: the control pods' tries time out where miss
// says so (by round, and by attempt within the round, from 1).
func controlTimesOut(base world, a *attempts, miss func(round, attempt int) bool) world {
	return func(p checks.ProbePod, e endpoints.Endpoint, round int) wire.MetadataResult {
		n := a.next(p, e, round)
		if p.Tenant == "control" && miss(round, n) {
			return blocked(e, wire.Timeout)
		}
		return base(p, e, round)
	}
}

// simulate runs the metadata probing through the simulated runner: two
// rounds count; execErr, when set, fails a pod's exec in a round.
func simulate(t *testing.T, top checks.Topology, live Live, w world, execErr func(src probing.Pod, round int) error) *Result {
	t.Helper()
	return simulateSettling(t, top, live, w, execErr, 50*time.Millisecond)
}

// simulateSettling is simulate with a settle timeout: tests that need the
// settle phase to end by itself (not by running out of time on a busy
// machine) give it seconds.
func simulateSettling(t *testing.T, top checks.Topology, live Live, w world, execErr func(src probing.Pod, round int) error, settle time.Duration) *Result {
	t.Helper()
	catalogue := map[string]endpoints.Endpoint{}
	for _, e := range endpoints.All() {
		catalogue[e.ID] = e
	}
	byKey := map[string]endpoints.Endpoint{}
	pods := map[probing.Pod]checks.ProbePod{}
	for _, pl := range Plan(top, live) {
		e, ok := catalogue[pl.Endpoint.ID]
		if !ok {
			e = endpoints.Endpoint{ID: pl.Endpoint.ID, Method: "http GET", Wire: pl.Endpoint}
		}
		byKey[pl.Pod.Pod().String()+" "+endpointKey_(pl.Endpoint)] = e
		pods[pl.Pod.Pod()] = pl.Pod
	}
	sim := &probing.Simulated{MetadataFunc: func(src probing.Pod, we wire.MetadataEndpoint, call int) wire.MetadataResult {
		e, ok := byKey[src.String()+" "+endpointKey_(we)]
		require.True(t, ok, "an endpoint the plan did not hold: %+v from %s", we, src)
		if e.Wire.Token != nil {
			require.NotNil(t, we.Token)
		}
		return w(pods[src], e, call)
	}}
	if execErr != nil {
		sim.ExecErr = func(src probing.Pod, _ string, call int) error { return execErr(src, call) }
	}
	env := &checks.Env{Topology: top, Probes: sim,
		Timing: checks.Timing{ConnectTimeout: time.Second, Enforcement: settle, Rounds: 2, Pause: time.Millisecond}}
	res, err := probeRounds(context.Background(), env, live)
	require.NoError(t, err)
	return res
}

// isolatedWorld is a cluster doing its job: tenants blocked everywhere;
// the control reaches the decoy where it serves, nothing else (IPv6 has no
// route, the GCP name does not resolve); tenant b reaches beyond the
// cluster (its internet-egress profile), tenant a does not.
func isolatedWorld(live Live) world {
	return peersAnswer(func(p checks.ProbePod, e endpoints.Endpoint, _ int) wire.MetadataResult {
		tenant := p.Tenant
		switch {
		case e.ID == DirectID && tenant != "a":
			return answered(e, 200, marker)
		case e.Wire.Host == endpoints.AWSIPv6:
			return blocked(e, wire.Unreachable)
		case e.Wire.Host == endpoints.GCPName:
			return blocked(e, wire.DNSFailure)
		case tenant == "control" && live.Decoy != nil:
			return answered(e, 200, marker)
		}
		return blocked(e, wire.Timeout)
	})
}

func judge(t *testing.T, out checks.Outcome, id string) checks.Judgement {
	t.Helper()
	for _, c := range Checks() {
		if c.ID == id {
			return checks.Judge(c, out)
		}
	}
	t.Fatalf("no check %s", id)
	return checks.Judgement{}
}

func both(res *Result) map[string]checks.Outcome {
	return map[string]checks.Outcome{IDEndpoints: res.Endpoints, IDCredentials: res.Credentials}
}

func TestIsolatedClusterWithDecoyPasses(t *testing.T) {
	for name, top := range map[string]checks.Topology{"a user's tenants": topology(), "reference tenants": reference()} {
		t.Run(name, func(t *testing.T) {
			live := withDecoy()
			res := simulate(t, top, live, isolatedWorld(live), nil)
			for id, out := range both(res) {
				j := judge(t, out, id)
				assert.Equal(t, reports.Pass, j.Verdict, "%s: %s", id, j.Reason)
			}
			assert.Equal(t, 2, res.Rounds, "settled in round 1, then a second counted round")

			// Every endpoint tried by every tenant pod, in every round, is an
			// observation, plus one TCP connect per address.
			cat := endpoints.All()
			var tests, notEvaluated, tcp int
			for _, o := range judge(t, res.Endpoints, IDEndpoints).Observations {
				if o.Role != reports.RoleTest {
					continue
				}
				assert.NotEqual(t, "sentinel", o.Actor.Tenant, "the sentinel is not a tenant under test")
				assert.Contains(t, []int{1, 2}, o.Round)
				if o.Status == reports.StatusNotApplicable {
					notEvaluated++
					assert.Contains(t, o.Why, "the decoy does not serve", checks.DescribeOne(o))
					assert.Contains(t, o.Detail, "not proven against a live endpoint")
					continue
				}
				assert.Equal(t, reports.StatusPass, o.Status, checks.DescribeOne(o))
				if o.Method == MethodTCP {
					tcp++
					continue
				}
				tests++
				assert.Equal(t, ExpectBlocked, o.Expected)
				assert.True(t, strings.HasPrefix(o.Target.Address, "http://"), o.Target.Address)
				assert.Len(t, o.Needs, 2, "the live endpoint and the pod reaching something")
			}
			served := 0
			for _, e := range cat {
				if e.Wire.Host == endpoints.LinkLocal || e.Wire.Host == endpoints.Alibaba {
					served++
				}
			}
			assert.Equal(t, 2*4*served, tests, "2 rounds, 4 tenant pods, every served endpoint")
			assert.Equal(t, 2*4*2, tcp, "2 rounds, 4 tenant pods, the 2 served addresses")
			assert.Equal(t, 2*4*(len(cat)-served+2), notEvaluated, "IPv6 and the GCP name: no decoy behind them")

			notes := strings.Join(res.Endpoints.Notes, "\n")
			assert.Contains(t, notes, "bh-k3x9q-metadata-decoy")
			assert.Contains(t, notes, "not evaluated (no live endpoint to prove a block against; a tenant reaching one would still fail): aws-imdsv1-ipv6, aws-imdsv2-ipv6, gcp-name")
			assert.Contains(t, notes, "from isolated tenant b: probe-0: answered HTTP 200", "tenant b's egress beyond the cluster is evidence its block is the except")
			assert.Contains(t, notes, "from isolated tenant a: probe-0: timeout")
			assert.Contains(t, notes, fmt.Sprintf("per-path proof: %d of %d blocked observations shown", tests+tcp, tests+tcp))
			assert.Contains(t, notes, "in 2 round(s), 12 exec round trips", "six pods (the sentinel left out), two rounds")
		})
	}
}

func TestTenantReachingTheDecoyFailsNamingTheEndpoint(t *testing.T) {
	top, live := topology(), withDecoy()
	base := isolatedWorld(live)
	leak := func(p checks.ProbePod, e endpoints.Endpoint, round int) wire.MetadataResult {
		if p.Tenant == "b" && e.Wire.Host == endpoints.LinkLocal {
			return answered(e, 200, marker)
		}
		return base(p, e, round)
	}
	res := simulate(t, top, live, leak, nil)

	j := judge(t, res.Endpoints, IDEndpoints)
	require.Equal(t, reports.Fail, j.Verdict)
	assert.Contains(t, j.Reason, "bh-k3x9q-b/probe-0 -> 169.254.169.254:80 tcp-connect: reachable (want blocked, round 1)")
	assert.Contains(t, j.Reason, "bh-k3x9q-b/probe-0 -> http://169.254.169.254/latest/meta-data/ http GET: answered HTTP 200 (want blocked, round 1)")
	assert.NotContains(t, j.Reason, "positive control")
	assert.NotContains(t, j.Reason, "bh-k3x9q-a/")

	j = judge(t, res.Credentials, IDCredentials)
	require.Equal(t, reports.Fail, j.Verdict)
	assert.Contains(t, j.Reason, "bh-k3x9q-b/probe-0 -> http://169.254.169.254/latest/meta-data/iam/security-credentials/ http GET: credentials sha256:feedfacecafe (want no credentials, round 1)")
	for _, o := range res.Credentials.Observations {
		assert.NotContains(t, o.Detail, "SECRET", "evidence carries fingerprints, never values")
	}
}

func TestAFlappingLeakFailsInTheRoundItLeaked(t *testing.T) {
	top, live := reference(), withDecoy()
	base := isolatedWorld(live)
	// b's policy lets the metadata address through in the second round only.
	res := simulate(t, top, live, func(p checks.ProbePod, e endpoints.Endpoint, round int) wire.MetadataResult {
		if p.Tenant == "b" && e.Wire.Host == endpoints.LinkLocal && round == 2 {
			return answered(e, 200, marker)
		}
		return base(p, e, round)
	}, nil)
	j := judge(t, res.Endpoints, IDEndpoints)
	require.Equal(t, reports.Fail, j.Verdict, j.Reason)
	assert.Contains(t, j.Reason, "round 2")
	assert.NotContains(t, j.Reason, "round 1)")
}

func TestBrokenDecoyLeavesBlockedUnproven(t *testing.T) {
	top, live := topology(), withDecoy()
	for name, w := range map[string]world{
		"nothing answers": func(p checks.ProbePod, e endpoints.Endpoint, _ int) wire.MetadataResult {
			return blocked(e, wire.Timeout)
		},
		"a proxy answers instead of the decoy": func(p checks.ProbePod, e endpoints.Endpoint, _ int) wire.MetadataResult {
			if p.Tenant == "control" {
				return answered(e, 404, "")
			}
			return blocked(e, wire.Timeout)
		},
		"another run's decoy answers": func(p checks.ProbePod, e endpoints.Endpoint, _ int) wire.MetadataResult {
			if p.Tenant == "control" {
				return answered(e, 200, "other")
			}
			return blocked(e, wire.Timeout)
		},
	} {
		t.Run(name, func(t *testing.T) {
			res := simulate(t, top, live, peersAnswer(w), nil)
			assert.False(t, res.Settled, "the decoy never answered the control: the settle phase ran out")
			for id, out := range both(res) {
				j := judge(t, out, id)
				assert.Equal(t, reports.Unproven, j.Verdict, "a broken control proves nothing, and nothing leaked: %s", id)
				assert.Contains(t, j.Reason, "failed positive controls", id)
				assert.Contains(t, j.Reason, "not shown in round", id)
			}
		})
	}
}

// The decoy dead in round 2 leaves that round's blocks unproven, named in
// the reason; the other rounds prove the same paths, so the check passes.
func TestADecoyDeadInOneRoundLeavesThatRoundUnproven(t *testing.T) {
	top, live := reference(), withDecoy()
	base := isolatedWorld(live)
	res := simulate(t, top, live, controlTimesOut(base, &attempts{}, func(round, _ int) bool { return round == 2 }), nil)
	j := judge(t, res.Endpoints, IDEndpoints)
	require.Equal(t, reports.Pass, j.Verdict, j.Reason)
	assert.Contains(t, j.Reason, "round results unproven whose paths another round proved")
	for _, o := range j.Observations {
		if o.Role != reports.RoleTest || o.Status == reports.StatusNotApplicable {
			continue
		}
		if o.Round == 2 {
			assert.Equal(t, reports.StatusUnproven, o.Status, checks.DescribeOne(o))
			assert.Contains(t, o.Why, "answers", "names the endpoint not shown live")
		} else {
			assert.Equal(t, reports.StatusPass, o.Status, "round 1 had its live decoy: %s", checks.DescribeOne(o))
		}
	}
	assert.Contains(t, strings.Join(res.Endpoints.Notes, "\n"), "(round 2)")
}

// The decoy's first answer to the control pods is lost in every round (a
// busy node): the control is asked again in its round, the second answer
// proves the tenants' attempts, and nothing is unproven. Never asked again:
// a tenant attempt that must be blocked.
func TestALostDecoyAnswerIsAskedAgainInItsRound(t *testing.T) {
	top, live := reference(), withDecoy()
	base := isolatedWorld(live)
	asked := &attempts{}
	res := simulate(t, top, live, controlTimesOut(base, asked, func(_, n int) bool { return n == 1 }), nil)
	j := judge(t, res.Endpoints, IDEndpoints)
	require.Equal(t, reports.Pass, j.Verdict, j.Reason)
	assert.NotContains(t, j.Reason, "unproven")
	for _, o := range j.Observations {
		if o.Role == reports.RoleTest && o.Status != reports.StatusNotApplicable {
			assert.Equal(t, reports.StatusPass, o.Status, checks.DescribeOne(o))
		}
	}
	retried := 0
	for k, n := range asked.n {
		if strings.HasPrefix(k, "control ") {
			retried += n - 1
			continue
		}
		assert.Equal(t, 1, n, "a tenant attempt is asked once a round: %s", k)
	}
	assert.Positive(t, retried, "the control's lost answers were asked again")
}

func TestATenantPodThatReachesNothingIsUnproven(t *testing.T) {
	top, live := reference(), withDecoy()
	base := isolatedWorld(live)
	// a/probe-1 is down: a/probe-0, whose only peer it is and which has no
	// egress beyond its namespace, shows no sign of working networking.
	res := simulate(t, top, live, func(p checks.ProbePod, e endpoints.Endpoint, round int) wire.MetadataResult {
		if e.ID == PeerPrefix+"bh-k3x9q-a/probe-1" {
			return blocked(e, wire.Timeout)
		}
		return base(p, e, round)
	}, nil)
	j := judge(t, res.Endpoints, IDEndpoints)
	require.Equal(t, reports.Unproven, j.Verdict, j.Reason)
	assert.Contains(t, j.Reason, "bh-k3x9q-a/probe-0 reaches a probe pod of its tenant")
	for _, o := range j.Observations {
		if o.Role != reports.RoleTest || o.Status == reports.StatusNotApplicable {
			continue
		}
		if o.Actor.Namespace == "bh-k3x9q-a" && o.Actor.Pod == "probe-0" {
			assert.Equal(t, reports.StatusUnproven, o.Status, checks.DescribeOne(o))
		} else {
			assert.Equal(t, reports.StatusPass, o.Status, checks.DescribeOne(o))
		}
	}
}

func TestAFailedExecMakesOnlyThatPodUnproven(t *testing.T) {
	top, live := reference(), withDecoy()
	res := simulate(t, top, live, isolatedWorld(live), func(src probing.Pod, round int) error {
		if src.Namespace == "bh-k3x9q-b" && src.Name == "probe-1" && round == 2 {
			return errors.New("stream reset")
		}
		return nil
	})
	for id, out := range both(res) {
		j := judge(t, out, id)
		require.Equal(t, reports.Unproven, j.Verdict, j.Reason)
		assert.Contains(t, j.Reason, "bh-k3x9q-b/probe-1 -> ")
		assert.Contains(t, j.Reason, "could not be asked this round")
		for _, o := range j.Observations {
			if o.Role == reports.RoleTest && o.Status == reports.StatusUnproven {
				assert.Equal(t, "probe-1", o.Actor.Pod, checks.DescribeOne(o))
				assert.Equal(t, 2, o.Round)
			}
		}
		assert.Contains(t, strings.Join(out.Notes, "\n"), "stream reset")
	}
}

func TestAUsersTenantGetsNoGraceWhileBulkheadSettles(t *testing.T) {
	live := withDecoy()
	base := isolatedWorld(live)
	// Round 1: the decoy does not answer yet (settling) and tenant a
	// reaches the metadata address.
	w := func(p checks.ProbePod, e endpoints.Endpoint, round int) wire.MetadataResult {
		switch {
		case round == 1 && p.Tenant == "control":
			return blocked(e, wire.Timeout)
		case round == 1 && p.Tenant == "a" && e.Wire.Host == endpoints.LinkLocal:
			return answered(e, 200, marker)
		}
		return base(p, e, round)
	}
	res := simulateSettling(t, topology(), live, w, nil, 10*time.Second)
	assert.Equal(t, 2, res.SettledRound)
	j := judge(t, res.Endpoints, IDEndpoints)
	require.Equal(t, reports.Fail, j.Verdict, "a user's tenant's policy was in place before bulkhead came: %s", j.Reason)
	assert.Contains(t, j.Reason, "bh-k3x9q-a/probe-0 -> http://169.254.169.254/latest/meta-data/ http GET: answered HTTP 200 (want blocked, round 1)")

	res = simulateSettling(t, reference(), live, w, nil, 10*time.Second)
	j = judge(t, res.Endpoints, IDEndpoints)
	assert.Equal(t, reports.Pass, j.Verdict, "bulkhead's own tenants settle first: %s", j.Reason)

	// A user's tenant, no leak, bulkhead settling for a round: its
	// settle-phase attempts prove nothing but are no gap either.
	res = simulateSettling(t, topology(), live, func(p checks.ProbePod, e endpoints.Endpoint, round int) wire.MetadataResult {
		if round == 1 && p.Tenant == "control" {
			return blocked(e, wire.Timeout)
		}
		return base(p, e, round)
	}, nil, 10*time.Second)
	j = judge(t, res.Endpoints, IDEndpoints)
	assert.Equal(t, reports.Pass, j.Verdict, j.Reason)
}

func TestWithoutALiveEndpointBlockedIsNotProven(t *testing.T) {
	top, live := topology(), noDecoy()
	nothing := peersAnswer(func(p checks.ProbePod, e endpoints.Endpoint, _ int) wire.MetadataResult {
		return blocked(e, wire.Timeout)
	})
	res := simulate(t, top, live, nothing, nil)
	for id, out := range both(res) {
		j := judge(t, out, id)
		assert.Equal(t, reports.Skipped, j.Verdict, id)
		assert.Contains(t, j.Reason, "blocked from tenant pods; not proven against a live endpoint (no decoy on clusters bulkhead did not create")
		assert.Contains(t, j.Reason, "node-level vantage point: not tested")
		assert.NotEmpty(t, out.Observations, "%s: the tenant attempts are evidence even when not evaluated", id)
	}
}

func TestWithoutDecoyALeakStillFails(t *testing.T) {
	top, live := topology(), noDecoy()
	w := peersAnswer(func(p checks.ProbePod, e endpoints.Endpoint, _ int) wire.MetadataResult {
		if p.Tenant == "a" && e.ID == "gcp-token" {
			return answered(e, 200, "")
		}
		return blocked(e, wire.Timeout)
	})
	res := simulate(t, top, live, w, nil)
	j := judge(t, res.Credentials, IDCredentials)
	assert.Equal(t, reports.Fail, j.Verdict)
	assert.Contains(t, j.Reason, "computeMetadata/v1/instance/service-accounts/default/token")
}

func TestOnACloudTheLiveServiceIsTheControl(t *testing.T) {
	top, live := topology(), noDecoy()
	cloud := peersAnswer(func(p checks.ProbePod, e endpoints.Endpoint, _ int) wire.MetadataResult {
		if p.Tenant == "control" && e.Provider == "aws" && e.Wire.Host == endpoints.LinkLocal {
			require.False(t, e.Credentials, "control pods never fetch real credentials")
			return answered(e, 200, "")
		}
		return blocked(e, wire.Timeout)
	})
	res := simulate(t, top, live, cloud, nil)
	for id, out := range both(res) {
		j := judge(t, out, id)
		assert.Equal(t, reports.Pass, j.Verdict, "%s: %s", id, j.Reason)
	}
	var ctl []string
	for _, o := range res.Endpoints.Observations {
		if o.Role == reports.RoleControl && o.Method != MethodPeer {
			assert.Equal(t, ExpectLive, o.Expected)
			ctl = append(ctl, o.Target.Address)
		}
	}
	assert.Contains(t, ctl, "http://169.254.169.254/latest/meta-data/")
	for _, o := range judge(t, res.Endpoints, IDEndpoints).Observations {
		if o.Role != reports.RoleTest {
			continue
		}
		if strings.Contains(o.Target.Address, "169.254.169.254") {
			assert.Equal(t, reports.StatusPass, o.Status, "the address is live: every request to it is proven, whichever cloud's path: %s", checks.DescribeOne(o))
		} else {
			assert.Equal(t, reports.StatusNotApplicable, o.Status, "%s was not live here", o.Target.Address)
			assert.Contains(t, o.Why, "no metadata service answered the unprotected control namespace at")
		}
	}
	assert.Contains(t, strings.Join(res.Endpoints.Notes, "\n"), "not evaluated (no live endpoint to prove a block against")
}

func TestInconclusiveResultsAreUnproven(t *testing.T) {
	top, live := topology(), withDecoy()
	base := isolatedWorld(live)
	w := func(p checks.ProbePod, e endpoints.Endpoint, round int) wire.MetadataResult {
		if p.Tenant == "a" && e.ID == "azure-token" {
			return blocked(e, wire.Failed)
		}
		return base(p, e, round)
	}
	res := simulate(t, top, live, w, nil)
	for id, out := range both(res) {
		j := judge(t, out, id)
		assert.Equal(t, reports.Unproven, j.Verdict, "an error inside the probe is no leak: %s", id)
		assert.Contains(t, j.Reason, "metadata/identity/oauth2/token", id)
		assert.Contains(t, j.Reason, "inconclusive", id)
	}
}

func TestPlan(t *testing.T) {
	top, live := reference(), withDecoy()
	plan := Plan(top, live)
	byPod := map[string][]Planned{}
	for _, p := range plan {
		byPod[p.Pod.Namespace+"/"+p.Pod.Name] = append(byPod[p.Pod.Namespace+"/"+p.Pod.Name], p)
	}
	assert.NotContains(t, byPod, "bh-k3x9q-sentinel/probe-0", "the sentinel is not a tenant under test")
	var peersOfA []string
	for _, p := range byPod["bh-k3x9q-a/probe-0"] {
		if strings.HasPrefix(p.Endpoint.ID, PeerPrefix) {
			peersOfA = append(peersOfA, p.Endpoint.ID)
			assert.Equal(t, wire.PortTCP, p.Endpoint.Port)
			assert.Equal(t, probing.SettleFirst, p.Settle, "a path that must work settles first")
		} else if p.Endpoint.ID != DirectID {
			assert.Equal(t, probing.SettleFirst, p.Settle, "a reference tenant's attempts rest on bulkhead's own policies: %s", p.Endpoint.ID)
		}
	}
	assert.Equal(t, []string{PeerPrefix + "bh-k3x9q-a/probe-1"}, peersOfA)
	for _, p := range byPod["bh-k3x9q-control/probe-0"] {
		assert.False(t, strings.HasPrefix(p.Endpoint.ID, PeerPrefix), "control pods need no peer")
	}
	for _, p := range Plan(topology(), live) {
		tn, _ := topology().Tenant(p.Pod.Tenant)
		if tn.Isolated && !strings.HasPrefix(p.Endpoint.ID, PeerPrefix) {
			assert.Equal(t, probing.CountAlways, p.Settle, "a user's tenant gets no grace: %s", p.Endpoint.ID)
		}
	}
}

func TestRequest(t *testing.T) {
	all := len(endpoints.All())
	creds := 0
	for _, e := range endpoints.All() {
		if e.Credentials {
			creds++
		}
	}
	assert.Len(t, Request(noDecoy(), false, 0).Endpoints, all, "tenants try everything")
	assert.Len(t, Request(noDecoy(), true, 0).Endpoints, all-creds, "control pods never ask a real service for credentials")
	with := Request(withDecoy(), true, 1500_000_000)
	assert.Len(t, with.Endpoints, all+1, "against the decoy, everything plus the decoy's own address")
	assert.Equal(t, 1500, with.TimeoutMS)
	direct := with.Endpoints[len(with.Endpoints)-1]
	assert.Equal(t, DirectID, direct.ID)
	assert.Equal(t, "172.18.0.9", direct.Host)
}

func TestCatalogue(t *testing.T) {
	all := endpoints.All()
	ids := map[string]bool{}
	for _, e := range all {
		assert.False(t, ids[e.ID], "duplicate ID %s", e.ID)
		ids[e.ID] = true
		assert.Equal(t, e.ID, e.Wire.ID)
		assert.NotEmpty(t, e.Title)
		assert.Equal(t, 80, e.Wire.Port)
	}
	// What the issue requires the catalogue to hold.
	want := map[string]string{
		"aws-imdsv1": "http://169.254.169.254/latest/meta-data/", "aws-imdsv2": "http://169.254.169.254/latest/meta-data/",
		"aws-imdsv1-ipv6": "http://[fd00:ec2::254]/latest/meta-data/", "aws-imdsv2-ipv6": "http://[fd00:ec2::254]/latest/meta-data/",
		"gcp-name": "http://metadata.google.internal/computeMetadata/v1/", "gcp": "http://169.254.169.254/computeMetadata/v1/",
		"azure":   "http://169.254.169.254/metadata/instance?api-version=2021-02-01",
		"alibaba": "http://100.100.100.200/latest/meta-data/", "openstack": "http://169.254.169.254/openstack/latest/meta_data.json",
		"oracle": "http://169.254.169.254/opc/v2/instance/", "digitalocean": "http://169.254.169.254/metadata/v1/",
	}
	byID := map[string]endpoints.Endpoint{}
	for _, e := range all {
		byID[e.ID] = e
	}
	for id, url := range want {
		e, ok := byID[id]
		if assert.True(t, ok, id) {
			assert.Equal(t, url, RequestURL(e.Wire), id)
		}
	}
	v2 := byID["aws-imdsv2"].Wire
	require.NotNil(t, v2.Token)
	assert.Equal(t, "PUT", v2.Token.Method)
	assert.Equal(t, "/latest/api/token", v2.Token.Path)
	assert.Contains(t, v2.Token.Headers, "X-aws-ec2-metadata-token-ttl-seconds")
	assert.Equal(t, "X-aws-ec2-metadata-token", v2.TokenHeader)
	assert.Equal(t, "Google", byID["gcp"].Wire.Request.Headers["Metadata-Flavor"])
	assert.Equal(t, "true", byID["azure"].Wire.Request.Headers["Metadata"])
	assert.Equal(t, "Bearer Oracle", byID["oracle"].Wire.Request.Headers["Authorization"])

	assert.Equal(t, []string{"169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32"}, endpoints.CIDRs())

	// All returns copies: a caller rewriting one cannot change the catalogue.
	all[0].Wire.Host = "127.0.0.1"
	byID["gcp"].Wire.Request.Headers["Metadata-Flavor"] = "changed"
	assert.Equal(t, endpoints.LinkLocal, endpoints.All()[0].Wire.Host)
	for _, e := range endpoints.All() {
		if e.ID == "gcp" {
			assert.Equal(t, "Google", e.Wire.Request.Headers["Metadata-Flavor"])
		}
	}
}

func TestChecksHaveTheirIDs(t *testing.T) {
	cs := Checks()
	require.Len(t, cs, 2)
	for _, c := range cs {
		assert.Equal(t, checks.Metadata, c.Area)
		assert.Empty(t, c.NoControl, fmt.Sprintf("%s needs a positive control", c.ID))
	}
}
