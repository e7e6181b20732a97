package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// The api mode calls the Kubernetes API server from inside the pod, as the
// pod's own ServiceAccount or anonymously, and reports what came back
// without ever printing a response body (see wire/api.go).

const (
	defaultAPITimeout  = 10 * time.Second
	defaultAPIParallel = 32
	maxAPIParallel     = 256
	// invalidToken is what AuthInvalid sends: no API server issued it.
	invalidToken = "bulkhead-invalid-token.not-issued-by-this-cluster"
)

var apiMethods = map[string]bool{
	http.MethodGet: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true,
}

func runAPI(ctx context.Context, e *env, args []string) int {
	flags := flag.NewFlagSet("api", flag.ContinueOnError)
	flags.SetOutput(e.stderr)
	saDir := flags.String("sa-dir", wire.ServiceAccountDir, "directory of the mounted ServiceAccount token and ca.crt")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	if flags.NArg() != 0 {
		fmt.Fprintf(e.stderr, "probe api: unexpected arguments %q; reads an APIRequest JSON on stdin\n", flags.Args())
		return exitUsage
	}
	req, err := decodeAPIRequest(e.stdin)
	if err != nil {
		fmt.Fprintf(e.stderr, "probe api: %v\n", err)
		return exitFail
	}
	c, err := newAPIClient(e, *saDir, req)
	if err != nil {
		fmt.Fprintf(e.stderr, "probe api: %v\n", err)
		return exitFail
	}
	resp := wire.APIResponse{
		Version:      wire.Version,
		Source:       e.identity(),
		Server:       c.server,
		TokenMounted: c.token != "",
		TLS:          c.tlsNote,
		Results:      c.callAll(ctx, req),
		Files:        fingerprintFiles(req.Files),
	}
	if err := json.NewEncoder(e.stdout).Encode(resp); err != nil {
		fmt.Fprintf(e.stderr, "probe api: write response: %v\n", err)
		return exitFail
	}
	return exitOK
}

// decodeAPIRequest reads exactly one APIRequest and rejects what the probe
// could only guess at.
func decodeAPIRequest(r io.Reader) (wire.APIRequest, error) {
	var req wire.APIRequest
	dec := json.NewDecoder(io.LimitReader(r, maxRequest))
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return req, errors.New("empty input: want an APIRequest JSON on stdin")
		}
		return req, fmt.Errorf("decode request: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, errors.New("decode request: unexpected data after the request")
	}
	if req.TimeoutMS < 0 || req.Parallel < 0 {
		return req, errors.New("request timeoutMs and parallel must not be negative")
	}
	for i, c := range req.Calls {
		if err := validateCall(c); err != nil {
			return req, fmt.Errorf("call %d (id %q): %w", i, c.ID, err)
		}
	}
	for i, f := range req.Files {
		if !filepath.IsAbs(f) {
			return req, fmt.Errorf("file %d: %q is not an absolute path", i, f)
		}
	}
	return req, nil
}

func validateCall(c wire.APICall) error {
	if !apiMethods[c.Method] {
		return fmt.Errorf("method %q: want GET, POST, PUT, PATCH or DELETE", c.Method)
	}
	if !strings.HasPrefix(c.Path, "/") || strings.Contains(c.Path, "://") {
		return fmt.Errorf("path %q: want an absolute API path", c.Path)
	}
	switch c.Auth {
	case "", wire.AuthToken, wire.AuthNone, wire.AuthInvalid:
	default:
		return fmt.Errorf("unknown auth %q", c.Auth)
	}
	for k := range c.Headers {
		if strings.EqualFold(k, "Authorization") {
			return errors.New("the Authorization header is set by the probe, not the request")
		}
	}
	if len(c.Body) > 0 && !json.Valid(c.Body) {
		return errors.New("body is not valid JSON")
	}
	return nil
}

// apiClient holds what every call needs: the server, the token and the
// HTTP clients (one verifying the server, and, only when no CA bundle is
// mounted, one that does not, for calls without credentials).
type apiClient struct {
	server   string
	token    string
	tokenErr string
	verified *http.Client
	// unverified is set only when no ca.crt is mounted; calls that carry a
	// token never use it.
	unverified *http.Client
	tlsNote    string
	timeout    time.Duration
	parallel   int
}

func newAPIClient(e *env, saDir string, req wire.APIRequest) (*apiClient, error) {
	c := &apiClient{timeout: defaultAPITimeout, parallel: defaultAPIParallel}
	if req.TimeoutMS > 0 {
		c.timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	if req.Parallel > 0 {
		c.parallel = min(req.Parallel, maxAPIParallel)
	}
	tokenPath := filepath.Join(saDir, "token")
	switch tok, err := os.ReadFile(tokenPath); {
	case err == nil && len(bytes.TrimSpace(tok)) > 0:
		c.token = string(bytes.TrimSpace(tok))
	case err == nil:
		c.tokenErr = "the ServiceAccount token at " + tokenPath + " is empty"
	case errors.Is(err, fs.ErrNotExist):
		c.tokenErr = "no ServiceAccount token mounted at " + tokenPath
	default:
		c.tokenErr = "cannot read the ServiceAccount token: " + err.Error()
	}
	if len(req.Calls) == 0 {
		return c, nil
	}
	host, port := e.getenv("KUBERNETES_SERVICE_HOST"), e.getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("KUBERNETES_SERVICE_HOST/PORT are not set: not running in a pod, or the API server is not announced to it")
	}
	c.server = net.JoinHostPort(host, port)

	caPath := filepath.Join(saDir, "ca.crt")
	pem, err := os.ReadFile(caPath)
	switch {
	case err == nil:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caPath)
		}
		c.verified = newHTTPClient(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, c.parallel)
		c.tlsNote = wire.TLSVerified
	case errors.Is(err, fs.ErrNotExist):
		// Without a CA bundle only anonymous calls are possible, and only
		// unverified: say so in the response.
		c.unverified = newHTTPClient(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, c.parallel) //nolint:gosec // anonymous calls only, reported as unverified
		c.tlsNote = wire.TLSUnverified
	default:
		return nil, fmt.Errorf("read %s: %w", caPath, err)
	}
	return c, nil
}

func newHTTPClient(cfg *tls.Config, parallel int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:     cfg,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: parallel,
			TLSHandshakeTimeout: 10 * time.Second,
			// No proxy: the pod talks to the API server directly.
			Proxy: nil,
		},
		// Never follow redirects: a redirect is an answer to report.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// callAll performs every call, at most c.parallel at a time; results are in
// call order.
func (c *apiClient) callAll(ctx context.Context, req wire.APIRequest) []wire.APIResult {
	results := make([]wire.APIResult, len(req.Calls))
	sem := make(chan struct{}, c.parallel)
	var wg sync.WaitGroup
	for i, call := range req.Calls {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = c.call(ctx, call)
		}()
	}
	wg.Wait()
	return results
}

func (c *apiClient) call(ctx context.Context, call wire.APICall) (res wire.APIResult) {
	start := time.Now()
	res = wire.APIResult{ID: call.ID, Started: start.UTC()}
	defer func() {
		if r := recover(); r != nil {
			res.Error = fmt.Sprintf("internal error: %v", r)
		}
		res.LatencyMS = millis(time.Since(start))
	}()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	auth := call.Auth
	if auth == "" {
		auth = wire.AuthToken
	}
	client := c.verified
	switch {
	case auth == wire.AuthToken && c.token == "":
		res.Error = c.tokenErr
		return res
	case auth == wire.AuthToken && client == nil:
		res.Error = "no ca.crt mounted: the token is never sent to an unverified server"
		return res
	case client == nil:
		client = c.unverified
	}

	var body io.Reader
	if len(call.Body) > 0 {
		body = bytes.NewReader(call.Body)
	}
	req, err := http.NewRequestWithContext(ctx, call.Method, "https://"+c.server+withDryRun(call.Path, call.DryRun), body)
	if err != nil {
		res.Error = "build request: " + err.Error()
		return res
	}
	for k, vs := range call.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		ct := call.ContentType
		if ct == "" {
			ct = "application/json"
			if call.Method == http.MethodPatch {
				ct = "application/merge-patch+json"
			}
		}
		req.Header.Set("Content-Type", ct)
	}
	switch auth {
	case wire.AuthToken:
		req.Header.Set("Authorization", "Bearer "+c.token)
	case wire.AuthInvalid:
		req.Header.Set("Authorization", "Bearer "+invalidToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer resp.Body.Close()
	res.Code = resp.StatusCode
	wire.ReadAnswer(ctx, &res, resp.Body, call.Watch)
	return res
}

// withDryRun adds dryRun=All to path's query.
func withDryRun(path string, dryRun bool) string {
	if !dryRun {
		return path
	}
	if strings.Contains(path, "?") {
		return path + "&dryRun=All"
	}
	return path + "?dryRun=All"
}

// fingerprintFiles reports presence and fingerprint of each path, never
// its content.
func fingerprintFiles(paths []string) []wire.FileResult {
	var out []wire.FileResult
	for _, p := range paths {
		fr := wire.FileResult{Path: p}
		b, err := os.ReadFile(p)
		switch {
		case err == nil:
			fr.Present, fr.Bytes, fr.Fingerprint = true, len(b), wire.Fingerprint(b)
		case errors.Is(err, fs.ErrNotExist):
		default:
			fr.Present, fr.Error = true, err.Error()
		}
		out = append(out, fr)
	}
	return out
}
