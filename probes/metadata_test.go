package main

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-k8s/bulkhead/internal/checks/metadata/endpoints"
	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// loopbackCatalogue is the real catalogue pointed at a loopback port.
func loopbackCatalogue(port int) []wire.MetadataEndpoint {
	var out []wire.MetadataEndpoint
	for _, e := range endpoints.All() {
		w := e.Wire
		w.Host, w.Port = "127.0.0.1", port
		out = append(out, w)
	}
	return out
}

func metaByID(rs []wire.MetadataResult) map[string]wire.MetadataResult {
	m := map[string]wire.MetadataResult{}
	for _, r := range rs {
		m[r.ID] = r
	}
	return m
}

// Every catalogue endpoint, pointed at the decoy, gets the decoy's 200 with
// its marker; exactly the credential endpoints come back credential-shaped.
func TestMetadataAgainstTheDecoy(t *testing.T) {
	p := startDecoy(t, "k3x9q")
	rs := metaByID(tryMetadata(context.Background(), wire.MetadataRequest{Endpoints: loopbackCatalogue(p)}))
	for _, e := range endpoints.All() {
		r, ok := rs[e.ID]
		if !ok {
			t.Errorf("%s: no result", e.ID)
			continue
		}
		if r.Connect != wire.Reachable || r.Address != "127.0.0.1" {
			t.Errorf("%s: connect %s %s (%s)", e.ID, r.Connect, r.Address, r.ConnectDetail)
		}
		steps := []string{}
		for _, ex := range r.Exchanges {
			steps = append(steps, ex.Step)
			if ex.Outcome != wire.Reachable || ex.Status != 200 || ex.Decoy != "k3x9q" || !strings.HasPrefix(ex.Fingerprint, "sha256:") {
				t.Errorf("%s %s %s: %s %d decoy=%q fp=%q (%s)", e.ID, ex.Step, ex.URL, ex.Outcome, ex.Status, ex.Decoy, ex.Fingerprint, ex.Detail)
			}
		}
		want := []string{wire.StepRequest}
		if e.Wire.Token != nil {
			want = append([]string{wire.StepToken}, want...)
		}
		if e.Wire.FollowFirst {
			want = append(want, wire.StepFollow)
		}
		if !slices.Equal(steps, want) {
			t.Errorf("%s: steps %v, want %v", e.ID, steps, want)
		}
		var cred *wire.CredentialShape
		for _, ex := range r.Exchanges {
			if ex.Step == wire.StepToken && ex.Credential != nil {
				t.Errorf("%s: the IMDSv2 session token must not count as a credential", e.ID)
			}
			if ex.Credential != nil {
				cred = ex.Credential
			}
		}
		if (cred != nil) != e.Credentials {
			t.Errorf("%s: credential-shaped %v, want %v", e.ID, cred != nil, e.Credentials)
		}
	}
}

// The response names what looked secret and fingerprints it, but never
// contains a secret value, the IMDSv2 token included.
func TestMetadataNeverPrintsSecrets(t *testing.T) {
	p := startDecoy(t, "k3x9q")
	in, _ := json.Marshal(wire.MetadataRequest{Endpoints: loopbackCatalogue(p)})
	e, stdout, stderr := testEnv(string(in))
	if code := run(context.Background(), e, []string{"metadata"}); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	out := stdout.String()
	for _, secret := range []string{decoyAccessKey, "BULKHEAD-DECOY-SECRET", "BULKHEAD-DECOY-SESSION-TOKEN", "ya29.", "BULKHEAD-DECOY-AZURE-TOKEN", "BULKHEAD-DECOY-IMDSV2-TOKEN", decoyNotice} {
		if strings.Contains(out, secret) {
			t.Errorf("the response contains %q", secret)
		}
	}
	var resp wire.MetadataResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("not a MetadataResponse: %v", err)
	}
	if resp.Version != wire.Version || resp.Source != testIdentity || len(resp.Results) != len(endpoints.All()) {
		t.Errorf("response header: %+v, %d results", resp.Source, len(resp.Results))
	}
	creds := metaByID(resp.Results)["aws-imdsv2-credentials"]
	last := creds.Exchanges[len(creds.Exchanges)-1]
	if last.Credential == nil || !slices.Contains(last.Credential.Fields, "SecretAccessKey") || !slices.Contains(last.Credential.Kinds, "aws-access-key") {
		t.Errorf("AWS credentials not recognised: %+v", last.Credential)
	}
}

func TestMetadataBlockedOutcomes(t *testing.T) {
	// A server that accepts connections and never answers: the connect
	// works, the HTTP request times out.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	get := func(id, host string, port int) wire.MetadataEndpoint {
		return wire.MetadataEndpoint{ID: id, Host: host, Port: port, Request: wire.HTTPStep{Method: "GET", Path: "/latest/meta-data/"}}
	}
	v2 := get("v2-refused", "127.0.0.1", closedTCPPort(t))
	v2.Token, v2.TokenHeader = &wire.HTTPStep{Method: "PUT", Path: "/latest/api/token"}, "X-aws-ec2-metadata-token"
	req := wire.MetadataRequest{TimeoutMS: 600, Endpoints: []wire.MetadataEndpoint{
		get("refused", "127.0.0.1", closedTCPPort(t)),
		get("silent", "127.0.0.1", port(t, silent.Addr())),
		get("unresolved", "no-such-host.invalid", 80),
		v2,
	}}
	start := time.Now()
	rs := metaByID(tryMetadata(context.Background(), req))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("endpoints must be tried in parallel: took %s", took)
	}
	check := func(id string, connect wire.Outcome, steps ...wire.Outcome) {
		t.Helper()
		r := rs[id]
		if r.Connect != connect {
			t.Errorf("%s: connect %s, want %s (%s)", id, r.Connect, connect, r.ConnectDetail)
		}
		var got []wire.Outcome
		for _, ex := range r.Exchanges {
			got = append(got, ex.Outcome)
			if ex.Status != 0 || ex.Fingerprint != "" {
				t.Errorf("%s: an unanswered request has no status or body: %+v", id, ex)
			}
		}
		if !slices.Equal(got, steps) {
			t.Errorf("%s: exchanges %v, want %v", id, got, steps)
		}
	}
	check("refused", wire.Refused, wire.Refused)
	check("silent", wire.Reachable, wire.Timeout)
	check("unresolved", wire.DNSFailure, wire.DNSFailure)
	// No token, no GET: the GET without a token is IMDSv1, tried on its own.
	check("v2-refused", wire.Refused, wire.Refused)
	if ex := rs["v2-refused"].Exchanges[0]; ex.Step != wire.StepToken || ex.Method != "PUT" {
		t.Errorf("IMDSv2 starts with the token PUT: %+v", ex)
	}
	if u := rs["unresolved"].Exchanges[0].URL; u != "http://no-such-host.invalid/latest/meta-data/" {
		t.Errorf("URL %q", u)
	}
}

func TestEndpointURL(t *testing.T) {
	for _, c := range []struct {
		host string
		port int
		want string
	}{
		{"169.254.169.254", 80, "http://169.254.169.254/x"},
		{"fd00:ec2::254", 80, "http://[fd00:ec2::254]/x"},
		{"fd00:ec2::254", 8080, "http://[fd00:ec2::254]:8080/x"},
		{"metadata.google.internal", 8080, "http://metadata.google.internal:8080/x"},
	} {
		if got := endpointURL(wire.MetadataEndpoint{Host: c.host, Port: c.port}, "/x"); got != c.want {
			t.Errorf("endpointURL(%s, %d) = %q, want %q", c.host, c.port, got, c.want)
		}
	}
}

func TestCredentialShape(t *testing.T) {
	yes := map[string]string{
		"aws role":      `{"Code":"Success","AccessKeyId":"AKIAIOSFODNN7EXAMPLE","SecretAccessKey":"wJalrXUtnFEMI","Token":"IQoJb3JpZ2luX2VjE"}`,
		"gcp token":     `{"access_token":"ya29.c.b0Aaek","expires_in":3599,"token_type":"Bearer"}`,
		"azure token":   `{"access_token":"eyJ0eXAi","refresh_token":"","token_type":"Bearer"}`,
		"nested":        `{"identity":{"credentials":[{"client_secret":"s3cr3t"}]}}`,
		"aws key text":  "key=ASIAY34FZKBOKMUTVV7A\n",
		"pem":           "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
		"jwt":           "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlc2ln",
		"json password": `{"user":"admin","Password":"hunter2"}`,
	}
	for name, body := range yes {
		c := credentialShape([]byte(body))
		if c == nil {
			t.Errorf("%s: not recognised", name)
			continue
		}
		if !strings.HasPrefix(c.Fingerprint, "sha256:") || len(c.Fingerprint) != len("sha256:")+12 || len(c.Kinds) == 0 {
			t.Errorf("%s: %+v", name, c)
		}
		raw, _ := json.Marshal(c)
		for _, secret := range []string{"wJalrXUtnFEMI", "ya29.c", "s3cr3t", "hunter2", "MIIE", "c2lnbmF0dXJlc2ln", "ASIAY34FZKBOKMUTVV7A"} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("%s: the shape reveals %q", name, secret)
			}
		}
	}
	no := map[string]string{
		"imds listing":   "ami-id\nhostname\niam/\ninstance-id\n",
		"azure instance": `{"compute":{"name":"vm1","vmId":"abc"}}`,
		"token type":     `{"token_type":"Bearer","expires_in":3599}`,
		"empty secrets":  `{"access_token":"","Token":"  "}`,
		"not found":      "",
	}
	for name, body := range no {
		if c := credentialShape([]byte(body)); c != nil {
			t.Errorf("%s: recognised as a credential: %+v", name, c)
		}
	}
	a := credentialShape([]byte(`{"AccessKeyId":"AKIAIOSFODNN7EXAMPLE","SecretAccessKey":"one"}`))
	b := credentialShape([]byte(`{"SecretAccessKey":"one","AccessKeyId":"AKIAIOSFODNN7EXAMPLE"}`))
	c := credentialShape([]byte(`{"AccessKeyId":"AKIAIOSFODNN7EXAMPLE","SecretAccessKey":"two"}`))
	if a.Fingerprint != b.Fingerprint || a.Fingerprint == c.Fingerprint {
		t.Errorf("fingerprints identify the values, not their order: %s %s %s", a.Fingerprint, b.Fingerprint, c.Fingerprint)
	}
}

func TestFirstName(t *testing.T) {
	for body, want := range map[string]string{"role-a\nrole-b\n": "role-a", "\n  my.role@x \n": "my.role@x"} {
		if got, ok := firstName([]byte(body)); !ok || got != want {
			t.Errorf("firstName(%q) = %q %v", body, got, ok)
		}
	}
	for _, body := range []string{"", "../../etc/passwd", "a b", "<html>"} {
		if got, ok := firstName([]byte(body)); ok {
			t.Errorf("firstName(%q) accepted %q", body, got)
		}
	}
}

func TestDecodeMetadataRequest(t *testing.T) {
	bad := []string{
		``,
		`{"endpoints":[{"id":"x","host":"","port":80,"request":{"method":"GET","path":"/"}}]}`,
		`{"endpoints":[{"id":"x","host":"h","port":0,"request":{"method":"GET","path":"/"}}]}`,
		`{"endpoints":[{"id":"x","host":"h","port":80,"request":{"method":"GET","path":"no-slash"}}]}`,
		`{"endpoints":[{"id":"x","host":"h","port":80,"token":{"method":"PUT","path":"/t"},"request":{"method":"GET","path":"/"}}]}`,
		`{"endpoints":[],"surprise":1}`,
		`{"endpoints":[]} {}`,
		`{"timeoutMs":-1}`,
	}
	for _, in := range bad {
		if _, err := decodeMetadataRequest(strings.NewReader(in)); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
	if _, err := decodeMetadataRequest(strings.NewReader(`{"endpoints":[{"id":"x","host":"h","port":80,"request":{"method":"GET","path":"/"}}]}`)); err != nil {
		t.Errorf("rejected a good request: %v", err)
	}
}
