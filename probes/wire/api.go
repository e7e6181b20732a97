package wire

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// The `probe api` mode: a check sends an APIRequest on stdin; the probe
// performs every call against the Kubernetes API server (from
// KUBERNETES_SERVICE_HOST/PORT) in parallel, as the pod's own
// ServiceAccount (its mounted token) or with no credentials at all, and
// prints an APIResponse.
//
// The probe never prints a response body. Failures are reported by HTTP
// status, Status reason and a truncated Status message; successful answers
// by their kind, size and Fingerprint, plus the Fingerprint of every value
// of every Secret they contain, so a check can tell that a particular
// Secret (a canary) was returned without its value ever leaving the pod.

// APIAuth is how a call authenticates.
type APIAuth string

const (
	// AuthToken sends the pod's mounted ServiceAccount token (the default).
	AuthToken APIAuth = "token"
	// AuthNone sends no credentials: the request is anonymous.
	AuthNone APIAuth = "none"
	// AuthInvalid sends a bearer token the API server cannot have issued:
	// the request must be rejected as unauthenticated.
	AuthInvalid APIAuth = "invalid"
)

// ServiceAccountDir is where Kubernetes mounts a pod's ServiceAccount token,
// its CA bundle and its namespace.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// APICall is one request to the API server.
type APICall struct {
	// ID is the caller's key for this call, echoed in the result.
	ID string `json:"id"`
	// Method is GET, POST, PUT, PATCH or DELETE.
	Method string `json:"method"`
	// Path is the absolute API path with its query, e.g.
	// "/api/v1/namespaces/x/secrets?limit=1".
	Path string `json:"path"`
	// Body is sent as is (JSON).
	Body json.RawMessage `json:"body,omitempty"`
	// ContentType of Body; application/json by default, and
	// application/merge-patch+json for PATCH.
	ContentType string `json:"contentType,omitempty"`
	// DryRun adds dryRun=All: writes are authorized, admitted and validated
	// but never persisted.
	DryRun bool `json:"dryRun,omitempty"`
	// Auth is how the call authenticates (AuthToken when empty).
	Auth APIAuth `json:"auth,omitempty"`
	// Headers are added to the request (e.g. Impersonate-User).
	// Authorization cannot be set this way.
	Headers map[string][]string `json:"headers,omitempty"`
	// Watch marks a watch request: the answer is a stream of events, read
	// until the server ends it (use timeoutSeconds in Path) or the call's
	// deadline passes; neither is an error.
	Watch bool `json:"watch,omitempty"`
}

// APIRequest is what `probe api` reads on stdin.
type APIRequest struct {
	Calls []APICall `json:"calls"`
	// Files are paths inside the pod whose presence and Fingerprint are
	// reported (never their content): a mounted canary, a token.
	Files []string `json:"files,omitempty"`
	// TimeoutMS is the per-call deadline. Default 10000.
	TimeoutMS int `json:"timeoutMs,omitempty"`
	// Parallel bounds concurrent calls. Default 32.
	Parallel int `json:"parallel,omitempty"`
}

// APIResult is the outcome of one call.
type APIResult struct {
	ID string `json:"id"`
	// Code is the HTTP status; 0 when no answer came (see Error).
	Code int `json:"code"`
	// Reason and Message are the Status reason and message of a failed call
	// (Message truncated).
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Kind of a successful answer ("SecretList", "Status", "WatchEvents").
	Kind string `json:"kind,omitempty"`
	// Bytes and Fingerprint of a successful answer's body.
	Bytes       int    `json:"bytes,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Events is the number of watch events received.
	Events int `json:"events,omitempty"`
	// SecretValues are the Fingerprints of every value in the data of every
	// Secret in a successful answer (an object, a list or watch events).
	SecretValues []string `json:"secretValues,omitempty"`
	// Error says why no answer came (transport, TLS, no token).
	Error     string    `json:"error,omitempty"`
	LatencyMS float64   `json:"latencyMs"`
	Started   time.Time `json:"started"`
}

// FileResult is what the probe found at one path of APIRequest.Files.
type FileResult struct {
	Path        string `json:"path"`
	Present     bool   `json:"present"`
	Bytes       int    `json:"bytes,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Error is set when the path exists but cannot be read.
	Error string `json:"error,omitempty"`
}

// APIResponse is what `probe api` prints on stdout.
type APIResponse struct {
	Version int      `json:"version"`
	Source  Identity `json:"source"`
	// Server is the API server address the calls went to.
	Server string `json:"server,omitempty"`
	// TokenMounted says whether a ServiceAccount token is mounted in the pod.
	TokenMounted bool `json:"tokenMounted"`
	// TLS says how the server certificate was verified.
	TLS     string       `json:"tls,omitempty"`
	Results []APIResult  `json:"results"`
	Files   []FileResult `json:"files,omitempty"`
}

// TLS verification notes of an APIResponse.
const (
	TLSVerified = "verified with the mounted ca.crt"
	// TLSUnverified: no CA bundle is mounted; only calls without credentials
	// were made, and the server certificate was not verified.
	TLSUnverified = "not verified: no ca.crt mounted (calls without credentials only)"
)

// Fingerprint identifies a value without revealing it: the first 12 hex
// digits of its SHA-256. Evidence shows fingerprints, never values.
func Fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// Limits of ReadAnswer.
const (
	// MaxStatusBody bounds how much of a failure's body is read: a Status
	// is a few hundred bytes.
	MaxStatusBody = 64 << 10
	// MaxAnswerBody bounds how much of a successful answer is read and
	// fingerprinted.
	MaxAnswerBody = 32 << 20
	// MaxMessage is how many characters of a Status message are reported.
	MaxMessage = 300
)

// ReadAnswer fills res (whose Code is set) from a response body: the Status
// reason and truncated message of a failure, or the kind, size, Fingerprint
// and Secret value fingerprints of a success. It never keeps the body. Both
// the probe and the checks' own requests read answers with it, so evidence
// from inside a pod and from outside is the same.
func ReadAnswer(ctx context.Context, res *APIResult, body io.Reader, watch bool) {
	if res.Code < 200 || res.Code > 299 {
		raw, _ := io.ReadAll(io.LimitReader(body, MaxStatusBody))
		res.Reason, res.Message = ParseStatus(raw)
		return
	}
	if watch {
		readWatch(ctx, res, body)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(body, MaxAnswerBody))
	if err != nil {
		res.Error = "read answer: " + err.Error()
	}
	res.Bytes = len(raw)
	res.Fingerprint = Fingerprint(raw)
	var obj answerObject
	if json.Unmarshal(raw, &obj) == nil {
		res.Kind = obj.Kind
		res.SecretValues = obj.secretValues()
	}
}

// readWatch counts the events of a watch stream and fingerprints the Secret
// values in them, until the server ends the stream or the deadline passes
// (neither is an error).
func readWatch(ctx context.Context, res *APIResult, body io.Reader) {
	res.Kind = "WatchEvents"
	dec := json.NewDecoder(io.LimitReader(body, MaxAnswerBody))
	seen := map[string]bool{}
	for {
		var ev struct {
			Type   string       `json:"type"`
			Object answerObject `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && ctx.Err() == nil {
				res.Error = "read watch: " + err.Error()
			}
			return
		}
		res.Events++
		for _, v := range ev.Object.secretValues() {
			if !seen[v] {
				seen[v] = true
				res.SecretValues = append(res.SecretValues, v)
			}
		}
	}
}

// answerObject is the little of an answer that is looked at: its kind, and
// the data of Secrets (to fingerprint, never to keep).
type answerObject struct {
	Kind  string            `json:"kind"`
	Data  map[string]string `json:"data"`
	Items []struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	} `json:"items"`
}

func (o answerObject) secretValues() []string {
	var out []string
	add := func(data map[string]string) {
		for _, v := range data {
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				raw = []byte(v)
			}
			out = append(out, Fingerprint(raw))
		}
	}
	switch o.Kind {
	case "Secret":
		add(o.Data)
	case "SecretList":
		for _, it := range o.Items {
			add(it.Data)
		}
	case "List":
		for _, it := range o.Items {
			if it.Kind == "Secret" {
				add(it.Data)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ParseStatus returns the reason and (truncated) message of a failure's
// body: a metav1.Status, or plain text.
func ParseStatus(raw []byte) (reason, message string) {
	var st struct {
		Kind    string `json:"kind"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &st) == nil && (st.Kind == "Status" || st.Message != "" || st.Reason != "") {
		return st.Reason, Truncate(st.Message, MaxMessage)
	}
	return "", Truncate(strings.TrimSpace(string(raw)), MaxMessage)
}

// Truncate shortens s to at most n characters, marking the cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
