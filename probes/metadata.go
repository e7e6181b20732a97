package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// runMetadata tries cloud instance metadata endpoints: for each, a TCP
// connect and its HTTP request(s), in parallel. What an endpoint answers is
// never printed: see wire.HTTPExchange.
func runMetadata(ctx context.Context, e *env, args []string) int {
	if len(args) != 0 {
		fmt.Fprintln(e.stderr, "probe metadata: takes no arguments; reads a MetadataRequest JSON on stdin")
		return exitUsage
	}
	req, err := decodeMetadataRequest(e.stdin)
	if err != nil {
		fmt.Fprintf(e.stderr, "probe metadata: %v\n", err)
		return exitFail
	}
	resp := wire.MetadataResponse{
		Version: wire.Version,
		Source:  e.identity(),
		Results: tryMetadata(ctx, req),
	}
	if err := json.NewEncoder(e.stdout).Encode(resp); err != nil {
		fmt.Fprintf(e.stderr, "probe metadata: write response: %v\n", err)
		return exitFail
	}
	return exitOK
}

func decodeMetadataRequest(r io.Reader) (wire.MetadataRequest, error) {
	var req wire.MetadataRequest
	dec := json.NewDecoder(io.LimitReader(r, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return req, errors.New("empty input: want a MetadataRequest JSON on stdin")
		}
		return req, fmt.Errorf("decode request: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, errors.New("decode request: unexpected data after the request")
	}
	if req.TimeoutMS < 0 {
		return req, fmt.Errorf("request timeoutMs %d is negative", req.TimeoutMS)
	}
	for i, ep := range req.Endpoints {
		if err := validateEndpoint(ep); err != nil {
			return req, fmt.Errorf("endpoint %d (id %q): %w", i, ep.ID, err)
		}
	}
	return req, nil
}

func validateEndpoint(ep wire.MetadataEndpoint) error {
	if ep.Host == "" {
		return errors.New("empty host")
	}
	if ep.Port < 1 || ep.Port > 65535 {
		return fmt.Errorf("port %d out of range 1-65535", ep.Port)
	}
	steps := []wire.HTTPStep{ep.Request}
	if ep.Token != nil {
		if ep.TokenHeader == "" {
			return errors.New("a token step needs tokenHeader")
		}
		steps = append(steps, *ep.Token)
	}
	for _, s := range steps {
		if s.Method == "" || !strings.HasPrefix(s.Path, "/") {
			return fmt.Errorf("step %s %q: want a method and a path starting with /", s.Method, s.Path)
		}
	}
	return nil
}

// tryMetadata tries every endpoint in parallel; results are in request order.
func tryMetadata(ctx context.Context, req wire.MetadataRequest) []wire.MetadataResult {
	timeout := defaultTimeout
	if req.TimeoutMS > 0 {
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	p := newProber()
	out := make([]wire.MetadataResult, len(req.Endpoints))
	var wg sync.WaitGroup
	for i, ep := range req.Endpoints {
		wg.Go(func() { out[i] = p.tryEndpoint(ctx, ep, timeout) })
	}
	wg.Wait()
	return out
}

// tryEndpoint resolves the endpoint's host once, then runs the TCP connect
// and the HTTP steps side by side, each step under its own deadline.
func (p *prober) tryEndpoint(ctx context.Context, ep wire.MetadataEndpoint, timeout time.Duration) (res wire.MetadataResult) {
	start := time.Now()
	res = wire.MetadataResult{ID: ep.ID, Started: start.UTC()}
	defer func() {
		if r := recover(); r != nil {
			res.Connect, res.ConnectDetail = wire.Failed, fmt.Sprintf("internal error: %v", r)
		}
	}()
	// The name resolves under a deadline of its own, as in `probe connect`.
	rctx, cancel := context.WithTimeout(ctx, resolveWithin(timeout))
	ips, err := p.resolve(rctx, ep.Host)
	cancel()
	if err != nil {
		res.Connect, res.ConnectDetail = classify(err)
		res.ConnectMS = millis(time.Since(start))
		// The request could not be sent either: record it, so every
		// endpoint has an HTTP outcome.
		res.Exchanges = []wire.HTTPExchange{notSent(wire.StepRequest, ep, ep.Request, res.Connect, res.ConnectDetail)}
		return res
	}
	ap := netip.AddrPortFrom(ips[0], uint16(ep.Port))
	res.Address = ips[0].String()

	var wg sync.WaitGroup
	wg.Go(func() {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		t0 := time.Now()
		d := net.Dialer{KeepAlive: -1}
		conn, err := d.DialContext(cctx, "tcp", ap.String())
		res.ConnectMS = millis(time.Since(t0))
		if err != nil {
			res.Connect, res.ConnectDetail = classify(err)
			return
		}
		conn.Close()
		res.Connect = wire.Reachable
	})
	var exchanges []wire.HTTPExchange
	wg.Go(func() { exchanges = httpSteps(ctx, ep, ap, timeout) })
	wg.Wait()
	res.Exchanges = exchanges
	return res
}

// httpSteps runs the endpoint's token step (if any), its request, and the
// follow-up request when asked. A step whose prerequisite failed is not sent.
func httpSteps(ctx context.Context, ep wire.MetadataEndpoint, ap netip.AddrPort, timeout time.Duration) []wire.HTTPExchange {
	client := &http.Client{
		Transport: &http.Transport{
			// Always the address resolved once, whatever the URL's host:
			// the Host header keeps the name.
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				d := net.Dialer{KeepAlive: -1}
				return d.DialContext(ctx, "tcp", ap.String())
			},
			Proxy:              nil,
			DisableKeepAlives:  true,
			DisableCompression: true,
		},
		// A metadata service does not redirect; an answer that does is
		// recorded as it is, not followed somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var out []wire.HTTPExchange
	headers := ep.Request.Headers
	if ep.Token != nil {
		ex, body := exchange(ctx, client, timeout, wire.StepToken, ep, *ep.Token, nil)
		ex.Credential = nil // the IMDSv2 session token only opens the metadata service
		out = append(out, ex)
		token := strings.TrimSpace(string(body))
		if ex.Outcome != wire.Reachable || ex.Status != http.StatusOK || token == "" || strings.ContainsAny(token, "\r\n") {
			return out // no token: the request would be IMDSv1, tried on its own
		}
		headers = withHeader(headers, ep.TokenHeader, token)
	}
	ex, body := exchange(ctx, client, timeout, wire.StepRequest, ep, ep.Request, headers)
	out = append(out, ex)
	if !ep.FollowFirst || ex.Outcome != wire.Reachable || ex.Status != http.StatusOK {
		return out
	}
	name, ok := firstName(body)
	if !ok {
		return out
	}
	follow := ep.Request
	follow.Method = http.MethodGet
	follow.Path = strings.TrimSuffix(follow.Path, "/") + "/" + name
	fex, _ := exchange(ctx, client, timeout, wire.StepFollow, ep, follow, headers)
	return append(out, fex)
}

func withHeader(h map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(h)+1)
	for hk, hv := range h {
		out[hk] = hv
	}
	out[k] = v
	return out
}

// safeName is what a follow-up path element may be (an AWS role name).
var safeName = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,128}$`)

// firstName returns the first line of a listing, if it is a plain name.
func firstName(body []byte) (string, bool) {
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		return line, safeName.MatchString(line)
	}
	return "", false
}

// endpointURL is the URL of a step as a user would type it.
func endpointURL(ep wire.MetadataEndpoint, path string) string {
	host := ep.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if ep.Port != 80 {
		host = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(ep.Port))
	}
	return "http://" + host + path
}

func notSent(step string, ep wire.MetadataEndpoint, s wire.HTTPStep, o wire.Outcome, detail string) wire.HTTPExchange {
	return wire.HTTPExchange{Step: step, Method: s.Method, URL: endpointURL(ep, s.Path), Outcome: o, Detail: "not sent: " + detail}
}

// maxMetadataBody bounds what is read of an answer.
const maxMetadataBody = 64 << 10

// exchange sends one request and returns the redacted record and the body
// (kept in memory for the next step, never printed).
func exchange(ctx context.Context, client *http.Client, timeout time.Duration, step string, ep wire.MetadataEndpoint, s wire.HTTPStep, headers map[string]string) (ex wire.HTTPExchange, _ []byte) {
	if headers == nil {
		headers = s.Headers
	}
	ex = wire.HTTPExchange{Step: step, Method: s.Method, URL: endpointURL(ep, s.Path)}
	start := time.Now()
	defer func() { ex.LatencyMS = millis(time.Since(start)) }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, s.Method, ex.URL, nil)
	if err != nil {
		ex.Outcome, ex.Detail = wire.Failed, "build request: "+err.Error()
		return ex, nil
	}
	req.Header.Set("User-Agent", "bulkhead-probe/"+version)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		ex.Outcome, ex.Detail = classify(err)
		return ex, nil
	}
	defer resp.Body.Close()
	ex.Outcome, ex.Status = wire.Reachable, resp.StatusCode
	ex.Decoy = resp.Header.Get(wire.DecoyHeader)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBody))
	if err != nil {
		ex.Detail = "answered, but reading the body failed: " + err.Error()
	}
	ex.Bytes = len(body)
	if len(body) > 0 {
		ex.Fingerprint = fingerprint(body)
		ex.Credential = credentialShape(body)
	}
	return ex, body
}

// fingerprint identifies data without revealing it.
func fingerprint(data ...[]byte) string {
	h := sha256.New()
	for i, d := range data {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write(d)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:12]
}

// secretFields maps lower-cased JSON field names that carry secrets in
// cloud metadata answers to the kind of secret.
var secretFields = map[string]string{
	"accesskeyid":     "aws-access-key",
	"secretaccesskey": "aws-secret-key",
	"token":           "session-token",
	"sessiontoken":    "session-token",
	"access_token":    "oauth2-token",
	"refresh_token":   "oauth2-refresh-token",
	"id_token":        "oidc-token",
	"client_secret":   "client-secret",
	"private_key":     "private-key",
	"privatekey":      "private-key",
	"password":        "password",
}

// secretPatterns find credentials in answers that are not JSON.
var secretPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"aws-access-key", regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)},
	{"private-key", regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)},
	{"jwt", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)},
}

// credentialShape says whether body looks like a credential: JSON fields
// named like secrets with non-empty string values, or text matching a
// credential pattern. It returns the kinds and field names and a
// fingerprint of the secret values, never the values.
func credentialShape(body []byte) *wire.CredentialShape {
	kinds := map[string]bool{}
	fields := map[string]bool{}
	var secrets [][]byte
	var doc any
	if json.Unmarshal(body, &doc) == nil {
		walkSecrets(doc, 0, func(field, kind, value string) {
			kinds[kind], fields[field] = true, true
			secrets = append(secrets, []byte(value))
		})
	}
	for _, p := range secretPatterns {
		for _, m := range p.re.FindAll(body, 8) {
			kinds[p.kind] = true
			secrets = append(secrets, m)
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	sort.Slice(secrets, func(i, j int) bool { return bytes.Compare(secrets[i], secrets[j]) < 0 })
	return &wire.CredentialShape{Kinds: sortedKeys(kinds), Fields: sortedKeys(fields), Fingerprint: fingerprint(secrets...)}
}

func walkSecrets(v any, depth int, found func(field, kind, value string)) {
	if depth > 8 {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if s, ok := child.(string); ok && strings.TrimSpace(s) != "" {
				if kind, secret := secretFields[strings.ToLower(k)]; secret {
					found(k, kind, s)
					continue
				}
			}
			walkSecrets(child, depth+1, found)
		}
	case []any:
		for _, child := range x {
			walkSecrets(child, depth+1, found)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
