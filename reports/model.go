// Package reports holds bulkhead's result model (what results.json contains)
// and the writers that turn it into reports. Writers read only this model,
// never the cluster, so any report can be re-rendered later from a results file.
package reports

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Schema identifies the results.json format. Bump it on breaking changes.
const Schema = "bulkhead.dev/results/v1"

// Results is the whole content of results.json.
type Results struct {
	Schema string        `json:"schema"`
	Run    RunInfo       `json:"run"`
	Checks []CheckResult `json:"checks"`
}

// RunInfo is run metadata: what ran, against what, when.
type RunInfo struct {
	ID       string    `json:"id"`
	Bulkhead Build     `json:"bulkhead"`
	Frontend string    `json:"frontend"` // "go test" or "bulkhead run"
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Cluster  Cluster   `json:"cluster"`
	// ProbeImage is the image the probe pods ran.
	ProbeImage string   `json:"probeImage,omitempty"`
	Tenants    []Tenant `json:"tenants,omitempty"`
	// Selection records filters (areas, profile, labels) that limited the run.
	Selection map[string]string `json:"selection,omitempty"`
	// Interrupted is set when the run was stopped (Ctrl-C, SIGTERM) before
	// every selected check had run: the results hold what was judged until
	// then, and the run as a whole is not a pass.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Build identifies the bulkhead that produced the results.
type Build struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
}

// Cluster describes the cluster under test.
type Cluster struct {
	Context           string `json:"context,omitempty"`
	Server            string `json:"server,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	CNI               string `json:"cni,omitempty"`
	CNIVersion        string `json:"cniVersion,omitempty"`
	Nodes             int    `json:"nodes"`
	// Disposable is true when bulkhead created the cluster for this run.
	Disposable bool `json:"disposable"`
}

// Tenant is a tenant as the run saw it.
type Tenant struct {
	Name       string   `json:"name"`
	Namespaces []string `json:"namespaces"`
	// Isolated is false for the unprotected control namespace(s).
	Isolated bool `json:"isolated"`
	// Reference is true when bulkhead created the tenant from its fixtures.
	Reference  bool     `json:"reference"`
	Identities []string `json:"identities,omitempty"`
}

// CheckResult is one check's verdict and the evidence it rests on.
type CheckResult struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Area     string    `json:"area"`
	Proves   string    `json:"proves"`
	Verdict  Verdict   `json:"verdict"`
	Reason   string    `json:"reason,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Notes are facts about how the check ran (e.g. "SCTP not evaluated: ...",
	// "policy enforced after 2.1s").
	Notes []string `json:"notes,omitempty"`
	// NotEvaluated names what the check covers but could not evaluate
	// (e.g. a tenant where no identity may try): the check cannot pass,
	// and no waiver makes up for it.
	NotEvaluated []string      `json:"notEvaluated,omitempty"`
	Observations []Observation `json:"observations"`
	// Waiver is set when Verdict is Waived (or a waiver was present but expired).
	Waiver *WaiverRef `json:"waiver,omitempty"`
}

// WaiverRef records the waiver applied to a check result.
type WaiverRef struct {
	Justification string    `json:"justification"`
	Expires       time.Time `json:"expires"`
	Namespace     string    `json:"namespace,omitempty"`
	Expired       bool      `json:"expired,omitempty"`
	// Source is the waiver's "file:line".
	Source string `json:"source,omitempty"`
}

// Actor is who tried something, and from where.
type Actor struct {
	Tenant    string `json:"tenant,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Node      string `json:"node,omitempty"`
	// Identity is the Kubernetes identity used: a ServiceAccount's username,
	// an impersonated user, or empty for network probes (the pod is the actor).
	Identity string `json:"identity,omitempty"`
}

// Target is what was tried.
type Target struct {
	Tenant    string `json:"tenant,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Name of the object or pod the target belongs to.
	Name string `json:"name,omitempty"`
	// Kind of target: "pod", "service", "secret", "endpoint", ...
	Kind string `json:"kind,omitempty"`
	// Address as dialled or requested: "10.244.1.5:8080", a DNS name, a URL, an API path.
	Address string `json:"address,omitempty"`
}

// Observation is one attempt and what came back: the unit of evidence.
type Observation struct {
	Role   Role   `json:"role"`
	Actor  Actor  `json:"actor"`
	Target Target `json:"target"`
	// Method is how it was tried, e.g. "tcp/pod-ip", "udp/service-dns", "GET secrets".
	Method string `json:"method"`
	// Expected and Observed are short outcome words: "reachable"/"blocked",
	// "allowed"/"denied", or a status like "403".
	Expected string `json:"expected"`
	Observed string `json:"observed"`
	// OK is true when Observed satisfies Expected.
	OK bool `json:"ok"`
	// Status is the judged state of the observation (see ObservationStatus):
	// a blocked path or a denied request passes only when its proof was
	// observed too. Checks set it themselves only for not-applicable and
	// inconclusive attempts; the judge sets the rest.
	Status ObservationStatus `json:"status,omitempty"`
	// Why explains an unproven or not-applicable status: the proof that was
	// missing, or why the identity may not try.
	Why    string `json:"why,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Round is the probe round (1-based) of checks that probe in rounds; 0
	// when the check tries once. Proof is matched within a round.
	Round int `json:"round,omitempty"`
	// Needs are the proof keys a test observation rests on (e.g. "the target
	// pod answers on tcp/pod-ip:8080", "the source reaches something"); it
	// is proven only when, in the same round, a passing control Proves
	// every one of them. Proves are the keys a control observation shows.
	Needs  []string `json:"needs,omitempty"`
	Proves []string `json:"proves,omitempty"`
	// LatencyMS of the last attempt, when meaningful.
	LatencyMS float64 `json:"latencyMs,omitempty"`
	// Attempts is how many times this was tried before the result was accepted
	// (policies take a moment to be enforced, so checks poll).
	Attempts int       `json:"attempts,omitempty"`
	At       time.Time `json:"at"`
}

// ResultsFile is the name of the results file inside a report directory.
const ResultsFile = "results.json"

// WriteJSON writes results as indented JSON to dir/results.json.
func WriteJSON(dir string, r *Results) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create report directory %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode results: %w", err)
	}
	path := filepath.Join(dir, ResultsFile)
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// ReadJSON reads a results file written by WriteJSON.
func ReadJSON(path string) (*Results, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results %s: %w", path, err)
	}
	var r Results
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse results %s: %w", path, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("results %s: schema %q, this bulkhead reads %q", path, r.Schema, Schema)
	}
	return &r, nil
}
