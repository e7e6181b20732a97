package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

const (
	testToken  = "test-sa-token.abc"
	testSecret = "canary-value-never-printed-42"
)

// fakeAPIServer is a TLS server that records what it was asked and answers
// like an API server would.
type fakeAPIServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{}
	mux := http.NewServeMux()
	status := func(w http.ResponseWriter, code int, reason, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":%q,"message":%q,"code":%d}`, reason, msg, code)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(testSecret))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.Clone(context.Background()))
		f.mu.Unlock()
		auth := r.Header.Get("Authorization")
		switch {
		case auth == "Bearer "+invalidToken:
			status(w, 401, "Unauthorized", "Unauthorized")
		case auth == "":
			if r.URL.Path == "/version" {
				fmt.Fprint(w, `{"major":"1"}`)
				return
			}
			status(w, 403, "Forbidden", `forbidden: User "system:anonymous" cannot get path "`+r.URL.Path+`"`)
		case r.URL.Path == "/api/v1/namespaces/b/secrets/canary":
			fmt.Fprintf(w, `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"canary"},"data":{"value":%q}}`, b64)
		case r.URL.Path == "/api/v1/namespaces/b/secrets" && r.URL.Query().Get("watch") == "1":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"type":"ADDED","object":{"kind":"Secret","data":{"value":%q}}}`+"\n", b64)
			w.(http.Flusher).Flush()
			fmt.Fprintf(w, `{"type":"ADDED","object":{"kind":"Secret","data":{"other":"b3RoZXI="}}}`+"\n")
		case r.URL.Path == "/api/v1/namespaces/b/secrets":
			fmt.Fprintf(w, `{"kind":"SecretList","apiVersion":"v1","items":[{"data":{"value":%q}}]}`, b64)
		case r.URL.Path == "/api/v1/namespaces/a/secrets":
			status(w, 403, "Forbidden", strings.Repeat("x", 1000))
		default:
			status(w, 403, "Forbidden", `secrets is forbidden: User "system:serviceaccount:a:probe" cannot list resource "secrets"`)
		}
	})
	f.Server = httptest.NewUnstartedServer(mux)
	f.EnableHTTP2 = true
	f.StartTLS()
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPIServer) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.seen...)
}

// saDir writes a ServiceAccount directory: the server's CA and, if token,
// a token.
func (f *fakeAPIServer) saDir(t *testing.T, withCA, withToken bool) string {
	t.Helper()
	dir := t.TempDir()
	if withCA {
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
		if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if withToken {
		if err := os.WriteFile(filepath.Join(dir, "token"), []byte(testToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runAPIProbe runs `probe api --sa-dir dir` against f with req.
func runAPIProbe(t *testing.T, f *fakeAPIServer, dir string, req wire.APIRequest) (wire.APIResponse, string) {
	t.Helper()
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	e, stdout, stderr := testEnv(string(in))
	host, port, _ := net.SplitHostPort(f.Listener.Addr().String())
	base := e.getenv
	e.getenv = func(k string) string {
		switch k {
		case "KUBERNETES_SERVICE_HOST":
			return host
		case "KUBERNETES_SERVICE_PORT":
			return port
		}
		return base(k)
	}
	if code := run(context.Background(), e, []string{"api", "--sa-dir", dir}); code != exitOK {
		t.Fatalf("probe api exit %d: %s", code, stderr)
	}
	var resp wire.APIResponse
	if err := json.Unmarshal([]byte(stdout.String()), &resp); err != nil {
		t.Fatalf("not an APIResponse: %v: %s", err, stdout)
	}
	return resp, stdout.String() + stderr.String()
}

func byID(t *testing.T, resp wire.APIResponse) map[string]wire.APIResult {
	t.Helper()
	out := map[string]wire.APIResult{}
	for _, r := range resp.Results {
		out[r.ID] = r
	}
	return out
}

func TestAPIProbeReportsStatusAndFingerprintsNeverBodies(t *testing.T) {
	f := newFakeAPIServer(t)
	dir := f.saDir(t, true, true)
	resp, output := runAPIProbe(t, f, dir, wire.APIRequest{Calls: []wire.APICall{
		{ID: "get", Method: "GET", Path: "/api/v1/namespaces/b/secrets/canary"},
		{ID: "list", Method: "GET", Path: "/api/v1/namespaces/b/secrets?limit=5"},
		{ID: "watch", Method: "GET", Path: "/api/v1/namespaces/b/secrets?watch=1&timeoutSeconds=1", Watch: true},
		{ID: "denied", Method: "GET", Path: "/api/v1/namespaces/c/configmaps"},
		{ID: "long", Method: "GET", Path: "/api/v1/namespaces/a/secrets"},
		{ID: "create", Method: "POST", Path: "/api/v1/namespaces/c/configmaps?fieldManager=x", Body: json.RawMessage(`{"kind":"ConfigMap"}`), DryRun: true},
		{ID: "patch", Method: "PATCH", Path: "/api/v1/namespaces/c/configmaps/x", Body: json.RawMessage(`{}`), DryRun: true},
		{ID: "impersonate", Method: "GET", Path: "/api/v1/namespaces/c/pods", Headers: map[string][]string{"Impersonate-User": {"someone"}, "Impersonate-Group": {"system:masters"}}},
	}})
	if !resp.TokenMounted || resp.TLS != wire.TLSVerified || resp.Version != wire.Version || resp.Source != testIdentity {
		t.Errorf("response header = %+v", resp)
	}
	want := wire.Fingerprint([]byte(testSecret))
	rs := byID(t, resp)
	if r := rs["get"]; r.Code != 200 || r.Kind != "Secret" || len(r.SecretValues) != 1 || r.SecretValues[0] != want || r.Fingerprint == "" || r.Bytes == 0 {
		t.Errorf("get = %+v", r)
	}
	if r := rs["list"]; r.Code != 200 || r.Kind != "SecretList" || len(r.SecretValues) != 1 || r.SecretValues[0] != want {
		t.Errorf("list = %+v", r)
	}
	if r := rs["watch"]; r.Code != 200 || r.Kind != "WatchEvents" || r.Events != 2 || len(r.SecretValues) != 2 || r.SecretValues[0] != want || r.Error != "" {
		t.Errorf("watch = %+v", r)
	}
	if r := rs["denied"]; r.Code != 403 || r.Reason != "Forbidden" || !strings.Contains(r.Message, "cannot list resource") || r.Fingerprint != "" {
		t.Errorf("denied = %+v", r)
	}
	if r := rs["long"]; len([]rune(r.Message)) != wire.MaxMessage+1 || !strings.HasSuffix(r.Message, "…") {
		t.Errorf("long message not truncated: %d runes", len([]rune(r.Message)))
	}
	if strings.Contains(output, testSecret) || strings.Contains(output, base64.StdEncoding.EncodeToString([]byte(testSecret))) {
		t.Errorf("the probe printed a Secret value: %s", output)
	}
	if strings.Contains(output, testToken) {
		t.Errorf("the probe printed its token")
	}

	for _, r := range f.requests() {
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			t.Errorf("%s %s: Authorization %q", r.Method, r.URL, got)
		}
		switch r.Method {
		case "POST":
			if r.URL.Query().Get("dryRun") != "All" || r.URL.Query().Get("fieldManager") != "x" || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("create: %s %v", r.URL, r.Header)
			}
		case "PATCH":
			if r.URL.RawQuery != "dryRun=All" || r.Header.Get("Content-Type") != "application/merge-patch+json" {
				t.Errorf("patch: %s %v", r.URL, r.Header)
			}
		}
		if r.URL.Path == "/api/v1/namespaces/c/pods" {
			if r.Header.Get("Impersonate-User") != "someone" || r.Header.Get("Impersonate-Group") != "system:masters" {
				t.Errorf("impersonation headers not sent: %v", r.Header)
			}
		}
	}
}

func TestAPIProbeAnonymousAndInvalidToken(t *testing.T) {
	f := newFakeAPIServer(t)
	dir := f.saDir(t, true, false)
	resp, _ := runAPIProbe(t, f, dir, wire.APIRequest{Calls: []wire.APICall{
		{ID: "anon", Method: "GET", Path: "/api", Auth: wire.AuthNone},
		{ID: "version", Method: "GET", Path: "/version", Auth: wire.AuthNone},
		{ID: "invalid", Method: "GET", Path: "/api", Auth: wire.AuthInvalid},
		{ID: "token", Method: "GET", Path: "/api"},
	}})
	rs := byID(t, resp)
	if resp.TokenMounted {
		t.Errorf("no token is mounted, response says there is")
	}
	if r := rs["anon"]; r.Code != 403 || !strings.Contains(r.Message, "system:anonymous") {
		t.Errorf("anon = %+v", r)
	}
	if r := rs["version"]; r.Code != 200 {
		t.Errorf("version = %+v", r)
	}
	if r := rs["invalid"]; r.Code != 401 {
		t.Errorf("invalid = %+v", r)
	}
	if r := rs["token"]; r.Code != 0 || !strings.Contains(r.Error, "no ServiceAccount token") {
		t.Errorf("a token call without a token = %+v", r)
	}
	for _, r := range f.requests() {
		if r.URL.Path == "/api" && r.Header.Get("Authorization") == "" {
			continue
		}
		if r.Header.Get("Authorization") != "" && r.Header.Get("Authorization") != "Bearer "+invalidToken {
			t.Errorf("unexpected credentials on %s", r.URL)
		}
	}
}

func TestAPIProbeWithoutCA(t *testing.T) {
	f := newFakeAPIServer(t)
	dir := f.saDir(t, false, true)
	resp, _ := runAPIProbe(t, f, dir, wire.APIRequest{Calls: []wire.APICall{
		{ID: "anon", Method: "GET", Path: "/version", Auth: wire.AuthNone},
		{ID: "token", Method: "GET", Path: "/api"},
	}})
	rs := byID(t, resp)
	if resp.TLS != wire.TLSUnverified {
		t.Errorf("TLS note %q, want it to say the server was not verified", resp.TLS)
	}
	if r := rs["anon"]; r.Code != 200 {
		t.Errorf("anonymous call without CA = %+v", r)
	}
	if r := rs["token"]; r.Code != 0 || !strings.Contains(r.Error, "never sent to an unverified server") {
		t.Errorf("token call without CA = %+v", r)
	}
	for _, r := range f.requests() {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("a credential went to an unverified server: %s", r.URL)
		}
	}
}

func TestAPIProbeFilesAndManyCalls(t *testing.T) {
	f := newFakeAPIServer(t)
	dir := f.saDir(t, true, true)
	secretFile := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(secretFile, []byte(testSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	var calls []wire.APICall
	for i := range 100 {
		calls = append(calls, wire.APICall{ID: fmt.Sprint(i), Method: "GET", Path: fmt.Sprintf("/api/v1/namespaces/n%d/pods", i)})
	}
	resp, output := runAPIProbe(t, f, dir, wire.APIRequest{Calls: calls, Parallel: 8,
		Files: []string{secretFile, filepath.Join(dir, "token"), "/nonexistent/file"}})
	if len(resp.Results) != 100 {
		t.Fatalf("%d results", len(resp.Results))
	}
	for i, r := range resp.Results {
		if r.ID != fmt.Sprint(i) || r.Code != 403 {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	if len(resp.Files) != 3 || !resp.Files[0].Present || resp.Files[0].Fingerprint != wire.Fingerprint([]byte(testSecret)) ||
		!resp.Files[1].Present || resp.Files[2].Present {
		t.Errorf("files = %+v", resp.Files)
	}
	if strings.Contains(output, testSecret) || strings.Contains(output, testToken) {
		t.Errorf("file content printed")
	}
}

func TestAPIProbeFilesOnlyNeedsNoServer(t *testing.T) {
	in := `{"calls":[],"files":["/nonexistent/token"]}`
	e, stdout, stderr := testEnv(in)
	if code := run(context.Background(), e, []string{"api"}); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var resp wire.APIResponse
	if err := json.Unmarshal([]byte(stdout.String()), &resp); err != nil || len(resp.Files) != 1 || resp.Files[0].Present {
		t.Errorf("resp %+v err %v", resp, err)
	}
}

func TestAPIProbeRejectsBadRequests(t *testing.T) {
	for name, in := range map[string]string{
		"empty":         ``,
		"trailing":      `{"calls":[]} {}`,
		"method":        `{"calls":[{"id":"x","method":"TRACE","path":"/api"}]}`,
		"relative path": `{"calls":[{"id":"x","method":"GET","path":"api"}]}`,
		"url as path":   `{"calls":[{"id":"x","method":"GET","path":"/https://evil"}]}`,
		"auth header":   `{"calls":[{"id":"x","method":"GET","path":"/api","headers":{"authorization":["Bearer x"]}}]}`,
		"auth mode":     `{"calls":[{"id":"x","method":"GET","path":"/api","auth":"basic"}]}`,
		"relative file": `{"calls":[],"files":["token"]}`,
		"negative":      `{"calls":[],"timeoutMs":-1}`,
	} {
		t.Run(name, func(t *testing.T) {
			e, stdout, _ := testEnv(in)
			if code := run(context.Background(), e, []string{"api"}); code != exitFail {
				t.Errorf("exit %d, want %d", code, exitFail)
			}
			if stdout.String() != "" {
				t.Errorf("printed %q on a bad request", stdout)
			}
		})
	}
	e, _, _ := testEnv(`{"calls":[{"id":"x","method":"GET","path":"/api"}]}`)
	if code := run(context.Background(), e, []string{"api"}); code != exitFail {
		t.Errorf("calls without KUBERNETES_SERVICE_HOST: exit %d, want %d", code, exitFail)
	}
	e, _, _ = testEnv(`{}`)
	if code := run(context.Background(), e, []string{"api", "extra"}); code != exitUsage {
		t.Errorf("extra argument: exit %d, want %d", code, exitUsage)
	}
}

func TestParseStatusAndTruncate(t *testing.T) {
	r, m := wire.ParseStatus([]byte(`{"kind":"Status","reason":"BadRequest","message":"Upgrade request required"}`))
	if r != "BadRequest" || m != "Upgrade request required" {
		t.Errorf("status: %q %q", r, m)
	}
	r, m = wire.ParseStatus([]byte("404 page not found\n"))
	if r != "" || m != "404 page not found" {
		t.Errorf("text: %q %q", r, m)
	}
	if got := wire.Truncate("äöü", 2); got != "äö…" {
		t.Errorf("truncate = %q", got)
	}
	if withDryRun("/a?x=1", true) != "/a?x=1&dryRun=All" || withDryRun("/a", true) != "/a?dryRun=All" || withDryRun("/a", false) != "/a" {
		t.Error("withDryRun")
	}
}
