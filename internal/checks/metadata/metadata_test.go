package metadata

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkhead-k8s/bulkhead/internal/checks"
	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata/endpoints"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
	"github.com/bulkhead-k8s/bulkhead/reports"
)

const marker = "k3x9q"

func pod(tenant, name, node string) checks.ProbePod {
	return checks.ProbePod{Tenant: tenant, Namespace: "bh-" + marker + "-" + tenant, Name: name, Node: node}
}

func topology() checks.Topology {
	return checks.Topology{
		Tenants: []checks.Tenant{{Name: "a", Isolated: true}, {Name: "b", Isolated: true}, {Name: "control"}},
		Probes: []checks.ProbePod{pod("a", "probe-0", "n1"), pod("a", "probe-1", "n2"), pod("b", "probe-0", "n1"), pod("b", "probe-1", "n2"),
			pod("control", "probe-0", "n1"), pod("control", "probe-1", "n2")},
	}
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

type world func(p checks.ProbePod, e endpoints.Endpoint) wire.MetadataResult

// samples builds what every pod of top saw, asking w per endpoint of the
// request that pod would be sent.
func samples(top checks.Topology, live Live, w world) []Sample {
	var out []Sample
	for _, p := range top.Probes {
		tn, _ := top.Tenant(p.Tenant)
		req := Request(live, !tn.Isolated, 0)
		s := Sample{Pod: p, Results: map[string]wire.MetadataResult{}}
		for _, we := range req.Endpoints {
			e := endpoints.Endpoint{ID: we.ID, Method: "http GET", Wire: we}
			for _, c := range endpoints.All() {
				if c.ID == we.ID {
					e = c
				}
			}
			s.Results[we.ID] = w(p, e)
		}
		out = append(out, s)
	}
	return out
}

// isolatedWorld is a cluster doing its job: tenants blocked everywhere;
// the control reaches the decoy where it serves, nothing else (IPv6 has no
// route, the GCP name does not resolve); tenant b reaches beyond the
// cluster (its internet-egress profile), tenant a does not.
func isolatedWorld(live Live) world {
	return func(p checks.ProbePod, e endpoints.Endpoint) wire.MetadataResult {
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
	}
}

func judge(t *testing.T, out checks.Outcome, id string) (reports.Verdict, string) {
	t.Helper()
	for _, c := range Checks() {
		if c.ID == id {
			j := checks.Judge(c, out)
			return j.Verdict, j.Reason
		}
	}
	t.Fatalf("no check %s", id)
	return "", ""
}

func TestIsolatedClusterWithDecoyPasses(t *testing.T) {
	top, live := topology(), withDecoy()
	ev := Evaluate(top, endpoints.All(), samples(top, live, isolatedWorld(live)), live)

	v, reason := judge(t, ev.Endpoints, IDEndpoints)
	assert.Equal(t, reports.Pass, v, reason)
	v, reason = judge(t, ev.Credentials, IDCredentials)
	assert.Equal(t, reports.Pass, v, reason)

	// Every endpoint tried by every tenant pod is an observation, plus one
	// TCP connect per address.
	cat := endpoints.All()
	var tests, controls, tcp int
	for _, o := range ev.Endpoints.Observations {
		switch {
		case o.Role == reports.RoleControl:
			controls++
		case o.Method == MethodTCP:
			tcp++
		default:
			tests++
			assert.Equal(t, ExpectBlocked, o.Expected)
			assert.True(t, strings.HasPrefix(o.Target.Address, "http://"), o.Target.Address)
			assert.NotEmpty(t, o.Actor.Pod)
			assert.NotEmpty(t, o.Actor.Tenant)
		}
	}
	assert.Equal(t, 4*len(cat), tests)
	assert.Equal(t, 4*len(hostPorts(cat)), tcp)
	// Control: two pods, the endpoints at decoy addresses, plus their TCP connects.
	served := 0
	for _, e := range cat {
		if e.Wire.Host == endpoints.LinkLocal || e.Wire.Host == endpoints.Alibaba {
			served++
		}
	}
	assert.Equal(t, 2*(served+2), controls)

	notes := strings.Join(ev.Endpoints.Notes, "\n")
	assert.Contains(t, notes, "bh-k3x9q-metadata-decoy")
	assert.Contains(t, notes, "not proven: aws-imdsv1-ipv6, aws-imdsv2-ipv6, gcp-name")
	assert.Contains(t, notes, "from isolated tenant b: probe-0: answered HTTP 200", "tenant b's egress beyond the cluster is evidence its block is the except")
	assert.Contains(t, notes, "from isolated tenant a: probe-0: timeout")
	for _, o := range ev.Endpoints.Observations {
		if o.Role == reports.RoleTest && strings.Contains(o.Target.Address, "fd00:ec2::254") && o.Method != MethodTCP {
			assert.Contains(t, o.Detail, "not proven against a live endpoint")
		}
	}
}

func TestTenantReachingTheDecoyFailsNamingTheEndpoint(t *testing.T) {
	top, live := topology(), withDecoy()
	base := isolatedWorld(live)
	leak := func(p checks.ProbePod, e endpoints.Endpoint) wire.MetadataResult {
		if p.Tenant == "b" && e.Wire.Host == endpoints.LinkLocal {
			return answered(e, 200, marker)
		}
		return base(p, e)
	}
	ev := Evaluate(top, endpoints.All(), samples(top, live, leak), live)

	v, reason := judge(t, ev.Endpoints, IDEndpoints)
	require.Equal(t, reports.Fail, v)
	assert.Contains(t, reason, "bh-k3x9q-b/probe-0 -> 169.254.169.254:80 tcp-connect: reachable (want blocked)")
	assert.Contains(t, reason, "bh-k3x9q-b/probe-0 -> http://169.254.169.254/latest/meta-data/ http GET: answered HTTP 200 (want blocked)")
	assert.NotContains(t, reason, "positive control failed")
	assert.NotContains(t, reason, "bh-k3x9q-a/")

	v, reason = judge(t, ev.Credentials, IDCredentials)
	require.Equal(t, reports.Fail, v)
	assert.Contains(t, reason, "bh-k3x9q-b/probe-0 -> http://169.254.169.254/latest/meta-data/iam/security-credentials/ http GET: credentials sha256:feedfacecafe (want no credentials)")
	for _, o := range ev.Credentials.Observations {
		assert.NotContains(t, o.Detail, "SECRET", "evidence carries fingerprints, never values")
	}
}

func TestBrokenDecoyLeavesBlockedUnproven(t *testing.T) {
	top, live := topology(), withDecoy()
	for name, w := range map[string]world{
		"nothing answers": func(p checks.ProbePod, e endpoints.Endpoint) wire.MetadataResult { return blocked(e, wire.Timeout) },
		"a proxy answers instead of the decoy": func(p checks.ProbePod, e endpoints.Endpoint) wire.MetadataResult {
			if p.Tenant == "control" {
				return answered(e, 404, "")
			}
			return blocked(e, wire.Timeout)
		},
		"another run's decoy answers": func(p checks.ProbePod, e endpoints.Endpoint) wire.MetadataResult {
			if p.Tenant == "control" {
				return answered(e, 200, "other")
			}
			return blocked(e, wire.Timeout)
		},
	} {
		t.Run(name, func(t *testing.T) {
			ev := Evaluate(top, endpoints.All(), samples(top, live, w), live)
			for id, out := range map[string]checks.Outcome{IDEndpoints: ev.Endpoints, IDCredentials: ev.Credentials} {
				v, reason := judge(t, out, id)
				assert.Equal(t, reports.Unproven, v, "a broken control proves nothing, and nothing leaked: %s", id)
				assert.Contains(t, reason, "positive controls failed", id)
			}
		})
	}
}

func TestWithoutALiveEndpointBlockedIsNotProven(t *testing.T) {
	top, live := topology(), noDecoy()
	nothing := func(p checks.ProbePod, e endpoints.Endpoint) wire.MetadataResult { return blocked(e, wire.Timeout) }
	ev := Evaluate(top, endpoints.All(), samples(top, live, nothing), live)
	for id, out := range map[string]checks.Outcome{IDEndpoints: ev.Endpoints, IDCredentials: ev.Credentials} {
		v, reason := judge(t, out, id)
		assert.Equal(t, reports.Skipped, v, id)
		assert.Contains(t, reason, "blocked from tenant pods; not proven against a live endpoint (no decoy on clusters bulkhead did not create")
		assert.Contains(t, reason, "node-level vantage point: not tested")
		assert.NotEmpty(t, out.Observations, "%s: the tenant attempts are evidence even when skipped", id)
	}
}

func TestWithoutDecoyALeakStillFails(t *testing.T) {
	top, live := topology(), noDecoy()
	w := func(p checks.ProbePod, e endpoints.Endpoint) wire.MetadataResult {
		if p.Tenant == "a" && e.ID == "gcp-token" {
			return answered(e, 200, "")
		}
		return blocked(e, wire.Timeout)
	}
	ev := Evaluate(top, endpoints.All(), samples(top, live, w), live)
	v, reason := judge(t, ev.Credentials, IDCredentials)
	assert.Equal(t, reports.Fail, v)
	assert.Contains(t, reason, "computeMetadata/v1/instance/service-accounts/default/token")
}

func TestOnACloudTheLiveServiceIsTheControl(t *testing.T) {
	top, live := topology(), noDecoy()
	cloud := func(p checks.ProbePod, e endpoints.Endpoint) wire.MetadataResult {
		if p.Tenant == "control" && e.Provider == "aws" && e.Wire.Host == endpoints.LinkLocal {
			return answered(e, 200, "")
		}
		return blocked(e, wire.Timeout)
	}
	ss := samples(top, live, cloud)
	for _, s := range ss {
		if s.Pod.Tenant == "control" {
			for id := range s.Results {
				assert.NotContains(t, id, "credentials", "control pods never fetch real credentials")
			}
		}
	}
	ev := Evaluate(top, endpoints.All(), ss, live)
	v, reason := judge(t, ev.Endpoints, IDEndpoints)
	assert.Equal(t, reports.Pass, v, reason)
	v, reason = judge(t, ev.Credentials, IDCredentials)
	assert.Equal(t, reports.Pass, v, reason)
	var ctl []string
	for _, o := range ev.Endpoints.Observations {
		if o.Role == reports.RoleControl {
			assert.Equal(t, ExpectLive, o.Expected)
			ctl = append(ctl, o.Target.Address)
		}
	}
	assert.Contains(t, ctl, "http://169.254.169.254/latest/meta-data/")
	for _, o := range ev.Endpoints.Observations {
		if o.Role != reports.RoleTest || o.Method == MethodTCP {
			continue
		}
		if strings.Contains(o.Target.Address, "169.254.169.254") {
			assert.NotContains(t, o.Detail, "not proven", "the address is live: every request to it is proven, whichever cloud's path")
		} else {
			assert.Contains(t, o.Detail, "not proven", "%s was not live here", o.Target.Address)
		}
	}
}

func TestInconclusiveResultsFail(t *testing.T) {
	top, live := topology(), withDecoy()
	base := isolatedWorld(live)
	w := func(p checks.ProbePod, e endpoints.Endpoint) wire.MetadataResult {
		if p.Tenant == "a" && e.ID == "azure-token" {
			return blocked(e, wire.Failed)
		}
		return base(p, e)
	}
	ev := Evaluate(top, endpoints.All(), samples(top, live, w), live)
	for id, out := range map[string]checks.Outcome{IDEndpoints: ev.Endpoints, IDCredentials: ev.Credentials} {
		v, reason := judge(t, out, id)
		assert.Equal(t, reports.Fail, v, id)
		assert.Contains(t, reason, "metadata/identity/oauth2/token", id)
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
