// Package probing is the engine every check that probes from inside pods
// runs on: it sends a batch to the probe program in a pod (one exec per pod
// and round), decodes and version-checks the answer, retries an exec that
// failed, and runs rounds with a settle phase (see Rounds). Checks declare
// what to probe and how to judge it; this package does the rest.
//
// Runner is the seam: Exec runs the real probe program through the API
// server's exec; unit tests use a simulated runner with the same interface
// (as cyclonus's simulated and real job runners share one).
package probing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// Pod is a probe pod, as the engine addresses it.
type Pod struct {
	Namespace, Name string
}

func (p Pod) String() string { return p.Namespace + "/" + p.Name }

// Runner runs one batch of the probe program in one pod and returns its
// decoded answer. Every method makes one exec (plus retries).
type Runner interface {
	Connect(ctx context.Context, src Pod, req wire.ConnectRequest) (*wire.ConnectResponse, error)
	Metadata(ctx context.Context, src Pod, req wire.MetadataRequest) (*wire.MetadataResponse, error)
	API(ctx context.Context, src Pod, req wire.APIRequest) (*wire.APIResponse, error)
	Caps(ctx context.Context, src Pod) (*wire.Capabilities, error)
}

// ExecFunc runs the probe program (/probe ARGS...) in pod's probe container
// with stdin, and returns its standard output.
type ExecFunc func(ctx context.Context, pod Pod, stdin []byte, args ...string) ([]byte, error)

// Exec is the real Runner: it execs the probe program in the pod.
type Exec struct {
	Run ExecFunc
	// Retries is how many times an exec that failed is tried again (a
	// stream reset, a busy API server); default 2.
	Retries int
	// Backoff is the pause before the first retry, doubled each time;
	// default 500ms.
	Backoff time.Duration
	// Timeout bounds one exec; default 1 minute.
	Timeout time.Duration
	// Outputs, when set, receives every raw standard output (tests that
	// assert no secret value ever reaches bulkhead's process use it).
	Outputs func([]byte)
}

// Connect runs `probe connect`.
func (e *Exec) Connect(ctx context.Context, src Pod, req wire.ConnectRequest) (*wire.ConnectResponse, error) {
	out := &wire.ConnectResponse{}
	return out, e.call(ctx, src, "connect", req, out)
}

// Metadata runs `probe metadata`.
func (e *Exec) Metadata(ctx context.Context, src Pod, req wire.MetadataRequest) (*wire.MetadataResponse, error) {
	out := &wire.MetadataResponse{}
	return out, e.call(ctx, src, "metadata", req, out)
}

// API runs `probe api`.
func (e *Exec) API(ctx context.Context, src Pod, req wire.APIRequest) (*wire.APIResponse, error) {
	out := &wire.APIResponse{}
	return out, e.call(ctx, src, "api", req, out)
}

// Caps runs `probe caps`.
func (e *Exec) Caps(ctx context.Context, src Pod) (*wire.Capabilities, error) {
	out := &wire.Capabilities{}
	return out, e.call(ctx, src, "caps", nil, out)
}

// call encodes req, execs the probe (retrying a failed exec), and decodes
// and checks the answer into resp. A wrong contract version or an answer
// from another pod is not retried: it will not heal.
func (e *Exec) call(ctx context.Context, src Pod, mode string, req, resp any) error {
	var in []byte
	if req != nil {
		var err error
		if in, err = json.Marshal(req); err != nil {
			return fmt.Errorf("encode %s request for %s: %w", mode, src, err)
		}
	}
	retries, backoff, timeout := e.Retries, e.Backoff, e.Timeout
	if retries == 0 {
		retries = 2
	}
	if backoff == 0 {
		backoff = 500 * time.Millisecond
	}
	if timeout == 0 {
		timeout = time.Minute
	}
	var raw []byte
	var err error
	attempt := 0
	for ; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, timeout)
		raw, err = e.Run(actx, src, in, mode)
		cancel()
		if e.Outputs != nil && raw != nil {
			e.Outputs(raw)
		}
		if err == nil || attempt >= retries || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff << attempt):
		}
	}
	if err != nil {
		return &ExecError{Pod: src, Mode: mode, Attempts: attempt + 1, Err: err}
	}
	return decode(src, mode, raw, resp)
}

// decode checks the contract every answer starts with (its version, and
// who answered), then decodes the whole answer into resp.
func decode(src Pod, mode string, raw []byte, resp any) error {
	var head struct {
		Version int           `json:"version"`
		Source  wire.Identity `json:"source"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("probe %s in %s printed something that is not a %s answer: %w: %.200q", mode, src, mode, err, raw)
	}
	if head.Version != wire.Version {
		return fmt.Errorf("probe in %s speaks contract version %d, this bulkhead %d: use the matching probe image (`bulkhead probe-image`)", src, head.Version, wire.Version)
	}
	if head.Source.Pod != "" && head.Source.Pod != src.Name {
		return fmt.Errorf("exec into %s reached a probe that says it is %s/%s", src, head.Source.Namespace, head.Source.Pod)
	}
	if err := json.Unmarshal(raw, resp); err != nil {
		return fmt.Errorf("probe %s in %s printed something that is not a %s answer: %w: %.200q", mode, src, mode, err, raw)
	}
	return nil
}

// ExecError is an exec that failed every attempt: the pod could not be
// asked. Rounds keep going without that pod (its paths are inconclusive
// in that round); other callers decide themselves.
type ExecError struct {
	Pod      Pod
	Mode     string
	Attempts int
	Err      error
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("probe %s in %s (%d attempts): %v", e.Mode, e.Pod, e.Attempts, e.Err)
}

func (e *ExecError) Unwrap() error { return e.Err }

// IsExecError reports whether err is an exec that failed every attempt.
func IsExecError(err error) bool {
	var e *ExecError
	return errors.As(err, &e)
}
