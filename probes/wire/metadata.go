package wire

import "time"

// The `metadata` mode tries cloud instance metadata endpoints from inside a
// pod: a TCP connect to each endpoint's address, then its HTTP request(s).
// It never prints what an endpoint answered: only the status, the size, a
// fingerprint of the body, and, when the body looks like a credential, which
// fields carried secrets and a fingerprint of their values.

// DecoyHeader is set on every answer of bulkhead's metadata decoy (the probe's
// `decoy` mode); its value is the decoy's marker (the run ID). An answer with
// it came from the decoy, not from a real metadata service or a proxy.
const DecoyHeader = "X-Bulkhead-Decoy"

// HTTPStep is one HTTP request of a metadata endpoint.
type HTTPStep struct {
	Method string `json:"method"`
	// Path is the request path and query, e.g. "/latest/meta-data/".
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers,omitempty"`
}

// MetadataEndpoint is one endpoint to try.
type MetadataEndpoint struct {
	// ID is the caller's key, echoed in the result (e.g. "aws-imdsv2").
	ID string `json:"id"`
	// Host is an IP address (IPv6 without brackets) or a DNS name.
	Host string `json:"host"`
	Port int    `json:"port"`
	// Token, when set, is requested first (AWS IMDSv2: PUT /latest/api/token);
	// its answer is sent with Request in the header TokenHeader. The token is
	// never printed.
	Token       *HTTPStep `json:"token,omitempty"`
	TokenHeader string    `json:"tokenHeader,omitempty"`
	Request     HTTPStep  `json:"request"`
	// FollowFirst: Request answers a list of names, one per line; the probe
	// then also requests Request.Path + the first name (AWS: the instance
	// role's credentials under iam/security-credentials/).
	FollowFirst bool `json:"followFirst,omitempty"`
}

// MetadataRequest is what `probe metadata` reads on stdin.
type MetadataRequest struct {
	Endpoints []MetadataEndpoint `json:"endpoints"`
	// TimeoutMS bounds each step (connect, each HTTP request). Default 2000.
	TimeoutMS int `json:"timeoutMs,omitempty"`
}

// Steps of an HTTP exchange.
const (
	StepToken   = "token"
	StepRequest = "request"
	StepFollow  = "follow"
)

// HTTPExchange is one HTTP request and what came back, redacted.
type HTTPExchange struct {
	Step   string `json:"step"`
	Method string `json:"method"`
	URL    string `json:"url"`
	// Outcome is Reachable when an HTTP response came back, whatever its
	// status; otherwise how the request failed (timeout, refused, ...).
	Outcome Outcome `json:"outcome"`
	Status  int     `json:"status,omitempty"`
	Detail  string  `json:"detail,omitempty"`
	// Bytes is the size of the body read (at most 64 KiB are read).
	Bytes int `json:"bytes,omitempty"`
	// Fingerprint identifies the body without revealing it: "sha256:" and
	// the first 12 hex digits of its SHA-256.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Credential is set when the body looks like a credential.
	Credential *CredentialShape `json:"credential,omitempty"`
	// Decoy is the DecoyHeader of the answer: set only when bulkhead's decoy answered.
	Decoy     string  `json:"decoy,omitempty"`
	LatencyMS float64 `json:"latencyMs"`
}

// CredentialShape says why an answer looks like a credential, never what it is.
type CredentialShape struct {
	// Kinds of secret recognised, e.g. "aws-access-key", "oauth2-token".
	Kinds []string `json:"kinds"`
	// Fields are the names of the JSON fields that carried secret values.
	Fields []string `json:"fields,omitempty"`
	// Fingerprint of the secret values: "sha256:" and 12 hex digits.
	Fingerprint string `json:"fingerprint"`
}

// MetadataResult is the outcome for one endpoint.
type MetadataResult struct {
	ID string `json:"id"`
	// Address is the IP that was dialled (after resolution for names).
	Address string `json:"address,omitempty"`
	// Connect is the outcome of a plain TCP connect to Host:Port.
	Connect       Outcome `json:"connect"`
	ConnectDetail string  `json:"connectDetail,omitempty"`
	ConnectMS     float64 `json:"connectMs"`
	// Exchanges are the HTTP requests made, in order (token, request,
	// follow). A step that could not be sent (no token) is absent.
	Exchanges []HTTPExchange `json:"exchanges,omitempty"`
	Started   time.Time      `json:"started"`
}

// MetadataResponse is what `probe metadata` prints on stdout.
type MetadataResponse struct {
	Version int              `json:"version"`
	Source  Identity         `json:"source"`
	Results []MetadataResult `json:"results"`
}
